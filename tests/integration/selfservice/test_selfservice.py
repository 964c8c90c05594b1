#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Issue 16 end to end: a real Consul dev agent, a real HAProxy 2.6 in
master-worker mode, the real drover-watcher, loopback HTTP servers as
NodePorts.

usage: test_selfservice.py DROVER_WATCHER CONSUL_DEV_SH TEMPLATE_DIR

Steps, in order on one setup:
  annotated   a definition selecting class "public" (no backend named) and
              an exported Service in that class with dns_name
              shop.example.com: answered through HAProxy for that Host
  second      a second Service added to the class: exactly one reload
  route       dns_name of an existing backend changed: the new name is
              answered and the old one no longer, 0 reloads, one runtime
              route update; the map file follows
  render      `drover-watcher render --out DIR` writes the route map next to
              the config, which names it there and passes haproxy -c
  inject      entries of the class with a dns_name carrying spaces or a
              newline + directive, a listen_port out of range, a label with
              a quote: refused per entry and counted, nothing rendered,
              the good routes keep serving
  leave       a Service leaving the class: its route and backend go away
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "watcher"))
from watcherlib import Fleet, node, wait_for  # noqa: E402 (puts tests/lib on the path)
from drover_testlib import free_port, http, metric, run_main, run_steps, serve_http  # noqa: E402

WATCHER, CONSUL_DEV, TEMPLATES = sys.argv[1:4]
F = None
PORTS = {}


def get(host):
    """(status, body) of GET / with Host: host through HAProxy."""
    st, body, _ = http("GET", "http://127.0.0.1:%d/" % F.FE_PORT, headers={"Host": host},
                       timeout=5)
    return st, body.decode(errors="replace").strip()


def answered(host, body):
    return lambda: get(host) == (200, body)


def kube(svc, dns=None, cls="public", labels=None, **extra):
    v = {"node_port": PORTS[svc], "backend_protocol": "http", "load_balancer_class": cls,
         "labels": labels if labels is not None else {"team": "shop"}}
    if dns:
        v["dns_name"] = dns
    v.update(extra)
    return v


def put_kube(key, value):
    F.kv.put("kube/prod-a/services/" + key, value)


def map_text():
    with open(os.path.join(F.CFG, "public.fe_public.map")) as f:
        return f.read()


def bad_kube():
    return metric(F.METRICS_PORT, "drover_watcher_kv_bad_entries", {"prefix": "kube"})


def reloads():
    return F.master_reloads()


def step_annotated():
    wait_for("shop.example.com answered through HAProxy", answered("shop.example.com", "shop"))
    assert get("nobody.example.com")[0] == 503, get("nobody.example.com")
    cfg = F.cfg_text("public")
    assert "backend shop.web.http" in cfg, cfg
    assert "shop.example.com" not in cfg, "routes belong in the map, not the config"
    assert map_text() == "shop.example.com shop.web.http\n", map_text()


def step_second():
    r0 = reloads()
    put_kube("blog/web/http", kube("blog", "Blog.Example.com."))
    wait_for("blog.example.com answered", answered("blog.example.com", "blog"))
    wait_for("the reload counted", lambda: reloads() == r0 + 1)
    assert get("shop.example.com") == (200, "shop")


def step_route():
    r0, u0 = reloads(), F.metric("drover_watcher_route_updates_total")
    put_kube("shop/web/http", kube("shop", "store.example.com"))
    wait_for("store.example.com answered", answered("store.example.com", "shop"))
    wait_for("shop.example.com no longer routed", lambda: get("shop.example.com")[0] == 503)
    assert F.metric("drover_watcher_route_updates_total") == u0 + 1
    assert reloads() == r0, "a route change reloaded HAProxy (%d -> %d)" % (r0, reloads())
    wait_for("map file rewritten", lambda: map_text() ==
             "blog.example.com blog.web.http\nstore.example.com shop.web.http\n")
    assert reloads() == r0


def step_render():
    out = os.path.join(F.work, "render-out")
    p = subprocess.run(
        [WATCHER, "--consul-addr", F.consul_addr(), "--haproxy-cluster", "edge",
         "--kube-cluster", "prod-a", "--template-dir", F.TPL, "--config-dir", F.CFG,
         "--haproxy-stats-socket", F.STATS, "--agent-port", str(F.AGENT_PORT),
         "--snapshot-file", F.SNAP, "render", "--out", out],
        capture_output=True, text=True, timeout=30)
    # exit 0: the config passed haproxy -c, which needs its map file there
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    path = os.path.join(out, "public.fe_public.map")
    with open(path) as f:
        assert f.read() == map_text()
    with open(os.path.join(out, "public.cfg")) as f:
        assert "map(%s)" % path in f.read()
    assert "%s: ok" % path in p.stdout, p.stdout


def step_inject():
    r0 = reloads()
    bad0 = bad_kube()
    put_kube("evil/a/http", kube("shop", "a b.example.com"))
    put_kube("evil/b/http", kube("shop", "b.example.com\n    stats enable"))
    put_kube("evil/c/http", kube("shop", "c.example.com", listen_port=70000))
    put_kube("evil/d/http", kube("shop", "d.example.com", backend_protocol="h t t p"))
    # a label with a quote never matches the selector's checked word
    put_kube("evil/e/http", kube("shop", "e.example.com", labels={"team": 'shop"'}))
    wait_for("4 selected entries refused and counted",
             lambda: bad_kube() == bad0 + 4)
    cfg, m = F.cfg_text("public"), map_text()
    for s in ("evil", "stats enable", "example.com\n    "):
        assert s not in cfg and s not in m, (s, cfg, m)
    assert get("store.example.com") == (200, "shop")
    assert get("e.example.com")[0] == 503
    assert reloads() == r0


def step_leave():
    r0 = reloads()
    put_kube("blog/web/http", kube("blog", "blog.example.com", cls="private"))
    wait_for("blog.example.com retired", lambda: get("blog.example.com")[0] == 503)
    wait_for("its backend removed", lambda: "backend blog.web.http" not in F.cfg_text("public"))
    wait_for("one reload for the removed backend", lambda: reloads() == r0 + 1)
    assert get("store.example.com") == (200, "shop")


def main():
    global F
    if not shutil.which("haproxy"):
        print("SKIP: haproxy not installed")
        return 77
    F = Fleet(WATCHER, CONSUL_DEV, TEMPLATES, prefix="drover-selfservice-it.")
    for name in ("shop", "blog"):
        PORTS[name] = free_port()
        serve_http("127.0.0.1", PORTS[name], (name + "\n").encode())
    F.copy_templates()
    F.consul("start")
    F.kv.put("kube/prod-a/nodes/n1", node("127.0.0.1"))
    F.kv.put("haproxy/edge/services/public", {
        "frontends": [{"name": "fe_public", "bind": ["127.0.0.1:%d" % F.FE_PORT]}],
        "backends": [],
        "select": [{"class": "public", "frontend": "fe_public", "labels": {"team": "shop"}}]})
    put_kube("shop/web/http", kube("shop", "shop.example.com"))
    F.open_notify()
    F.start_watcher()
    wait_for("first config", lambda: os.path.exists(os.path.join(F.CFG, "public.cfg")))
    F.start_haproxy()
    run_steps([step_annotated, step_second, step_route, step_render, step_inject, step_leave])
    return 0


def diagnostics():
    if F:
        F.dump_logs()


if __name__ == "__main__":
    run_main(main, diagnostics, lambda: F and F.cleanup(), deadline=170)
