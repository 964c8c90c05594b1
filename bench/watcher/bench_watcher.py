#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""bench/watcher: drover-watcher figures on loopback (see run.sh).

usage: bench_watcher.py DROVER_WATCHER CONSUL_DEV_SH TEMPLATE_DIR [CHANGES]
       bench_watcher.py DROVER_WATCHER CONSUL_DEV_SH TEMPLATE_DIR paced [RATE [SECONDS]]

1. apply latency: one service, one backend fed by 20 kube nodes, HAProxy 2.6
   in master-worker mode. CHANGES times: flip one node's eligibility in
   Consul (PUT) and poll HAProxy's `show servers state` until the node's
   slot shows the change (in or out of maintenance). Latency = PUT start
   -> change visible in HAProxy; it includes Consul's Raft commit and the
   blocking-query wake-up. Reloads = the master's reload counter delta.
   The split of each change comes from the watcher's debug log (see
   change_split): PUT -> the watch's answer -> snapshot built -> planned ->
   runtime apply done -> seen.
2. render + check: `drover-watcher render --out DIR` of a service whose
   backend has 10,000 servers (10,000 eligible nodes in Consul): Consul
   read + snapshot + template render + `haproxy -c`, total as seen from
   outside (process start to exit) and split by the render's own
   "render: timing:" log lines. Peak RSS of the
   render process (without haproxy -c, measured separately with
   --haproxy-bin true).
3. route change (issue 16): a definition selecting class "public", one
   selected Service with a dns_name served by a loopback HTTP server. N
   times (CHANGES / 5, at least 20): PUT a new dns_name and poll HAProxy
   with a request for the new Host until it answers 200. Latency = PUT
   start -> answered; reloads (must be 0: routes go through the runtime
   API's `set`/`add`/`del map`).
4. idle: the daemon on a 50,000-key tree (10,000 nodes + 40,000 kube
   service entries): CPU used over 10 s once it is ready, and its peak RSS
   (VmHWM).
"""
import calendar
import collections
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "lib"))
from drover_testlib import (KV_ROOT, ConsulDev, HAProxy, free_port,  # noqa: E402
                            haproxy_master_reloads, haproxy_servers_state, http,
                            proc_stat_fields, scrape, serve_http, stop_process, wait_until)

PACED_DOC = """paced mode (`scripts/bench.sh watcher paced [RATE [SECONDS]]`, default
100 changes/s for 30 s): the apply setup of 1. with 100 nodes, but open
loop: writer threads PUT change k at start + k / RATE whether or not
earlier changes are applied yet (a late writer PUTs at once and the
achieved rate is printed), and one observer polls HAProxy's `show servers
state` on one kept prompt-mode connection, 0.5 ms apart. Changes take nodes out and bring them back so that at
most 20 of 100 are out at once (under the removal guard's share) and a
node is touched again only 40 changes later (400 ms at 100/s): each node
has at most one change in flight, so each poll attributes what it sees; a
change still not seen when its node's next change is PUT counts as
superseded, with that time as its latency (a lower bound), and the
superseding change, which restores what HAProxy still shows, is not timed.
Two latencies end when the node's new state is visible in HAProxy:
from the PUT's start (`watcher_paced_p50_ms`, `_p99_ms`: the PUT itself
included) and from the PUT's answer (`watcher_paced_commit_p50_ms`,
`_p99_ms`: the KV change happens when Consul commits it, which is after
the PUT starts and before its answer - Consul answers a KV PUT once the
entry is applied to its state, the moment that wakes the blocking
queries - so this one leaves out the PUT's request, Raft and answer
trips, and the commit-based latency lies between the two). Also from the watcher's own histogram
drover_watcher_change_apply_seconds (a new snapshot -> applied, Consul not
included): the bucket bounds holding its p50 and p99 over the run.
BENCH_PACED_TRACE=FILE writes each seen change's wall-clock times."""

WATCHER, CONSUL_DEV, TEMPLATES = sys.argv[1:4]
PACED = len(sys.argv) > 4 and sys.argv[4] == "paced"
if PACED:
    PACED_RATE = float(sys.argv[5]) if len(sys.argv) > 5 else 100.0
    PACED_SECONDS = float(sys.argv[6]) if len(sys.argv) > 6 else 30.0
    CHANGES = 0
else:
    CHANGES = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
work = tempfile.mkdtemp(prefix="drover-bench-watcher.")
consul = ConsulDev(os.path.join(work, "consul"), CONSUL_DEV)
procs = []


def addr():
    return consul.addr


def kv():
    return consul.client(KV_ROOT)


def live(stats):
    """addresses of servers not in maintenance"""
    return {f["srv_addr"] for f in haproxy_servers_state(stats, "be").values()
            if not int(f["srv_admin_state"]) & 0x23}


def reloads(master):
    return haproxy_master_reloads(master, 5)


def service(fe_port, slots, backend="be"):
    return {"template": "http",
            "frontends": [{"name": "fe", "bind": ["127.0.0.1:%d" % fe_port],
                           "default_backend": backend}],
            "backends": [{"name": backend, "slots": slots, "check": {"type": "none"},
                          "kube": [{"cluster": "c1", "namespace": "default", "service": "web",
                                    "port": "http"}]}]}


def node_ip(i):
    return "10.%d.%d.%d" % (1 + i // 62500, (i // 250) % 250, 1 + i % 250)


def wait_for(what, fn, timeout=60):
    wait_until(what, fn, timeout, retry_on=OSError)


def log_lines(path, whats):
    """(wall-clock time in s, line) of the watcher's log lines containing
    one of whats"""
    out = []
    with open(path) as f:
        for l in f:
            if l.startswith("ts=") and any(w in l for w in whats):
                ts = l[3:26]  # 2026-11-23T13:47:23.787
                out.append((calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) +
                            float(ts[19:]), l))
    return out


def log_times(path, what):
    """wall-clock times (s) of the watcher's log lines containing `what`"""
    return [t for t, _ in log_lines(path, (what,))]


def watcher_args(cfg, metrics, extra=(), level=None):
    return [WATCHER, "--consul-addr", addr(), "--haproxy-cluster", "bench", "--kube-cluster",
            "c1", "--template-dir", TEMPLATES, "--config-dir", cfg,
            "--haproxy-master-socket", os.path.join(work, "{service}.master"),
            "--haproxy-stats-socket", os.path.join(work, "{service}.sock"),
            "--haproxy-state-file", os.path.join(work, "{service}.state"),
            "--agent-state-file", os.path.join(work, "agent.json"),
            "--snapshot-file", os.path.join(work, "snap.pb"), "--haproxy-maxconn", "1000",
            "--metrics-addr", "127.0.0.1:%d" % metrics, "--log-level",
            level or os.environ.get("BENCH_LOG_LEVEL", "warn"), *extra]


def proc_cpu_s(pid):
    """user + system CPU seconds of a process so far"""
    fl = proc_stat_fields(pid)
    return (int(fl[11]) + int(fl[12])) / os.sysconf("SC_CLK_TCK")


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def bench_apply():
    fe, metrics = free_port(), free_port()
    cfg = os.path.join(work, "cfg-apply")
    kv().put("kube/c1/services/default/web/http", {"node_port": 30080})
    nodes = ["127.0.%d.%d" % (1 + i // 250, 1 + i % 250) for i in range(20)]
    for i, a in enumerate(nodes):
        kv().put("kube/c1/nodes/n%d" % i, {"addresses": [a], "eligible": True})
    kv().put("haproxy/bench/services/web", service(fe, 32))
    # debug: three timestamped lines per change give the split
    log_path = os.path.join(work, "watcher-apply.log")
    w = subprocess.Popen(watcher_args(cfg, metrics, level="debug"), stdout=subprocess.DEVNULL,
                         stderr=open(log_path, "w"))
    procs.append(w)
    wait_for("web.cfg rendered", lambda: os.path.exists(os.path.join(cfg, "web.cfg")))
    master, stats = os.path.join(work, "web.master"), os.path.join(work, "web.sock")
    hp = HAProxy(cfg, os.devnull, master=master).start().proc
    procs.append(hp)
    wait_for("20 servers live", lambda: len(live(stats)) == 20)
    # warm-up (not measured): the first apply after HAProxy started also
    # switches the agents of free slots off
    kv().put("kube/c1/nodes/n0", {"addresses": [nodes[0]], "eligible": False})
    wait_for("warm-up node out", lambda: nodes[0] not in live(stats))
    kv().put("kube/c1/nodes/n0", {"addresses": [nodes[0]], "eligible": True})
    wait_for("warm-up node back", lambda: nodes[0] in live(stats))
    r0 = reloads(master)
    lat, puts, seen = [], [], []  # puts: wall clock (start, end) of each PUT
    for k in range(CHANGES):
        # even changes take node i out, odd ones put it back: at most one
        # node is out at a time, so the removal guard never holds
        i = (k // 2) % len(nodes)
        eligible = k % 2 == 1
        t0 = time.perf_counter()
        put_wall = time.time()
        kv().put("kube/c1/nodes/n%d" % i, {"addresses": [nodes[i]], "eligible": eligible})
        puts.append((put_wall, time.time()))
        while (nodes[i] in live(stats)) != eligible:
            if time.perf_counter() - t0 > 10:
                raise RuntimeError("change %d not applied within 10 s" % k)
            # poll every 0.5 ms: a busy loop would compete with the watcher,
            # Consul and HAProxy for the CPUs and measure the scheduler
            time.sleep(0.0005)
        lat.append((time.perf_counter() - t0) * 1000.0)
        seen.append(time.time())
    n_reloads = reloads(master) - r0
    stop_process(hp)
    stop_process(w)
    return lat, n_reloads, change_split(log_path, puts, seen)


PACED_NODES, PACED_OUT = 100, 20


def paced_schedule(total):
    """(node, eligible) per change: take nodes out in turn until PACED_OUT
    are out, then alternately bring the longest-out one back and take the
    next one out."""
    out, changes, nxt = collections.deque(), [], 0
    while len(changes) < total:
        if len(out) < PACED_OUT:
            node = nxt % PACED_NODES
            nxt += 1
            out.append(node)
            changes.append((node, False))
        else:
            changes.append((out.popleft(), True))
    return changes


def histogram_delta(before, after, name):
    """{upper bound: count} of a histogram's observations between two scrapes"""
    out = {}
    for key, v in after.items():
        if key.startswith(name + "_bucket{"):
            le = key.split('le="', 1)[1].split('"', 1)[0]
            out[float("inf") if le == "+Inf" else float(le)] = v - before.get(key, 0.0)
    return out


def histogram_pct(buckets, p):
    """the upper bound of the bucket holding percentile p (cumulative counts)"""
    total = buckets.get(float("inf"), 0.0)
    if total <= 0:
        return -1.0
    for le in sorted(buckets):
        if buckets[le] >= p / 100.0 * total:
            return le
    return float("inf")


class StateObserver:
    """The paced bench's observer: one persistent prompt-mode connection to
    HAProxy's stats socket, `show servers state BACKEND` per poll. A new
    connection per poll (the closed-loop bench's way) cost the observer a
    connect, HAProxy an accept and the poll about 1.3 ms at p50; kept open,
    a poll is one request and one answer. poll() returns ({address: live},
    when the answer was complete): the answer shows HAProxy's state at some
    moment between the request and that time, so that time is an upper
    bound of when a change it shows was applied."""

    def __init__(self, path, backend):
        self.path, self.cmd = path, ("show servers state %s\n" % backend).encode()
        self.sock, self.cols = None, None

    def _connect(self):
        self.close()
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(self.path)
        self.sock = s
        s.sendall(b"prompt\n")
        self._answer()  # the first prompt

    def _answer(self):
        buf = bytearray()
        while not buf.endswith(b"\n> ") and buf != b"> ":
            d = self.sock.recv(65536)
            if not d:
                raise OSError("stats socket %s closed the observer's connection" % self.path)
            buf += d
        return bytes(buf)

    def poll(self):
        for attempt in (0, 1):  # one reconnect: HAProxy may have closed an idle session
            try:
                if self.sock is None:
                    self._connect()
                self.sock.sendall(self.cmd)
                text = self._answer()
                break
            except OSError:
                self.close()
                if attempt:
                    raise
        t = time.perf_counter()
        out = {}
        for ln in text.decode().splitlines():
            if ln.startswith("# be_id"):
                hdr = ln[2:].split()
                self.cols = (hdr.index("srv_addr"), hdr.index("srv_admin_state"))
            elif ln[:1].isdigit() and self.cols:
                w = ln.split()
                if len(w) > self.cols[1]:
                    # a freed slot may keep the address of a node placed again
                    # in another slot: the node is live if any of its slots is
                    addr = w[self.cols[0]]
                    out[addr] = out.get(addr, False) or not int(w[self.cols[1]]) & 0x23
        return out, t

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def paced_writer(changes, nodes, start, idx, pending, lock, errors, sent, superseded,
                 puts, started):
    client = kv()
    for k in idx:
        node, eligible = changes[k]
        delay = start + k / PACED_RATE - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        with lock:
            now = time.perf_counter()
            if node in pending:
                superseded[pending[node][0]] = now
                # this change puts back the state HAProxy still shows: not
                # measurable, the node is left out of the observation
                del pending[node]
            else:
                pending[node] = (k, eligible, now)
                started[k] = now
        put_wall = time.time()
        try:
            client.put("kube/c1/nodes/n%d" % node, {"addresses": [nodes[node]],
                                                     "eligible": eligible})
        except OSError as e:
            errors.append("change %d: PUT failed: %s" % (k, e))
        sent[k] = time.perf_counter()
        puts[k] = (put_wall, time.time())


def bench_paced():
    fe, metrics = free_port(), free_port()
    cfg = os.path.join(work, "cfg-paced")
    kv().put("kube/c1/services/default/web/http", {"node_port": 30080})
    nodes = ["127.0.%d.%d" % (1 + i // 250, 1 + i % 250) for i in range(PACED_NODES)]
    for i, a in enumerate(nodes):
        kv().put("kube/c1/nodes/n%d" % i, {"addresses": [a], "eligible": True})
    kv().put("haproxy/bench/services/web", service(fe, 128))  # a slot for every node
    # debug by default: its lines give the split (a few lines per change)
    w = subprocess.Popen(watcher_args(cfg, metrics,
                                      level=os.environ.get("BENCH_LOG_LEVEL", "debug")),
                         stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(work, "watcher-paced.log"), "w"))
    procs.append(w)
    wait_for("web.cfg rendered", lambda: os.path.exists(os.path.join(cfg, "web.cfg")))
    master, stats = os.path.join(work, "web.master"), os.path.join(work, "web.sock")
    hp = HAProxy(cfg, os.devnull, master=master).start().proc
    procs.append(hp)
    wait_for("%d servers live" % PACED_NODES, lambda: len(live(stats)) == PACED_NODES)
    # warm-up (not measured), as in bench_apply
    kv().put("kube/c1/nodes/n0", {"addresses": [nodes[0]], "eligible": False})
    wait_for("warm-up node out", lambda: nodes[0] not in live(stats))
    kv().put("kube/c1/nodes/n0", {"addresses": [nodes[0]], "eligible": True})
    wait_for("warm-up node back", lambda: nodes[0] in live(stats))
    total = int(PACED_RATE * PACED_SECONDS)
    changes = paced_schedule(total)
    r0, m0, cpu0 = reloads(master), scrape(metrics), proc_cpu_s(w.pid)
    pending, lock, errors, sent = {}, threading.Lock(), [], [None] * total
    # perf_counter times per change k: PUT started (timed changes only),
    # seen in HAProxy, or superseded (its node's next change PUT first)
    started, seen_at, superseded = {}, {}, {}
    puts, seen = [None] * total, [None] * total  # wall clock, for the split from the log
    start = time.perf_counter() + 0.05
    # two writers: one PUT can take longer than the interval on a busy
    # machine, and the writer must not fall behind. Split by node (even and
    # odd nodes), not by change: in the steady state even changes bring
    # nodes back and odd ones take them out, so with a writer each a lagging
    # writer let the other take far more than PACED_OUT nodes out and the
    # removal guard held the run's last changes (seen at a load of 15-19);
    # a node's changes stay in order in one writer.
    writers = [threading.Thread(target=paced_writer, daemon=True,
                                args=(changes, nodes, start,
                                      [k for k in range(total) if changes[k][0] % 2 == t],
                                      pending, lock, errors, sent, superseded, puts, started))
               for t in range(2)]
    for t in writers:
        t.start()
    # the observer; it gives up 10 s after the last PUT (on a busy machine
    # the writers can fall behind the schedule: PUTs slower than the rate)
    deadline = None
    # what one observation costs and how far apart two polls start: the
    # resolution of the latencies (a change is seen at most one interval
    # after HAProxy applied it)
    polls, intervals, t_prev = [], [], None
    observer = StateObserver(stats, "be")
    while any(t.is_alive() for t in writers) or pending:
        if deadline is None and not any(t.is_alive() for t in writers):
            deadline = time.perf_counter() + 10
        if deadline is not None and time.perf_counter() > deadline:
            keep_log(os.path.join(work, "watcher-paced.log"))
            raise RuntimeError("paced: %d changes not applied 10 s after the last PUT: %s" % (
                len(pending), sorted(v[0] for v in pending.values())[:10]))
        t_poll = time.perf_counter()
        if t_prev is not None:
            intervals.append((t_poll - t_prev) * 1000.0)
        t_prev = t_poll
        state, now = observer.poll()
        wall = time.time() - (time.perf_counter() - now)
        polls.append((now - t_poll) * 1000.0)
        with lock:
            for node, (k, eligible, t0) in list(pending.items()):
                if state.get(nodes[node], False) == eligible:
                    seen_at[k] = now
                    seen[k] = wall
                    del pending[node]
        # 0.5 ms between polls: a busy loop would take a CPU from the
        # watcher, Consul and HAProxy on this 2-CPU machine
        time.sleep(0.0005)
    observer.close()
    for t in writers:
        t.join()
    achieved = (total - 1) / (sent[-1] - sent[0]) if total > 1 else 0.0
    n_reloads = reloads(master) - r0
    cpu_ms = (proc_cpu_s(w.pid) - cpu0) * 1000.0
    m1 = scrape(metrics)
    hist = histogram_delta(m0, m1, "drover_watcher_change_apply_seconds")
    # every blocking-query answer, and those that changed nothing (an empty
    # prefix answers on every KV write: Consul watches a node of its radix
    # tree above the missing prefix)
    wakeups = tuple(m1.get(n, 0.0) - m0.get(n, 0.0) for n in (
        "drover_watcher_haproxy_consul_watch_wakeups_total",
        "drover_watcher_haproxy_consul_watch_unchanged_total"))
    stop_process(hp)
    stop_process(w)
    log_path = os.path.join(work, "watcher-paced.log")
    keep_log(log_path)
    if errors:
        raise RuntimeError("paced: %d errors, first: %s" % (len(errors), errors[0]))
    timed = [(p, s_) for p, s_ in zip(puts, seen) if p and s_]
    split = change_split(log_path, [p for p, _ in timed], [s_ for _, s_ in timed])
    if os.environ.get("BENCH_PACED_TRACE"):  # per timed change, wall clock: to find the slow ones
        with open(os.environ["BENCH_PACED_TRACE"], "w") as f:
            f.write("# change put_start put_answered seen ms_from_start\n")
            for k, (p, s_) in enumerate(zip(puts, seen)):
                if p and s_:
                    f.write("%d %.4f %.4f %.4f %.2f\n" % (k, p[0], p[1], s_, (s_ - p[0]) * 1000))
    return (paced_latencies(started, sent, seen_at, superseded), len(superseded), achieved,
            n_reloads, hist, (polls, intervals), split + (exchange_split(log_path),), cpu_ms,
            wakeups)


def exchange_split(log_path):
    """{socket: ([queued ms], [took ms])} of the watcher's runtime-API
    exchanges, from its debug log: how long each waited for its socket and
    how long the exchange took (connect, HAProxy's answers, EOF)."""
    out = {}
    for _, l in log_lines(log_path, (" exchange of ",)):
        sock = "stats" if "stats socket" in l else "master"
        q = float(l.split(" queued ", 1)[1].split(" ", 1)[0])
        t = float(l.split(" took ", 1)[1].split(" ", 1)[0])
        out.setdefault(sock, ([], []))
        out[sock][0].append(q)
        out[sock][1].append(t)
    return out


def keep_log(path):
    """BENCH_WATCHER_LOG=FILE keeps the watcher's log (also on failure)"""
    if os.environ.get("BENCH_WATCHER_LOG"):
        shutil.copy(path, os.environ["BENCH_WATCHER_LOG"])


def paced_latencies(started, sent, seen_at, superseded):
    """Per timed change (ms): from the PUT's start and from its answer to
    seen (or superseded), and the PUT's own duration. Consul commits the
    change between the two: the PUT starts before it and is answered once
    it is applied to Consul's state, the moment its blocking queries wake
    up. A change seen before its PUT's answer reached the bench counts 0
    from the answer (counted in `early`)."""
    out = {"start": [], "answer": [], "put": [], "early": 0}
    for k, t0 in started.items():
        t_end = seen_at.get(k, superseded.get(k))
        if t_end is None or sent[k] is None:
            continue
        out["start"].append((t_end - t0) * 1000.0)
        out["answer"].append(max(0.0, (t_end - sent[k]) * 1000.0))
        out["put"].append((sent[k] - t0) * 1000.0)
        out["early"] += t_end < sent[k]
    return out


def main_paced():
    consul.start()
    print("method: drover-watcher %s against consul agent -dev (in-memory Raft) and HAProxy "
          "%s on loopback, %d CPUs, load average at start %s" % (
              WATCHER, subprocess.run(["haproxy", "-v"], capture_output=True,
                                      text=True).stdout.split()[2], os.cpu_count(),
              " ".join("%.2f" % x for x in os.getloadavg())))
    print(PACED_DOC)
    (lats, n_superseded, achieved, n_reloads, hist, (polls, intervals), split, cpu_ms,
     wakeups) = bench_paced()
    lat, lat_commit, put = lats["start"], lats["answer"], lats["put"]
    applies = hist.get(float("inf"), 0.0)
    exchanges = split[-1]
    print_split(split[:-1])
    for sock, (q, t) in sorted(exchanges.items()):
        print("runtime API, %s: %d exchanges, queued p50 %.2f / p99 %.2f ms, took p50 %.2f / "
              "p99 %.2f ms" % (sock, len(q), pct(q, 50), pct(q, 99), pct(t, 50), pct(t, 99)))
    if "stats" in exchanges:
        print("BENCH watcher_paced_exchange_queued_p99_ms %.2f" % pct(exchanges["stats"][0], 99))
        print("BENCH watcher_paced_exchange_took_p99_ms %.2f" % pct(exchanges["stats"][1], 99))
    print("paced: %d changes at %.0f/s for %.0f s (achieved %.1f/s), %d superseded, min %.2f ms, "
          "max %.2f ms; watcher histogram: %d applies, p50 <= %g s, p99 <= %g s" % (
              len(lat), PACED_RATE, PACED_SECONDS, achieved, n_superseded, min(lat), max(lat),
              applies,
              histogram_pct(hist, 50), histogram_pct(hist, 99)))
    print("observer: %d polls of `show servers state` on one kept connection, each p50 %.2f / "
          "p99 %.2f ms, one poll start to the next p50 %.2f / p99 %.2f ms (the resolution: a "
          "change is seen at most that long after HAProxy applied it)" % (
              len(polls), pct(polls, 50), pct(polls, 99), pct(intervals, 50),
              pct(intervals, 99)))
    n_changes = max(1, len(lat))
    print("consul: %d blocking-query answers to the watcher, %d of them unchanged (%.1f and %.1f "
          "per change)" % (wakeups[0], wakeups[1], wakeups[0] / n_changes,
                           wakeups[1] / n_changes))
    print("watcher CPU over the run: %.0f ms, %.2f ms per change; load average at the end %s" % (
        cpu_ms, cpu_ms / max(1, len(lat)), " ".join("%.2f" % x for x in os.getloadavg())))
    print("KV change -> applied: from the PUT's start p50 %.2f / p99 %.2f ms (includes the "
          "PUT: p50 %.2f / p99 %.2f ms); from the PUT's answer (Consul has committed and "
          "woken the watch by then) p50 %.2f / p99 %.2f ms, %d seen before the answer "
          "reached the bench" % (pct(lat, 50), pct(lat, 99), pct(put, 50), pct(put, 99),
                                 pct(lat_commit, 50), pct(lat_commit, 99), lats["early"]))
    print("BENCH watcher_paced_cpu_ms_per_change %.2f" % (cpu_ms / max(1, len(lat))))
    print("BENCH watcher_paced_observer_poll_p99_ms %.2f" % pct(polls, 99))
    print("BENCH watcher_paced_observer_interval_p99_ms %.2f" % pct(intervals, 99))
    print("BENCH watcher_paced_consul_wakeups_per_change %.2f" % (wakeups[0] / n_changes))
    print("BENCH watcher_paced_p50_ms %.2f" % pct(lat, 50))
    print("BENCH watcher_paced_p99_ms %.2f" % pct(lat, 99))
    print("BENCH watcher_paced_commit_p50_ms %.2f" % pct(lat_commit, 50))
    print("BENCH watcher_paced_commit_p99_ms %.2f" % pct(lat_commit, 99))
    print("BENCH watcher_paced_put_p99_ms %.2f" % pct(put, 99))
    print("BENCH watcher_paced_rate_per_s %.1f" % achieved)
    print("BENCH watcher_paced_reloads %d" % n_reloads)
    print("BENCH watcher_paced_superseded %d" % n_superseded)
    print("BENCH watcher_paced_applies %d" % applies)
    print("BENCH watcher_paced_change_apply_p99_le_ms %g" % (histogram_pct(hist, 99) * 1000))
    return 0


def bench_route_change():
    fe, metrics, app = free_port(), free_port(), free_port()
    srv = serve_http("127.0.0.1", app, b"app\n", keepalive=False)
    cfg = os.path.join(work, "cfg-route")
    kv().delete_tree()
    kv().put("kube/c1/nodes/n0", {"addresses": ["127.0.0.1"], "eligible": True})

    def entry(name):
        return {"node_port": app, "load_balancer_class": "public", "backend_protocol": "http",
                "dns_name": name, "labels": {}}
    kv().put("kube/c1/services/default/web/http", entry("r0.example.com"))
    kv().put("haproxy/bench/services/pub", {
        "frontends": [{"name": "fe", "bind": ["127.0.0.1:%d" % fe]}], "backends": [],
        "select": [{"class": "public", "frontend": "fe"}]})
    w = subprocess.Popen(watcher_args(cfg, metrics), stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(work, "watcher-route.log"), "w"))
    procs.append(w)
    wait_for("pub.cfg rendered", lambda: os.path.exists(os.path.join(cfg, "pub.cfg")))
    master = os.path.join(work, "pub.master")
    hp = HAProxy(cfg, os.devnull, master=master).start().proc
    procs.append(hp)

    def status(host):
        try:
            return http("GET", "http://127.0.0.1:%d/" % fe, headers={"Host": host},
                        timeout=2)[0]
        except OSError:
            return 0
    wait_for("r0.example.com served", lambda: status("r0.example.com") == 200)
    r0 = reloads(master)
    lat = []
    for k in range(1, max(20, CHANGES // 5) + 1):
        host = "r%d.example.com" % k
        t0 = time.perf_counter()
        kv().put("kube/c1/services/default/web/http", entry(host))
        while status(host) != 200:
            if time.perf_counter() - t0 > 10:
                raise RuntimeError("route change %d not served within 10 s" % k)
            time.sleep(0.0005)
        lat.append((time.perf_counter() - t0) * 1000.0)
    n_reloads = reloads(master) - r0
    stop_process(hp)
    stop_process(w)
    srv.shutdown()
    srv.server_close()
    return lat, n_reloads


SPLIT_MARKS = (
    ("consul", "PUT start -> the watch's answer (Consul commit, blocking-query wake-up, read)",
     "msg=\"consul: watch "),
    ("snapshot", "-> snapshot built", "msg=\"watcher: snapshot "),
    ("plan", "-> planned (--runtime-wait coalescing)", "msg=\"watcher: planning snapshot"),
    ("apply", "-> runtime apply done (HAProxy runtime commands; the first apply carrying "
     "this plan or a later one)", None),
    ("observe", "-> seen by the bench's poll", None),
)


def plan_times(path):
    """{plan hash: wall time it was planned} and [(apply done time, the
    planning time of the plan it carried)] from the watcher's debug log"""
    planned, applied = {}, []
    for t, l in log_lines(path, ("planning snapshot ", "runtime apply done")):
        h = l.rsplit(" ", 1)[1].strip().strip('"')
        if "planning snapshot " in l:
            planned[h] = t  # equal inputs give equal hashes: the latest planning
        elif h in planned:
            applied.append((t, planned[h]))
    return applied


def change_split(log_path, puts, seen):
    """Per change, from the watcher's debug log (ms timestamps, same wall
    clock as the bench): PUT start (puts: (start, end) pairs) -> each mark
    of SPLIT_MARKS, each the first such line at or after the previous one
    -> seen by the bench's poll. The first mark is the first answer after
    the PUT started (an answer that was already on its way may be taken:
    the consul part is then short and the snapshot part long). {part:
    (p50, p99)} in ms over the changes whose lines were found in order,
    their count, and the PUT's own p50 (Consul's commit as the client sees
    it)."""
    marks = [log_times(log_path, m[2]) for m in SPLIT_MARKS if m[2]]
    applied = plan_times(log_path)
    parts = {m[0]: [] for m in SPLIT_MARKS}
    put_ms, answer_to_watch = [], []
    for (t_put, t_put_end), t_seen in zip(puts, seen):
        t, prev = [], t_put - 0.0015  # log times are ms, rounded
        for m in marks:
            x = next((x for x in m if x >= prev), None)
            if x is None:
                break
            t.append(x)
            prev = x
        if len(t) < len(marks):
            continue
        # the apply that carried this change: the first one done whose plan
        # was made at or after this change's planning
        x = next((a for a, p in applied if p >= t[-1] and a >= t[-1]), None)
        if x is None or x > t_seen + 0.0015:
            continue
        t.append(x)
        edges = [t_put] + t + [t_seen]
        for i, m in enumerate(SPLIT_MARKS):
            parts[m[0]].append(max(0.0, (edges[i + 1] - edges[i]) * 1000))
        put_ms.append((t_put_end - t_put) * 1000)
        answer_to_watch.append((t[0] - t_put_end) * 1000)
    return ({k: ((pct(v, 50), pct(v, 99)) if v else (-1, -1)) for k, v in parts.items()},
            len(put_ms), pct(put_ms, 50) if put_ms else -1,
            (pct(answer_to_watch, 50), pct(answer_to_watch, 99)) if put_ms else (-1, -1))


def print_split(split):
    parts, n, put_p50, answer_to_watch = split
    if not n:
        print("split: no change found in the watcher's log (BENCH_LOG_LEVEL=debug gives it)")
        return
    print("split (p50 / p99 over %d changes, from the watcher's debug log; the PUT itself "
          "took p50 %.1f ms): %s" % (n, put_p50, "; ".join(
              "%s %.1f / %.1f ms" % (m[1], parts[m[0]][0], parts[m[0]][1])
              for m in SPLIT_MARKS)))
    print("split: the PUT's answer -> the watch's answer p50 %.1f / p99 %.1f ms (negative: "
          "the watcher had the change before the bench had the PUT's answer)" % answer_to_watch)
    for m in SPLIT_MARKS:
        print("BENCH watcher_split_%s_p50_ms %.1f" % (m[0], parts[m[0]][0]))
        print("BENCH watcher_split_%s_p99_ms %.1f" % (m[0], parts[m[0]][1]))


def bench_render_and_idle():
    fe, metrics = free_port(), free_port()
    items = [("kube/c1/nodes/n%d" % i, {"addresses": [node_ip(i + 1)], "eligible": True})
             for i in range(10000)]
    items += [("kube/c1/services/ns%d/svc%d/http" % (i // 100, i),
               {"node_port": 30000 + i % 2000}) for i in range(39999)]
    items.append(("kube/c1/services/default/web/http", {"node_port": 30080}))
    t = time.time()
    kv().delete_tree()
    kv().txn_set(items)
    kv().put("haproxy/bench/services/big", service(fe, 16, backend="bebig"))
    if os.path.exists(os.path.join(work, "snap.pb")):
        os.unlink(os.path.join(work, "snap.pb"))
    print("setup: wrote %d keys in %.1f s" % (len(items) + 1, time.time() - t))
    out = os.path.join(work, "bundle")
    # render + check, timed
    base = watcher_args(os.path.join(work, "cfg-big"), metrics)
    t = time.perf_counter()
    r = subprocess.run(watcher_args(os.path.join(work, "cfg-big"), metrics, level="info") +
                       ["render", "--out", out], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    render_ms = (time.perf_counter() - t) * 1000.0
    split = {}
    for l in r.stderr.splitlines():
        if "render: timing:" in l:
            for kv_ in l.split("timing:", 1)[1].rstrip('"').split():
                k, _, v = kv_.partition("=")
                try:
                    split[k] = float(v)
                except ValueError:
                    pass
    with open(os.path.join(out, "big.cfg")) as f:
        n_servers = sum(1 for l in f if l.lstrip().startswith("server "))
    # peak RSS of the render alone (haproxy -c replaced by true)
    r = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M"] + base +
                       ["--haproxy-bin", "true", "render", "--out", out + "2"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    render_rss = int([l for l in r.stderr.splitlines() if l.startswith("MAXRSS")][0].split()[1])
    # idle daemon on the 50k-key tree; no HAProxy runs here, so no probing
    # (readiness needs every probed HAProxy up)
    w = subprocess.Popen(base + ["--haproxy-probe-interval", "0"], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(work, "watcher-idle.log"), "w"))
    procs.append(w)

    def ready():
        return http("GET", "http://127.0.0.1:%d/readyz" % metrics, timeout=2)[0] == 200
    t = time.perf_counter()
    wait_for("the idle daemon ready", ready, timeout=300)
    print("idle: daemon ready (first render of the big service) after %.1f s" % (
        time.perf_counter() - t))
    time.sleep(3)  # structural window + file refresh settle

    c0, t0 = proc_cpu_s(w.pid), time.time()
    time.sleep(10)
    idle_cpu = (proc_cpu_s(w.pid) - c0) / (time.time() - t0) * 100.0
    with open("/proc/%d/status" % w.pid) as f:
        hwm = [l for l in f if l.startswith("VmHWM")][0].split()[1]
    stop_process(w)
    return (render_ms, n_servers, render_rss / 1024.0, idle_cpu, int(hwm) / 1024.0,
            len(items) + 1, split)


def main():
    if not shutil.which("haproxy") or not shutil.which("consul"):
        print("bench/watcher: needs haproxy and consul", file=sys.stderr)
        return 1
    consul.start()
    print("method: drover-watcher %s against consul agent -dev (in-memory Raft) and HAProxy "
          "%s on loopback, %d CPUs" % (WATCHER, subprocess.run(
              ["haproxy", "-v"], capture_output=True, text=True).stdout.split()[2],
              os.cpu_count()))
    print(__doc__.split("\n", 3)[3].strip())
    lat, n_reloads, split = bench_apply()
    print("apply: %d changes, min %.2f ms, max %.2f ms" % (len(lat), min(lat), max(lat)))
    print_split(split)
    route_lat, route_reloads = bench_route_change()
    print("route change: %d changes, p50 %.2f ms, max %.2f ms, %d reloads" % (
        len(route_lat), pct(route_lat, 50), max(route_lat), route_reloads))
    (render_ms, n_servers, render_rss, idle_cpu, hwm, keys,
     split) = bench_render_and_idle()
    print("render split (10,000 servers): Consul read %.0f ms (%d keys), snapshot %.0f ms, "
          "render %.0f ms (template data %.0f + template %.0f), write %.0f ms, haproxy -c %.0f ms"
          % (split.get("consul_read_ms", -1), split.get("keys", -1), split.get("snapshot_ms", -1),
             split.get("data_ms", -1) + split.get("template_ms", -1), split.get("data_ms", -1),
             split.get("template_ms", -1), split.get("write_ms", -1), split.get("check_ms", -1)))
    print("render: %d server lines; idle: %d keys, %.2f %% of one CPU, VmHWM %.1f MiB" % (
        n_servers, keys, idle_cpu, hwm))
    print("BENCH watcher_apply_p50_ms %.2f" % pct(lat, 50))
    print("BENCH watcher_apply_p99_ms %.2f" % pct(lat, 99))
    print("BENCH watcher_reloads %d" % n_reloads)
    print("BENCH watcher_route_change_p99_ms %.2f" % pct(route_lat, 99))
    print("BENCH watcher_route_change_reloads %d" % route_reloads)
    print("BENCH watcher_render_10k_ms %.0f" % render_ms)
    print("BENCH watcher_render_10k_consul_read_ms %.0f" % split.get("consul_read_ms", -1))
    print("BENCH watcher_render_10k_snapshot_ms %.0f" % split.get("snapshot_ms", -1))
    print("BENCH watcher_render_10k_render_ms %.0f" % (split.get("data_ms", -1) +
                                                      split.get("template_ms", -1)))
    print("BENCH watcher_render_10k_check_ms %.0f" % split.get("check_ms", -1))
    print("BENCH watcher_render_10k_rss_mib %.1f" % render_rss)
    print("BENCH watcher_idle_cpu_percent_50k_keys %.2f" % idle_cpu)
    print("BENCH watcher_rss_mib %.1f" % hwm)
    return 0


if __name__ == "__main__":
    rc = 1
    try:
        rc = main_paced() if PACED else main()
    finally:
        for p in reversed(procs):
            stop_process(p)
        consul.close()
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(rc)
