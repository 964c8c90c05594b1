#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Issue 16, zone-aware backends: a real Consul dev agent, the real
drover-watcher (--zone zone-a), the real drover-agent-checker and a real
HAProxy 2.6.

usage: test_zones.py DROVER_WATCHER CONSUL_DEV_SH TEMPLATE_DIR
(env DROVER_AGENT_CHECKER: the agent-checker binary)

Nodes n1, n2 in zone-a (the proxy host's), n3 in zone-b, n4 in zone-c; the
backend asks for prefer_local_zone. Steps, in order on one setup:
  local      requests go to n1 and n2 only; n3 and n4 are `backup` servers
             and the backend has `option allbackups`
  drainone   n1 drained (maintenance entry): n2 takes everything, the other
             zones still get nothing
  drainall   n2 drained too: n3 and n4 share the requests evenly
  back       drains lifted: back to n1 and n2 only
  move       n3's node moves to zone-a: it serves with n1 and n2, no reload
"""
import collections
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "watcher"))
from watcherlib import Fleet, wait_for  # noqa: E402 (puts tests/lib on the path)
from drover_testlib import haproxy_servers_state, run_main, run_steps  # noqa: E402

WATCHER, CONSUL_DEV, TEMPLATES = sys.argv[1:4]
AGENT_CHECKER = os.environ.get("DROVER_AGENT_CHECKER")
ZONES = {"127.0.0.1": "zone-a", "127.0.0.2": "zone-a", "127.0.0.3": "zone-b",
         "127.0.0.4": "zone-c"}
F = None


def put_node(addr, zone):
    F.kv.put("kube/prod-a/nodes/n" + addr.rsplit(".", 1)[1],
             {"addresses": [addr], "eligible": True, "zone": zone})


def spread(n=24):
    """node name -> requests answered, over n requests."""
    return collections.Counter(F.get().strip() for _ in range(n))


def admin(addr):
    """srv_admin_state of the slot holding addr (0 when not placed)."""
    for r in haproxy_servers_state(F.STATS, "be_web").values():
        if r["srv_addr"] == addr:
            return int(r["srv_admin_state"])
    return 0


def drain(n, on):
    key = "maintenance/node/prod-a/n%d" % n
    if on:
        F.kv.put(key, {"target": "node/prod-a/n%d" % n, "state": "drain", "reason": "zone test"})
    else:
        F.kv.delete(key)
    addr = "127.0.0.%d" % n
    wait_for("n%d %s in HAProxy" % (n, "drained" if on else "ready"),
             lambda: bool(admin(addr) & 0x18) == on)


def only(names):
    """Wait until requests reach exactly these nodes (a check or agent
    answer may still be on its way), then check a fresh sample."""
    wait_for("requests reaching only %s" % sorted(names), lambda: set(spread(8)) == set(names))
    got = spread()
    assert set(got) == set(names), got
    return got


def step_local():
    cfg = F.cfg_text()
    assert "option allbackups" in cfg, cfg
    backups = [ln for ln in cfg.splitlines()
               if ln.strip().startswith("server ") and " backup" in ln]
    assert len(backups) == 4, cfg  # slots 2 x 4: the second half
    only({"node1", "node2"})


def step_drainone():
    drain(1, True)
    only({"node2"})


def step_drainall():
    drain(2, True)
    got = only({"node3", "node4"})
    assert abs(got["node3"] - got["node4"]) <= 2, got  # roundrobin over both backups


def step_back():
    drain(1, False)
    drain(2, False)
    only({"node1", "node2"})


def step_move():
    reloads = F.metric("drover_watcher_reloads_total")
    put_node("127.0.0.3", "zone-a")
    only({"node1", "node2", "node3"})
    assert F.metric("drover_watcher_reloads_total") == reloads


def main():
    global F
    if not shutil.which("haproxy") or not AGENT_CHECKER:
        print("SKIP: haproxy or the agent-checker missing")
        return 77
    F = Fleet(WATCHER, CONSUL_DEV, TEMPLATES, prefix="drover-zones-it.")
    F.NODE_PORT, _ = F.start_backends(sorted(ZONES))
    F.copy_templates()
    F.procs.append(subprocess.Popen(
        [AGENT_CHECKER, "--listen", "127.0.0.1:%d" % F.AGENT_PORT, "--state-file", F.AGENT,
         "--metrics-addr", ""], stdout=open(os.path.join(F.work, "agent-checker.log"), "ab"),
        stderr=subprocess.STDOUT))
    F.consul("start")
    F.kv.put("kube/prod-a/services/default/web/http", {"node_port": F.NODE_PORT})
    for addr, zone in ZONES.items():
        put_node(addr, zone)
    svc = F.service(slots=4)
    svc["backends"][0]["prefer_local_zone"] = True
    F.kv.put("haproxy/edge/services/web", svc)
    F.watcher_args += ["--zone", "zone-a"]
    F.open_notify()
    F.start_watcher()
    wait_for("web rendered", lambda: os.path.exists(os.path.join(F.CFG, "web.cfg")))
    F.start_haproxy()
    run_steps([step_local, step_drainone, step_drainall, step_back, step_move])
    return 0


def diagnostics():
    if F:
        F.dump_logs(files=("watcher.log", "haproxy.log", "agent-checker.log"))


if __name__ == "__main__":
    run_main(main, diagnostics, lambda: F and F.cleanup(), deadline=55)
