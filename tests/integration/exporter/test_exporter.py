#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""drover-exporter end to end: the real daemon against the Kubernetes API
fixture (tests/kube, TLS + bearer token) and a real Consul dev agent.

Each test starts its own API fixture and exporter(s) with their own
cluster names, so tests can share one Consul agent
($DROVER_CONSUL_STATE, from the CTest fixture; started here when unset).
Waiting is by polling with a deadline, never by sleeping as an assertion;
client behaviour (relists, re-watches) is asserted through the fixture's
request log and the exporter's metrics.

usage: test_exporter.py EXPORTER_BINARY [unittest args]
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
import drover_testlib  # noqa: E402
import kv_schema  # noqa: E402
from drover_testlib import (Consul, ConsulDev, KubeFixture, NotifySocket,  # noqa: E402
                            consul_agent, http, scrape, stop_process)
EXPORTER = None
CONSUL = None  # drover_testlib.Consul, absolute keys
_cluster_seq = [0]


def wait_until(fn, timeout=15.0, what="condition", interval=0.05):
    return drover_testlib.wait_until(what, fn, timeout, interval)


# ---- Consul ----

def kv(prefix):
    """{key: (value, modify_index)} of a recursive read."""
    return CONSUL.dump(prefix, decode=True)


def kv_values(prefix):
    return CONSUL.values(prefix)


# ---- Kubernetes fixture ----

class Kube(KubeFixture):
    def __init__(self, tmp, seed="empty", extra=()):
        super().__init__(os.path.join(tmp, "kube"), "--tls", "--seed", seed, *extra)

    def seq(self):
        return self.get("state")["requests"]

    def wait_request(self, since, timeout=20, **match):
        body = dict(match, since=since, timeout=timeout)
        return self.ctl("wait_request", body, timeout=timeout + 10)


def service(ns, name, ports=(80,), typ="NodePort", annotations=None, **kw):
    ann = {"drover.io/exported": "true"}
    ann.update(annotations or {})
    d = {"namespace": ns, "name": name, "type": typ, "annotations": ann,
         "ports": [{"name": "p%d" % p, "port": p} for p in ports]}
    d.update(kw)
    return d


# ---- exporter ----

class Exporter:
    def __init__(self, tmp, kube, cluster, *extra, name="exp", kube_args=None, env=None):
        self.log_path = os.path.join(tmp, name + ".log")
        self.log = open(self.log_path, "w")
        args = [EXPORTER] + (kube.args() if kube_args is None else kube_args) + [
            "--consul-addr", CONSUL.addr, "--cluster", cluster, "--metrics-addr", "127.0.0.1:0",
            "--holder-name", name, "--log-level", "debug"] + list(extra)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **(env or {})))
        self.port = None
        self.port = wait_until(self._find_port, 10, "exporter %s metrics port" % name)

    def _find_port(self):
        if self.proc.poll() is not None:
            raise AssertionError("exporter exited with %s:\n%s" % (self.proc.returncode,
                                                                   self.text()[-3000:]))
        m = re.search(r"metrics and health on \S+ \(port (\d+)\)", self.text())
        return int(m.group(1)) if m else None

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def metrics(self):
        return scrape(self.port)

    def metric(self, name):
        return self.metrics().get(name, 0.0)

    def ready(self):
        return http("GET", "http://127.0.0.1:%d/readyz" % self.port, timeout=5)[0] == 200

    def stop(self, sig=signal.SIGTERM):
        rc = stop_process(self.proc, sig)
        self.log.close()
        return rc


class private_consul:
    """A Consul dev agent of its own for one test (`with private_consul(
    test, "--acl") as dev:`, a drover_testlib.ConsulDev): the module's
    CONSUL points to it inside, and the test's exporters are stopped before
    it goes away."""

    def __init__(self, test, *args):
        self.test, self.args = test, args
        self.dev = ConsulDev(os.path.join(test.tmp, "consul-private"))

    def __enter__(self):
        global CONSUL
        self.dev.start(*self.args)
        self.shared, CONSUL = CONSUL, self.dev.client()
        return self.dev

    def __exit__(self, *exc):
        global CONSUL
        bad = [(x.log_path, rc) for x in self.test.exporters
               for rc in [x.stop()] if rc not in (0, -signal.SIGKILL)]
        self.test.exporters = []
        self.dev.stop()
        CONSUL = self.shared
        if bad and exc[0] is None:
            raise AssertionError("exporter exit status (sanitizer report or crash?): %r" % bad)
        return False


class ExporterTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="drover-exd-")
        self.kubes = []
        self.exporters = []
        _cluster_seq[0] += 1
        self.cluster = "t%d-%d" % (os.getpid(), _cluster_seq[0])
        self.own = "drover/v1/kube/%s/" % self.cluster

    def tearDown(self):
        for e in self.exporters:
            rc = e.stop()
            if rc not in (0, -signal.SIGKILL) and not hasattr(e, "killed"):
                sys.stderr.write("exporter log:\n" + e.text()[-4000:])
                self.fail("exporter exit status %s (sanitizer report or crash?)" % rc)
        for k in self.kubes:
            k.stop()
        CONSUL.delete("drover/v1/kube/%s" % self.cluster, recurse=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def kube(self, seed="empty", extra=()):
        k = Kube(os.path.join(self.tmp, "k%d" % len(self.kubes)), seed, extra)
        self.kubes.append(k)
        return k

    def exporter(self, kube, *extra, cluster=None, name=None, kube_args=None, env=None):
        name = name or "exp%d" % len(self.exporters)
        e = Exporter(self.tmp, kube, cluster or self.cluster, *extra, name=name,
                     kube_args=kube_args, env=env)
        self.exporters.append(e)
        return e

    def synced(self, e):
        wait_until(lambda: e.metric("drover_exporter_last_sync_timestamp_seconds") > 0, 20,
                   "first full sync")

    def svc_key(self, ns, name, port, cluster=None):
        return "drover/v1/kube/%s/services/%s/%s/%s" % (cluster or self.cluster, ns, name, port)

    def node(self, name, cluster=None):
        v = kv_values("drover/v1/" + kv_schema.node_key(cluster or self.cluster, name))
        return json.loads(next(iter(v.values()))) if v else None

    # ---- tests ----

    def test_initial_sync_writes_expected_keys(self):
        k = self.kube("default")
        k.ctl("add_service", service("web", "shop", (80, 443)))
        k.ctl("add_service", service("web", "lb", (8080,), typ="LoadBalancer",
                                     externalTrafficPolicy="Local"))
        k.ctl("add_service", service("web", "internal", (80,), typ="ClusterIP"))
        k.ctl("add_service", dict(service("web", "optout", (80,)), annotations={}))
        e = self.exporter(k)
        self.synced(e)
        got = kv_values(self.own)
        want = {self.own + s for s in ("services/web/shop/p80", "services/web/shop/p443",
                                        "services/web/lb/p8080", "meta", "leader", "nodes/")}
        want |= {"drover/v1/" + kv_schema.node_key(self.cluster, n)
                 for n in ("cp-1", "worker-1", "worker-2")}
        # every node prefix keeps a folder key (an empty prefix wakes watchers on every write)
        want |= {self.own + "node-shards/%02x/" % s for s in range(kv_schema.NODE_SHARDS)}
        self.assertEqual(set(got), want)
        shop = json.loads(got[self.own + "services/web/shop/p80"])
        self.assertEqual((shop["cluster"], shop["type"], shop["port"]), (self.cluster, "NodePort", 80))
        lb = json.loads(got[self.own + "services/web/lb/p8080"])
        self.assertEqual(lb["health_check_source"], "healthCheckNodePort")
        self.assertEqual(lb["health_check_path"], "/healthz")
        self.assertFalse(self.node("cp-1")["eligible"])  # exclude label
        self.assertTrue(self.node("worker-1")["eligible"])
        meta = json.loads(got[self.own + "meta"])
        self.assertEqual((meta["services"], meta["service_ports"], meta["nodes"],
                          meta["eligible_nodes"]), (2, 3, 3, 2))
        self.assertTrue(e.ready())
        # paginated: several list pages
        e2_cluster = self.cluster + "-paged"
        e2 = self.exporter(k, "--kube-page-size", "1", cluster=e2_cluster)
        self.synced(e2)
        self.assertEqual(len(kv_values("drover/v1/kube/%s/services/" % e2_cluster)), 3)
        self.assertGreaterEqual(e2.metric('drover_exporter_lists_total{resource="services"}'), 1)
        CONSUL.delete("drover/v1/kube/%s" % e2_cluster, recurse=True)

    def test_in_cluster_address_and_tls_verification(self):
        k = self.kube("default")
        port = k.addr.rsplit(":", 1)[1]
        token = ["--kube-token-file", os.path.join(k.dir, "token")]
        # KUBERNETES_SERVICE_HOST/PORT give the address; the CA is checked
        e = self.exporter(k, kube_args=token + ["--kube-ca-file", os.path.join(k.dir, "ca.crt")],
                          env={"KUBERNETES_SERVICE_HOST": "127.0.0.1",
                               "KUBERNETES_SERVICE_PORT": port})
        self.synced(e)
        self.assertIn("Kubernetes API https://127.0.0.1:%s" % port, e.text())
        self.assertEqual(e.stop(), 0)
        self.exporters.remove(e)
        # without the fixture's CA the certificate is refused, nothing written
        other = self.cluster + "-noca"
        e = self.exporter(k, "--kube-api", k.addr, cluster=other, kube_args=token)
        wait_until(lambda: e.metric('drover_exporter_kube_errors_total{resource="services",'
                                    'kind="transport"}') >= 1, 20, "TLS failure")
        self.assertEqual(kv_values("drover/v1/kube/%s/services/" % other), {})
        self.assertFalse(e.ready())
        self.assertEqual(e.stop(), 0)
        self.exporters.remove(e)
        # ... unless verification is switched off explicitly
        e = self.exporter(k, "--kube-api", k.addr, "--kube-insecure-skip-tls-verify",
                          cluster=other, kube_args=token)
        self.synced(e)
        self.assertIn("not verifying the API server's certificate", e.text())
        CONSUL.delete("drover/v1/kube/%s" % other, recurse=True)

    def test_sd_notify(self):
        notify = NotifySocket(os.path.join(self.tmp, "notify.sock"))
        try:
            k = self.kube("default")
            e = self.exporter(k, env={"NOTIFY_SOCKET": notify.path})
            notify.wait("READY=1")
            self.synced(e)
            notify.wait("STATUS=leader, synced")
            e.proc.send_signal(signal.SIGTERM)
            notify.wait("STOPPING=1")
            self.assertEqual(e.stop(), 0)
            self.exporters.remove(e)
        finally:
            notify.close()

    def test_changes_reach_kv(self):
        k = self.kube("default")
        e = self.exporter(k, "--node-grace", "0")
        self.synced(e)
        key = self.svc_key("shop", "web", "p80")
        k.ctl("add_service", service("shop", "web", (80,)))
        wait_until(lambda: kv_values(key), what="service add")
        k.ctl("annotate", {"namespace": "shop", "name": "web",
                           "annotations": {"drover.io/dns-name": "web.example.net"}})
        wait_until(lambda: "web.example.net" in kv_values(key).get(key, ""), what="service modify")
        k.ctl("update_service", service("shop", "web", (81,)))
        wait_until(lambda: kv_values(self.svc_key("shop", "web", "p81")) and not kv_values(key),
                   what="port rename")
        k.ctl("delete_service", {"namespace": "shop", "name": "web"})
        wait_until(lambda: not kv_values(self.own + "services/"), what="service delete")
        k.ctl("set_node_ready", {"name": "worker-1", "ready": False})
        wait_until(lambda: self.node("worker-1")["eligible"] is False, what="NotReady")
        k.ctl("set_node_ready", {"name": "worker-1", "ready": True})
        wait_until(lambda: self.node("worker-1")["eligible"] is True, what="Ready again")
        k.ctl("cordon", {"name": "worker-2"})
        wait_until(lambda: not self.node("worker-2")["schedulable"], what="cordon")
        self.assertFalse(self.node("worker-2")["eligible"])
        k.ctl("uncordon", {"name": "worker-2"})
        wait_until(lambda: self.node("worker-2")["eligible"], what="uncordon")
        k.ctl("label", {"kind": "Node", "name": "worker-2", "labels":
                        {"node.kubernetes.io/exclude-from-external-load-balancers": "true"}})
        wait_until(lambda: self.node("worker-2")["excluded"], what="exclude label")
        k.ctl("add_node", {"name": "worker-3", "ip": "172.18.0.9"})
        wait_until(lambda: self.node("worker-3"), what="node add")
        k.ctl("delete_node", {"name": "worker-3"})
        wait_until(lambda: self.node("worker-3") is None, what="node delete")
        # every change above was diffed against the view kept from the
        # txn results: Consul was read in full only once
        self.assertEqual(e.metric("drover_exporter_kv_reads_total"), 1)
        self.assertEqual(e.metric("drover_exporter_txn_failures_total"), 0)

    def test_node_grace_keeps_notready_node_eligible(self):
        k = self.kube("default")
        e = self.exporter(k, "--node-grace", "1h")
        self.synced(e)
        k.ctl("set_node_ready", {"name": "worker-1", "ready": False})
        wait_until(lambda: self.node("worker-1")["ready"] is False, what="NotReady written")
        self.assertTrue(self.node("worker-1")["eligible"])  # grace period
        k.ctl("cordon", {"name": "worker-1"})  # any other cause: at once
        wait_until(lambda: self.node("worker-1")["eligible"] is False, what="cordon ends grace")

    def test_node_grace_ends_by_itself(self):
        k = self.kube("default")
        e = self.exporter(k, "--node-grace", "1s")
        self.synced(e)
        k.ctl("set_node_ready", {"name": "worker-1", "ready": False})
        wait_until(lambda: self.node("worker-1")["ready"] is False, what="NotReady written")
        # no further event: the grace timer alone withdraws the node
        wait_until(lambda: self.node("worker-1")["eligible"] is False, 10, "grace expiry")
        self.assertEqual(e.metric("drover_exporter_nodes_in_grace"), 0)

    def test_node_selector_and_label_keys(self):
        k = self.kube("default")
        k.ctl("label", {"kind": "Node", "name": "worker-1", "labels": {"lb": "yes"}})
        k.ctl("add_service", service("ns", "web", (80,), labels={"team": "shop", "x": "y"}))
        e = self.exporter(k, "--node-selector", "lb=yes", "--node-labels", "lb",
                          "--node-labels", "absent", "--service-labels", "team")
        self.synced(e)
        self.assertTrue(self.node("worker-1")["eligible"])
        self.assertEqual(self.node("worker-1")["labels"], {"lb": "yes"})
        key = self.svc_key("ns", "web", "p80")
        self.assertEqual(json.loads(kv_values(key)[key])["labels"], {"team": "shop"})
        self.assertFalse(self.node("worker-2")["selected"])
        self.assertFalse(self.node("worker-2")["eligible"])

    def test_noop_resync_writes_nothing(self):
        k = self.kube("default")
        for i in range(5):
            k.ctl("add_service", service("ns", "s%d" % i, (80, 81)))
        e = self.exporter(k, "--resync-interval", "300ms")
        self.synced(e)
        wait_until(lambda: e.metric("drover_exporter_txn_total") > 0, what="first write")
        before = kv(self.own)
        writes = e.metric('drover_exporter_kv_writes_total{op="set"}')
        txns = e.metric("drover_exporter_txn_total")
        reads = e.metric("drover_exporter_kv_reads_total")
        wait_until(lambda: e.metric("drover_exporter_kv_reads_total") >= reads + 3, 10,
                   "three resyncs")
        # a heartbeat-only node update and a bump of the revision change nothing
        k.ctl("heartbeat", {})
        k.ctl("bump_rv", {"count": 10})
        r2 = e.metric("drover_exporter_kv_reads_total")
        wait_until(lambda: e.metric("drover_exporter_kv_reads_total") >= r2 + 2, 10,
                   "two more resyncs")
        self.assertEqual(e.metric("drover_exporter_txn_total"), txns)
        self.assertEqual(e.metric('drover_exporter_kv_writes_total{op="set"}'), writes)
        self.assertEqual(kv(self.own), before)  # same ModifyIndex everywhere

    def _assert_relist_without_wipe(self, mode):
        k = self.kube("default")
        k.ctl("add_service", service("ns", "a", (80,)))
        e = self.exporter(k)
        self.synced(e)
        before = kv(self.own)
        deletes = e.metric('drover_exporter_kv_writes_total{op="delete"}')
        seq = k.seq()
        k.ctl("force_410", {"mode": mode, "count": 2})
        k.ctl("drop_watches", {})
        k.wait_request(seq, path="/api/v1/services", watch=False)
        k.wait_request(seq, path="/api/v1/nodes", watch=False)
        wait_until(lambda: e.metric('drover_exporter_relists_total{resource="services"}') >= 1,
                   what="relist counted")
        # watching again after the relist, and events flow
        k.ctl("wait_watchers", {"count": 2, "timeout": 20}, timeout=30)
        k.ctl("add_service", service("ns", "b", (80,)))
        wait_until(lambda: kv_values(self.svc_key("ns", "b", "p80")), what="event after relist")
        self.assertEqual(e.metric('drover_exporter_kv_writes_total{op="delete"}'), deletes)
        after = kv(self.own)
        for key, (val, idx) in before.items():
            if key.endswith("/meta"):
                continue
            self.assertEqual(after.get(key), (val, idx), key)

    def test_410_in_stream_relists_without_wipe(self):
        self._assert_relist_without_wipe("event")

    def test_http_410_relists_without_wipe(self):
        self._assert_relist_without_wipe("http")

    def test_expired_continue_restarts_list(self):
        k = self.kube("default")
        for i in range(6):
            k.ctl("add_service", service("ns", "s%d" % i, (80,)))
        # every continue token of the first list is already expired when used
        k.ctl("set", {"continue_ttl": 0})
        e = self.exporter(k, "--kube-page-size", "2")
        seq0 = 0
        k.wait_request(seq0, path="/api/v1/services", watch=False, query={"continue": None})
        wait_until(lambda: e.metric('drover_exporter_list_restarts_total{resource="services"}')
                   >= 1, what="list restarted after 410 on continue")
        self.assertEqual(kv_values(self.own + "services/"), {})  # nothing from a partial list
        k.ctl("set", {"continue_ttl": 300})
        self.synced(e)
        self.assertEqual(len(kv_values(self.own + "services/")), 6)

    def test_api_server_restart_keeps_kv_and_rewatches(self):
        k = self.kube("default")
        k.ctl("add_service", service("ns", "a", (80,)))
        e = self.exporter(k)
        self.synced(e)
        before = kv(self.own)
        rv = k.get("state")["resourceVersion"]
        seq = k.seq()
        k.ctl("restart", {"down_seconds": 2})
        # re-watched from the last resourceVersion seen, not relisted
        k.wait_request(seq, path="/api/v1/services", watch=True, query={"resourceVersion": rv},
                       timeout=30)
        k.ctl("add_service", service("ns", "b", (80,)))
        wait_until(lambda: kv_values(self.svc_key("ns", "b", "p80")), 20, "event after restart")
        after = kv(self.own)
        for key, (val, idx) in before.items():
            if not key.endswith("/meta"):
                self.assertEqual(after.get(key), (val, idx), key)
        self.assertEqual(e.metric('drover_exporter_kv_writes_total{op="delete"}'), 0)
        self.assertGreaterEqual(e.metric('drover_exporter_watch_restarts_total{resource="services"}'),
                                1)
        self.assertEqual(e.metric('drover_exporter_relists_total{resource="services"}'), 0)

    def test_api_server_restart_with_compaction_relists(self):
        k = self.kube("default")
        k.ctl("add_service", service("ns", "a", (80,)))
        e = self.exporter(k)
        self.synced(e)
        seq = k.seq()
        k.ctl("bump_rv", {"count": 5})  # revisions the exporter never saw get compacted
        k.ctl("restart", {"down_seconds": 2, "compact": True})
        # deleted while the API is down: only a relist can notice it
        k.ctl("delete_service", {"namespace": "ns", "name": "a"})
        k.wait_request(seq, path="/api/v1/services", watch=False, timeout=30)
        wait_until(lambda: not kv_values(self.own + "services/"), 20, "delete after relist")
        self.assertGreaterEqual(e.metric('drover_exporter_relists_total{resource="services"}'), 1)

    def _assert_backoff(self, status):
        k = self.kube("default")
        e = self.exporter(k)
        self.synced(e)
        seq = k.seq()
        k.ctl("fail", {"status": status, "count": 3, "retry_after": 1, "path": "/api/v1/services",
                       "watch": True})
        k.ctl("drop_watches", {})
        metric = 'drover_exporter_kube_errors_total{resource="services",kind="%s"}' % (
            "throttled" if status == 429 else "server")
        wait_until(lambda: e.metric(metric) >= 3, 30, "three failed re-watches")
        log = k.get("requests?since=%d" % seq)
        failed = [r for r in log if r.get("fault") and r["path"] == "/api/v1/services"]
        self.assertEqual(len(failed), 3)
        gaps = [b["time"] - a["time"] for a, b in zip(failed, failed[1:])]
        if status == 429:  # Retry-After: 1
            self.assertTrue(all(g >= 0.9 for g in gaps), gaps)
        k.wait_request(seq, path="/api/v1/services", watch=True, query={}, timeout=30)
        k.ctl("add_service", service("ns", "late", (80,)))
        wait_until(lambda: kv_values(self.svc_key("ns", "late", "p80")), 20, "event after errors")
        # the three failures are one outage: logged once at warn when it
        # began (the retries at debug) and once when the watch opened again
        began = [line for line in e.text().splitlines() if "level=warn" in line and
                 "/api/v1/services" in line and "retrying in" in line]
        self.assertEqual(len(began), 1, began)
        self.assertRegex(e.text(), r"kube: \S+/api/v1/services: answering again after 3 failed "
                         r"attempts in ")
        self.assertEqual(e.metric('drover_exporter_kube_outages_total{resource="services"}'), 1)
        # its Consul transactions and session requests were timed
        self.assertGreater(e.metric("drover_exporter_consul_request_duration_seconds_count"), 0)

    def test_429_honours_retry_after(self):
        self._assert_backoff(429)

    def test_500_backs_off_and_recovers(self):
        self._assert_backoff(500)

    def test_token_rotation_rereads_on_401(self):
        k = self.kube("default")
        e = self.exporter(k)
        self.synced(e)
        k.ctl("rotate_token", {})
        k.ctl("drop_watches", {})
        wait_until(lambda: e.metric("drover_exporter_token_reloads_total") >= 1, 20, "token re-read")
        self.assertGreaterEqual(
            e.metric('drover_exporter_kube_errors_total{resource="services",kind="unauthorized"}') +
            e.metric('drover_exporter_kube_errors_total{resource="nodes",kind="unauthorized"}'), 1)
        k.ctl("wait_watchers", {"count": 2, "timeout": 20}, timeout=30)
        k.ctl("add_service", service("ns", "after", (80,)))
        wait_until(lambda: kv_values(self.svc_key("ns", "after", "p80")), 20, "event after rotation")

    def test_invalid_annotation_skipped_with_reason(self):
        k = self.kube("default")
        k.ctl("add_service", service("ns", "bad", (80,),
                                     annotations={"drover.io/health-check-port": "http"}))
        k.ctl("add_service", service("ns", "good", (80,)))
        e = self.exporter(k)
        self.synced(e)
        self.assertEqual(set(kv_values(self.own + "services/")),
                         {self.svc_key("ns", "good", "p80")})
        self.assertEqual(e.metric('drover_exporter_export_errors_total{reason="InvalidAnnotation"}'), 1)
        self.assertRegex(e.text(), r"ns/bad not exported: InvalidAnnotation: .*health-check-port")
        meta = json.loads(kv_values(self.own + "meta")[self.own + "meta"])
        self.assertEqual(meta["skipped_services"], 1)

    def test_invalid_update_keeps_last_good_entry(self):
        k = self.kube("default")
        k.ctl("add_service", service("ns", "web", (80,)))
        e = self.exporter(k)
        self.synced(e)
        key = self.svc_key("ns", "web", "p80")
        good = kv(key)[key]
        k.ctl("annotate", {"namespace": "ns", "name": "web",
                           "annotations": {"drover.io/backend-protocol": "gopher"}})
        wait_until(lambda: e.metric(
            'drover_exporter_export_errors_total{reason="InvalidAnnotation"}') == 1,
            what="refusal counted")
        # a later change is written: the round after the refusal is done
        k.ctl("add_service", service("ns", "marker", (80,)))
        wait_until(lambda: kv_values(self.svc_key("ns", "marker", "p80")), what="marker")
        self.assertEqual(kv(key)[key], good)  # neither rewritten nor deleted
        k.ctl("delete_service", {"namespace": "ns", "name": "web"})
        wait_until(lambda: not kv_values(key), what="deleted with the Service")

    def test_watch_timeout_rewatches_at_once(self):
        k = self.kube("default")
        e = self.exporter(k, "--watch-timeout-min", "1s", "--watch-timeout-max", "1s")
        self.synced(e)
        seq = k.seq()
        # two more watches of services, each from the last resourceVersion
        rv = k.get("state")["resourceVersion"]
        first = k.wait_request(seq, path="/api/v1/services", watch=True,
                               query={"resourceVersion": rv, "timeoutSeconds": "1"})
        k.wait_request(first["seq"] + 1, path="/api/v1/services", watch=True,
                       query={"timeoutSeconds": "1"})
        self.assertEqual(e.metric('drover_exporter_relists_total{resource="services"}'), 0)
        self.assertEqual(e.metric('drover_exporter_kube_errors_total{resource="services",'
                                  'kind="transport"}'), 0)
        k.ctl("add_service", service("ns", "late", (80,)))
        wait_until(lambda: kv_values(self.svc_key("ns", "late", "p80")), what="event")

    def test_two_clusters_never_touch_each_other(self):
        k1, k2 = self.kube("default"), self.kube("default")
        c1, c2 = self.cluster + "a", self.cluster + "a0"  # c1 is a prefix of c2
        try:
            k1.ctl("add_service", service("ns", "one", (80,)))
            k2.ctl("add_service", service("ns", "two", (80,)))
            e1 = self.exporter(k1, "--kse-compat", cluster=c1)
            e2 = self.exporter(k2, "--kse-compat", cluster=c2)
            self.synced(e1)
            self.synced(e2)
            CONSUL.put("drover/v1/kube/%s/services/ns/foreign/p1" % c2, "{}")
            v2 = kv("drover/v1/kube/%s/" % c2)
            k1.ctl("delete_service", {"namespace": "ns", "name": "one"})
            k1.ctl("delete_node", {"name": "worker-2"})
            wait_until(lambda: not kv_values("drover/v1/kube/%s/services/" % c1), what="c1 delete")
            e1.stop()  # a final resync on restart must not touch c2 either
            e1b = self.exporter(k1, "--kse-compat", cluster=c1, name="e1b")
            self.synced(e1b)
            self.assertEqual(kv("drover/v1/kube/%s/" % c2), v2)
            kse = kv_values("kube-service-exporter/")
            self.assertIn("kube-service-exporter/nodes/%s" % c2, kse)
            self.assertIn("kube-service-exporter/services/%s-ns-two-p80/clusters/%s" % (c2, c2), kse)
            self.assertNotIn("kube-service-exporter/services/%s-ns-one-p80/clusters/%s" % (c1, c1),
                             kse)
        finally:
            for c in (c1, c2):
                CONSUL.delete("drover/v1/kube/%s" % c, recurse=True)
                CONSUL.delete("kube-service-exporter/nodes/%s" % c)
                for key in kv_values("kube-service-exporter/services/"):
                    if key.endswith("/clusters/" + c):
                        CONSUL.delete(key)

    def test_kse_compat_layout(self):
        k = self.kube("default")
        k.ctl("add_service", {"namespace": "ns", "name": "legacy", "type": "NodePort",
                              "ports": [{"name": "http", "port": 80}],
                              "annotations": {
                                  "kube-service-exporter.github.com/exported": "true",
                                  "kube-service-exporter.github.com/load-balancer-backend-protocol":
                                      "http",
                                  "kube-service-exporter.github.com/custom-attrs":
                                      '{"team":"web"}'}})
        e = self.exporter(k, "--kse-compat", "--kse-prefix", "kse-" + self.cluster)
        self.synced(e)
        p = "kse-%s/" % self.cluster
        try:
            got = kv_values(p)
            key = "%sservices/%s-ns-legacy-http/clusters/%s" % (p, self.cluster, self.cluster)
            self.assertEqual(set(got), {key, p + "nodes/" + self.cluster})
            v = json.loads(got[key])
            self.assertEqual((v["ClusterName"], v["backend_protocol"], v["custom_attrs"]),
                             (self.cluster, "http", {"team": "web"}))
            nodes = json.loads(got[p + "nodes/" + self.cluster])
            self.assertEqual([n["Name"] for n in nodes], ["worker-1", "worker-2"])
            self.assertIn(self.svc_key("ns", "legacy", "http"), kv_values(self.own))
            k.ctl("delete_service", {"namespace": "ns", "name": "legacy"})
            wait_until(lambda: key not in kv_values(p), what="KSE key deleted")
        finally:
            CONSUL.delete(p, recurse=True)

    def test_two_replicas_only_leader_writes_and_failover(self):
        k = self.kube("default")
        for i in range(3):
            k.ctl("add_service", service("ns", "s%d" % i, (80,)))
        ttl = 20
        opts = ("--leader-ttl", "%ds" % ttl, "--leader-lock-delay", "0s")
        a = self.exporter(k, *opts, name="replica-a")
        b = self.exporter(k, *opts, name="replica-b")
        lead = lambda: [x for x in (a, b) if x.metric("drover_exporter_leader") == 1]
        leaders = wait_until(lead, 20, "a leader")
        self.assertEqual(len(leaders), 1)
        leader = leaders[0]
        follower = b if leader is a else a
        wait_until(follower.ready, 20, "follower ready")
        self.synced(leader)
        self.assertEqual(follower.metric("drover_exporter_txn_total"), 0)
        holder = json.loads(kv_values(self.own + "leader")[self.own + "leader"])["holder"]
        self.assertEqual(holder, "replica-a" if leader is a else "replica-b")
        k.ctl("add_service", service("ns", "more", (80,)))
        wait_until(lambda: kv_values(self.svc_key("ns", "more", "p80")), what="leader writes")
        self.assertEqual(follower.metric("drover_exporter_txn_total"), 0)
        before = kv_values(self.own + "services/")
        # kill the leader: no graceful release, the session must expire
        leader.killed = True
        leader.proc.kill()
        leader.proc.wait()
        t0 = time.monotonic()
        wait_until(lambda: follower.metric("drover_exporter_leader") == 1, 2 * ttl, "takeover")
        took = time.monotonic() - t0
        # issue 14: Consul invalidates the dead leader's session (TTL/2) at
        # most TTL after its last renewal; no lock-delay; the follower's
        # watch sees the release at once. "At once" is bounded by what the
        # watch stands for: without it the follower's next try comes with
        # its retry, every session TTL/2 (ttl/4) while the lock is held. The
        # reaction is ~0.1 s idle and was over 1 s at load 19 (21.4 s in
        # all), past the fixed 1 s this had.
        self.assertLess(took, ttl + ttl / 4, "standby led %.1f s after the kill" % took)
        self.synced(follower)
        self.assertEqual(kv_values(self.own + "services/"), before)  # nothing lost or duplicated
        k.ctl("delete_service", {"namespace": "ns", "name": "s0"})
        wait_until(lambda: self.svc_key("ns", "s0", "p80") not in kv_values(self.own),
                   what="new leader writes")

    def test_session_loss_stops_writing_then_reacquires(self):
        k = self.kube("default")
        e = self.exporter(k, "--leader-ttl", "20s", "--leader-lock-delay", "1s")
        wait_until(lambda: e.metric("drover_exporter_leader") == 1, 20, "leads")
        self.synced(e)
        session = CONSUL.entry(self.own + "leader")[0]["Session"]
        st, _, _ = CONSUL.request("PUT", "/v1/session/destroy/" + session)
        self.assertEqual(st, 200)
        wait_until(lambda: "no longer leader" in e.text(), 15, "leadership lost")
        # a new session takes the lock again after the lock-delay, and writes
        wait_until(lambda: e.metric("drover_exporter_leader_transitions_total") >= 3, 30,
                   "re-acquired")
        self.assertNotEqual(CONSUL.entry(self.own + "leader")[0].get("Session"), session)
        k.ctl("add_service", service("ns", "after", (80,)))
        wait_until(lambda: kv_values(self.svc_key("ns", "after", "p80")), 20, "writes again")

    def test_writes_fenced_when_session_destroyed_mid_burst(self):
        """Every write batch carries check-session on the leader key, so
        once the leader's session is destroyed (index D) nothing can land
        until a session holds the lock again (index A): no key may carry a
        ModifyIndex in (D, A), even for a batch already in flight, and the
        burst still converges completely after the re-acquisition."""
        k = self.kube("default")
        e = self.exporter(k, "--leader-ttl", "20s", "--leader-lock-delay", "3s")
        wait_until(lambda: e.metric("drover_exporter_leader") == 1, 20, "leads")
        self.synced(e)
        self.assertIn("drover_exporter_txn_fence_refusals_total", e.metrics())
        lkey = self.own + "leader"
        session = CONSUL.entry(lkey)[0]["Session"]
        n = 1500
        ann = {"drover.io/exported": "true"}
        gen_err = []

        def generate():
            try:
                k.ctl("generate", {"services": n, "namespaces": 3, "prefix": "fence",
                                   "annotations": ann}, timeout=120)
            except Exception as ex:  # reported by the main thread
                gen_err.append(ex)
        gen = threading.Thread(target=generate)
        gen.start()
        try:
            burst = lambda: [x for x in kv_values(self.own + "services/") if "/fence-" in x]
            wait_until(lambda: len(burst()) >= 20, 30, "burst being written")
            st, _, _ = CONSUL.request("PUT", "/v1/session/destroy/" + session)
            self.assertEqual(st, 200)
            # lock-delay (3 s) keeps the key free: this read sees the release
            ent, _ = CONSUL.entry(lkey)
            self.assertFalse(ent.get("Session"), "lock still held right after the destroy")
            d_index = ent["ModifyIndex"]
            # the first change of the key after D is the next acquisition
            a_index, holder = d_index, None
            deadline = time.monotonic() + 40
            while not holder and time.monotonic() < deadline:
                ent, _ = CONSUL.entry(lkey, index=a_index, wait="5s", timeout=15)
                self.assertIsNotNone(ent, "leader key gone")
                a_index, holder = ent["ModifyIndex"], ent.get("Session")
            self.assertTrue(holder, "lock not re-acquired within 40 s")
            self.assertNotEqual(holder, session)
        finally:
            gen.join(150)
        self.assertFalse(gen_err, gen_err)
        wait_until(lambda: len(burst()) == n, 60, "the whole burst written after takeover")
        landed = {key: idx for key, (_, idx) in kv(self.own).items()
                  if key != lkey and d_index < idx < a_index}
        self.assertFalse(landed, "%d keys written while no session held the lock "
                         "(D=%d, A=%d), e.g. %s" % (len(landed), d_index, a_index,
                                                    sorted(landed.items())[:3]))
        self.assertIn("no longer leader", e.text())
        sys.stderr.write("fencing: D=%d A=%d, batches refused by the fence: %d\n" % (
            d_index, a_index, e.metric("drover_exporter_txn_fence_refusals_total")))

    def test_consul_outage_and_data_loss(self):
        """A private Consul: killed (the leader steps down within its TTL,
        nothing crashes), restarted empty (dev agents keep KV in memory):
        the exporter takes the lock again and rewrites every key."""
        with private_consul(self) as dev:
            k = self.kube("default")
            k.ctl("add_service", service("ns", "a", (80, 81)))
            e = self.exporter(k, "--leader-ttl", "20s", "--leader-lock-delay", "1s")
            self.synced(e)
            before = kv_values(self.own)
            dev.kill()
            wait_until(lambda: e.metric("drover_exporter_leader") == 0, 15,
                       "step-down without Consul")
            self.assertFalse(e.ready())
            k.ctl("add_service", service("ns", "b", (80,)))  # while Consul is down
            dev.restart()
            wait_until(lambda: e.metric("drover_exporter_leader") == 1, 30, "leader again")
            want = set(before) | {self.svc_key("ns", "b", "p80")}
            wait_until(lambda: set(kv_values(self.own)) == want, 30, "every key rewritten")
            for key in before:
                if not key.endswith(("/meta", "/leader")):
                    self.assertEqual(kv_values(self.own)[key], before[key], key)
            wait_until(e.ready, 10, "ready again")

    def test_consul_acl_token_file(self):
        """ACLs on (default deny): the token file's token is sent; without
        it nothing can be written and the failures are counted."""
        with private_consul(self, "--acl") as dev:
            master = dev.master_token
            k = self.kube("default")
            bad = self.exporter(k, "--leader-elect=false", name="no-token")
            # reads are filtered to nothing by the ACLs; the writes are refused
            wait_until(lambda: bad.metric("drover_exporter_txn_failures_total") >= 1, 20,
                       "refused write")
            self.assertFalse(bad.ready())
            self.assertEqual(bad.stop(), 0)
            self.exporters.remove(bad)
            tok = os.path.join(self.tmp, "consul-token")
            with open(tok, "w") as f:
                f.write(master + "\n")
            e = self.exporter(k, "--consul-token-file", tok, name="with-token")
            self.synced(e)
            got = Consul(CONSUL.addr, token=master).dump(self.own)
            # nodes, the folder keys of the 16 shards and the flat nodes/, meta, leader
            self.assertEqual(len(got), 3 + kv_schema.NODE_SHARDS + 1 + 2)

    def test_burst_is_coalesced(self):
        k = self.kube("default")
        e = self.exporter(k)
        self.synced(e)
        txns = e.metric("drover_exporter_txn_total")
        k.ctl("generate", {"services": 300, "namespaces": 3, "prefix": "burst",
                           "annotations": {"drover.io/exported": "true"}})
        wait_until(lambda: len(kv_values(self.own + "services/")) == 300, 30, "300 services")
        # 300 events, far fewer transactions
        self.assertLess(e.metric("drover_exporter_txn_total") - txns, 100)

    def test_graceful_stop_hands_over_at_once(self):
        k = self.kube("default")
        opts = ("--leader-ttl", "30s", "--leader-lock-delay", "15s")
        a = self.exporter(k, *opts, name="replica-a")
        wait_until(lambda: a.metric("drover_exporter_leader") == 1, 20, "a leads")
        b = self.exporter(k, *opts, name="replica-b")
        wait_until(b.ready, 20, "b follows")
        self.assertEqual(a.stop(), 0)
        # released lock + destroyed session: no TTL, no lock-delay
        wait_until(lambda: b.metric("drover_exporter_leader") == 1, 10, "b takes over")


def main():
    """Run the unittest cases of the script run (__main__) against the
    exporter named first on the command line and the Consul agent of
    $DROVER_CONSUL_STATE (a private one without it); another exporter test
    script importing this module can use it as its main too."""
    global EXPORTER, CONSUL
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    EXPORTER = os.path.abspath(sys.argv.pop(1))
    with consul_agent() as dev:
        CONSUL = dev.client()
        unittest.main(verbosity=2)


if __name__ == "__main__":
    main()
