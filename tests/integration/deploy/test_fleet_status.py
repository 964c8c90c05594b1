#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Host status entries (R status/<host>/haproxy) and `droverctl status`
against a real Consul dev agent and two proxy hosts, A and B, each a real
drover-watcher driving its own real HAProxy (master-worker) on loopback.
Both HAProxies bind the service's frontend port (HAProxy sets SO_REUSEPORT).

Steps: both hosts report the live definition with HAProxy's own reload
counter and the hash of their installed file, and `droverctl status
be_web/s1` shows the slot each host put the static server s1 in; a definition change shows
every host current again with one more reload; a definition that fails
`haproxy -c` shows both hosts refusing (exit 1) with their old bytes kept;
a bad status entry is reported, not skipped; two directors of one
cluster with different table checksums are listed as disagreeing; a host stopped with SIGTERM
leaves the view at once, one killed with SIGKILL within its session TTL
(Consul may take up to twice the TTL). `droverctl config diff` against
the live values: no change exits 0, a change 3 with the fields, bad input
1, KV untouched."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import deploylib  # noqa: E402
from drover_testlib import log, run_main, wait_until  # noqa: E402

WATCHER, CTL, CONSUL_DEV, TEMPLATES = sys.argv[1:5]
TTL_S = 10
HOSTS = ("proxy-a", "proxy-b")


def ctl(fleet, *args):
    p = subprocess.run([CTL, "--consul-addr", fleet.consul_addr(), "--kv-prefix", fleet.ROOT,
                        "--haproxy-cluster", "edge", *args],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def view(fleet):
    """(exit status, the fleet view of `droverctl status --json`)"""
    rc, out, err = ctl(fleet, "status", "--json")
    assert out.strip(), "droverctl status --json printed nothing (stderr: %s)" % err
    return rc, json.loads(out)["fleet"]


def projected(v):
    """What the test compares: per host its state, guards and per service
    state and whether it runs the live definition."""
    return {h["host"]: {"state": h["state"], "guards": h["guards"],
                        "services": {n: s["state"] for n, s in h.get("services", {}).items()}}
            for h in v["hosts"]}


def expect(hosts, state, svc_state):
    return {h: {"state": state, "guards": [], "services": {"web": svc_state}} for h in hosts}


def host(name, a=None):
    return deploylib.Host(name, WATCHER, CONSUL_DEV, TEMPLATES, "drover-deploy-it.", TTL_S, a)


def main():
    if not shutil.which("haproxy"):
        print("SKIP: haproxy not installed")
        return 77
    a = host("proxy-a")
    b = host("proxy-b", a)
    kv, port = deploylib.start_fleet(state, (a, b))
    web = a.f.service()
    # a static server (a closed loopback port: its check fails, it keeps its slot)
    web["backends"][0]["servers"] = [{"name": "s1", "address": "127.0.0.9", "port": 9}]
    kv.put("haproxy/edge/services/web", web)
    a.start()
    b.start()

    # 1. both hosts report the live definition
    def all_current():
        rc, v = view(a.f)
        return rc == 0 and projected(v) == expect(HOSTS, "ok", "current") and v
    v = wait_until("both hosts current in droverctl status", all_current, timeout=30)
    for h in (a, b):
        rec = kv.get_json("status/%s/haproxy" % h.name)
        svc = [x for x in v["hosts"] if x["host"] == h.name][0]["services"]["web"]
        assert rec["host"] == h.name and rec["role"] == "haproxy" and rec["cluster"] == "edge", rec
        assert rec["kv_index"] > 0, rec
        with open(os.path.join(h.f.CFG, "web.cfg"), "rb") as f:
            data = f.read()
        assert len(svc["config_hash"]) == 16 and svc["config_hash"] != "", svc
        state.setdefault("bytes", {})[h.name] = data
    entry, _ = kv.entry("status/proxy-a/haproxy")
    assert entry.get("Session"), "status entry is not bound to a session: %r" % entry
    log("both current:", {h["host"]: h["services"]["web"]["reloads"] for h in v["hosts"]})
    # the static name -> slot mapping, from each host's status entry
    for h in (a, b):
        rec = kv.get_json("status/%s/haproxy" % h.name)
        slot = rec["services"]["web"].get("slots", {}).get("be_web/s1", "")
        assert slot.startswith("slot"), rec
    rc, out, err = ctl(a.f, "status", "be_web/s1", "--json")
    assert rc == 0, (rc, out, err)
    got = sorted((x["host"], x["slot"]) for x in json.loads(out)["slots"])
    want = sorted((h.name, kv.get_json("status/%s/haproxy" % h.name)["services"]["web"]["slots"]
                   ["be_web/s1"]) for h in (a, b))
    assert got == want and len(got) == 2, (got, want)
    rc, out, err = ctl(a.f, "status", "be_web/s1")
    assert rc == 0 and "slots: proxy-a be_web/slot" in out and "proxy-b be_web/slot" in out, out
    log("static server slots:", got)

    # 2. a definition change: both apply it, one more reload each
    before = {h.name: h.reloads() for h in (a, b)}
    kv.put("haproxy/edge/services/web", a.f.service(maxconn=123))
    wait_until("both hosts current after the change",
               lambda: (lambda rv: rv[0] == 0 and
                        projected(rv[1]) == expect(HOSTS, "ok", "current"))(view(a.f)),
               timeout=30)
    for h in (a, b):
        wait_until("%s reloaded once" % h.name, lambda: h.reloads() == before[h.name] + 1)
        rec = kv.get_json("status/%s/haproxy" % h.name)
        wait_until("%s reports HAProxy's reload counter" % h.name,
                   lambda: kv.get_json("status/%s/haproxy" % h.name)["services"]["web"]
                   ["reloads"] == h.reloads())
        assert "maxconn 123" in h.f.cfg_text(), h.f.cfg_text()
        state["bytes"][h.name] = h.f.cfg_text()

    # 3a. a definition the watcher's decoder refuses: every host keeps the
    # previous one, droverctl names the decoder's message
    bad = a.f.service(maxconn=123)
    bad["frontends"][0]["bind"] = ["no-such-host.invalid:%d" % a.f.FE_PORT]
    kv.put("haproxy/edge/services/web", bad)
    v = wait_until("both hosts refusing the undecodable definition",
                   lambda: (lambda rv: rv[0] == 1 and projected(rv[1]) ==
                            expect(HOSTS, "refusing", "refusing") and rv[1])(view(a.f)),
                   timeout=30)
    err = v["hosts"][0]["services"]["web"]["error"]
    assert err.startswith("definition refused: ") and "bind[0]" in err, err

    # 3b. a definition that renders but fails `haproxy -c`: both refuse,
    # their old bytes and reload counters stay
    kv.put("haproxy/edge/services/web", a.f.service(maxconn=123, template="broken"))
    v = wait_until("both hosts refusing the definition failing haproxy -c",
                   lambda: (lambda rv: rv[0] == 1 and projected(rv[1]) ==
                            expect(HOSTS, "refusing", "refusing") and rv[1])(view(a.f)),
                   timeout=30)
    for h in (a, b):
        assert h.f.cfg_text() == state["bytes"][h.name], "%s: config changed" % h.name
        assert h.reloads() == before[h.name] + 1, "%s reloaded" % h.name
        err = [x for x in v["hosts"] if x["host"] == h.name][0]["services"]["web"]["error"]
        assert err.startswith("check: "), err
    rc, out, err = ctl(a.f, "status")
    assert rc == 1 and "refusing" in err and "fleet: NOT ok" in err, (rc, out, err)
    kv.put("haproxy/edge/services/web", a.f.service(maxconn=123))
    wait_until("both hosts current again",
               lambda: (lambda rv: rv[0] == 0 and
                        projected(rv[1]) == expect(HOSTS, "ok", "current"))(view(a.f)),
               timeout=30)

    # 3c. config diff against the live values: no change is exit 0, a change
    # exit 3 naming the fields, bad input exit 1; KV never changes
    def diff(content):
        path = os.path.join(a.f.work, "diff.json")
        with open(path, "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content))
        return ctl(a.f, "config", "diff", path)
    def operator_kv():  # everything but the watchers' own status entries
        return {k: v for k, v in kv.dump().items() if not k.startswith("status/")}
    dump0 = operator_kv()
    rc, out, err = diff({"haproxy/edge/services/web": a.f.service(maxconn=123)})
    assert rc == 0 and "haproxy/edge/services/web: unchanged" in out and \
        "diff: no change" in out, (rc, out, err)
    rc, out, err = diff({"haproxy/edge/services/web": a.f.service(maxconn=124),
                         "haproxy/edge/services/new": a.f.service()})
    assert rc == 3 and "haproxy/edge/services/web: changed" in out and "  frontends: " in out \
        and "haproxy/edge/services/new: new" in out, (rc, out, err)
    for bad_input, want in (({"haproxy/edge/bogus/web": {}}, "unknown key"),
                            ("{not json", "diff.json:1:")):
        rc, out, err = diff(bad_input)
        assert rc == 1 and want in err and "diff: REFUSED" in err, (rc, out, err)
    assert operator_kv() == dump0, "config diff changed KV"

    # 4. a bad status entry is reported, and makes the fleet not ok
    kv.put("status/ghost/haproxy", "not json")
    rc, v = view(a.f)
    assert rc == 1 and [x["key"] for x in v["bad"]] == ["ghost/haproxy"], v
    kv.delete("status/ghost/haproxy")

    # 4b. two directors of one cluster with different tables disagree
    def director(host, checksum):
        return {"host": host, "role": "director", "cluster": "dc1", "version": "0.1.0",
                "started": "2026-11-23T13:00:00Z", "updated": "2026-11-23T13:00:00Z",
                "kv_index": 7, "snapshot": "0123456789abcdef", "guards": [], "services": {},
                "director": {"table_checksum": checksum, "vips": ["192.0.2.10"]}}
    kv.put("status/dir1/director", director("dir1", "1111111111111111"))
    kv.put("status/dir2/director", director("dir2", "1111111111111111"))
    rc, v = view(a.f)
    assert rc == 0 and v["directors_disagree"] == [], v
    kv.put("status/dir2/director", director("dir2", "2222222222222222"))
    rc, v = view(a.f)
    assert rc == 1 and v["directors_disagree"] == ["dc1"], v
    rc, out, err = ctl(a.f, "status")
    assert "directors of cluster dc1 disagree" in err, (rc, out, err)
    kv.delete("status/dir1/director")
    kv.delete("status/dir2/director")

    # 5. SIGTERM: the watcher destroys its session, the entry goes at once
    b.proc.send_signal(signal.SIGTERM)
    b.proc.wait(timeout=20)
    rc, v = view(a.f)
    assert rc == 0 and projected(v) == expect(("proxy-a",), "ok", "current"), v

    # 6. SIGKILL: gone within the session TTL (Consul: up to twice it)
    b.start()
    wait_until("proxy-b back", lambda: projected(view(a.f)[1]) == expect(HOSTS, "ok", "current"),
               timeout=30)
    b.proc.kill()
    b.proc.wait()
    t = time.monotonic()
    wait_until("proxy-b's status entry deleted by its session TTL",
               lambda: projected(view(a.f)[1]) == expect(("proxy-a",), "ok", "current"),
               timeout=2 * TTL_S + 5, interval=0.5)
    log("killed host gone after %.1f s (TTL %d s)" % (time.monotonic() - t, TTL_S))
    return 0


state = {}


def diagnostics():
    a = state.get("hosts", (None,))[0]
    deploylib.dump_hosts(state, (("droverctl status", lambda: ctl(a.f, "status", "--json")),)
                         if a else ())


def cleanup():
    deploylib.cleanup(state)


if __name__ == "__main__":
    run_main(main, on_failure=diagnostics, cleanup=cleanup, deadline=220)
