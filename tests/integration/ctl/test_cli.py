# SPDX-License-Identifier: Apache-2.0
"""droverctl against a real Consul dev agent: changes with their audit
entries, refusals that leave KV untouched, director transitions, status and
history, two concurrent writers on one key."""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctllib import KV, Ctl, check, consul_addr, write_fleet  # noqa: E402 (puts tests/lib on the path)
from drover_testlib import run_main, run_steps  # noqa: E402


TEST_KV = None  # the test's KV prefix, removed by cleanup()


def main():
    global TEST_KV
    binary = sys.argv[1]
    addr = consul_addr()
    root = f"test-ctl-cli-{os.getpid()}/"
    kv = TEST_KV = KV(addr, root)
    kv.delete_tree()
    write_fleet(kv)
    ctl = Ctl(binary, addr, root)
    p = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    check(p.returncode == 0 and "--max-out-share" in p.stdout and
          "director fill|activate" in p.stdout, p.stdout)
    run_steps([test_init_folder_keys, test_drain_writes_entry_and_audit, test_refusals_leave_kv_unchanged,
               test_share_and_force, test_weight_undrain_ready, test_director,
               test_status_and_history, test_kv_loss_force, test_concurrent_writers], "test",
              (kv, ctl))
    print("ok")


def cleanup():
    if TEST_KV:
        TEST_KV.delete_tree()


def test_init_folder_keys(kv, ctl):
    """droverctl init creates the folder keys of the watched prefixes
    droverctl owns, once; it never overwrites and audits nothing."""
    check(kv.get("maintenance/") is None and kv.get("frontdoor/hosts/") is None,
          "folder keys present before init")
    rc, out, err = ctl.run("init")
    check(rc == 0 and f"created {kv.root}maintenance/" in out and
          f"created {kv.root}frontdoor/hosts/" in out, (rc, out, err))
    check(kv.get("maintenance/") == b"" and kv.get("frontdoor/hosts/") == b"",
          "init did not write empty folder keys")
    kv.put("frontdoor/hosts/", "kept")  # whatever is there stays
    rc, out, err = ctl.run("--json", "init")
    check(rc == 0, (rc, out, err))
    states = {e["key"]: e["state"] for e in json.loads(out)}
    check(states == {f"{kv.root}maintenance/": "present",
                     f"{kv.root}frontdoor/hosts/": "present"}, states)
    check(kv.get("frontdoor/hosts/") == b"kept" and kv.audit() == [], "init overwrote or audited")
    kv.put("frontdoor/hosts/", "")
    rc, out, err = ctl.run("init", "extra")
    check(rc == 2 and "usage" in err, (rc, err))
    # the other steps start from a maintenance/ holding only its folder key
    kv.delete("maintenance/")


def test_drain_writes_entry_and_audit(kv, ctl):
    rc, out, err = ctl.run("drain", "node-a", "--reason",
                           "disk swap", "--ttl", "2h", env={"SUDO_USER": "alice"})
    # node-a is ambiguous across prod-a and prod-b without --cluster
    check(rc == 1 and "ambiguous target 'node-a'" in err and "node/prod-b/node-a" in err,
          f"ambiguous bare name: {rc} {err}")
    check(kv.dump("maintenance/") == {} and kv.audit() == [], "ambiguous name wrote something")
    before = time.time()
    rc, out, err = Ctl(ctl.binary, kv.addr, kv.root, ["--cluster", "prod-a"]).run(
        "drain", "node-a", "--reason", "disk swap", "--ttl", "2h", env={"SUDO_USER": "alice"})
    check(rc == 0, f"drain failed: {rc} {out} {err}")
    check("drained node/prod-a/node-a" in out and "be_web: node-a 10.0.0.1:30080" in out, out)
    v = kv.get_json("maintenance/node/prod-a/node-a")
    check(v["target"] == "node/prod-a/node-a" and v["state"] == "drain", v)
    check(v["reason"] == "disk swap" and v["author"] == "alice", v)
    check("weight" not in v, v)
    # the folder key keeps maintenance/ from ever being empty again (an
    # empty prefix wakes every watcher on every KV write)
    check(kv.get("maintenance/") == b"", "no folder key maintenance/ after a drain")
    created = time.mktime(time.strptime(v["created"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    expires = time.mktime(time.strptime(v["expires"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    check(abs(created - before) < 30 and abs(expires - created - 7200) <= 1, v)
    audit = kv.audit()
    check(len(audit) == 1, audit)
    key, a = audit[0]
    check(key.startswith("audit/") and key[6:14] == v["created"][:10].replace("-", ""), key)
    check(a["action"] == "drain" and a["author"] == "alice" and a["source"] == "cli", a)
    check(a["target"] == "node/prod-a/node-a" and a["reason"] == "disk swap", a)
    check(a["before"] is None and a["after"] == v, a)


def test_refusals_leave_kv_unchanged(kv, ctl):
    snap = kv.dump()
    cases = [
        (["drain", "node/prod-a/node-z"], "no kube/prod-a/nodes/node-z in KV"),
        (["drain", "ghost"], "unknown target 'ghost'"),
        (["drain", "10.7.7.7"], "unknown target addr/10.7.7.7"),
        (["drain", "be_nope/x"], "no backend 'be_nope'"),
        (["drain", "be_api/api-9"], "has no static server 'api-9'"),
        (["drain", "node/prod-a/node-b", "--ttl", "8d"], "longer than the maximum"),
        (["weight", "be_api/api-1", "300%"], "outside 0..256"),
        (["drain", "node/prod-a/node-b", "--reason", "x" * 128], "at most 127"),
        (["drain", "node/prod-a/node-b", "--reason", "a\x1bb"], "control character 0x1b"),
        (["director", "fill", "p9"], "unknown proxy p9"),
        (["director", "deactivate", "p2"], "proxy is active"),
        (["drain"], "usage: drain TARGET"),
    ]
    for args, why in cases:
        rc, out, err = ctl.run(*args)
        check(rc != 0, f"{args} was accepted: {out}")
        check(why in err, f"{args}: message {err!r} lacks {why!r}")
        check(kv.dump() == snap, f"{args} changed KV")


def test_share_and_force(kv, ctl):
    # be_web: node-a..c + static-1 = 4 servers; node-a is drained
    rc, out, err = ctl.run("maint", "node/prod-a/node-b", "--reason", "kernel")
    check(rc == 0, err)  # 2 of 4 = 50 %, not more than 50 %
    snap = kv.dump()
    rc, out, err = ctl.run("drain", "10.0.0.3")
    check(rc == 1 and "3 of 4 servers of backend be_web" in err and "--force" in err, err)
    check(kv.dump() == snap, "refused share change wrote something")
    rc, out, err = ctl.run("drain", "10.0.0.3", "--force", "--reason", "forced")
    check(rc == 0, err)
    _, a = kv.audit()[-1]
    check(a["force"] is True and a["target"] == "addr/10.0.0.3", a)
    # lifting an outage is never refused, whatever the share
    rc, out, err = Ctl(ctl.binary, kv.addr, kv.root, ["--max-out-share", "0"]).run(
        "undrain", "addr/10.0.0.3")
    check(rc == 0 and kv.get_json("maintenance/addr/10.0.0.3") is None, err)
    rc, out, err = ctl.run("ready", "node/prod-a/node-b")
    check(rc == 0 and kv.get_json("maintenance/node/prod-a/node-b") is None, err)


def test_weight_undrain_ready(kv, ctl):
    rc, out, err = ctl.run("weight", "be_api/api-1", "50%")
    check(rc == 0, err)
    v = kv.get_json("maintenance/server/be_api/api-1")
    check(v["state"] == "ready" and v["weight"] == 50, v)
    rc, out, err = ctl.run("drain", "server/be_api/api-1", "--reason", "deploy")
    v = kv.get_json("maintenance/server/be_api/api-1")
    check(rc == 0 and v["state"] == "drain" and v["weight"] == 50, (err, v))
    n = len(kv.audit())
    rc, out, err = ctl.run("drain", "be_api/api-1", "--reason", "deploy")
    check(rc == 0 and "no change" in out and len(kv.audit()) == n, (out, err))
    rc, out, err = ctl.run("undrain", "be_api/api-1")
    v = kv.get_json("maintenance/server/be_api/api-1")
    check(rc == 0 and v["state"] == "ready" and v["weight"] == 50, (err, v))
    rc, out, err = ctl.run("ready", "be_api/api-1")
    check(rc == 0 and kv.get_json("maintenance/server/be_api/api-1") is None, err)
    _, a = kv.audit()[-1]
    check(a["action"] == "ready" and a["after"] is None and a["before"]["weight"] == 50, a)
    rc, out, err = ctl.run("undrain", "be_api/api-1")
    check(rc == 0 and "no change" in out, out)


def test_kv_loss_force(kv, ctl):
    snap = kv.dump()
    rc, out, err = ctl.run("kv-loss", "force", "edge")
    check(rc != 0 and "--ttl" in err and kv.dump() == snap, (rc, err))
    n = len(kv.audit())
    before = time.time()
    rc, out, err = ctl.run("kv-loss", "force", "edge", "--ttl", "30m", "--reason", "web gone")
    check(rc == 0 and "haproxy/edge/force-kv-loss" in out, (rc, out, err))
    v = kv.get_json("haproxy/edge/force-kv-loss")
    expires = time.mktime(time.strptime(v["expires"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    check(abs(expires - before - 1800) < 30 and v["reason"] == "web gone", v)
    audit = kv.audit()
    check(len(audit) == n + 1, audit)
    a = audit[-1][1]
    check(a["action"] == "kv-loss-force" and a["target"] == "haproxy/edge/force-kv-loss" and
          a["before"] is None and a["after"] == v, a)


def test_director(kv, ctl):
    steps = [("fill", "p1", "inactive", "filling"), ("activate", "p1", "filling", "active"),
             ("drain", "p1", "active", "draining"), ("deactivate", "p1", "draining", "inactive")]
    for action, proxy, frm, to in steps:
        n = len(kv.audit())
        rc, out, err = ctl.run("director", action, proxy, "--reason", "rotation")
        check(rc == 0 and f"{frm} -> {to}" in out, (action, out, err))
        v = kv.get_json(f"director/dc1/proxies/{proxy}")
        check(v == {"address": "10.0.1.1", "state": to}, v)
        audit = kv.audit()
        check(len(audit) == n + 1, audit)
        a = audit[-1][1]
        check(a["action"] == f"director-{action}" and a["before"]["state"] == frm and
              a["after"]["state"] == to and a["target"] == f"director/dc1/proxies/{proxy}", a)
    snap = kv.dump()
    rc, out, err = ctl.run("director", "activate", "p1")
    check(rc == 1 and "proxy is inactive" in err and kv.dump() == snap, err)
    rc, out, err = ctl.run("director", "drain", "p2")
    check(rc == 0, err)
    rc, out, err = ctl.run("director", "fill", "p2", "--force")
    check(rc == 0 and "(forced)" in out, out)
    v = kv.get_json("director/dc1/proxies/p2")
    check(v == {"address": "10.0.1.2", "state": "filling", "weight": 100}, v)
    rc, out, err = Ctl(ctl.binary, kv.addr, kv.root, ["--director-cluster", ""]).run(
        "director", "fill", "p1")
    check(rc == 1 and "--director-cluster" in err, err)


def test_status_and_history(kv, ctl):
    kv.put("maintenance/addr/10.1.2.3", {"target": "addr/10.1.2.3", "state": "maint",
                                         "author": "bob", "created": "2020-01-01T00:00:00Z",
                                         "expires": "2020-01-02T00:00:00Z", "reason": "old"})
    rc, out, err = ctl.run("status")
    check(rc == 0, err)
    check("node/prod-a/node-a: drain" in out and "reason: disk swap" in out, out)
    check("addr/10.1.2.3: maint" in out and "EXPIRED" in out and
          "be_web: static-1 10.1.2.3:8080" in out, out)
    rc, out, err = ctl.run("status", "--json")
    doc = json.loads(out)
    by = {e["target"]: e for e in doc["entries"]}
    check(by["addr/10.1.2.3"]["expired"] is True, by)
    check(by["node/prod-a/node-a"]["expired"] is False and
          by["node/prod-a/node-a"]["affects"] == [{"backend": "be_web",
                                                   "server": "node-a 10.0.0.1:30080"}], by)
    rc, out, err = ctl.run("status", "node/prod-a/node-c")
    check(rc == 0 and "ready (no maintenance entry)" in out and "node-c 10.0.0.3:30080" in out,
          out)
    rc, out, err = ctl.run("--json", "status", "node/prod-a/node-a")
    check([e["target"] for e in json.loads(out)["entries"]] == ["node/prod-a/node-a"], out)
    rc, out, err = ctl.run("history", "--limit", "3")
    lines = out.strip().split("\n")
    check(rc == 0 and len(lines) == 3, out)
    check("director-fill director/dc1/proxies/p2 [forced]" in lines[-1], lines)
    rc, out, err = ctl.run("history", "--json")
    entries = json.loads(out)["entries"]
    check(len(entries) == len(kv.audit()) and entries[0]["action"] == "drain", entries[0])


def test_concurrent_writers(kv, ctl):
    """Two processes change one key at the same moment: both succeed (the
    one whose cas fails reads again and retries), each change has its
    audit entry, and the final value is one of the two."""
    c = Ctl(ctl.binary, kv.addr, kv.root, ["--cluster", "prod-a"])
    for round_ in range(5):
        n = len(kv.audit())
        procs = [subprocess.Popen([*c.base, "drain", "node-c", "--reason", f"w{i}-{round_}"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(2)]
        outs = [p.communicate(timeout=60) for p in procs]
        for p, (out, err) in zip(procs, outs):
            check(p.returncode == 0, f"writer failed: {out} {err}")
        audit = kv.audit()[n:]
        check(len(audit) == 2, audit)
        v = kv.get_json("maintenance/node/prod-a/node-c")
        check(v["reason"] in (f"w0-{round_}", f"w1-{round_}"), v)
        # the later audit entry saw the earlier one's value as "before"
        reasons = {a["after"]["reason"] for _, a in audit}
        check(reasons == {f"w0-{round_}", f"w1-{round_}"}, audit)
        rc, out, err = c.run("ready", "node-c")
        check(rc == 0, err)


if __name__ == "__main__":
    run_main(main, cleanup=cleanup)
