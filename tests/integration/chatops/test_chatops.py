#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""ChatOps to HAProxy, end to end: `droverctl` writes a maintenance entry to
a real Consul dev agent (the `chatops_consul` CTest fixture), the real
drover-watcher renders it into the agent state file, the real
drover-agent-checker answers HAProxy 2.6 (master-worker) from that file, and
HAProxy's stats socket shows the result.

usage: test_chatops.py DROVERCTL DROVER_WATCHER DROVER_AGENT_CHECKER
                       CONSUL_DEV_SH TEMPLATE_DIR

The fleet is seeded the way the exporter writes it: kube cluster prod-a with
node-a (127.0.0.2) and node-b (127.0.0.3), each running a tiny HTTP server
on one NodePort (node-a answers "node1", node-b "node2"), and HAProxy
cluster edge with service web (backend be_web from kube web/http).

Checked, in order, while a request loop through HAProxy counts failures
(there must be none, from the first request to the last):
  drain   `droverctl drain node-a --reason "disk swap" --author alice`:
          node-a's server is DRAIN with "disk swap" in its agent text, new
          requests go to node-b only
  ready   `droverctl ready node-a`: UP again, both nodes serve
  restart drained again, the agent-checker restarted: the new process
          answers "drain" from the state file and HAProxy stays DRAIN
  down    agent-checker stopped: HAProxy sees failing agent checks and
          marks no server down over 10 agent intervals
  offline a drain issued while the agent-checker is down reaches HAProxy
          once it starts (state read from the file at start)
  weight  `droverctl weight node-b 50%`: node-b's effective weight halves
  audit   `droverctl history --json` holds every change with its author

The helpers (HTTP NodePort servers, Consul KV, HAProxy sockets, starting the
watcher and HAProxy, cleanup) come from tests/integration/watcher/watcherlib.py, the
agent-checker process and the agent protocol from
tests/integration/agent-checker/agentlib.py, the droverctl runner and the
exporter-shaped node values from tests/integration/ctl/ctllib.py.
"""
import json
import os
import re
import shutil
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
IT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(IT, "ctl"))
sys.path.insert(0, os.path.join(IT, "agent-checker"))
sys.path.insert(0, os.path.join(IT, "watcher"))
import agentlib  # noqa: E402
import ctllib  # noqa: E402
import watcherlib  # noqa: E402 (puts tests/lib on the path)
from drover_testlib import (ConsulDev, haproxy_stat, hold_for, metric_sum,  # noqa: E402
                            parse_metrics, run_main, run_steps)

CTL, WATCHER, AGENT_CHECKER, CONSUL_DEV, TEMPLATES = sys.argv[1:6]
ROOT = "drover/v1/"  # the watcher's default KV root
AGENT_INTER = None  # seconds, agent-inter of the rendered config (agent_inter())


tw = None  # watcherlib.Fleet: temp dir, ports, paths, Consul, watcher, HAProxy
agent = None  # agentlib.Daemon
loop = None  # RequestLoop


def log(*a):
    tw.log(*a)


class RequestLoop:
    """GET / through HAProxy, back to back, in a thread: counts answers by
    node and keeps every failure."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []
        self.seen = {}
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop_ev.is_set():
            try:
                who = tw.get().strip()
                with self.lock:
                    self.ok += 1
                    self.seen[who] = self.seen.get(who, 0) + 1
            except Exception as e:  # noqa: BLE001 - every failure counts
                with self.lock:
                    self.failures.append("%.2f %r" % (time.time() - tw.T0, e))
            time.sleep(0.01)

    def mark(self):
        """(ok, answers by node) so far; compare two marks for a window."""
        with self.lock:
            return self.ok, dict(self.seen)

    def assert_clean(self, what):
        with self.lock:
            assert not self.failures, "%s: requests through HAProxy failed: %s" % (
                what, self.failures[:5])

    def stop(self):
        self.stop_ev.set()
        self.thread.join(timeout=10)


def stat_rows():
    """`show stat` rows of be_web servers, by address "ip:port"."""
    return {r.get("addr", ""): r for r in haproxy_stat(tw.STATS)
            if r.get("pxname") == "be_web" and r.get("svname") not in ("FRONTEND", "BACKEND")}


def srv(addr):
    return stat_rows().get("%s:%d" % (addr, tw.NODE_PORT))


def status_of(addr):
    r = srv(addr)
    return r and r["status"]


def is_status(addr, want, text=None):
    """The server's status starts with want ("DRAIN" also matches
    "DRAIN (agent)") and, if given, text is in the agent's last answer."""
    r = srv(addr)
    if not r:
        return False
    ok = (r["status"] == want or r["status"].startswith(want + " ")) and (
        text is None or text in r.get("last_agt", ""))
    return ok or None


def wait_status(addr, want, text=None, timeout=15):
    """Poll until the status is reached; report the last row on timeout."""
    what = "%s to be %s%s" % (addr, want, " with %r" % text if text else "")
    try:
        return agentlib.wait_until(what, lambda: is_status(addr, want, text) and srv(addr),
                                   timeout)
    except AssertionError as e:
        r = srv(addr) or {}
        raise AssertionError("%s (status %r, last_agt %r, agent_status %r)" % (
            e, r.get("status"), r.get("last_agt"), r.get("agent_status"))) from None


def ctl(*args, ok=True):
    rc, out, err = CTL_RUNNER.run(*args)
    log("droverctl", " ".join(args), "->", rc, out.strip().replace("\n", " | "))
    if ok:
        assert rc == 0, "droverctl %s failed (%d): %s %s" % (" ".join(args), rc, out, err)
    return rc, out, err


def agent_state_entry(addr):
    """The watcher's agent state file entry of the slot holding addr."""
    with open(tw.AGENT) as f:
        st = json.load(f)
    for name, v in tw.servers_state("be_web").items():
        if v[0] == addr:
            return st["servers"].get("be_web/" + name)
    return None


def slot_of(addr):
    for name, v in tw.servers_state("be_web").items():
        if v[0] == addr:
            return name
    raise AssertionError("no be_web slot holds %s" % addr)


def start_agent():
    """(Re)start the agent-checker on its fixed ports and wait until it
    answers the agent protocol (its log is appended to across restarts, so
    the log line agentlib waits for is not proof of a new process)."""
    agent.start()

    def answers():
        try:
            return agentlib.ask(agent.port, b"be_web/none\n").endswith(b"\n")
        except OSError:
            return False  # not listening yet
    agentlib.wait_until("restarted agent-checker answering", answers, timeout=10)


def metric_replies(admin):
    """Replies with this admin word served by the current agent-checker."""
    return metric_sum(parse_metrics(agent.http("/metrics")[1]),
                      "drover_agent_checker_replies_total", admin=admin)


def agent_inter():
    """agent-inter of be_web's servers in the rendered config, in seconds
    (start_watcher() chooses it with --agent-interval)."""
    with open(os.path.join(tw.CFG, "web.cfg")) as f:
        m = re.search(r"agent-inter (\d+)(ms|s)\b", f.read())
    assert m, "no agent-inter in the rendered web.cfg"
    return int(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)


# ---- steps ----

def step_drain():
    ctl("drain", "node-a", "--reason", "disk swap", "--author", "alice")
    row = wait_status(A, "DRAIN", "disk swap", timeout=15)
    log("drain: node-a", row["status"], "last_agt:", row["last_agt"])
    # the runtime view agrees: admin state has a drain flag (0x08 forced
    # drain, as the agent sets it; 0x10 inherited)
    admin = tw.servers_state("be_web")[slot_of(A)][3]
    assert admin & 0x18 and not admin & 0x23, "show servers state admin %#x" % admin
    assert is_status(B, "UP"), status_of(B)
    # a draining server takes no new requests: from now on only node-b
    # answers (two requests first, so one already on its way to node-a
    # before the drain is not counted)
    pre, _ = loop.mark()
    agentlib.wait_until("2 more requests", lambda: loop.mark()[0] >= pre + 2, timeout=15)
    ok0, seen0 = loop.mark()
    agentlib.wait_until("20 more requests", lambda: loop.mark()[0] >= ok0 + 20, timeout=15)
    ok1, seen1 = loop.mark()
    assert seen1.get("node1", 0) == seen0.get("node1", 0), (
        "node-a (DRAIN) got new requests", seen0, seen1)
    loop.assert_clean("drain")


def step_ready():
    ctl("ready", "node-a", "--author", "alice")
    wait_status(A, "UP", timeout=15)
    ok0, seen0 = loop.mark()
    agentlib.wait_until("node-a serving again", lambda: loop.mark()[1].get("node1", 0) >
                        seen0.get("node1", 0), timeout=15)
    loop.assert_clean("ready")


def step_restart():
    ctl("drain", "node-a", "--reason", "disk swap", "--author", "alice")
    wait_status(A, "DRAIN", "disk swap", timeout=15)
    assert agent.stop() == 0, "agent-checker did not exit cleanly on SIGTERM"
    start_agent()
    # the new process must answer "drain" for node-a (from the state file it
    # read at start) and HAProxy must keep the server in DRAIN: a checker
    # that lost its state would answer "ready" and HAProxy would go UP
    reply = agentlib.ask(agent.port, ("be_web/%s\n" % slot_of(A)).encode())
    assert reply.startswith(b"drain up") and b"disk swap" in reply, reply
    agentlib.wait_until("HAProxy checked the restarted agent-checker",
                        lambda: metric_replies("drain") >= 3, timeout=15,
                        retry_on=(OSError,))  # its metrics port may not listen yet
    assert is_status(A, "DRAIN", "disk swap"), srv(A)
    assert is_status(B, "UP"), srv(B)
    log("restart: still", srv(A)["status"], "after", metric_replies("drain"), "drain replies")
    ctl("ready", "node-a", "--author", "alice")
    wait_status(A, "UP", timeout=15)
    loop.assert_clean("restart")


def step_down():
    assert agent.stop() == 0
    # HAProxy must actually be failing the agent checks for this to mean
    # anything: L4CON (connection refused) on both servers
    agentlib.wait_until("HAProxy to see failing agent checks", lambda: all(
        srv(x)["agent_status"].startswith("L4") for x in (A, B)), timeout=10)
    # a negative check needs a window: 10 agent intervals (well past the
    # default fall of 3), no server may leave UP and requests must go on
    ok0, _ = loop.mark()

    def both_up():
        for x in (A, B):
            r = srv(x)
            assert r["status"] == "UP", ("agent-checker down marked a server", x, r["status"],
                                         r["agent_status"])
        return True
    hold_for("both servers UP while the agent-checker is down", both_up, 10 * AGENT_INTER)
    assert srv(A)["agent_status"].startswith("L4"), srv(A)["agent_status"]
    assert loop.mark()[0] > ok0, "no requests served while the agent-checker was down"
    loop.assert_clean("agent-checker down")


def step_offline():
    # drain while the agent-checker is down: the watcher writes the state
    # file, HAProxy cannot know yet (nothing answers it)
    ctl("drain", "node-a", "--reason", "disk swap", "--author", "alice")
    agentlib.wait_until("drain in the agent state file", lambda: (
        agent_state_entry(A) or {}).get("admin") == "drain", timeout=15)
    assert is_status(A, "UP"), srv(A)
    start_agent()
    wait_status(A, "DRAIN", "disk swap", timeout=15)
    ctl("ready", "node-a", "--author", "alice")
    wait_status(A, "UP", timeout=15)
    loop.assert_clean("offline")


def step_weight():
    w0 = int(srv(B)["weight"])
    assert w0 >= 2 and int(srv(A)["weight"]) == w0, (srv(A)["weight"], w0)
    ctl("weight", "node-b", "50%", "--author", "alice")
    agentlib.wait_until("node-b at half weight", lambda: int(srv(B)["weight"]) == w0 // 2,
                        timeout=15)
    assert int(srv(A)["weight"]) == w0 and is_status(B, "UP") and is_status(A, "UP")
    log("weight: node-b", w0, "->", srv(B)["weight"], "last_agt:", srv(B)["last_agt"])
    loop.assert_clean("weight")


def step_audit():
    rc, out, err = ctl("history", "--json")
    entries = json.loads(out)["entries"]
    got = [(e["action"], e["target"], e.get("author"), e.get("reason")) for e in entries]
    a, b = "node/prod-a/node-a", "node/prod-a/node-b"
    want = [("drain", a, "alice", "disk swap"), ("ready", a, "alice", None)] * 3 + [
        ("weight", b, "alice", None)]
    assert [g[:3] for g in got] == [w[:3] for w in want], got
    assert all(g[3] == "disk swap" for g in got if g[0] == "drain"), got
    assert all(e.get("source") == "cli" for e in entries), entries


def main():
    global tw, agent, loop, CTL_RUNNER, A, B
    if not shutil.which("haproxy"):
        print("SKIP: haproxy not installed (scripts/bootstrap.sh installs it)")
        return 77
    tw = watcherlib.Fleet(WATCHER, CONSUL_DEV, TEMPLATES, prefix="drover-chatops-it.")
    # the CTest fixture's agent; run by hand, a private one stopped in cleanup
    tw.consul_dev = ConsulDev.from_env(tw.consul_dev.state, CONSUL_DEV)
    A, B = "127.0.0.2", "127.0.0.3"
    kv = ctllib.KV(tw.consul_addr(), ROOT)
    kv.delete_tree()
    tw.NODE_PORT, _ = tw.start_backends([A, B])
    agent = agentlib.Daemon(AGENT_CHECKER, tw.work, state_name="agent.json")
    tw.AGENT_PORT, tw.AGENT = agent.port, agent.state
    tw.copy_templates()
    CTL_RUNNER = ctllib.Ctl(CTL, tw.consul_addr(), ROOT, ["--cluster", "prod-a"])

    # the exporter's view of prod-a and the operator's service definition
    kv.put("kube/prod-a/nodes/node-a", ctllib.node("node-a", "prod-a", A))
    kv.put("kube/prod-a/nodes/node-b", ctllib.node("node-b", "prod-a", B))
    kv.put("kube/prod-a/services/default/web/http",
           {"cluster": "prod-a", "namespace": "default", "service": "web", "port_name": "http",
            "node_port": tw.NODE_PORT, "health_check_port": tw.NODE_PORT, "protocol": "TCP"})
    kv.put("haproxy/edge/services/web", tw.service(slots=4))

    # start_watcher() hands the watcher $NOTIFY_SOCKET and a watchdog
    # (sd_notify); read the datagrams as systemd would: a full queue (10
    # deep) blocks the watcher's event loop in sendmsg
    tw.open_notify()
    agent.start()
    tw.start_watcher()
    tw.wait_for("first config", lambda: os.path.exists(os.path.join(tw.CFG, "web.cfg")))
    global AGENT_INTER
    AGENT_INTER = agent_inter()
    tw.start_haproxy()
    # ready only with its HAProxy up (the probe, docs/watcher.md)
    tw.wait_for("watcher /readyz", tw.readyz)
    tw.wait_for("haproxy serving through both nodes",
                lambda: tw.requests_ok(8) == {"node1", "node2"}, timeout=20)
    wait_status(A, "UP")
    wait_status(B, "UP")
    loop = RequestLoop()
    loop.thread.start()
    run_steps([step_drain, step_ready, step_restart, step_down, step_offline, step_weight,
               step_audit])
    loop.stop()
    loop.assert_clean("whole run")
    log("agent-inter %.2fs" % AGENT_INTER)
    log("requests through HAProxy: %d, by node %s, failures 0" % loop.mark())
    return 0


def dump_diagnostics():
    if not tw:
        return
    try:
        for addr, r in stat_rows().items():
            print("---- show stat %s: status %s weight %s agent_status %s last_agt %r" % (
                addr, r.get("status"), r.get("weight"), r.get("agent_status"),
                r.get("last_agt")))
    except Exception:  # noqa: BLE001 - best effort
        pass
    if agent:
        print("---- last lines of agent-checker log\n" + "".join(
            agent.logs().splitlines(True)[-30:]))
    tw.dump_logs()


def cleanup():
    if loop:
        loop.stop()
    if agent:
        try:
            agent.stop()
        except Exception:  # noqa: BLE001
            pass
    if tw:
        tw.cleanup()  # the CTest fixture's Consul agent is stopped by the fixture


DEADLINE_S = 50  # below the CTest TIMEOUT, so the cleanup still runs

if __name__ == "__main__":
    run_main(main, dump_diagnostics, cleanup, deadline=DEADLINE_S)
