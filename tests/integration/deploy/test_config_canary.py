#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The config lifecycle (`droverctl config apply --canary / promote / abort
/ history / rollback`) against a real Consul dev agent and two proxy hosts,
A and B, each a real drover-watcher driving its own real HAProxy
(master-worker) on loopback, as in test_fleet_status.py.

Steps: bad input (unknown key, not JSON, a canary host not in the fleet, a
version that does not exist, a definition failing `haproxy -c`) is
refused with KV unchanged; a change canaried on A only (B keeps its bytes
and reload count), promoted (B applies it, A does not reload again); config diff shows the
config and, as files of the default config dir, the route map and crt-list
(SNI filter, ALPN) of a new TLS service;
another canaried then aborted (A returns to the old bytes); a promote
racing a direct write is refused by the cas, and the direct write shows as
"applied without canary"; rollback to version 1 through a canary and with
--now, byte-identical to version 1; history keeps the newest 20 versions.
`droverctl status --json` is checked after each step."""

import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import deploylib  # noqa: E402
import watcherlib  # noqa: E402 (deploylib puts it on the path)
from drover_testlib import log, run_main, wait_until  # noqa: E402

WATCHER, CTL, CONSUL_DEV, TEMPLATES = sys.argv[1:5]
HOSTS = ("proxy-a", "proxy-b")
KEY = "haproxy/edge/services/web"
KEEP = 20


def host(name, a=None):
    return deploylib.Host(name, WATCHER, CONSUL_DEV, TEMPLATES, "drover-canary-it.", 10, a)


def ctl(a, *args):
    return deploylib.ctl(CTL, a, *args)


write = deploylib.write_file


def fleet(a):
    """{host: (host state, web state, canary version)} of `status --json`,
    and its exit status."""
    rc, out, err = ctl(a, "status", "--json")
    assert out.strip(), "status --json printed nothing: %s" % err
    doc = json.loads(out)
    hosts = {h["host"]: (h["state"], h["services"].get("web", {}).get("state"), h.get("canary"))
             for h in doc["fleet"]["hosts"]}
    return rc, hosts, doc.get("config")


def wait_fleet(a, want, what, rc_want=0):
    return wait_until(what, lambda: (lambda r: r[0] == rc_want and r[1] == want and r)(fleet(a)),
                      timeout=30)


def operator_kv(kv):
    return {k: v for k, v in kv.dump().items() if not k.startswith(("status/", "audit/"))}


def main():
    if not shutil.which("haproxy"):
        print("SKIP: haproxy not installed")
        return 77
    a = host("proxy-a")
    b = host("proxy-b", a)
    kv, port = deploylib.start_fleet(state, (a, b))
    # a kube service no live definition references (no watcher reads it)
    api_port, api_servers = watcherlib.start_backends(["127.0.0.1"])
    state["servers"] += api_servers
    kv.put("kube/prod-a/services/default/api/http", {"node_port": api_port})
    # and one exported to class "public", which no live definition selects
    kv.put("kube/prod-a/services/default/shop/http",
           {"node_port": api_port, "backend_protocol": "http",
            "load_balancer_class": "public", "dns_name": "shop.example.com"})
    kv.put(KEY, a.f.service(maxconn=100))
    a.start()
    b.start()
    current = {h: ("ok", "current", None) for h in HOSTS}
    wait_fleet(a, current, "both hosts current")
    v0 = {h.name: h.f.cfg_text() for h in (a, b)}

    # 1. bad input: clear errors, KV unchanged
    dump0 = operator_kv(kv)
    good = write(a, "good.json", {KEY: a.f.service(maxconn=200)})
    for args, want in (
            (("config", "apply", write(a, "unknown.json", {"haproxy/edge/bogus/web": {}}),
              "--canary", "proxy-a"), "unknown key"),
            (("config", "apply", write(a, "other.json",
                                       {"haproxy/other/services/web": a.f.service()}),
              "--canary", "proxy-a"), "stages HAProxy records of cluster edge only"),
            (("config", "apply", write(a, "notjson.json", "{not json"), "--canary", "proxy-a"),
             "notjson.json:1:"),
            (("config", "apply", good, "--canary", "proxy-z"),
             "canary host proxy-z is not in the fleet"),
            (("config", "apply", good), "--canary HOST[,HOST] is required"),
            (("config", "rollback", "7", "--now"), "version 7 of cluster edge does not exist"),
            (("config", "promote"), "nothing is staged"),
            (("config", "apply", write(a, "broken.json",
                                       {KEY: a.f.service(maxconn=200, template="broken")}),
              "--canary", "proxy-a"), "haproxy -c")):
        rc, out, err = ctl(a, *args)
        assert rc in (1, 2) and want in out + err, (args, rc, out, err)
    assert operator_kv(kv) == dump0, "refused commands changed KV"

    # 2. canary on A only: A applies (one reload), B keeps bytes and reloads
    before = {h.name: h.reloads() for h in (a, b)}
    rc, out, err = ctl(a, "config", "apply", good, "--canary", "proxy-a", "--wait", "30s",
                       "--reason", "more connections")
    assert rc == 0 and "proxy-a: applied: web: config" in out and "canary: healthy" in out, \
        (rc, out, err)
    assert "maxconn 200" in a.f.cfg_text() and b.f.cfg_text() == v0["proxy-b"]
    wait_until("A reloaded once", lambda: a.reloads() == before["proxy-a"] + 1)
    assert b.reloads() == before["proxy-b"], "B reloaded during A's canary"
    _, _, cfg = wait_fleet(a, {"proxy-a": ("ok", "canary", 1), "proxy-b": current["proxy-b"]},
                           "A canary, B current")
    assert cfg["staged"]["version"] == 1 and cfg["staged"]["canary"] == ["proxy-a"], cfg
    assert kv.get_json(KEY)["frontends"] == a.f.service(maxconn=100)["frontends"], "live changed"

    # 3. promote: B applies it, A does not reload again
    rc, out, err = ctl(a, "config", "promote")
    assert rc == 0 and "version 1 of cluster edge is live" in out, (rc, out, err)
    wait_until("B applies version 1", lambda: "maxconn 200" in b.f.cfg_text())
    _, _, cfg = wait_fleet(a, current, "both current after promote")
    assert cfg["live"] == {"version": 1, "without_canary": False, "direct_keys": []}, cfg
    assert cfg["staged"] is None, cfg
    wait_until("B reloaded once", lambda: b.reloads() == before["proxy-b"] + 1)
    assert a.reloads() == before["proxy-a"] + 1, "A reloaded on promote"
    v1 = {h.name: h.f.cfg_text() for h in (a, b)}
    log("promoted:", {h.name: h.reloads() for h in (a, b)})

    # 3b. config diff renders what the hosts would install
    c300 = write(a, "c300.json", {KEY: a.f.service(maxconn=300)})
    rc, out, err = ctl(a, "config", "diff", c300)
    assert rc == 3 and "rendered, cluster edge, proxy-a, proxy-b:\n  web: changed" in out and \
        "\n    -    maxconn 200" in out and "\n    +    maxconn 300" in out, (rc, out, err)
    # the route maps and crt-lists the configs name show as files of the
    # watcher's default config dir: a route, an SNI filter and ALPN
    edge = {"frontends": [{"name": "fe_tls", "bind": ["127.0.0.1:1"],
                           "tls": {"certs": ["/etc/drover/live.pem",
                                             {"file": "/etc/drover/api.pem",
                                              "sni": ["api.example.com"], "alpn": ["h2"]}]}}],
            "backends": [], "select": [{"class": "public", "frontend": "fe_tls"}]}
    tls = write(a, "tls.json", {KEY: a.f.service(maxconn=200),
                                "haproxy/edge/services/edge": edge})
    rc, out, err = ctl(a, "config", "diff", tls)
    cfgdir = "/etc/haproxy/drover/"
    assert rc == 3 and "  web: no change" in out and "  edge: new" in out, (rc, out, err)
    for want in ("--- /dev/null\n    +++ with-the-files %sedge.cfg" % cfgdir,
                 "map(%sedge.fe_tls.map)" % cfgdir, "crt-list %sedge.crt-lists/fe_tls." % cfgdir,
                 "+++ with-the-files %sedge.fe_tls.map" % cfgdir,
                 "\n    +shop.example.com ",
                 "+++ with-the-files %sedge.crt-lists/fe_tls." % cfgdir,
                 "\n    +/etc/drover/api.pem [alpn h2] api.example.com"):
        assert want in out, (want, out, err)
    rc, out, err = ctl(a, "config", "diff", good, "--host", "proxy-b")
    assert rc == 0 and "rendered, cluster edge, proxy-b:\n  web: no change" in out and \
        "proxy-a" not in out, (rc, out, err)
    rc, out, err = ctl(a, "config", "diff", good, "--host", "proxy-z")
    assert rc == 1 and "--host proxy-z is not in the fleet" in err, (rc, out, err)

    # 4. canary then abort: A returns to the version 1 bytes, B untouched
    rc, out, err = ctl(a, "config", "apply", c300, "--canary", "proxy-a")
    assert rc == 0 and "staged version 2" in out, (rc, out, err)
    assert "maxconn 300" in a.f.cfg_text()
    # the canary host is its own group: it runs the staged bytes, the files
    # (version 1) would change nothing for it while the change is staged
    rc, out, err = ctl(a, "config", "diff", c300)
    assert rc == 3 and "rendered, cluster edge, proxy-b:\n  web: changed" in out and \
        "rendered, cluster edge, proxy-a (canary of the staged change):\n  web: no change" in out, \
        (rc, out, err)
    rc, out, err = ctl(a, "config", "apply", good, "--canary", "proxy-b")
    assert rc == 1 and "already staged" in err, (rc, out, err)
    rc, out, err = ctl(a, "config", "abort", "--reason", "not today")
    assert rc == 0 and "aborted version 2" in out, (rc, out, err)
    wait_until("A back to version 1", lambda: a.f.cfg_text() == v1["proxy-a"])
    wait_fleet(a, current, "both current after abort")
    assert b.f.cfg_text() == v1["proxy-b"]

    # 4b. a staged definition that references another kube service too: the
    # canary host watches it and fills a slot from it; B does not (adding,
    # not replacing: a replacement would be held by the removal guard)
    on_api = a.f.service(maxconn=200)
    kube = on_api["backends"][0]["kube"]
    kube.append(dict(kube[0], service="api"))
    rc, out, err = ctl(a, "config", "apply", write(a, "api.json", {KEY: on_api}),
                       "--canary", "proxy-a")
    assert rc == 0 and "canary: healthy" in out, (rc, out, err)

    def ports(h):  # of the slots in service (a freed slot is put in maint)
        return sorted({p for addr, p, _, admin in h.f.servers_state("be_web").values()
                       if addr != "0.0.0.0" and not admin & 0x01})
    wait_until("A's be_web on the api NodePort too",
               lambda: ports(a) == sorted([port, api_port]))
    assert ports(b) == [port], ports(b)
    rc, out, err = ctl(a, "config", "abort")
    assert rc == 0, (rc, out, err)
    wait_until("A's be_web back on the web NodePort", lambda: ports(a) == [port])
    wait_until("A back to version 1 again", lambda: a.f.cfg_text() == v1["proxy-a"])

    # 5. a promote racing a direct write is refused by the cas; the direct
    # write shows as applied without canary
    rc, out, err = ctl(a, "config", "apply", write(a, "c400.json", {KEY: a.f.service(maxconn=400)}),
                       "--canary", "proxy-a")
    assert rc == 0, (rc, out, err)
    kv.put(KEY, a.f.service(maxconn=250))  # someone's `consul kv put`
    dump1 = operator_kv(kv)
    rc, out, err = ctl(a, "config", "promote")
    assert rc == 1 and "changed since" in err and KEY + ": ModifyIndex" in err, (rc, out, err)
    assert operator_kv(kv) == dump1, "a refused promote changed KV"
    rc, out, err = ctl(a, "config", "abort")
    assert rc == 0, (rc, out, err)
    wait_until("both run the direct write", lambda: all("maxconn 250" in h.f.cfg_text()
                                                       for h in (a, b)))
    _, _, cfg = wait_fleet(a, current, "both current with the direct write")
    assert cfg["live"] == {"version": 1, "without_canary": True, "direct_keys": [KEY]}, cfg
    rc, out, err = ctl(a, "config", "history")
    assert "APPLIED WITHOUT CANARY after version 1: " + KEY in out, (rc, out, err)

    # 6. rollback to version 1 through a canary, then promote: byte-identical
    rc, out, err = ctl(a, "config", "rollback", "1", "--canary", "proxy-a", "--wait", "30s")
    assert rc == 0 and "staged version 2 (a rollback)" in out and "canary: healthy" in out, \
        (rc, out, err)
    assert a.f.cfg_text() == v1["proxy-a"] and "maxconn 250" in b.f.cfg_text()
    rc, out, err = ctl(a, "config", "promote")
    assert rc == 0, (rc, out, err)
    wait_until("B back to version 1 bytes", lambda: b.f.cfg_text() == v1["proxy-b"])
    _, _, cfg = wait_fleet(a, current, "both current after the rollback")
    assert cfg["live"]["version"] == 2 and not cfg["live"]["without_canary"], cfg

    # 7. another change, then rollback --now to version 1: no canary
    rc, out, err = ctl(a, "config", "apply", write(a, "c500.json", {KEY: a.f.service(maxconn=500)}),
                       "--canary", "proxy-b", "--wait", "30s")
    assert rc == 0 and "canary: healthy" in out, (rc, out, err)
    rc, out, err = ctl(a, "config", "promote")
    assert rc == 0 and "version 3" in out, (rc, out, err)
    wait_until("both at maxconn 500", lambda: all("maxconn 500" in h.f.cfg_text()
                                                  for h in (a, b)))
    rc, out, err = ctl(a, "config", "rollback", "1", "--now", "--reason", "back")
    assert rc == 0 and "version 4 of cluster edge is live: the state of version 1" in out, \
        (rc, out, err)
    wait_until("both byte-identical to version 1",
               lambda: all(h.f.cfg_text() == v1[h.name] for h in (a, b)))
    rc, out, err = ctl(a, "config", "rollback", "1", "--now")
    assert rc == 0 and "no change" in out, (rc, out, err)
    rc, out, err = ctl(a, "--json", "config", "history")
    doc = json.loads(out)
    assert [(v["version"], v.get("rollback_of", 0), v["canary"]) for v in doc["versions"]] == \
        [(4, 1, []), (3, 0, ["proxy-b"]), (2, 1, ["proxy-a"]), (1, 0, ["proxy-a"])], doc
    assert doc["versions"][0]["reason"] == "back" and doc["versions"][3]["changed"] == [KEY], doc
    assert doc["keep"] == KEEP, doc

    # 8. retention: the newest KEEP versions stay
    for i in range(KEEP - 3):
        rc, out, err = ctl(a, "config", "rollback", "3" if i % 2 == 0 else "1", "--now")
        assert rc == 0, (i, rc, out, err)
    versions = sorted(k for k in kv.dump() if k.startswith("deploy/edge/history/"))
    assert len(versions) == KEEP and versions[0].endswith("/0000000002") and \
        versions[-1].endswith("/%010d" % (KEEP + 1)), versions
    rc, out, err = ctl(a, "config", "rollback", "1", "--now")
    assert rc == 1 and "does not exist (kept: 2..%d)" % (KEEP + 1) in err, (rc, out, err)
    wait_fleet(a, current, "both current at the end")
    return 0


state = {}


def diagnostics():
    a = state.get("hosts", (None,))[0]
    deploylib.dump_hosts(state, (("droverctl status", lambda: ctl(a, "status", "--json")),
                                 ("droverctl config history",
                                  lambda: ctl(a, "config", "history"))) if a else ())


def cleanup():
    deploylib.cleanup(state)


if __name__ == "__main__":
    run_main(main, on_failure=diagnostics, cleanup=cleanup, deadline=220)
