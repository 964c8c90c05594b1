#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Issue 16, TLS at the edge: a real Consul dev agent, a real HAProxy 2.6,
the real drover-watcher, certificates made by openssl in the test.

usage: test_tls.py DROVER_WATCHER CONSUL_DEV_SH TEMPLATE_DIR

Steps, in order on one setup (a definition whose frontend terminates TLS
with one certificate file and routes class "public" by Host):
  h2        curl --cacert --resolve: h2 negotiated, the Service answers,
            the certificate served is the file's (and the watcher's
            first-sight push of it is done)
  swap      the file replaced by a renewed certificate (new key) while a
            loop of new TLS connections runs: served at once, 0 reloads, 0
            failed requests, one swap counted
  bad       a file that does not parse, then a certificate with another
            certificate's key: each refused and counted, the renewed one
            still served, 0 reloads
  back      a good file after the bad ones: swapped again
"""
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "watcher"))
from watcherlib import Fleet, node, wait_for  # noqa: E402 (puts tests/lib on the path)
from drover_testlib import free_port, recv_all, run_main, run_steps, serve_http  # noqa: E402

WATCHER, CONSUL_DEV, TEMPLATES = sys.argv[1:4]
HOST = "shop.example.com"
F = None
CERTS = {}  # name -> PEM text (cert + key)
FP = {}  # name -> sha1 hex of the leaf certificate


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_certs(d):
    """A test CA and three certificates for HOST (v1, v2: each its own key;
    v3 only to pair with v1's key)."""
    os.makedirs(d)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.crt", "-days", "2", "-subj", "/CN=drover test CA", cwd=d)
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=DNS:%s\n" % HOST)
    for n in ("v1", "v2", "v3"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", n + ".key", "-out",
                n + ".csr", "-subj", "/CN=" + HOST, cwd=d)
        openssl("x509", "-req", "-in", n + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", n + ".crt", "-days", "2", "-extfile", "ext", cwd=d)
        crt, key = (open(os.path.join(d, n + s)).read() for s in (".crt", ".key"))
        CERTS[n] = crt + key
        der = ssl.PEM_cert_to_DER_cert(crt)
        FP[n] = hashlib.sha1(der).hexdigest()
    CERTS["mismatch"] = open(os.path.join(d, "v3.crt")).read() + \
        open(os.path.join(d, "v1.key")).read()
    CERTS["garbage"] = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n" \
                       "-----END CERTIFICATE-----\n"


def install_cert(name):
    """Replace the served file the way renewal tools do: write aside, rename."""
    tmp = LIVE + ".new"
    with open(tmp, "w") as f:
        f.write(CERTS[name])
    os.rename(tmp, LIVE)


def context():
    ctx = ssl.create_default_context(cafile=os.path.join(F.work, "certs", "ca.crt"))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def tls_get():
    """(sha1 of the served certificate, status line, body) of GET / over a
    new TLS connection to HOST."""
    with socket.create_connection(("127.0.0.1", F.FE_PORT), timeout=5) as raw:
        with context().wrap_socket(raw, server_hostname=HOST) as s:
            fp = hashlib.sha1(s.getpeercert(binary_form=True)).hexdigest()
            s.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % HOST).encode())
            data = recv_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    return fp, head.split(b"\r\n")[0].decode(), body.decode(errors="replace").strip()


def served():
    try:
        return tls_get()[0]
    except (OSError, ssl.SSLError):
        return None


def reloads():
    return F.master_reloads()


def step_h2():
    wait_for("HTTPS answered", lambda: served() == FP["v1"])
    out = subprocess.run(["curl", "-sS", "--cacert", os.path.join(F.work, "certs", "ca.crt"),
                          "--resolve", "%s:%d:127.0.0.1" % (HOST, F.FE_PORT),
                          "-w", "\n%{http_version}", "https://%s:%d/" % (HOST, F.FE_PORT)],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["shop", "2"], out.stdout
    cfg = F.cfg_text("tls")
    assert "ssl crt %s alpn h2,http/1.1" % LIVE in cfg, cfg
    # the watcher sends a certificate it sees for the first time once
    # (idempotent; retried at the next poll while HAProxy starts): let it
    # pass so the swaps below count alone
    wait_for("the first-sight push of the certificate",
             lambda: F.metric("drover_watcher_cert_swaps_total") >= 1)


class Loop(threading.Thread):
    """New TLS connections one after another until stopped; counts them."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop, self.ok, self.failed, self.errors, self.seen = False, 0, 0, [], set()

    def run(self):
        while not self.stop:
            try:
                fp, status, body = tls_get()
                if status.endswith(" 200 OK") and body == "shop":
                    self.ok += 1
                    self.seen.add(fp)
                    continue
                self.errors.append((status, body))
            except (OSError, ssl.SSLError) as e:
                self.errors.append(repr(e))
            self.failed += 1


def step_swap():
    r0, s0 = reloads(), F.metric("drover_watcher_cert_swaps_total")
    loop = Loop()
    loop.start()
    wait_for("requests flowing", lambda: loop.ok >= 20)
    install_cert("v2")
    wait_for("the renewed certificate served", lambda: FP["v2"] in loop.seen, timeout=10)
    n = loop.ok
    wait_for("requests after the swap", lambda: loop.ok >= n + 20)
    loop.stop = True
    loop.join()
    assert loop.failed == 0, (loop.failed, loop.ok, loop.errors[:5])
    assert loop.seen == {FP["v1"], FP["v2"]}, loop.seen
    assert served() == FP["v2"]
    assert reloads() == r0, "a certificate swap reloaded HAProxy"
    assert F.metric("drover_watcher_cert_swaps_total") == s0 + 1
    F.log("swap: %d requests over new TLS connections, 0 failed" % loop.ok)


def step_bad():
    r0, f0 = reloads(), F.metric("drover_watcher_cert_swap_failures_total")
    for i, name in enumerate(("garbage", "mismatch")):
        install_cert(name)
        wait_for("%s refused and counted" % name,
                 lambda: F.metric("drover_watcher_cert_swap_failures_total") == f0 + i + 1)
        assert served() == FP["v2"], "the certificate in force changed"
    with open(os.path.join(F.work, "watcher.log")) as f:
        log = f.read()
    assert "certificate %s refused: no PEM certificate that parses" % LIVE in log
    assert "certificate %s refused: the private key does not match" % LIVE in log
    assert reloads() == r0


def step_back():
    s0 = F.metric("drover_watcher_cert_swaps_total")
    install_cert("v1")
    wait_for("v1 served again", lambda: served() == FP["v1"])
    assert F.metric("drover_watcher_cert_swaps_total") == s0 + 1


def main():
    global F, LIVE
    for tool in ("haproxy", "openssl", "curl"):
        if not shutil.which(tool):
            print("SKIP: %s not installed" % tool)
            return 77
    F = Fleet(WATCHER, CONSUL_DEV, TEMPLATES, prefix="drover-tls-it.")
    # the default poll (1 s): the directory events must make swaps prompt
    F.watcher_args += ["--cert-poll-interval", "1s"]
    make_certs(os.path.join(F.work, "certs"))
    LIVE = os.path.join(F.work, "certs", "live.pem")
    install_cert("v1")
    port = free_port()
    serve_http("127.0.0.1", port, b"shop\n")
    F.copy_templates()
    F.consul("start")
    F.kv.put("kube/prod-a/nodes/n1", node("127.0.0.1"))
    F.kv.put("haproxy/edge/services/tls", {
        "frontends": [{"name": "fe_tls", "bind": ["127.0.0.1:%d" % F.FE_PORT],
                       "tls": {"certs": [LIVE]}}],
        "backends": [],
        "select": [{"class": "public", "frontend": "fe_tls"}]})
    F.kv.put("kube/prod-a/services/shop/web/http",
             {"node_port": port, "backend_protocol": "http", "load_balancer_class": "public",
              "dns_name": HOST})
    F.open_notify()
    F.start_watcher()
    wait_for("first config", lambda: os.path.exists(os.path.join(F.CFG, "tls.cfg")))
    F.start_haproxy()
    run_steps([step_h2, step_swap, step_bad, step_back])
    return 0


def diagnostics():
    if F:
        F.dump_logs()


if __name__ == "__main__":
    run_main(main, diagnostics, lambda: F and F.cleanup(), deadline=110)
