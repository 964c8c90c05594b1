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
  sni       a second crt-list entry (its own file, SNI filter
            api.example.com): one reload; SNI picks it, the first stays
            the default; the crt-list file holds both lines
  diff      `render --diff` against a copy of the config dir from before
            step sni: exit 3 with the changed crt-list line and the new
            entry in the lists' diff (checked against the list render
            staged privately, not a `haproxy -c` failure for a list the
            copy lacks), nothing written into the copy; against the live
            config dir: exit 0, no output
  sniswap   the SNI entry's file renewed: served, 0 reloads
  inject    definitions with a space, a newline or a bracket in an SNI
            filter, a crt-list entry's file, a CA file or a verify_name:
            each refused (bad entry counted, last good definition kept),
            nothing rendered, 0 reloads
  verify    named backends with server_tls (ca_file = the test CA,
            verify_name): the upstream whose certificate the CA signed
            answers; the one with a self-signed certificate does not
  noca      ca_file naming a missing file: refused by the watcher before
            haproxy -c, with the field named, 0 reloads; the file put in
            place: picked up (one reload), served
  selected  https Services of the class with the selector's server_tls:
            the pod with the CA's certificate answers, the other not
  remove    the service deleted from KV (with its force-removal entry: it
            is the only one): its config moved aside, then its crt-lists
            directory removed, 0 reloads; a crt-lists directory of a
            service without a config (a watcher stopped mid-retirement)
            is removed when the watcher starts again
"""
import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "watcher"))
from watcherlib import Fleet, node, wait_for  # noqa: E402 (puts tests/lib on the path)
from drover_testlib import (free_port, metric, recv_all, run_main, run_steps,  # noqa: E402
                            serve_http)

WATCHER, CONSUL_DEV, TEMPLATES = sys.argv[1:4]
HOST = "shop.example.com"
API = "api.example.com"
UP = "up.internal"  # the name the upstreams' certificates carry
F = None
WATCHER_P = None
BEFORE_SNI = None  # a copy of the config dir from before step sni (step diff)
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
    for n, host in (("v1", HOST), ("v2", HOST), ("v3", HOST), ("api1", API), ("api2", API),
                    ("up", UP)):
        with open(os.path.join(d, n + ".ext"), "w") as f:
            f.write("subjectAltName=DNS:%s\n" % host)
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", n + ".key", "-out", n + ".csr", "-subj", "/CN=" + host, cwd=d)
        openssl("x509", "-req", "-in", n + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", n + ".crt", "-days", "2", "-extfile", n + ".ext",
                cwd=d)
        crt, key = (open(os.path.join(d, n + s)).read() for s in (".crt", ".key"))
        CERTS[n] = crt + key
        der = ssl.PEM_cert_to_DER_cert(crt)
        FP[n] = hashlib.sha1(der).hexdigest()
    # an upstream certificate for the same name that the test CA did not sign
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "rogue.key", "-out", "rogue.crt", "-days", "2", "-subj", "/CN=" + UP,
            "-addext", "subjectAltName=DNS:" + UP, cwd=d)
    for n in ("up", "rogue"):
        with open(os.path.join(d, n + ".pem"), "w") as f:
            f.write(open(os.path.join(d, n + ".crt")).read() +
                    open(os.path.join(d, n + ".key")).read())
    CERTS["mismatch"] = open(os.path.join(d, "v3.crt")).read() + \
        open(os.path.join(d, "v1.key")).read()
    CERTS["garbage"] = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n" \
                       "-----END CERTIFICATE-----\n"


def install_cert(name, path=None):
    """Replace the served file the way renewal tools do: write aside, rename."""
    path = path or LIVE
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(CERTS[name])
    os.rename(tmp, path)


def context():
    ctx = ssl.create_default_context(cafile=os.path.join(F.work, "certs", "ca.crt"))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def tls_get(sni=HOST, host=HOST):
    """(sha1 of the served certificate, status line, body) of GET / with
    Host host over a new TLS connection with SNI sni."""
    with socket.create_connection(("127.0.0.1", F.FE_PORT), timeout=5) as raw:
        with context().wrap_socket(raw, server_hostname=sni) as s:
            fp = hashlib.sha1(s.getpeercert(binary_form=True)).hexdigest()
            s.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host).encode())
            data = recv_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    return fp, head.split(b"\r\n")[0].decode(), body.decode(errors="replace").strip()


def served(sni=HOST):
    try:
        return tls_get(sni)[0]
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
    # served from the generated crt-list, named by its content
    cfg = F.cfg_text("tls")
    lists = crt_lists()
    assert len(lists) == 1, lists
    assert "ssl crt-list %s alpn h2,http/1.1" % lists[0] in cfg, cfg
    assert os.path.basename(lists[0]).startswith("fe_tls."), lists
    with open(lists[0]) as f:
        assert f.read() == LIVE + "\n"
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


def crt_lists():
    """The crt-list files the watcher wrote for service tls."""
    d = os.path.join(F.CFG, "tls.crt-lists")
    return sorted(os.path.join(d, n) for n in os.listdir(d) if n.endswith(".crtlist"))


def put_definition(**extra):
    """Service tls: the TLS frontend routing class "public" by Host, with
    extra crt-list entries, routes and backends."""
    fe = {"name": "fe_tls", "bind": ["127.0.0.1:%d" % F.FE_PORT],
          "tls": {"certs": [LIVE] + extra.get("certs", [])}}
    if extra.get("routes"):
        fe["routes"] = extra["routes"]
    sel = {"class": "public", "frontend": "fe_tls"}
    if extra.get("select_tls"):
        sel["server_tls"] = extra["select_tls"]
    F.kv.put("haproxy/edge/services/tls", {
        "frontends": [fe], "backends": extra.get("backends", []), "select": [sel]})


SNI_ENTRY = {"file": None, "sni": [API]}  # file set in main


def copy_config_dir(dst):
    """The config dir as it is now, copied to dst, its configs naming the
    maps and crt-lists in dst: a host's config dir frozen in time."""
    shutil.copytree(F.CFG, dst)
    for n in os.listdir(dst):
        if n.endswith(".cfg"):
            p = os.path.join(dst, n)
            with open(p) as f:
                text = f.read().replace(F.CFG + "/", dst + "/")
            with open(p, "w") as f:
                f.write(text)


def files_under(d):
    return sorted(os.path.relpath(os.path.join(r, n), d)
                  for r, _, names in os.walk(d) for n in names)


def step_sni():
    global BEFORE_SNI
    r0 = reloads()
    BEFORE_SNI = os.path.join(F.work, "before-sni")
    copy_config_dir(BEFORE_SNI)
    put_definition(certs=[SNI_ENTRY])
    wait_for("the second certificate served for SNI %s" % API,
             lambda: served(API) == FP["api1"])
    assert reloads() == r0 + 1, (r0, reloads())
    assert served() == FP["v1"], "the default certificate changed"
    cfg = F.cfg_text("tls")
    lst = [p for p in crt_lists() if p in cfg]
    assert len(lst) == 1, (crt_lists(), cfg)
    with open(lst[0]) as f:
        assert f.read() == "%s\n%s %s\n" % (LIVE, SNI_ENTRY["file"], API)


def render_diff(config_dir):
    return subprocess.run(F.render_args(config_dir) + ["render", "--diff"], capture_output=True,
                          text=True, timeout=60)


def step_diff():
    cfg = F.cfg_text("tls")
    new = os.path.basename([p for p in crt_lists() if p in cfg][0])
    before = files_under(BEFORE_SNI)
    assert not os.path.exists(os.path.join(BEFORE_SNI, "tls.crt-lists", new))
    r = render_diff(BEFORE_SNI)
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    lists = re.escape(BEFORE_SNI + "/tls.crt-lists/")
    assert re.search(r"^-\s+bind .* ssl crt-list %sfe_tls\.[0-9a-f]{16}\.crtlist" % lists,
                     r.stdout, re.M), r.stdout
    assert re.search(r"^\+\s+bind .* ssl crt-list %s%s" % (lists, re.escape(new)), r.stdout,
                     re.M), r.stdout
    # and the lists themselves: the SNI entry added
    assert "\n+%s %s\n" % (SNI_ENTRY["file"], API) in r.stdout, r.stdout
    assert "refused" not in r.stderr, r.stderr
    assert files_under(BEFORE_SNI) == before, "render --diff wrote into the config dir"
    # the live config dir holds what the daemon installed: no difference
    # (the snapshot file with the slots is written in a quiet window)
    last = []
    def same():
        last[:] = [render_diff(F.CFG)]
        return last[0].returncode == 0 and last[0].stdout == ""
    try:
        wait_for("render --diff against the live config dir shows nothing", same, timeout=15,
                 interval=0.5)
    except AssertionError as e:
        raise AssertionError("%s; last run: exit %d, %s %s" % (
            e, last[0].returncode, last[0].stdout[-1500:], last[0].stderr[-1500:])) from None
    F.log("diff: the crt-list change shown, exit 3; live dir: exit 0")


def step_sniswap():
    r0, s0 = reloads(), F.metric("drover_watcher_cert_swaps_total")
    install_cert("api2", SNI_ENTRY["file"])
    wait_for("the renewed SNI certificate served", lambda: served(API) == FP["api2"])
    assert reloads() == r0, "a certificate swap reloaded HAProxy"
    assert F.metric("drover_watcher_cert_swaps_total") == s0 + 1
    assert served() == FP["v1"]


def bad_haproxy_entries():
    return metric(F.METRICS_PORT, "drover_watcher_kv_bad_entries", {"prefix": "haproxy"})


def step_inject():
    r0, cfg0 = reloads(), F.cfg_text("tls")
    ca = os.path.join(F.work, "certs", "ca.crt")
    srv = [{"name": "up", "address": "127.0.0.1", "port": 1}]
    tries = [
        dict(certs=[{"file": SNI_ENTRY["file"], "sni": ["api.example.com\n  bind :1"]}]),
        dict(certs=[{"file": SNI_ENTRY["file"], "sni": ["a b.example.com"]}]),
        dict(certs=[{"file": SNI_ENTRY["file"] + " [verify none]"}]),
        dict(certs=[{"file": SNI_ENTRY["file"], "alpn": ["h2]"]}]),
        dict(backends=[{"name": "be_x", "servers": srv,
                        "server_tls": {"ca_file": ca + " verify none"}}]),
        dict(backends=[{"name": "be_x", "servers": srv,
                        "server_tls": {"ca_file": ca, "verify_name": "up.internal) verify none"}}]),
        dict(backends=[{"name": "be_x", "servers": srv,
                        "server_tls": {"ca_file": "certs/ca.crt"}}]),
    ]
    for t in tries:
        put_definition(**t)
        wait_for("definition %s refused" % json.dumps(t)[:80],
                 lambda: bad_haproxy_entries() == 1)
    put_definition(certs=[SNI_ENTRY])
    wait_for("the good definition back", lambda: bad_haproxy_entries() == 0)
    assert F.cfg_text("tls") == cfg0, "a refused definition was rendered"
    assert reloads() == r0
    assert served(API) == FP["api2"]


def serve_tls(body, pem):
    """An HTTPS server on a free loopback port with certificate file pem
    (cert + key), answering every GET with body: a pod speaking TLS."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pem)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]


def upstreams():
    """Ports of two TLS upstreams: one with the test CA's certificate for
    UP, one with a self-signed certificate for the same name."""
    certs = os.path.join(F.work, "certs")
    return [serve_tls(b"up-ok\n", os.path.join(certs, n + ".pem")) for n in ("up", "rogue")]


def verified_definition(ca):
    ok, rogue = upstreams()
    tls = {"ca_file": ca, "verify_name": UP}
    return dict(certs=[SNI_ENTRY],
                routes=[{"host": "ok.example.com", "backend": "be_ok"},
                        {"host": "rogue.example.com", "backend": "be_rogue"}],
                backends=[{"name": "be_ok", "server_tls": tls, "check": {"interval": "200ms"},
                           "servers": [{"name": "up", "address": "127.0.0.1", "port": ok}]},
                          {"name": "be_rogue", "server_tls": tls, "check": {"interval": "200ms"},
                           "servers": [{"name": "up", "address": "127.0.0.1", "port": rogue}]}])


def answer(host):
    try:
        _, status, body = tls_get(HOST, host)
        return status.split(" ")[1], body
    except (OSError, ssl.SSLError) as e:
        return repr(e), ""


def step_verify():
    r0 = reloads()
    ca = os.path.join(F.work, "certs", "ca.crt")
    put_definition(**verified_definition(ca))
    wait_for("the verified upstream answering",
             lambda: answer("ok.example.com") == ("200", "up-ok"))
    assert reloads() == r0 + 1, (r0, reloads())
    cfg = F.cfg_text("tls")
    want = "ssl verify required ca-file %s sni str(%s) verifyhost %s" % (ca, UP, UP)
    assert want in cfg, cfg
    # the rogue upstream's certificate is not the CA's: no request passes
    # (its health check fails, HAProxy answers 503)
    wait_for("the rogue upstream refused", lambda: answer("rogue.example.com")[0] == "503")
    for _ in range(5):
        assert answer("rogue.example.com")[0] == "503"
    assert answer("ok.example.com") == ("200", "up-ok")


def step_noca():
    r0 = reloads()
    ca = os.path.join(F.work, "certs", "later", "ca.crt")
    put_definition(**verified_definition(ca))
    want = "backends[0].server_tls.ca_file: %s: No such file or directory" % ca
    wait_for("the missing CA file refused", lambda: want in open(os.path.join(F.work,
                                                                           "watcher.log")).read())
    # the definition's structural window has run, and a certificate poll
    # after it (which looks at the CA files again) too: a reload that must
    # not come would have started by then
    F.settled("the refused definition", "haproxy/edge/services/tls")
    polls = metric(F.METRICS_PORT, "drover_watcher_cert_checks_total")
    wait_for("a certificate poll after the refusal",
             lambda: metric(F.METRICS_PORT, "drover_watcher_cert_checks_total") > polls)
    F.settled("that certificate poll")
    assert reloads() == r0, "a definition naming a missing CA file reloaded HAProxy"
    assert ca not in F.cfg_text("tls")
    assert answer("ok.example.com") == ("200", "up-ok"), "the running config stopped serving"
    os.makedirs(os.path.dirname(ca))
    shutil.copy(os.path.join(F.work, "certs", "ca.crt"), ca)
    wait_for("the CA file picked up", lambda: ca in F.cfg_text("tls") and reloads() == r0 + 1)
    wait_for("served with the new CA file", lambda: answer("ok.example.com") == ("200", "up-ok"))
    # the first crt-list (one entry), named by no config since the second
    # one was installed, is gone; the one in force stays
    lists = crt_lists()
    assert len(lists) == 1 and lists[0] in F.cfg_text("tls"), lists


def step_selected():
    """https Services of the class, verified with the selector's CA: the
    generated backend of the pod with the CA's certificate answers, the
    other gets nothing; the backends without server_tls of the class keep
    working (the http Service)."""
    ok, rogue = upstreams()
    ca = os.path.join(F.work, "certs", "ca.crt")
    d = verified_definition(ca)
    d["select_tls"] = {"ca_file": ca, "verify_name": UP}
    put_definition(**d)
    for svc, port in (("sec", ok), ("rog", rogue)):
        F.kv.put("kube/prod-a/services/shop/%s/https" % svc,
                 {"node_port": port, "backend_protocol": "https",
                  "load_balancer_class": "public", "dns_name": "%s.example.com" % svc})
    wait_for("the verified selected upstream answering",
             lambda: answer("sec.example.com") == ("200", "up-ok"))
    wait_for("the rogue selected upstream refused",
             lambda: answer("rog.example.com")[0] == "503")
    cfg = F.cfg_text("tls")
    want = "ssl verify required ca-file %s sni str(%s) verifyhost %s check-sni %s alpn http/1.1" \
        % (ca, UP, UP, UP)
    assert want in cfg, cfg
    assert answer(HOST)[1] == "shop"


def step_remove():
    global WATCHER_P
    r0 = reloads()
    crt_dir = os.path.join(F.CFG, "tls.crt-lists")
    assert crt_lists()
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600))
    F.kv.put("haproxy/edge/force-removal/tls", {"expires": expires, "author": "test"})
    F.kv.delete("haproxy/edge/services/tls")
    wait_for("config moved aside and crt-lists removed",
             lambda: os.path.exists(os.path.join(F.CFG, "tls.cfg.removed")) and
             not os.path.exists(os.path.join(F.CFG, "tls.cfg")) and not os.path.exists(crt_dir))
    assert reloads() == r0, "a removal must not reload"
    # a watcher stopped between the two steps leaves lists no config names:
    # the next start removes them (never those of a service with a config)
    WATCHER_P.terminate()
    assert WATCHER_P.wait(timeout=15) == 0
    ghost = os.path.join(F.CFG, "ghost.crt-lists")
    os.makedirs(ghost)
    with open(os.path.join(ghost, "fe.0123456789abcdef.crtlist"), "w") as f:
        f.write(LIVE + "\n")
    WATCHER_P = F.start_watcher()
    wait_for("the leftover crt-lists removed at start", lambda: not os.path.exists(ghost))
    F.kv.delete("haproxy/edge/force-removal/tls")


def main():
    global F, LIVE, WATCHER_P
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
    SNI_ENTRY["file"] = os.path.join(F.work, "certs", "api.pem")
    install_cert("api1", SNI_ENTRY["file"])
    port = free_port()
    serve_http("127.0.0.1", port, b"shop\n")
    F.copy_templates()
    F.consul("start")
    F.kv.put("kube/prod-a/nodes/n1", node("127.0.0.1"))
    put_definition()
    F.kv.put("kube/prod-a/services/shop/web/http",
             {"node_port": port, "backend_protocol": "http", "load_balancer_class": "public",
              "dns_name": HOST})
    F.open_notify()
    WATCHER_P = F.start_watcher()
    wait_for("first config", lambda: os.path.exists(os.path.join(F.CFG, "tls.cfg")))
    F.start_haproxy()
    run_steps([step_h2, step_swap, step_bad, step_back, step_sni, step_diff, step_sniswap,
               step_inject, step_verify, step_noca, step_selected, step_remove])
    return 0


def diagnostics():
    if F:
        F.dump_logs()


if __name__ == "__main__":
    run_main(main, diagnostics, lambda: F and F.cleanup(), deadline=170)
