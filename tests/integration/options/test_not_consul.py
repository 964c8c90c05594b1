# SPDX-License-Identifier: Apache-2.0
"""A server that is not Consul and answers 404 to everything (a proxy, a
web server on the wrong port) is not an empty KV store: droverctl status
fails instead of printing a false "no maintenance entries", and the
watcher's render refuses to render from it. The same commands against a
real Consul with an empty prefix (whose 404 carries X-Consul-Index) still
report "nothing there". The same fake records the ACL token droverctl
sends: Consul's CONSUL_HTTP_TOKEN, a token file from CONSUL_HTTP_TOKEN_FILE
winning over it, and drover's DROVER_CONSUL_TOKEN_FILE winning over both.

usage: test_not_consul.py TEMPLATE_DIR DROVERCTL WATCHER;
DROVER_CONSUL_STATE names the state directory of a consul-dev.sh agent."""

import http.server
import os
import sys
import tempfile
import threading

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from drover_testlib import Checks, ConsulDev, run_program as run  # noqa: E402

CHECKS = Checks()
check = CHECKS.check
TOKENS = []


class NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        TOKENS.append(self.headers.get("X-Consul-Token"))
        body = b"404 page not found\n"
        self.send_response(404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_token_sources(ctl, fake):
    with tempfile.TemporaryDirectory(prefix="drover-token.") as tmp:
        with open(f"{tmp}/consul.token", "w") as f:
            f.write("from-consul-file\n")
        with open(f"{tmp}/drover.token", "w") as f:
            f.write("from-drover-file\n")
        for env, want in (
                ({}, None),
                ({"CONSUL_HTTP_TOKEN": "from-env"}, "from-env"),
                ({"CONSUL_HTTP_TOKEN": "from-env",
                  "CONSUL_HTTP_TOKEN_FILE": f"{tmp}/consul.token"}, "from-consul-file"),
                ({"CONSUL_HTTP_TOKEN_FILE": f"{tmp}/consul.token",
                  "DROVER_CONSUL_TOKEN_FILE": f"{tmp}/drover.token"}, "from-drover-file")):
            TOKENS.clear()
            env = dict(env, CONSUL_HTTP_ADDR=fake)
            rc, out, err = run([ctl, "status"], env)
            check(rc == 1 and TOKENS and all(t == want for t in TOKENS),
                  f"droverctl with {sorted(env)} sends token {want!r}: got {TOKENS} rc {rc}")


def main():
    templates, ctl, watcher = sys.argv[1:4]
    consul = ConsulDev(os.environ.get("DROVER_CONSUL_STATE", "")).addr
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    fake = f"http://127.0.0.1:{srv.server_address[1]}"
    prefix = f"drover-not-consul-{os.getpid()}/"
    try:
        rc, out, err = run([ctl, "--consul-addr", fake, "status"])
        check(rc == 1 and "no maintenance entries" not in out and
              "404 without X-Consul-Index" in err,
              f"droverctl status against a non-Consul 404 fails: rc {rc} {out!r} {err!r}")
        rc, out, err = run([ctl, "--consul-addr", consul, "--kv-prefix", prefix, "status"])
        check(rc == 0 and "no maintenance entries" in out,
              f"droverctl status against Consul with an empty prefix: rc {rc} {out!r} {err!r}")
        with tempfile.TemporaryDirectory(prefix="drover-not-consul.") as tmp:
            base = [watcher, "--haproxy-cluster", "nc", "--template-dir", templates,
                    "--config-dir", f"{tmp}/cfg", "--snapshot-file", f"{tmp}/snap.pb"]
            rc, out, err = run(base + ["--consul-addr", fake, "render", "--out", f"{tmp}/a"])
            check(rc == 1 and "404 without X-Consul-Index" in err and
                  not os.path.exists(f"{tmp}/a/agent-state.json"),
                  f"watcher render against a non-Consul 404 fails: rc {rc} {err[-300:]!r}")
            rc, out, err = run(base + ["--consul-addr", consul, "--kv-prefix", prefix,
                                       "render", "--out", f"{tmp}/b"])
            check(rc == 0 and os.path.exists(f"{tmp}/b/agent-state.json"),
                  f"watcher render against Consul with an empty prefix: rc {rc} {err[-300:]!r}")
        test_token_sources(ctl, fake)
    finally:
        srv.shutdown()
    sys.exit(CHECKS.finish())


if __name__ == "__main__":
    main()
