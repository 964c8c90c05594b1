#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""drover-exporter against a hostile Kubernetes API and a Consul that
refuses an entry (issue 20 items 3-5), the real daemon each time:

- a 200 MiB node list (chunked, and announced by Content-Length) is
  refused at the 64 MiB limit without being parsed: the exporter's peak RSS
  stays under LIST_RSS_LIMIT (830 MB when it parsed the truncated body),
  the log names the limit, and the list is retried after a jittered
  backoff, not in a loop;
- a watch stream whose first line is longer than the 16 MiB line limit
  makes the exporter relist after a growing, jittered backoff (it relisted
  876 times in 48 s before);
- a node label of 600 KB, which Consul refuses (413), is skipped, counted
  and logged naming its key, and every other node is written; /readyz
  stays 200 (real Consul dev agent, the tests/kube fixture).

The hostile API is a small HTTP server in this file (plain HTTP on
loopback); it records when each request came.

usage: test_exporter_hostile.py EXPORTER_BINARY [unittest args]
"""
import http.server
import json
import os
import re
import shutil
import signal
import socketserver
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import test_exporter as te  # noqa: E402  (Kube, Exporter, Consul helpers)

MiB = 1 << 20
HUGE_LIST = 200 * MiB
# 64 MiB of buffer (grown by doubling: 32 + 64 MiB during the last
# realloc) + the daemon itself; parsing the body as JSON took 830 MB.
LIST_RSS_LIMIT = 160 * MiB
OVERLONG_LINE = 17 * MiB  # the exporter's line limit is 16 MiB


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("%s missing in /proc/%d/status" % (field, pid))


def node_obj(name, rv):
    return {"metadata": {"name": name, "resourceVersion": str(rv), "labels": {}},
            "spec": {},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.7"}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}


class HostileKube:
    """Plain-HTTP API server with scripted answers for /api/v1/{services,nodes}.
    nodes_list: "huge" (200 MiB, chunked on odd attempts and announced by
    Content-Length on even ones) or "small"; nodes_watch: "overlong" (one
    line over the limit) or "hold"."""

    def __init__(self, nodes_list="small", nodes_watch="hold"):
        self.nodes_list, self.nodes_watch = nodes_list, nodes_watch
        self.requests = []  # (monotonic time, resource, "list"|"watch")
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qs(u.query)
                res = u.path.rsplit("/", 1)[-1]
                kind = "watch" if q.get("watch") == ["1"] else "list"
                with fake.lock:
                    fake.requests.append((time.monotonic(), res, kind))
                    attempt = sum(1 for r in fake.requests if r[1:] == (res, kind))
                try:
                    if res not in ("services", "nodes"):
                        self.send_error(404)
                    elif kind == "list":
                        fake.list(self, res, attempt)
                    else:
                        fake.watch(self, res)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the exporter hung up, as it should

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.srv = Server(("127.0.0.1", 0), Handler)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def times(self, res, kind):
        with self.lock:
            return [t for t, r, k in self.requests if (r, k) == (res, kind)]

    @staticmethod
    def chunk(h, data):
        h.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")

    def list(self, h, res, attempt):
        kind = "ServiceList" if res == "services" else "NodeList"
        items = [node_obj("node-a", 5)] if res == "nodes" else []
        if res == "nodes" and self.nodes_list == "huge":
            head = b'{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"5"},"items":['
            item = json.dumps(node_obj("n" * 40, 5)).encode() + b","
            block = head + item * ((MiB - len(head)) // len(item))
            block += b" " * (MiB - len(block))
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            if attempt % 2 == 0:
                h.send_header("Content-Length", str(HUGE_LIST))
            else:
                h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            filler = item * (MiB // len(item))
            filler += b" " * (MiB - len(filler))
            for i in range(HUGE_LIST // MiB):
                data = block if i == 0 else filler
                if attempt % 2 == 0:
                    h.wfile.write(data)
                else:
                    self.chunk(h, data)
            return
        body = json.dumps({"kind": kind, "apiVersion": "v1",
                           "metadata": {"resourceVersion": "5"}, "items": items}).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def watch(self, h, res):
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        if res == "nodes" and self.nodes_watch == "overlong":
            pad = b"x" * MiB
            self.chunk(h, b'{"type":"MODIFIED","object":{"metadata":{"name":"node-a"},"pad":"')
            for _ in range(OVERLONG_LINE // MiB):
                self.chunk(h, pad)
            self.chunk(h, b'"}}\n')
        # then stay open and quiet, as a watch with nothing to report does
        self.stopping.wait(60)
        self.chunk(h, b"")

    def stop(self):
        self.stopping.set()
        self.srv.shutdown()
        self.srv.server_close()


class HostileTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="drover-exh-")
        self.exporters, self.fakes, self.kubes = [], [], []
        te._cluster_seq[0] += 1
        self.cluster = "h%d-%d" % (os.getpid(), te._cluster_seq[0])

    def tearDown(self):
        for e in self.exporters:
            rc = e.stop()
            if rc not in (0, -signal.SIGKILL):
                sys.stderr.write("exporter log:\n" + e.text()[-4000:])
                self.fail("exporter exit status %s (sanitizer report or crash?)" % rc)
        for f in self.fakes:
            f.stop()
        for k in self.kubes:
            k.stop()
        te.CONSUL.delete("drover/v1/kube/%s" % self.cluster, recurse=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def fake(self, **kw):
        f = HostileKube(**kw)
        self.fakes.append(f)
        return f

    def exporter_on(self, fake, *extra):
        e = te.Exporter(self.tmp, None, self.cluster, *extra, name="exp%d" % len(self.exporters),
                        kube_args=["--kube-api", "http://127.0.0.1:%d" % fake.port])
        self.exporters.append(e)
        return e

    def assert_backed_off(self, times, what):
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertTrue(all(g >= 0.2 for g in gaps),
                        "%s retried without backoff: gaps %s" % (what, ["%.3f" % g for g in gaps]))
        # full jitter between 250 ms and 250 ms * 2^n: later gaps grow
        self.assertGreater(max(gaps), 0.4,
                           "%s: gaps never grew: %s" % (what, ["%.3f" % g for g in gaps]))

    def test_huge_list_refused_unparsed_with_backoff(self):
        f = self.fake(nodes_list="huge")
        e = self.exporter_on(f)
        te.wait_until(lambda: len(f.times("nodes", "list")) >= 5, 60, "five node list attempts")
        te.wait_until(lambda: e.metric(
            'drover_exporter_kube_errors_total{resource="nodes",kind="list_too_large"}') >= 4,
            20, "four refusals counted")
        hwm = status_kb(e.proc.pid, "VmHWM")
        times = f.times("nodes", "list")
        print("huge list: %d attempts, gaps %s s, exporter peak RSS %d kB (limit %d kB)" % (
            len(times), ["%.2f" % (b - a) for a, b in zip(times, times[1:])], hwm,
            LIST_RSS_LIMIT >> 10))
        self.assertLess(hwm * 1024, LIST_RSS_LIMIT, "the truncated body was parsed?")
        self.assert_backed_off(times[:5], "the node list")
        self.assertIn("over the 67108864-byte limit (--kube-list-max-bytes), not parsed", e.text())
        self.assertFalse(e.ready())

    def test_overlong_watch_line_relists_with_backoff(self):
        f = self.fake(nodes_watch="overlong")
        e = self.exporter_on(f)
        te.wait_until(lambda: len(f.times("nodes", "list")) >= 6, 60, "five relists of nodes")
        times = f.times("nodes", "list")
        print("over-long watch line: node lists at %s s" % ["%.2f" % (t - times[0]) for t in times])
        self.assert_backed_off(times[1:6], "the relist")
        self.assertGreaterEqual(e.metric('drover_exporter_relists_total{resource="nodes"}'), 4)
        self.assertIn("an event was lost (over-long line or out of memory), relisting in", e.text())
        # services were never affected: one list, one watch
        self.assertEqual(len(f.times("services", "list")), 1)

    def test_consul_down_leader_retries_jittered(self):
        # Consul unreachable: the session create is retried after a jittered,
        # growing backoff, not every second in lockstep with other replicas.
        f = self.fake()
        dead = te.drover_testlib.free_port()
        e = te.Exporter(self.tmp, None, self.cluster, "--consul-addr",
                        "http://127.0.0.1:%d" % dead, name="exp-noconsul",
                        kube_args=["--kube-api", "http://127.0.0.1:%d" % f.port])
        self.exporters.append(e)
        pat = re.compile(r"creating a Consul session for \S+ failed: .*, retrying in (\d+) ms")
        te.wait_until(lambda: len(pat.findall(e.text())) >= 5, 30, "five failed session creates")
        delays = [int(d) for d in pat.findall(e.text())]
        print("session create retries (ms): %s" % delays)
        self.assertTrue(all(500 <= d <= 10000 for d in delays), delays)
        self.assertGreater(len(set(delays)), 1, "retries in lockstep: %s" % delays)

    def test_oversized_label_isolated(self):
        k = te.Kube(os.path.join(self.tmp, "kube"), "default")
        self.kubes.append(k)
        k.ctl("label", {"kind": "Node", "name": "worker-1", "labels": {"big": "v" * 600000}})
        k.ctl("label", {"kind": "Node", "name": "worker-2", "labels": {"big": "small"}})
        e = te.Exporter(self.tmp, k, self.cluster, "--node-labels", "big", name="exp-label")
        self.exporters.append(e)
        nodes = "drover/v1/kube/%s/node-shards/" % self.cluster
        te.wait_until(lambda: e.metric("drover_exporter_last_sync_timestamp_seconds") > 0, 30,
                      "a complete round despite the refused entry")
        written = te.kv_values(nodes)
        self.assertTrue(any("/worker-2" in key for key in written), written.keys())
        self.assertFalse(any("/worker-1" in key for key in written),
                         "the 600 KB entry was written?")
        self.assertEqual(e.metric("drover_exporter_kv_refused_total"), 1)
        self.assertEqual(e.metric("drover_exporter_kv_refused_entries"), 1)
        self.assertTrue(e.ready(), "/readyz must not fail for one refused entry")
        self.assertRegex(e.text(), r"Consul refused KV entry \S*/worker-1 \(\d+-byte value\) "
                         r"as too large")
        # unrelated changes keep being written, and the refused value is not
        # sent again (no new refusal) while it stays the same
        k.ctl("label", {"kind": "Node", "name": "worker-2", "labels": {"big": "changed"}})
        te.wait_until(lambda: any('"changed"' in v for key, v in te.kv_values(nodes).items()
                                  if "/worker-2" in key), 20, "worker-2's new label written")
        self.assertEqual(e.metric("drover_exporter_kv_refused_total"), 1)
        # once the label is sane again, worker-1 is written
        k.ctl("label", {"kind": "Node", "name": "worker-1", "labels": {"big": "fine"}})
        te.wait_until(lambda: any("/worker-1" in key for key in te.kv_values(nodes)), 20,
                      "worker-1 written once its value fits")
        te.wait_until(lambda: e.metric("drover_exporter_kv_refused_entries") == 0, 10,
                      "no entry left refused")


if __name__ == "__main__":
    te.main()  # this script's test cases, against te's Consul agent
