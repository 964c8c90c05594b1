#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Issue 16, what the other exported fields generate: a real Consul dev
agent, two real HAProxy 2.6 services of the real drover-watcher, and an
"upstream" HAProxy standing in for pods that speak TLS, h2 and h2c.

usage: test_routing.py DROVER_WATCHER CONSUL_DEV_SH TEMPLATE_DIR

Definitions (no backend named in either):
  edge-tcp   template tcp, frontend fe_tcp selects class "tcp-public",
             frontend fe_tcps (terminates TLS) selects class "tcp-term"
  edge-http  template http, frontend fe_http, selects class "web"

Steps, in order on one setup:
  sni        backend_protocol tls + dns_name: TLS passed through by SNI to
             the pod's own certificate; an unknown SNI gets no backend
  terminated a frontend that terminates TLS routes by the handshake's SNI
  listen     listen_port: a dedicated bind answers; a second Service asking
             for the same port is refused and counted, nothing rendered
  protocols  backend_protocol https, h2, h2c: HAProxy speaks TLS with
             ALPN http/1.1, TLS with ALPN h2, cleartext h2 to the pods (the
             upstream answers with what it saw)
  remove     edge-http deleted from KV: its config moved aside, then its
             route map removed (edge-tcp's stay); a route map no config
             names, left by a watcher stopped mid-retirement, is removed
             when the watcher starts again
"""
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "watcher"))
from watcherlib import Fleet, node, wait_for  # noqa: E402 (puts tests/lib on the path)
from drover_testlib import (HAProxy, free_port, http, metric, recv_all, run_main,  # noqa: E402
                            run_steps, serve_http)

WATCHER, CONSUL_DEV, TEMPLATES = sys.argv[1:4]
F = None
P = {}  # port names -> numbers
WATCHER_P = None


def openssl(*args):
    subprocess.run(["openssl"] + list(args), cwd=F.work, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_upstream():
    """The pods: one HAProxy answering with what the connection carried.
    TLS port (ALPN h2 and http/1.1) and a cleartext h2 port."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "up.key", "-out", "up.crt", "-days", "2", "-subj", "/CN=tls.example.com",
            "-addext", "subjectAltName=DNS:tls.example.com")
    with open(os.path.join(F.work, "up.pem"), "w") as f:
        f.write(open(os.path.join(F.work, "up.crt")).read() +
                open(os.path.join(F.work, "up.key")).read())
    cfg = os.path.join(F.work, "upstream.cfg")
    with open(cfg, "w") as f:
        f.write("""global
    log stdout format raw local0 info
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend up_tls
    bind 127.0.0.1:%d ssl crt %s alpn h2,http/1.1
    http-request return status 200 content-type text/plain lf-string "tls alpn=%%[ssl_fc_alpn] ver=%%[req.ver]\\n"
frontend up_h2c
    bind 127.0.0.1:%d proto h2
    http-request return status 200 content-type text/plain lf-string "clear ver=%%[req.ver]\\n"
""" % (P["up_tls"], os.path.join(F.work, "up.pem"), P["up_h2c"]))
    F.procs.append(HAProxy(cfg, os.path.join(F.work, "upstream.log")).start().proc)


def kube(node_port, proto, cls, **extra):
    v = {"node_port": node_port, "backend_protocol": proto, "load_balancer_class": cls,
         "labels": {}}
    v.update(extra)
    return v


def put_kube(key, value):
    F.kv.put("kube/prod-a/services/" + key, value)


def tls_request(port, sni, check_hostname=True):
    """GET / over TLS to port with sni, verified against up.crt (the
    pod's own certificate when the TLS was passed through; the edge's
    when it terminates, named for another host: check_hostname False);
    the body."""
    ctx = ssl.create_default_context(cafile=os.path.join(F.work, "up.crt"))
    ctx.check_hostname = check_hostname
    ctx.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = recv_all(s)
    return data.partition(b"\r\n\r\n")[2].decode().strip()


def tls_answer(port, sni, check_hostname=True):
    try:
        return tls_request(port, sni, check_hostname)
    except (OSError, ssl.SSLError):
        return None


def get(port, host):
    try:
        st, body, _ = http("GET", "http://127.0.0.1:%d/" % port, headers={"Host": host},
                           timeout=5)
        return st, body.decode(errors="replace").strip()
    except OSError:
        return None, None


def bad_kube():
    return metric(F.METRICS_PORT, "drover_watcher_kv_bad_entries", {"prefix": "kube"})


def step_sni():
    wait_for("TLS passed through by SNI",
             lambda: tls_answer(P["fe_tcp"], "tls.example.com") == "tls alpn=http/1.1 ver=1.1")
    cfg = F.cfg_text("edge-tcp")
    assert "req.ssl_sni,lower,map(" in cfg, cfg
    try:
        tls_request(P["fe_tcp"], "other.example.com")
        raise AssertionError("an unknown SNI was answered")
    except (OSError, ssl.SSLError):
        pass


def step_terminated_sni():
    wait_for("TLS terminated by the edge, routed by its SNI",
             lambda: tls_answer(P["fe_tcps"], "term.example.com", False) == "plain")
    cfg = F.cfg_text("edge-tcp")
    assert "ssl_fc_sni,lower,map(" in cfg, cfg


def step_listen():
    wait_for("listen_port answered", lambda: get(P["listen"], "any") == (200, "plain"))
    cfg = F.cfg_text("edge-tcp")
    assert "frontend fe.plain.web.tcp" in cfg and "bind 127.0.0.1:%d" % P["listen"] in cfg, cfg
    bad0 = bad_kube()
    put_kube("plain2/web/tcp", kube(P["plain"], "tcp", "tcp-public", listen_port=P["listen"]))
    wait_for("the second claim on the port refused", lambda: bad_kube() == bad0 + 1)
    assert "plain2" not in F.cfg_text("edge-tcp")
    with open(os.path.join(F.work, "watcher.log")) as f:
        assert "listen_port %d: already bound by frontend 'fe.plain.web.tcp'" % P["listen"] \
            in f.read()


def step_protocols():
    for host, want in (("https.example.com", "tls alpn=http/1.1 ver=1.1"),
                       ("h2.example.com", "tls alpn=h2 ver=2.0"),
                       ("h2c.example.com", "clear ver=2.0")):
        wait_for("%s answered" % host, lambda: get(P["fe_http"], host) == (200, want))
    cfg = F.cfg_text("edge-http")
    assert "ssl verify none alpn h2" in cfg and "proto h2" in cfg, cfg


def cfg_file(name):
    return os.path.join(F.CFG, name)


def step_remove():
    global WATCHER_P
    http_map, tcp_map = cfg_file("edge-http.fe_http.map"), cfg_file("edge-tcp.fe_tcp.map")
    assert os.path.exists(http_map) and os.path.exists(tcp_map), os.listdir(F.CFG)
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600))
    F.kv.put("haproxy/edge/force-removal/edge-http", {"expires": expires, "author": "test"})
    F.kv.delete("haproxy/edge/services/edge-http")
    wait_for("edge-http's config moved aside and its route map removed",
             lambda: os.path.exists(cfg_file("edge-http.cfg.removed")) and
             not os.path.exists(cfg_file("edge-http.cfg")) and not os.path.exists(http_map))
    assert os.path.exists(tcp_map), "a served service keeps its route maps"
    # a watcher stopped between the two steps leaves a map no config names:
    # the next start removes it (never one of a served service)
    WATCHER_P.terminate()
    assert WATCHER_P.wait(timeout=15) == 0
    ghost = cfg_file("ghost.fe.map")
    with open(ghost, "w") as f:
        f.write("gone.example.com ghost.web.http\n")
    WATCHER_P = F.start_watcher()
    wait_for("the leftover route map removed at start", lambda: not os.path.exists(ghost))
    assert os.path.exists(tcp_map), "a served service keeps its route maps"
    assert not os.path.exists(http_map), "a retired service's map came back"
    F.kv.delete("haproxy/edge/force-removal/edge-http")


def main():
    global F, WATCHER_P
    for tool in ("haproxy", "openssl"):
        if not shutil.which(tool):
            print("SKIP: %s not installed" % tool)
            return 77
    F = Fleet(WATCHER, CONSUL_DEV, TEMPLATES, prefix="drover-routing-it.")
    F.MASTER = os.path.join(F.work, "{service}.master")
    F.STATS = os.path.join(F.work, "{service}.sock")
    F.STATE = os.path.join(F.work, "{service}.state")
    for name in ("up_tls", "up_h2c", "plain", "fe_tcp", "fe_tcps", "fe_http", "listen"):
        P[name] = free_port()
    make_upstream()
    serve_http("127.0.0.1", P["plain"], b"plain\n")
    F.copy_templates()
    F.consul("start")
    F.kv.put("kube/prod-a/nodes/n1", node("127.0.0.1"))
    F.kv.put("haproxy/edge/services/edge-tcp", {
        "template": "tcp",
        "frontends": [{"name": "fe_tcp", "mode": "tcp", "bind": ["127.0.0.1:%d" % P["fe_tcp"]]},
                      {"name": "fe_tcps", "mode": "tcp", "bind": ["127.0.0.1:%d" % P["fe_tcps"]],
                       "tls": {"certs": [os.path.join(F.work, "up.pem")]}}],
        "backends": [], "select": [{"class": "tcp-public", "frontend": "fe_tcp"},
                                   {"class": "tcp-term", "frontend": "fe_tcps"}]})
    F.kv.put("haproxy/edge/services/edge-http", {
        "frontends": [{"name": "fe_http", "bind": ["127.0.0.1:%d" % P["fe_http"]]}],
        "backends": [], "select": [{"class": "web", "frontend": "fe_http"}]})
    put_kube("tls/web/https", kube(P["up_tls"], "tls", "tcp-public", dns_name="tls.example.com"))
    put_kube("plain/web/tcp", kube(P["plain"], "tcp", "tcp-public", listen_port=P["listen"]))
    put_kube("term/web/tcp", kube(P["plain"], "tcp", "tcp-term", dns_name="term.example.com"))
    for proto, port in (("https", "up_tls"), ("h2", "up_tls"), ("h2c", "up_h2c")):
        put_kube("%s/web/http" % proto,
                 kube(P[port], proto, "web", dns_name="%s.example.com" % proto))
    F.open_notify()
    WATCHER_P = F.start_watcher()
    for svc in ("edge-tcp", "edge-http"):
        wait_for("%s rendered" % svc, lambda: os.path.exists(os.path.join(F.CFG, svc + ".cfg")))
        F.procs.append(HAProxy(os.path.join(F.CFG, svc + ".cfg"),
                               os.path.join(F.work, "haproxy.log"),
                               master=os.path.join(F.work, svc + ".master")).start().proc)
    run_steps([step_sni, step_terminated_sni, step_listen, step_protocols, step_remove])
    return 0


def diagnostics():
    if F:
        F.dump_logs(files=("watcher.log", "haproxy.log", "upstream.log"))


if __name__ == "__main__":
    run_main(main, diagnostics, lambda: F and F.cleanup(), deadline=110)
