#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""drover-watcher end to end: a real Consul dev agent, a real HAProxy 2.6 in
master-worker mode and tiny HTTP servers on loopback acting as NodePorts.

usage: test_watcher.py DROVER_WATCHER CONSUL_DEV_SH TEMPLATE_DIR [SCENARIO...]

Scenarios run in order on one setup (each leaves a state the next expects):
  cold        no Consul and no snapshot file: nothing rendered, not ready
  churn       nodes added / made ineligible reach HAProxy through the runtime
              API (`show servers state`), the master's reload counter stays
  structural  a burst of structural changes inside one quiescence window
              gives exactly one reload
  badvalue    a value that would inject a directive never reaches HAProxy
  badcheck    a template error and a config failing `haproxy -c` are refused;
              the old config serves
  hup         SIGHUP reloads the template directory (one reload for the
              changed text); a bad template set is refused and the old one
              stays in use
  agent       maintenance entries end up in the agent-checker state file and,
              through the real drover-agent-checker ($DROVER_AGENT_CHECKER),
              in HAProxy's admin state and weights
  coldstart   a drain is written into the server-state file after the runtime
              apply; HAProxy killed (-9, master and worker): /readyz 503,
              then started cold with no agent answering it sends 0 requests
              to the drained server; the restart is counted, /readyz 200
  render      `render --snapshot FILE --out DIR` and `render --diff`
  consuldown  Consul killed: HAProxy keeps serving, the watcher recovers
  resync      a slot changed by hand in HAProxy is put back by the periodic
              re-apply
  guard       removing 2 of 3 servers at once is held until a force-removal
              entry lets it through
  remove      the service deleted from KV: held by the guard (it is the only
              one), then with a force-removal entry its config is moved aside
              and its frontend disabled (no reload); defined again, it serves
  restart     watcher restarted while Consul is down re-applies its snapshot
  stuck       the HAProxy worker blocked in a call for HANG_S (a Lua CLI
              command of the test's own config file, one thread: no SIGSTOP,
              /proc shows it sleeping): /readyz 503 while its stats socket
              does not answer the watcher's pings, 200 once it answers; the
              misses counted (about 5 s)
Real requests through HAProxy must succeed after every step. The reusable
helpers (processes, Consul, HAProxy, polling) live in watcherlib.py.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from watcherlib import Fleet, log, node, wait_for  # noqa: E402 (puts tests/lib on the path)
from drover_testlib import (free_port, haproxy_cmd, haproxy_servers_state,  # noqa: E402
                            haproxy_stat_row, http, proc_stat_fields, run_main,
                            run_steps)

WATCHER, CONSUL_DEV, TEMPLATES = sys.argv[1:4]
AGENT_CHECKER = os.environ.get("DROVER_AGENT_CHECKER")
SCENARIOS = sys.argv[4:] or ["cold", "churn", "structural", "badvalue", "badcheck", "hup", "agent",
                             "coldstart", "render", "consuldown", "resync", "guard", "remove", "restart",
                             "stuck"]
F = None  # the Fleet (temp dir, ports, paths, Consul, HAProxy), made in main()
WATCHER_P = None
HAPROXY = None  # drover_testlib.HAProxy serving the fleet
AGENT_CHECKER_P = None


# ---- scenarios ----

def sc_cold():
    cold = os.path.join(F.work, "cold")
    os.makedirs(cold)
    port = free_port()
    args = [WATCHER, "--consul-addr", "http://127.0.0.1:%d" % free_port(),
            "--haproxy-cluster", "edge", "--kube-cluster", "prod-a", "--template-dir", F.TPL,
            "--config-dir", os.path.join(cold, "etc/haproxy/drover"),
            "--haproxy-master-socket", os.path.join(cold, "m.sock"),
            "--haproxy-stats-socket", os.path.join(cold, "s.sock"),
            "--agent-state-file", os.path.join(cold, "lib/agent-checker/agent.json"),
            "--snapshot-file", os.path.join(cold, "lib/watcher/snap.pb"),
            "--metrics-addr", "127.0.0.1:%d" % port]
    logpath = os.path.join(cold, "log")
    p = subprocess.Popen(args, stdout=open(logpath, "ab"), stderr=subprocess.STDOUT)
    F.procs.append(p)
    try:
        def status():
            return str(http("GET", "http://127.0.0.1:%d/readyz" % port, timeout=2)[0])
        assert wait_for("cold watcher answering", status) == "503"
        # a fresh host: the watcher made its config dir and its files' dirs
        for d in ("etc/haproxy/drover", "lib/agent-checker", "lib/watcher"):
            assert os.path.isdir(os.path.join(cold, d)), d
        with open(logpath) as f:
            wait_for("consul errors logged", lambda: "fail static" in open(logpath).read())
            assert "no snapshot file" in f.read()
        assert status() == "503"
        # nothing rendered: only the lock that makes the dir this watcher's
        assert os.listdir(os.path.join(cold, "etc/haproxy/drover")) == [".drover-watcher.lock"]
        assert not os.path.exists(os.path.join(cold, "lib/agent-checker/agent.json"))
        assert p.poll() is None
    finally:
        p.terminate()
        p.wait(timeout=10)


def sc_churn():
    r0 = F.master_reloads()
    F.kv.put("kube/prod-a/nodes/n2", node("127.0.0.2"))
    F.kv.put("kube/prod-a/nodes/n3", node("127.0.0.3"))

    def three_up():
        st = F.servers_state("be_web")
        addrs = {v[0] for v in st.values() if v[2] == 2 and not v[3] & 0x23}
        return addrs == {"127.0.0.1", "127.0.0.2", "127.0.0.3"} and st
    st = wait_for("three servers up via runtime API", three_up)
    log("churn: after adds", st)
    wait_for("traffic on all three nodes", lambda: F.requests_ok(12) == {"node1", "node2", "node3"})
    F.kv.put("kube/prod-a/nodes/n2", node("127.0.0.2", eligible=False))

    def n2_gone():
        st = F.servers_state("be_web")
        live = {v[0] for v in st.values() if not v[3] & 0x23}
        return "127.0.0.2" not in live and st
    st = wait_for("n2 out of rotation", n2_gone)
    log("churn: after n2 ineligible", st)
    assert F.requests_ok(8) <= {"node1", "node3"}
    assert F.master_reloads() == r0, "runtime churn must not reload"
    assert F.metric("drover_watcher_reloads_total") == 0


def sc_structural():
    r0 = F.master_reloads()
    m0 = F.metric("drover_watcher_reloads_total")
    d0 = F.metric("drover_watcher_reload_duration_seconds_count")
    c0 = F.metric("drover_watcher_change_apply_seconds_count")
    # a burst inside one quiescence window: slots 4 -> 8, then maxconn changes
    F.kv.put("haproxy/edge/services/web", F.service(slots=8))
    for mc in (1000, 1001, 1002):
        time.sleep(0.1)
        F.kv.put("haproxy/edge/services/web", F.service(slots=8, maxconn=mc))
    wait_for("one reload", lambda: F.master_reloads() > r0, timeout=20)
    F.settled("the burst", "haproxy/edge/services/web")  # a further (wrong) reload is done by now
    assert F.master_reloads() == r0 + 1, "expected exactly one reload, got %d" % (
        F.master_reloads() - r0)
    assert F.metric("drover_watcher_reloads_total") == m0 + 1
    # the latency histograms saw the reload and the burst's apply
    assert F.metric("drover_watcher_reload_duration_seconds_count") == d0 + 1
    assert F.metric('drover_watcher_reload_duration_seconds_bucket{le="+Inf"}') == d0 + 1
    assert F.metric("drover_watcher_reload_duration_seconds_sum") > 0
    assert F.metric("drover_watcher_change_apply_seconds_count") > c0
    assert F.metric("drover_watcher_consul_request_duration_seconds_count") > 0
    assert "maxconn 1002" in F.cfg_text()
    st = wait_for("8 slots, n1 and n3 serving", lambda: (lambda s: len(s) == 8 and {
        v[0] for v in s.values() if v[2] == 2 and not v[3] & 0x23} == {"127.0.0.1", "127.0.0.3"}
        and s)(F.servers_state("be_web")))
    log("structural: after reload", st)
    assert F.requests_ok(8) <= {"node1", "node3"}


def sc_badvalue():
    before = F.cfg_text()
    r0 = F.master_reloads()
    bad0 = F.metric("drover_watcher_kv_bad_entries_total")
    evil = F.service(slots=8, maxconn=1002)
    evil["backends"][0]["balance"] = "roundrobin\n    stats enable"
    F.kv.put("haproxy/edge/services/web", evil)
    wait_for("bad entry counted", lambda: F.metric("drover_watcher_kv_bad_entries_total") > bad0)
    F.settled("the bad value", "haproxy/edge/services/web")
    assert F.cfg_text() == before
    assert "stats enable" not in F.cfg_text()
    assert F.master_reloads() == r0
    F.requests_ok()
    F.kv.put("haproxy/edge/services/web", F.service(slots=8, maxconn=1002))


def sc_badcheck():
    before = F.cfg_text()
    r0 = F.master_reloads()
    f0 = F.metric("drover_watcher_render_failures_total")
    # renders fine, but HAProxy refuses it
    F.kv.put("haproxy/edge/services/web", F.service(slots=8, maxconn=1002, template="broken"))
    wait_for("render failure counted",
             lambda: F.metric("drover_watcher_render_failures_total") > f0, timeout=10)
    assert F.cfg_text() == before
    assert F.master_reloads() == r0
    # a template that fails to render (a key the data lacks)
    F.kv.put("haproxy/edge/services/web", F.service(slots=8, maxconn=1002, template="nokey"))
    wait_for("template error counted",
             lambda: F.metric("drover_watcher_render_failures_total") > f0 + 1, timeout=10)
    assert F.cfg_text() == before
    assert F.master_reloads() == r0
    F.requests_ok()
    F.kv.put("haproxy/edge/services/web", F.service(slots=8, maxconn=1002))


def sc_hup():
    http_tpl = os.path.join(F.TPL, "http.mustache")
    with open(http_tpl) as f:
        original = f.read()
    r0 = F.master_reloads()
    ok0 = F.metric("drover_watcher_template_reloads_total")
    bad0 = F.metric("drover_watcher_template_reload_failures_total")
    with open(http_tpl, "w") as f:
        f.write(original + "# reloaded-on-sighup\n")
    WATCHER_P.send_signal(signal.SIGHUP)
    wait_for("template reload counted",
             lambda: F.metric("drover_watcher_template_reloads_total") == ok0 + 1)
    wait_for("new template text installed", lambda: "# reloaded-on-sighup" in F.cfg_text())
    wait_for("one reload for it", lambda: F.master_reloads() == r0 + 1)
    F.requests_ok()
    # a bad set (an unclosed section in another template) is refused as a
    # whole: the changed http template in the same set is not taken either
    before = F.cfg_text()
    with open(http_tpl, "w") as f:
        f.write(original + "# second-change\n")
    bad_tpl = os.path.join(F.TPL, "unclosed.mustache")
    with open(bad_tpl, "w") as f:
        f.write("{{#service}}\n")
    WATCHER_P.send_signal(signal.SIGHUP)
    wait_for("bad template set counted",
             lambda: F.metric("drover_watcher_template_reload_failures_total") == bad0 + 1)
    F.settled("the refused template set")  # a render it caused would be done by now
    assert F.cfg_text() == before
    assert F.master_reloads() == r0 + 1
    assert F.metric("drover_watcher_template_reloads_total") == ok0 + 1
    # still renders with the set in use: a structural change goes through
    m0 = F.metric("drover_watcher_reloads_total")
    F.kv.put("haproxy/edge/services/web", F.service(slots=8, maxconn=1003))
    wait_for("structural change rendered with the old set",
             lambda: "maxconn 1003" in F.cfg_text() and "# reloaded-on-sighup" in F.cfg_text())
    wait_for("its reload", lambda: F.metric("drover_watcher_reloads_total") == m0 + 1)
    os.unlink(bad_tpl)
    with open(http_tpl, "w") as f:
        f.write(original)
    # one change, one reload, each awaited: a reload still in flight when the
    # next scenario starts restores its server-state file over what that
    # scenario's agent checks set (sc_agent then saw a drained server serve)
    WATCHER_P.send_signal(signal.SIGHUP)
    wait_for("original templates back", lambda: "# reloaded-on-sighup" not in F.cfg_text())
    wait_for("their reload", lambda: F.metric("drover_watcher_reloads_total") == m0 + 2)
    F.kv.put("haproxy/edge/services/web", F.service(slots=8, maxconn=1002))
    wait_for("maxconn back", lambda: "maxconn 1002" in F.cfg_text())
    wait_for("its reload", lambda: F.metric("drover_watcher_reloads_total") == m0 + 3)
    F.requests_ok()


def uweights():
    """server address -> srv_uweight of be_web's occupied slots"""
    rows = haproxy_servers_state(F.STATS, "be_web").values()
    return {r["srv_addr"]: int(r["srv_uweight"]) for r in rows if r["srv_addr"] != "0.0.0.0"}


def sc_agent():
    F.kv.put("maintenance/node/prod-a/n1", {"target": "node/prod-a/n1", "state": "drain",
                                          "reason": "disk swap", "author": "alice"})
    F.kv.put("maintenance/addr/127.0.0.3", {"state": "ready", "weight": 50})

    def agent_entries():
        with open(F.AGENT) as f:
            st = json.load(f)
        by_addr = {}
        hx = F.servers_state("be_web")
        for name, v in hx.items():
            e = st["servers"].get("be_web/" + name)
            if e and v[0] != "0.0.0.0":
                by_addr[v[0]] = e
        a1, a3 = by_addr.get("127.0.0.1"), by_addr.get("127.0.0.3")
        return (a1 and a1["admin"] == "drain" and a1.get("reason") == "disk swap" and a3
                and a3["admin"] == "ready" and a3.get("weight") == 50 and st)
    st = wait_for("agent state with maintenance", agent_entries)
    free = [k for k, v in st["servers"].items() if v.get("reason") == "free slot"]
    assert free and all(st["servers"][k]["admin"] == "maint" for k in free)
    if AGENT_CHECKER:
        # the agent-checker answers HAProxy: n1 drains, n3 runs at 50 %
        def haproxy_sees_it():
            by = {r["srv_addr"]: r for r in haproxy_servers_state(F.STATS, "be_web").values()}
            n1, n3 = by.get("127.0.0.1"), by.get("127.0.0.3")
            return (n1 and int(n1["srv_admin_state"]) & 0x18 and n3
                    and int(n3["srv_uweight"]) == 50 and by)
        wait_for("agent drain and weight in HAProxy", haproxy_sees_it, timeout=15)
        assert F.requests_ok(6) == {"node3"}, "a draining server got new requests"
    F.kv.delete("maintenance/node/prod-a/n1")
    F.kv.delete("maintenance/addr/127.0.0.3")
    # an entry that expires is dropped by the watcher itself, without any
    # KV change (the agent-checker also stops applying it at that second)
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
    F.kv.put("maintenance/addr/127.0.0.3", {"state": "maint", "expires": expires})

    def n3_entry():
        with open(F.AGENT) as f:
            st = json.load(f)
        slot = [n for n, v in F.servers_state("be_web").items() if v[0] == "127.0.0.3"][0]
        return st["servers"]["be_web/" + slot]
    wait_for("timed maintenance in the agent state", lambda: n3_entry()["admin"] == "maint")
    wait_for("expired maintenance gone from the agent state",
             lambda: n3_entry()["admin"] == "ready" and "expires" not in n3_entry(),
             timeout=10)
    if AGENT_CHECKER:
        wait_for("n1 ready again", lambda: not any(
            v[0] == "127.0.0.1" and v[3] & 0x18 for v in F.servers_state("be_web").values()),
            timeout=15)
        # HAProxy keeps the last weight an agent sent: with the 50 % entry
        # gone the agent must say 100 % again, or n3 stays at half weight
        wait_for("n3 back at its full weight", lambda: uweights().get("127.0.0.3") == 100,
                 timeout=15)


def state_file_rows(backend):
    """srv_addr -> row (dict by column) of backend in the server-state file"""
    with open(os.path.join(F.work, "web.state")) as f:
        lines = f.read().splitlines()
    cols = lines[1].lstrip("#").split()
    rows = [dict(zip(cols, ln.split())) for ln in lines[2:] if len(ln.split()) == len(cols)]
    return {r["srv_addr"]: r for r in rows if r["be_name"] == backend}


def sc_coldstart():
    global HAPROXY
    F.kv.put("maintenance/node/prod-a/n1", {"target": "node/prod-a/n1", "state": "drain",
                                          "reason": "cold start test"})
    # written after the runtime apply, from the desired state: no reload,
    # no agent answer needed
    wait_for("n1 drained in the server-state file", lambda: int(
        state_file_rows("be_web")["127.0.0.1"]["srv_admin_state"]) & 0x08)
    assert F.metric("drover_watcher_state_file_writes_total") >= 1
    # no agent answers during the cold start: only the file can drain n1
    if AGENT_CHECKER_P:
        AGENT_CHECKER_P.send_signal(signal.SIGSTOP)
    try:
        workers = [int(ln.split()[0]) for ln in haproxy_cmd(F.MASTER, "show proc").splitlines()
                   if "worker" in ln and ln.split()[0].isdigit()]
        assert workers, "no HAProxy worker listed"
        HAPROXY.proc.send_signal(signal.SIGKILL)
        HAPROXY.proc.wait(timeout=10)
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # the probe notices: /readyz 503 (the director's check of this host)
        wait_for("/readyz 503 with HAProxy dead", lambda: not F.readyz(), timeout=5)
        assert F.metric('drover_watcher_haproxy_up{service="web"}') == 0
        r0 = F.metric('drover_watcher_haproxy_restarts_total{service="web"}')
        HAPROXY = F.start_haproxy()
        # the first requests the new HAProxy answers
        answers = []
        deadline = time.monotonic() + 10
        while len(answers) < 12:
            try:
                answers.append(F.get().strip())
            except (OSError, AssertionError):
                assert time.monotonic() < deadline, "cold-started HAProxy never answered"
                time.sleep(0.01)
        assert "node1" not in answers, "drained n1 answered after a cold start: %s" % answers
    finally:
        if AGENT_CHECKER_P:
            AGENT_CHECKER_P.send_signal(signal.SIGCONT)
    wait_for("/readyz 200 with HAProxy back", F.readyz, timeout=5)
    assert F.metric('drover_watcher_haproxy_restarts_total{service="web"}') == r0 + 1
    F.kv.delete("maintenance/node/prod-a/n1")
    wait_for("n1 ready in the server-state file", lambda: not int(
        state_file_rows("be_web")["127.0.0.1"]["srv_admin_state"]) & 0x18)
    if AGENT_CHECKER_P:
        wait_for("n1 ready again in HAProxy", lambda: not any(
            v[0] == "127.0.0.1" and v[3] & 0x18 for v in F.servers_state("be_web").values()),
            timeout=15)


def outage_lines(since):
    """Lines of the watcher's log written after offset since: those that
    begin a Consul watch outage (at warn, by the watch's prefix) and those
    that end one. The fleet's watcher logs at debug level, where the
    retries in between show too."""
    with open(os.path.join(F.work, "watcher.log"), errors="replace") as f:
        f.seek(since)
        lines = f.read().splitlines()
    begun = [m.group(1) for m in (re.search(r"consul: GET /v1/kv/(\S+?)\?[^\n]*keeping last good "
                                            r"state", line) for line in lines
                                  if "level=warn" in line) if m]
    ended = [m.groups() for m in (re.search(r"consul: watch (\S+): answering again after (\d+) "
                                            r"failed attempt", line) for line in lines) if m]
    return begun, ended


def sc_consuldown():
    e0 = F.metric("drover_watcher_consul_errors_total")
    log_at = os.path.getsize(os.path.join(F.work, "watcher.log"))
    F.consul("kill")
    wait_for("consul errors counted", lambda: F.metric("drover_watcher_consul_errors_total") > e0,
             timeout=30)
    for _ in range(5):
        F.requests_ok(4)
        time.sleep(0.2)
    assert WATCHER_P.poll() is None, "watcher exited while Consul was down"
    F.consul("restart")  # a dev agent comes back empty
    # the empty KV must not tear anything down; write the state back
    put_all(nodes=("127.0.0.1", "127.0.0.3"))
    F.kv.put("kube/prod-a/nodes/n2", node("127.0.0.2"))
    wait_for("watcher applies changes after Consul returned", lambda: "127.0.0.2" in {
        v[0] for v in F.servers_state("be_web").values() if not v[3] & 0x23}, timeout=30)
    F.requests_ok()
    # an outage is logged once per watch when it begins and once when it
    # ends, however many retries it took (they count in the metric)
    # every watch's next attempt comes within its retry delay (at most the
    # watches' 30 s cap)
    wait_for("every watch answering again after its outage", lambda: (
        lambda b, e: b and sorted(p for p, _ in e) == sorted(set(b)))(*outage_lines(log_at)),
        timeout=35)
    errors = F.metric("drover_watcher_consul_errors_total") - e0
    begun, ended = outage_lines(log_at)
    log("consuldown: %d failed attempts; outage lines: %s; ended: %s" % (errors, begun, ended))
    dup = {p for p in begun if begun.count(p) > 1}
    assert not dup, "outage logged more than once for %s" % sorted(dup)
    assert errors > len(begun), "expected retries beyond the first failure of each watch"


def live_addrs():
    return {v[0] for v in F.servers_state("be_web").values() if not v[3] & 0x23} - {"0.0.0.0"}


def sc_resync():
    st = F.servers_state("be_web")
    slot = [n for n, v in st.items() if v[0] == "127.0.0.3"][0]
    haproxy_cmd(F.STATS, "set server be_web/%s addr 127.0.0.9 port %d" % (slot, F.NODE_PORT))
    assert F.servers_state("be_web")[slot][0] == "127.0.0.9"
    wait_for("slot repaired by the resync", lambda: F.servers_state("be_web")[slot][0] ==
             "127.0.0.3", timeout=10)
    F.requests_ok()


def sc_guard():
    wait_for("three servers live", lambda: live_addrs() == {"127.0.0.1", "127.0.0.2",
                                                            "127.0.0.3"})
    h0 = F.metric("drover_watcher_removals_held_total")
    # both at once (one transaction): removing them one by one would be
    # two changes of one server each, which the guard lets through
    F.kv.txn_set([("kube/prod-a/nodes/n1", node("127.0.0.1", eligible=False)),
                ("kube/prod-a/nodes/n2", node("127.0.0.2", eligible=False))])
    wait_for("change held", lambda: F.metric("drover_watcher_removals_held") == 1)
    assert F.metric("drover_watcher_removals_held_total") == h0 + 1
    F.settled("the held change", "kube/prod-a/nodes/n2")
    assert live_addrs() == {"127.0.0.1", "127.0.0.2", "127.0.0.3"}, live_addrs()
    F.requests_ok()
    # a force-removal entry lets it through until it expires
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600))
    F.kv.put("haproxy/edge/force-removal/be_web", {"expires": expires, "author": "test"})
    wait_for("forced removal applied", lambda: live_addrs() == {"127.0.0.3"})
    assert F.metric("drover_watcher_removals_held") == 0
    assert F.requests_ok(4) == {"node3"}
    F.kv.delete("haproxy/edge/force-removal/be_web")
    F.kv.put("kube/prod-a/nodes/n1", node("127.0.0.1"))
    F.kv.put("kube/prod-a/nodes/n2", node("127.0.0.2"))
    wait_for("servers back", lambda: live_addrs() == {"127.0.0.1", "127.0.0.2", "127.0.0.3"})


def frontend_status(name):
    row = haproxy_stat_row(F.STATS, name, "FRONTEND")
    return row and row["status"]


def sc_remove():
    web_cfg = os.path.join(F.CFG, "web.cfg")
    r0 = F.master_reloads()
    h0 = F.metric("drover_watcher_service_removals_held_total")
    rm0 = F.metric("drover_watcher_services_removed_total")
    F.kv.delete("haproxy/edge/services/web")
    # the only service: removing it would remove every service -> held
    wait_for("service removal held", lambda: F.metric("drover_watcher_service_removals_held") == 1)
    assert F.metric("drover_watcher_service_removals_held_total") == h0 + 1
    # no service left at all: a KV-loss episode (docs/watcher.md)
    assert F.metric("drover_watcher_kv_loss_episode") == 1
    # held, so still served: the gauge counts it
    assert F.metric("drover_watcher_services") == 1
    assert os.path.exists(web_cfg)
    assert frontend_status("fe_web") == "OPEN"
    F.requests_ok()
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600))
    F.kv.put("haproxy/edge/force-removal/web", {"expires": expires, "author": "test"})
    wait_for("config moved aside", lambda: not os.path.exists(web_cfg) and
             os.path.exists(web_cfg + ".removed"))
    assert F.metric("drover_watcher_services_removed_total") == rm0 + 1
    assert F.metric("drover_watcher_service_removals_held") == 0
    assert F.metric("drover_watcher_kv_loss_episode") == 0, "forced: the episode is over"
    assert F.metric("drover_watcher_services") == 0
    # `disable frontend` pauses it: HAProxy reports it as not OPEN and
    # accepts no request on it
    wait_for("frontend disabled", lambda: frontend_status("fe_web") not in ("OPEN", None))
    log("remove: fe_web is", frontend_status("fe_web"))
    try:
        st = http("GET", "http://127.0.0.1:%d/" % F.FE_PORT, timeout=1)[0]
    except OSError:
        st = None
    assert st is None or st >= 400, "a removed service still answers: %d" % st
    assert F.master_reloads() == r0, "a removal must not reload"
    # defined again: rendered, checked, installed and reloaded
    F.kv.delete("haproxy/edge/force-removal/web")
    F.kv.put("haproxy/edge/services/web", F.service(slots=8, maxconn=1002))
    wait_for("config back", lambda: os.path.exists(web_cfg))
    wait_for("one reload for it", lambda: F.master_reloads() == r0 + 1, timeout=20)
    wait_for("serving again", lambda: F.requests_ok(9) == {"node1", "node2", "node3"})
    assert frontend_status("fe_web") == "OPEN"


def sc_render():
    wait_for("config file caught up with the runtime state",
             lambda: all("%s:%d" % (a, F.NODE_PORT) in F.cfg_text() for a in ("127.0.0.1",
                                                                           "127.0.0.3")))
    out = os.path.join(F.work, "bundle")
    base = [WATCHER, "--haproxy-cluster", "edge", "--kube-cluster", "prod-a",
            "--template-dir", F.TPL, "--haproxy-stats-socket", F.STATS,
            "--haproxy-state-file", os.path.join(F.work, "web.state"),
            "--haproxy-maxconn", "500", "--agent-port", str(F.AGENT_PORT),
            "--agent-interval", "300ms", "--snapshot-file", F.SNAP, "--consul-addr", F.consul_addr()]
    # the snapshot file is written in the quiet window after a change:
    # retry until it holds what is installed
    def offline_matches():
        r = subprocess.run(base + ["render", "--snapshot", F.SNAP, "--out", out],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            return False
        with open(os.path.join(out, "web.cfg")) as f:
            return f.read() == F.cfg_text()
    wait_for("offline render equal to the installed config", offline_matches, timeout=15,
             interval=0.5)
    with open(os.path.join(out, "agent-state.json")) as f:
        assert json.load(f)["version"] == 1
    # no-op deploy: nothing to apply
    r = subprocess.run(base + ["--config-dir", F.CFG, "render", "--diff"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    # a running config that differs shows up in the diff
    other = os.path.join(F.work, "other-cfg")
    os.makedirs(other, exist_ok=True)
    with open(os.path.join(other, "web.cfg"), "w") as f:
        f.write(F.cfg_text().replace("balance roundrobin", "balance leastconn"))
    r = subprocess.run(base + ["--config-dir", other, "render", "--diff"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert "-    balance leastconn" in r.stdout and "+    balance roundrobin" in r.stdout, r.stdout
    # the route map of a frontend the definition no longer has: the daemon
    # removes it after the install, so the diff shows it going
    gone = os.path.join(other, "web.gone.map")
    with open(gone, "w") as f:
        f.write("gone.example.com be_gone\n")
    r = subprocess.run(base + ["--config-dir", other, "render", "--diff"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert ("--- " + gone) in r.stdout and "+++ /dev/null" in r.stdout, r.stdout
    assert "-gone.example.com be_gone" in r.stdout, r.stdout
    assert os.path.exists(gone), "render --diff removed a map"


def sc_restart():
    global WATCHER_P
    # runtime changes reach the file in the next quiet window (no reload)
    wait_for("config file caught up with the runtime state",
             lambda: all("%s:%d" % (a, F.NODE_PORT) in F.cfg_text()
                         for a in ("127.0.0.1", "127.0.0.2", "127.0.0.3")))
    before = F.cfg_text()
    r0 = F.master_reloads()
    F.consul("kill")
    WATCHER_P.send_signal(signal.SIGTERM)
    WATCHER_P.wait(timeout=10)
    WATCHER_P = F.start_watcher()
    wait_for("/readyz after loading the snapshot", F.readyz, timeout=15)
    assert F.cfg_text() == before
    assert F.master_reloads() == r0
    F.requests_ok()
    with open(os.path.join(F.work, "watcher.log")) as f:
        assert "loaded snapshot" in f.read()
    F.consul("restart")


HANG_S = 5  # > 3 pings of 4 probe intervals (800 ms by default), with room for stall retries


def write_hang_config():
    """A config file HAProxy loads after the rendered ones: one thread, and
    a CLI command `hang` that blocks it in os.execute("sleep HANG_S") - a
    worker stuck in a blocking call, its listening sockets still queueing
    connections, its /proc state S. Returns its path."""
    lua = os.path.join(F.work, "hang.lua")
    with open(lua, "w") as f:
        f.write('core.register_cli({"hang"}, "block the worker", function()\n'
                '    os.execute("sleep %d")\nend)\n' % HANG_S)
    cfg = os.path.join(F.work, "hang.cfg")
    with open(cfg, "w") as f:
        f.write("global\n    nbthread 1\n    lua-load %s\n" % lua)
    return cfg


def worker_states():
    """{pid: /proc state letter} of the HAProxy master's children (its
    workers), read from /proc: the test's own master CLI connection was
    once refused while the watcher's went through"""
    states = {}
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = proc_stat_fields(d)
        except (OSError, ValueError):
            continue  # exited meanwhile
        if int(fields[1]) == HAPROXY.proc.pid:
            states[int(d)] = fields[0]
    return states


def sc_stuck():
    misses = F.metric('drover_watcher_haproxy_ping_misses_total{service="web"}')
    hang = socket.socket(socket.AF_UNIX)
    hang.connect(F.STATS)
    hang.sendall(b"hang\n")
    t0 = time.monotonic()
    try:
        wait_for("/readyz 503 while the worker is blocked", lambda: not F.readyz(),
                 timeout=HANG_S)
        took = time.monotonic() - t0
        states = worker_states()
        assert states and not set(states.values()) & {"T", "t"}, \
            "a worker is stopped (%s): not this fault" % states
        log("stuck: not ready %.2f s after the worker blocked (workers: %s)" % (took, states))
        wait_for("/readyz again once the worker answers", F.readyz, timeout=HANG_S + 5)
    finally:
        hang.close()
    assert F.metric('drover_watcher_haproxy_ping_misses_total{service="web"}') >= misses + 3
    with open(os.path.join(F.work, "watcher.log"), errors="replace") as f:
        text = f.read()
    assert "HAProxy worker does not answer on %s" % F.STATS in text
    assert "answers its stats socket again" in text
    F.requests_ok()


def put_all(nodes=("127.0.0.1",), slots=8, maxconn=1002):
    F.kv.put("kube/prod-a/services/default/web/http", {"node_port": F.NODE_PORT})
    for i, a in enumerate(nodes):
        F.kv.put("kube/prod-a/nodes/n%s" % a.rsplit(".", 1)[1], node(a))
    F.kv.put("haproxy/edge/services/web", F.service(slots=slots, maxconn=maxconn))


def main():
    global F, WATCHER_P, HAPROXY, AGENT_CHECKER_P
    if not shutil.which("haproxy"):
        print("SKIP: haproxy not installed")
        return 77
    F = Fleet(WATCHER, CONSUL_DEV, TEMPLATES)
    F.NODE_PORT, _ = F.start_backends(["127.0.0.1", "127.0.0.2", "127.0.0.3"])
    F.copy_templates()
    # a template that renders but that HAProxy refuses
    with open(os.path.join(F.TPL, "broken.mustache"), "w") as f:
        f.write("{{> global}}\n\n{{> defaults}}\n    no-such-directive {{service.name | name}}\n")
    with open(os.path.join(F.TPL, "nokey.mustache"), "w") as f:
        f.write("{{> global}}\n\n{{> defaults}}\n    maxconn {{service.no_such_key | uint}}\n")
    if AGENT_CHECKER:
        ac = subprocess.Popen([AGENT_CHECKER, "--listen", "127.0.0.1:%d" % F.AGENT_PORT,
                               "--state-file", F.AGENT, "--metrics-addr", ""],
                              stdout=open(os.path.join(F.work, "agent-checker.log"), "ab"),
                              stderr=subprocess.STDOUT)
        F.procs.append(ac)
        AGENT_CHECKER_P = ac
    F.HAPROXY_EXTRA = [write_hang_config()]
    F.consul("start")
    put_all(slots=4, maxconn=None)
    F.kv.put("haproxy/edge/services/web", F.service(slots=4))
    F.open_notify()
    WATCHER_P = F.start_watcher()
    wait_for("first config", lambda: os.path.exists(os.path.join(F.CFG, "web.cfg")))
    # /readyz needs every HAProxy up (its probe says 503 while none runs),
    # so HAProxy starts first and readiness is awaited after it
    HAPROXY = F.start_haproxy()
    wait_for("/readyz", F.readyz)
    # systemd Type=notify: READY=1 once applied, then watchdog pings
    wait_for("READY=1 and WATCHDOG=1 on $NOTIFY_SOCKET",
             lambda: F.NOTIFY.seen("READY=1") and F.NOTIFY.seen("WATCHDOG=1"), timeout=10)
    wait_for("haproxy serving", lambda: F.requests_ok(2) == {"node1"})
    run_steps([globals()["sc_" + name] for name in SCENARIOS], "scenario")
    # a clean stop, and no sanitizer report (debug/sanitize builds) in any
    # of the watchers' output
    WATCHER_P.terminate()
    assert WATCHER_P.wait(timeout=15) == 0, "watcher exit status %d" % WATCHER_P.returncode
    with open(os.path.join(F.work, "watcher.log"), errors="replace") as f:
        text = f.read()
    for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        assert marker not in text, "sanitizer report in watcher.log: " + marker
    return 0


def diagnostics():
    if F:
        try:
            print("---- show servers state be_web:", F.servers_state("be_web"))
        finally:
            F.dump_logs()


if __name__ == "__main__":
    run_main(main, diagnostics, lambda: F and F.cleanup())
