#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`droverctl config check` offline, as a CI step runs it: no Consul (the
address given is one nothing listens on), the watcher's templates, the
real `haproxy -c`.

A good file passes (rendered, `haproxy -c` passed); a definition that
renders but that HAProxy refuses is refused with HAProxy's message; a
definition the watcher's decoder refuses, an unknown key, a file that is
not JSON, a JSON file that is not an object and a key defined twice are
refused, each named; without HAProxy the render is still checked and the
skip is said; --json gives the per-key view. A TLS frontend is checked as
the watcher checks it: its certificate files first (a key that does not
match, a missing file: refused with the definition's field named), then
`haproxy -c` on the config naming the generated crt-list, with each
entry's SNI filters and ALPN."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from drover_testlib import free_port, log, run_main  # noqa: E402

CTL, TEMPLATES = sys.argv[1:3]
state = {}


def service(template="http"):
    return {"template": template,
            "frontends": [{"name": "fe_web", "bind": ["127.0.0.1:8080"],
                           "default_backend": "be_web"}],
            "backends": [{"name": "be_web", "balance": "roundrobin", "slots": 4,
                          "servers": [{"name": "s1", "address": "10.1.2.3", "port": 8080}],
                          "kube": [{"cluster": "prod-a", "namespace": "default",
                                    "service": "web", "port": "http"}]}]}


def write(name, content):
    path = os.path.join(state["work"], name)
    with open(path, "w") as f:
        f.write(content if isinstance(content, str) else json.dumps(content))
    return path


def check(*files, haproxy="haproxy", json_out=False):
    args = [CTL, "--consul-addr", "http://127.0.0.1:%d" % free_port(),
            "--template-dir", state["tpl"], "--haproxy-bin", haproxy]
    if json_out:
        args.append("--json")
    p = subprocess.run(args + ["config", "check", *files], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout, p.stderr


def make_pem(name, host, key_of=None):
    """A self-signed certificate for host with its key (or with the key of
    key_of: a pair that does not match) in <work>/<name>.pem."""
    d = state["work"]
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", name + ".key", "-out",
                    name + ".crt", "-days", "2", "-subj", "/CN=" + host],
                   cwd=d, check=True, capture_output=True)
    path = os.path.join(d, name + ".pem")
    with open(path, "w") as f:
        for part in (name + ".crt", (key_of or name) + ".key"):
            with open(os.path.join(d, part)) as src:
                f.write(src.read())
    return path


def tls_service(certs):
    svc = service()
    svc["frontends"][0]["tls"] = {"certs": certs, "alpn": ["h2", "http/1.1"]}
    return {"haproxy/edge/services/web": svc}


def check_tls():
    a, b = make_pem("a", "a.example.com"), make_pem("b", "b.example.com")
    bad = make_pem("bad", "b.example.com", key_of="a")
    entry = {"file": b, "sni": ["b.example.com", "www.b.example.com"], "alpn": ["http/1.1"]}
    rc, out, err = check(write("tls.json", tls_service([a, entry])))
    assert rc == 0 and "web: ok (rendered, haproxy -c passed)" in out, (rc, out, err)
    cases = [([a, dict(entry, file=bad)], "frontends[0].tls.certs[1]: %s: " % bad),
             ([os.path.join(state["work"], "none.pem")],
              "frontends[0].tls.certs[0]: %s/none.pem: No such file" % state["work"])]
    for certs, want in cases:
        rc, out, err = check(write("tls-bad.json", tls_service(certs)))
        assert rc == 1 and want in err, (want, rc, out, err)
    # without HAProxy the files are not read (the hosts have them)
    rc, out, err = check(write("tls-bad.json", tls_service(cases[1][0])), haproxy="no-such")
    assert rc == 0 and "web: ok (rendered)" in out, (rc, out, err)
    log("TLS: crt-list entries with SNI and ALPN checked; bad and missing files refused")


def main():
    state["work"] = tempfile.mkdtemp(prefix="drover-config-check.")
    state["tpl"] = os.path.join(state["work"], "templates")
    shutil.copytree(TEMPLATES, state["tpl"])
    with open(os.path.join(state["tpl"], "broken.mustache"), "w") as f:
        f.write("{{> global}}\n\n{{> defaults}}\n    no-such-directive x\n")
    have_haproxy = shutil.which("haproxy") is not None

    good = write("good.json", {"haproxy/edge/services/web": service(),
                               "director/dc1/vips/web": {"address": "192.0.2.10",
                                                         "ports": [80], "protocol": "tcp"}})
    rc, out, err = check(good)
    assert rc == 0 and "check: ok" in out, (rc, out, err)
    if have_haproxy:
        assert "web: ok (rendered, haproxy -c passed)" in out, out
    log("good file:", out.strip().splitlines()[0])

    if have_haproxy:
        broken = write("broken.json", {"haproxy/edge/services/web": service("broken")})
        rc, out, err = check(broken)
        assert rc == 1 and "check: REFUSED" in err and "no-such-directive" in err, (rc, out, err)
        log("haproxy -c refusal:", err.strip().splitlines()[0][:160])

    if have_haproxy and shutil.which("openssl"):
        check_tls()

    cases = [
        ("undecodable", {"haproxy/edge/services/web": dict(service(), template=3)},
         "haproxy/edge/services/web: template: expected string"),
        ("unknown key", {"haproxy/edge/nope/web": {}}, "haproxy/edge/nope/web: unknown key"),
        ("unknown director key", {"director/dc1/other": {}}, "director/dc1/other: unknown key"),
        ("not JSON", "not json", "(file): "),
        ("not an object", [1, 2], "not a JSON object"),
    ]
    for name, content, want in cases:
        path = write(name.replace(" ", "_") + ".json", content)
        rc, out, err = check(path)
        assert rc == 1 and want in err and "check: REFUSED" in err, (name, rc, out, err)
        log("refused:", name)
    twice = write("twice.json", {"haproxy/edge/services/web": service()})
    rc, out, err = check(good, twice)
    assert rc == 1 and "haproxy/edge/services/web: defined twice" in err, (rc, out, err)

    rc, out, err = check(good, haproxy="no-such-haproxy")
    assert rc == 0 and "`haproxy -c` skipped" in out and "web: ok (rendered)" in out, (rc, out)

    rc, out, err = check(good, json_out=True)
    doc = json.loads(out)
    assert rc == 0 and doc["ok"] and doc["keys"]["haproxy/edge/services/web"]["rendered"], doc
    bad = write("bad.json", {"haproxy/edge/nope/web": {}})
    rc, out, err = check(bad, json_out=True)
    doc = json.loads(out)
    assert rc == 1 and not doc["ok"] and not doc["keys"]["haproxy/edge/nope/web"]["ok"], doc
    return 0


def cleanup():
    if state.get("work"):
        shutil.rmtree(state["work"], ignore_errors=True)


if __name__ == "__main__":
    run_main(main, cleanup=cleanup, deadline=100)
