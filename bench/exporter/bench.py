#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""bench/exporter: drover-exporter at scale.

usage: bench.py EXPORTER [services=5000] [nodes=500] [events=30]

Setup: a Consul dev agent (tests/lib/consul-dev.sh) and the Kubernetes API
fixture (tests/kube, TLS + bearer token, node ports 20000-32767) holding
SERVICES exported NodePort Services (one port each) and NODES ready nodes,
all on loopback. The exporter runs with its defaults (leader election on).

Figures:
  exporter_converge_s         process start -> the log line saying KV holds a
                              complete view (then checked: every key in Consul)
  exporter_event_to_kv_ms     median over EVENTS Service updates (a new
                              annotation) of: control call to the fixture ->
                              a Consul blocking query on that key returns
                              the new value (includes the fixture's own
                              processing and watch delivery)
  exporter_noop_resync_writes KV entries written by a forced relist of both
                              resources plus a full Consul re-read (SIGHUP)
                              that change nothing (expected 0)
  exporter_rss_mib            peak RSS (VmHWM) of the exporter at the end
  exporter_converge_{list,build,txn}_s
                              its split, from the exporter's own log lines:
                              list = start -> the last of "kube: listed"
                              (nodes, services; paged, from the fixture);
                              build = -> "writing N sets" (desired KV built
                              and diffed against the Consul read); txn = ->
                              "KV in sync" (all txn batches written)
  exporter_failover_s         a standby replica (same options, its own session)
                              follows; kill -9 of the leader -> the standby's
                              drover_exporter_leader is 1 (polled every 20 ms);
                              then every key is checked to be still in Consul
                              (goal: within --leader-ttl + 1 s, default 20 s)
"""
import calendar
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "lib"))
import drover_testlib  # noqa: E402
from kv_schema import NODE_SHARDS  # noqa: E402
from drover_testlib import ConsulDev, KubeFixture, scrape, stop_process  # noqa: E402

CLUSTER = "bench"


def wait_until(fn, timeout, what):
    try:
        return drover_testlib.wait_until(what, fn, timeout, interval=0.02)
    except AssertionError as e:
        raise SystemExit("bench: %s" % e) from None


def _ok(fn):
    """fn() or False when it raises (a server not answering yet)"""
    try:
        return fn()
    except (OSError, AssertionError):
        return False


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    exe = sys.argv[1]
    n_svc = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    n_node = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    n_ev = int(sys.argv[4]) if len(sys.argv) > 4 else 30
    work = tempfile.mkdtemp(prefix="drover-bench-exporter-")
    dev = ConsulDev(os.path.join(work, "consul"))
    kube = proc = standby = None
    try:
        dev.start()
        kube = KubeFixture(os.path.join(work, "kube"), "--tls", "--seed", "empty",
                           "--service-node-port-range", "20000-32767", "--history", "100000",
                           timeout=600)
        consul = dev.addr
        kv = dev.client()

        def ctl(op, body):
            try:
                return kube.ctl(op, body, timeout=600)
            except AssertionError as e:
                raise SystemExit("bench: %s" % e) from None

        ctl("generate", {"services": n_svc, "nodes": n_node, "namespaces": 20,
                         "annotations": {"drover.io/exported": "true"}})
        print("setup: %d exported NodePort Services (1 port) x %d nodes in the kube API fixture "
              "(TLS, Python); Consul dev agent at %s; %d CPUs" % (n_svc, n_node, consul,
                                                                  os.cpu_count()))
        log_path = os.path.join(work, "exporter.log")
        log = open(log_path, "w")
        t0 = time.time()
        args = [exe, *kube.args(), "--consul-addr", consul, "--cluster", CLUSTER,
                "--metrics-addr", "127.0.0.1:0", "--resync-interval", "0"]
        proc = subprocess.Popen(args + ["--holder-name", "bench-leader"], stdout=log,
                                stderr=subprocess.STDOUT)

        def logtext(path=log_path):
            with open(path) as f:
                return f.read()

        def synced_line():
            if proc.poll() is not None:
                raise SystemExit("bench: exporter exited:\n" + logtext()[-3000:])
            return re.search(r'ts=(\S+) level=info comp=exporter msg="exporter: KV in sync',
                             logtext())

        m = wait_until(synced_line, 300, "first full sync")
        ts = m.group(1)  # 2026-11-23T13:47:23.787Z
        t1 = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + ts[19:-1])
        converge = t1 - t0

        def log_ts(pattern):
            return [calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) +
                    float("0" + ts[19:-1]) for ts in
                    re.findall(r'ts=(\S+) level=\w+ comp=exporter msg="' + pattern, logtext())]
        listed = log_ts(r"kube: listed \d+ services")[:1] + log_ts(r"kube: listed \d+ nodes")[:1]
        split = None
        if len(listed) == 2:
            t_list = max(listed)
            t_write = next((t for t in log_ts(r"exporter: writing \d+ sets") if t >= t_list), None)
            if t_write:
                split = (t_list - t0, t_write - t_list, t1 - t_write)
        port = int(re.search(r"metrics and health on \S+ \(port (\d+)\)", logtext()).group(1))
        own = "drover/v1/kube/%s/" % CLUSTER
        keys = kv.keys(own)
        # + meta, leader, and the folder keys of the flat nodes/ prefix and of
        # every node shard (docs/kv-schema.md)
        want = n_svc + n_node + 2 + 1 + NODE_SHARDS
        if len(keys) != want:
            raise SystemExit("bench: %d keys in Consul after sync, expected %d" % (len(keys), want))

        def metrics(port=port):
            return scrape(port, timeout=120)

        # event -> KV: update one Service, block on its key in Consul
        lat = []
        for i in range(n_ev):
            idx = (i * 97) % n_svc
            ns, name = "gen-ns-%02d" % (idx % 20), "gen-svc-%05d" % idx
            key = "%sservices/%s/%s/http" % (own, ns, name)
            _, index = kv.entry(key)
            dns = "e%d.example.net" % i
            t_a = time.monotonic()
            ctl("annotate", {"namespace": ns, "name": name,
                             "annotations": {"drover.io/dns-name": dns}})
            while True:
                ent, index = kv.entry(key, index=index, wait="10s", timeout=120)
                if dns in ent["Value"].decode():
                    break
                if time.monotonic() - t_a > 10:
                    raise SystemExit("bench: event %d never reached KV" % i)
            lat.append((time.monotonic() - t_a) * 1000)

        # no-change resync: relist both resources, re-read Consul
        before = metrics()
        w0 = before.get('drover_exporter_kv_writes_total{op="set"}', 0) + \
            before.get('drover_exporter_kv_writes_total{op="delete"}', 0)
        l0 = before.get('drover_exporter_lists_total{resource="services"}', 0)
        r0 = before.get("drover_exporter_kv_reads_total", 0)
        ctl("force_410", {"mode": "event", "count": 2})
        ctl("drop_watches", {})
        wait_until(lambda: metrics().get('drover_exporter_lists_total{resource="services"}', 0)
                   > l0, 120, "relist")
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: metrics().get("drover_exporter_kv_reads_total", 0) > r0, 60,
                   "Consul re-read")
        r1 = metrics()["drover_exporter_kv_reads_total"]
        proc.send_signal(signal.SIGHUP)  # one more, after the relist's round settled
        wait_until(lambda: metrics().get("drover_exporter_kv_reads_total", 0) > r1, 60,
                   "second re-read")
        after = metrics()
        w1 = after.get('drover_exporter_kv_writes_total{op="set"}', 0) + \
            after.get('drover_exporter_kv_writes_total{op="delete"}', 0)

        rss_kib = 0
        with open("/proc/%d/status" % proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    rss_kib = int(line.split()[1])
        # failover: a standby follows, the leader is killed without a release
        sb_log_path = os.path.join(work, "standby.log")
        standby = subprocess.Popen(args + ["--holder-name", "bench-standby"],
                                   stdout=open(sb_log_path, "w"), stderr=subprocess.STDOUT)
        sb_port = int(wait_until(lambda: re.search(r"metrics and health on \S+ \(port (\d+)\)",
                                                   logtext(sb_log_path)), 60,
                                 "the standby's metrics port").group(1))

        def standby_follows():
            st, _, _ = drover_testlib.http("GET", "http://127.0.0.1:%d/readyz" % sb_port, timeout=5)
            return st == 200 and "drover_exporter_leader" in metrics(sb_port)
        wait_until(lambda: _ok(standby_follows), 60, "the standby to follow with a live session")
        if metrics(sb_port)["drover_exporter_leader"] != 0:
            raise SystemExit("bench: the standby leads before the leader was killed")
        ttl = 20  # --leader-ttl default
        proc.kill()
        t_kill = time.monotonic()
        proc.wait()
        wait_until(lambda: metrics(sb_port).get("drover_exporter_leader") == 1, 3 * ttl,
                   "the standby to lead")
        failover = time.monotonic() - t_kill
        left = set(kv.keys(own))
        if not set(keys) <= left:
            raise SystemExit("bench: keys lost in the failover: %s" % sorted(set(keys) - left)[:5])

        lat.sort()
        print("method: converge = exporter start -> its 'KV in sync' log line (paged list of "
              "both resources, build, %d-key diff, txn batches of 64); then %d keys verified in "
              "Consul" % (want, len(keys)))
        print("method: event -> KV over %d annotation updates: p50 %.1f ms, p90 %.1f ms, "
              "max %.1f ms (fixture control call -> Consul blocking query returns)"
              % (n_ev, statistics.median(lat), lat[int(len(lat) * 0.9) - 1], lat[-1]))
        print("method: no-op resync = relist after a 410 on both watches + 2 SIGHUP re-reads; "
              "writes counted by drover_exporter_kv_writes_total")
        print("BENCH exporter_converge_s %.3f" % converge)
        if split:
            print("method: converge split from the exporter's log (ms timestamps): list %.3f s "
                  "(fixture-bound: a Python TLS server paging 5,000 Services), build + diff "
                  "%.3f s, txn %.3f s" % split)
            print("BENCH exporter_converge_list_s %.3f" % split[0])
            print("BENCH exporter_converge_build_s %.3f" % split[1])
            print("BENCH exporter_converge_txn_s %.3f" % split[2])
        print("BENCH exporter_event_to_kv_ms %.1f" % statistics.median(lat))
        print("BENCH exporter_noop_resync_writes %d" % (w1 - w0))
        print("method: failover = kill -9 of the leader -> a following replica reports "
              "drover_exporter_leader 1 (--leader-ttl %d s, lock-delay 0); %d keys still in Consul"
              % (ttl, len(keys)))
        print("BENCH exporter_rss_mib %.1f" % (rss_kib / 1024.0))
        print("BENCH exporter_failover_s %.1f" % failover)
    finally:
        stop_process(standby)
        stop_process(proc)
        if kube:
            kube.stop()
        dev.close()
        if os.environ.get("BENCH_KEEP"):
            print("bench: kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
