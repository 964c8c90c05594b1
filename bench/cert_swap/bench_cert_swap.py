#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""bench/cert_swap: a renewed certificate file -> served by HAProxy (see run.sh).

usage: bench_cert_swap.py DROVER_WATCHER CONSUL_DEV_SH TEMPLATE_DIR [SWAPS]

One definition whose frontend terminates TLS with one certificate file
(ECDSA P-256 certificates made by openssl), HAProxy 2.6 in master-worker
mode, drover-watcher with --cert-poll-interval POLL (env
BENCH_CERT_POLL, default 1s, the daemon's default). SWAPS times: write the other certificate
aside and rename it over the served file (what renewal tools do), then open
new TLS connections one after another until the served leaf certificate is
the new one. Latency = rename -> first handshake that serves it; it
includes the directory event (inotify) and the watcher's 5 ms settling
delay (the poll is only the safety net), reading and checking the file,
`set ssl cert` + `commit ssl cert` on the stats socket, HAProxy's new SSL
context and the handshakes of the client's polling. The watcher's own part
(file read -> commit answered) comes from its log.
Reloads = the master's reload counter delta (must be 0); failed = TLS
handshakes or requests that failed during the swaps (must be 0).
"""
import hashlib
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "lib"))
from drover_testlib import (KV_ROOT, ConsulDev, HAProxy, free_port,  # noqa: E402
                            haproxy_master_reloads, serve_http, stop_process, wait_until)

WATCHER, CONSUL_DEV, TEMPLATES = sys.argv[1:4]
SWAPS = int(sys.argv[4]) if len(sys.argv) > 4 else 100
POLL = os.environ.get("BENCH_CERT_POLL", "1s")
HOST = "shop.example.com"
work = tempfile.mkdtemp(prefix="drover-bench-cert.")
consul = ConsulDev(os.path.join(work, "consul"), CONSUL_DEV)
procs = []


def openssl(*args):
    subprocess.run(["openssl"] + list(args), cwd=work, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_certs():
    """CA + two leaf certificates for HOST: name -> (PEM, sha1 of the DER leaf)."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=bench CA")
    with open(os.path.join(work, "ext"), "w") as f:
        f.write("subjectAltName=DNS:%s\n" % HOST)
    out = {}
    for n in ("a", "b"):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", n + ".key", "-out", n + ".csr", "-subj", "/CN=" + HOST)
        openssl("x509", "-req", "-in", n + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", n + ".crt", "-days", "2", "-extfile", "ext")
        crt = open(os.path.join(work, n + ".crt")).read()
        out[n] = (crt + open(os.path.join(work, n + ".key")).read(),
                  hashlib.sha1(ssl.PEM_cert_to_DER_cert(crt)).hexdigest())
    return out


def served(ctx, port):
    """sha1 of the leaf certificate a new TLS connection gets, after a GET."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST) as s:
            fp = hashlib.sha1(s.getpeercert(binary_form=True)).hexdigest()
            s.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" %
                       HOST).encode())
            head = s.recv(4096)
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                raise OSError("answer %r" % head[:40])
    return fp


def install(path, pem):
    with open(path + ".new", "w") as f:
        f.write(pem)
    os.rename(path + ".new", path)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def main():
    for tool in ("haproxy", "consul", "openssl"):
        if not shutil.which(tool):
            print("bench/cert_swap: needs %s" % tool, file=sys.stderr)
            return 1
    certs = make_certs()
    live = os.path.join(work, "live.pem")
    install(live, certs["a"][0])
    fe, metrics, app = free_port(), free_port(), free_port()
    srv = serve_http("127.0.0.1", app, b"app\n")
    consul.start()
    kv = consul.client(KV_ROOT)
    kv.put("haproxy/bench/services/tls", {
        "frontends": [{"name": "fe", "bind": ["127.0.0.1:%d" % fe], "default_backend": "be",
                       "tls": {"certs": [live]}}],
        "backends": [{"name": "be", "check": {"type": "none"},
                      "servers": [{"name": "app", "address": "127.0.0.1", "port": app}]}]})
    cfg, log_path = os.path.join(work, "cfg"), os.path.join(work, "watcher.log")
    w = subprocess.Popen(
        [WATCHER, "--consul-addr", consul.addr, "--haproxy-cluster", "bench", "--kube-cluster",
         "c1", "--template-dir", TEMPLATES, "--config-dir", cfg,
         "--haproxy-master-socket", os.path.join(work, "{service}.master"),
         "--haproxy-stats-socket", os.path.join(work, "{service}.sock"),
         "--haproxy-state-file", os.path.join(work, "{service}.state"),
         "--agent-state-file", os.path.join(work, "agent.json"),
         "--snapshot-file", os.path.join(work, "snap.pb"), "--haproxy-maxconn", "1000",
         "--metrics-addr", "127.0.0.1:%d" % metrics, "--cert-poll-interval", POLL,
         "--log-level", "info"], stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))
    procs.append(w)
    wait_until("tls.cfg rendered", lambda: os.path.exists(os.path.join(cfg, "tls.cfg")), 60)
    master = os.path.join(work, "tls.master")
    procs.append(HAProxy(cfg, os.devnull, master=master).start().proc)
    ctx = ssl.create_default_context(cafile=os.path.join(work, "ca.crt"))
    ctx.set_alpn_protocols(["http/1.1"])
    wait_until("HTTPS served", lambda: served(ctx, fe) == certs["a"][1], 60, retry_on=OSError)
    # the first sight of the file is sent once (idempotent): let it pass
    wait_until("first push", lambda: "swapped through" in open(log_path).read(), 10)
    r0 = haproxy_master_reloads(master, 5)
    lat, failed = [], 0
    for k in range(SWAPS):
        name = "b" if k % 2 == 0 else "a"
        pem, want = certs[name]
        t0 = time.perf_counter()
        install(live, pem)
        while True:
            try:
                if served(ctx, fe) == want:
                    break
            except (OSError, ssl.SSLError):
                failed += 1
            if time.perf_counter() - t0 > 10:
                raise RuntimeError("swap %d not served within 10 s" % k)
        lat.append((time.perf_counter() - t0) * 1000.0)
    n_reloads = haproxy_master_reloads(master, 5) - r0
    commit = [float(m) for m in re.findall(r"swapped through the runtime API in ([0-9.]+) ms",
                                           open(log_path).read())][1:]
    srv.shutdown()
    srv.server_close()
    print("method: drover-watcher %s, HAProxy %s, consul agent -dev, loopback, %d CPUs, "
          "--cert-poll-interval %s" % (
              WATCHER, subprocess.run(["haproxy", "-v"], capture_output=True,
                                      text=True).stdout.split()[2], os.cpu_count(), POLL))
    print(__doc__.split("\n", 3)[3].strip())
    print("cert swap: %d swaps, p50 %.1f ms, p99 %.1f ms, max %.1f ms; watcher file read -> "
          "commit answered: p50 %.1f ms over %d swaps; %d reloads, %d failed" % (
              len(lat), pct(lat, 50), pct(lat, 99), max(lat),
              pct(commit, 50) if commit else -1, len(commit), n_reloads, failed))
    print("BENCH watcher_cert_swap_ms %.1f" % pct(lat, 50))
    print("BENCH watcher_cert_swap_p99_ms %.1f" % pct(lat, 99))
    print("BENCH watcher_cert_swap_commit_ms %.1f" % (pct(commit, 50) if commit else -1))
    print("BENCH watcher_cert_swap_reloads %d" % n_reloads)
    print("BENCH watcher_cert_swap_failed %d" % failed)
    return 0


if __name__ == "__main__":
    rc = 1
    try:
        rc = main()
    finally:
        for p in reversed(procs):
            stop_process(p)
        consul.close()
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(rc)
