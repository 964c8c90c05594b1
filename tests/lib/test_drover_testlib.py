#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The test library against the real things it talks to, so that a test
built on it fails for its own reason, never for the library's: a Consul dev
agent (the CTest fixture's, $DROVER_CONSUL_STATE, or a private one), a real
HAProxy in master-worker mode, the waiting rules and the command line the
shell harnesses use.

usage: test_drover_testlib.py [unittest args]"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import drover_testlib as t  # noqa: E402

DEV = None  # ConsulDev, set in main()
CLI = [sys.executable, os.path.join(t.LIB_DIR, "drover_testlib.py")]


class Waiting(unittest.TestCase):
    def test_wait_until_returns_the_value_and_names_what_on_timeout(self):
        n = []
        self.assertEqual(t.wait_until("three calls", lambda: n.append(1) or len(n) >= 3 and
                                      "done", 2, 0.01), "done")
        with self.assertRaisesRegex(AssertionError, r"waiting for the impossible \(last: 0\)"):
            t.wait_until("the impossible", lambda: 0, 0.1)

    def test_wait_until_retries_listed_exceptions_only(self):
        with self.assertRaisesRegex(AssertionError, "last exception: ConnectionRefusedError"):
            t.wait_until("a listener", lambda: socket.create_connection(
                ("127.0.0.1", t.free_port()), timeout=1), 0.2, retry_on=OSError)
        with self.assertRaises(ZeroDivisionError):
            t.wait_until("no retry", lambda: 1 / 0, 1)

    def test_hold_for_fails_at_the_first_false(self):
        self.assertTrue(t.hold_for("always", lambda: True, 0.1))
        n = []
        with self.assertRaisesRegex(AssertionError, "flaky did not hold"):
            t.hold_for("flaky", lambda: n.append(1) or len(n) < 3, 5, 0.01)
        self.assertEqual(len(n), 3)

    def test_free_ports_are_distinct_and_bindable(self):
        ports = t.free_ports(20, udp=True)
        self.assertEqual(len(set(ports)), 20)
        for p in ports[:3]:
            with socket.socket() as s:
                s.bind(("127.0.0.1", p))

    def test_free_port_never_repeats_in_one_process(self):
        # bind(2) to port 0 draws from about 14,000 ports here: 3,000 draws
        # without the record of ports handed out repeat about 300 times
        ports = [t.free_port() for _ in range(3000)] + t.free_ports(10)
        self.assertEqual(len(set(ports)), len(ports))

    def test_proc_stat_fields(self):
        fields = t.proc_stat_fields(os.getpid())
        self.assertEqual(fields[0], "R")  # this process, reading
        self.assertEqual(int(fields[1]), os.getppid())
        with self.assertRaises(OSError):
            t.proc_stat_fields("no-such-pid")

    def test_metrics(self):
        samples = t.parse_metrics('# HELP x\nx_total 3\ny{a="1",b="2"} 4.5\ny{a="2"} 1\n')
        self.assertEqual(samples["x_total"], 3)
        self.assertEqual(samples[t.metric_key("y", {"a": "1", "b": "2"})], 4.5)
        self.assertEqual(t.metric_sum(samples, "y"), 5.5)
        self.assertEqual(t.metric_sum(samples, "y", a="2"), 1)


class ConsulKV(unittest.TestCase):
    def setUp(self):
        self.kv = DEV.client("testlib-%d/" % os.getpid())
        self.kv.delete_tree()

    def tearDown(self):
        self.kv.delete_tree()

    def test_put_get_json_bytes_and_absent(self):
        self.kv.put("a/json", {"x": [1, 2]})
        self.kv.put("a/text", "plain")
        self.kv.put("a/raw", b"\x00\xff")
        self.assertEqual(self.kv.get_json("a/json"), {"x": [1, 2]})
        self.assertEqual(self.kv.get("a/text"), b"plain")
        self.assertEqual(self.kv.get("a/raw"), b"\x00\xff")
        self.assertIsNone(self.kv.get("a/none"))
        self.assertEqual(self.kv.dump("nothing/"), {})
        self.assertEqual(sorted(self.kv.keys("a/")), ["a/json", "a/raw", "a/text"])
        self.assertEqual(self.kv.values("a/t"), {"a/text": "plain"})

    def test_cas_and_delete(self):
        self.assertTrue(self.kv.put("k", "1", cas=0))
        self.assertFalse(self.kv.put("k", "2", cas=0))  # exists already
        e, _ = self.kv.entry("k")
        self.assertFalse(self.kv.put("k", "2", cas=e["ModifyIndex"] + 1000))
        self.assertTrue(self.kv.put("k", "2", cas=e["ModifyIndex"]))
        self.assertEqual(self.kv.get("k"), b"2")
        self.kv.delete("k")
        self.assertIsNone(self.kv.get("k"))

    def test_txn_set_batches_past_consuls_limit(self):
        self.kv.txn_set([("t/%03d" % i, {"i": i}) for i in range(150)])
        d = self.kv.dump("t/")
        self.assertEqual(len(d), 150)
        self.assertEqual(self.kv.get_json("t/149"), {"i": 149})

    def test_blocking_read_returns_on_change(self):
        self.kv.put("b", "old")
        _, index = self.kv.entry("b")
        threading.Timer(0.3, lambda: self.kv.put("b", "new")).start()
        t0 = time.monotonic()
        e, index2 = self.kv.entry("b", index=index, wait="10s", timeout=15)
        self.assertEqual(e["Value"], b"new")
        self.assertGreater(index2, index)
        self.assertLess(time.monotonic() - t0, 5)

    def test_a_404_without_consuls_index_is_an_error(self):
        class NotConsul(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass
        srv = ThreadingHTTPServer(("127.0.0.1", 0), NotConsul)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        try:
            other = t.Consul("http://127.0.0.1:%d" % srv.server_address[1])
            with self.assertRaisesRegex(AssertionError, "without X-Consul-Index"):
                other.dump("x/")
        finally:
            srv.shutdown()
            srv.server_close()

    def test_cli_dump(self):
        self.kv.put("d/1", "one")
        out = subprocess.run(CLI + ["consul-dump", DEV.addr, self.kv.root], check=True,
                             capture_output=True, text=True, timeout=30).stdout
        self.assertEqual(out, self.kv.root + "d/1=one\n")


@unittest.skipUnless(shutil.which("haproxy"), "haproxy not installed")
class HAProxySockets(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="drover-testlib-")
        self.sock = os.path.join(self.work, "stats.sock")
        self.master = os.path.join(self.work, "master.sock")
        self.srv = t.serve_http("127.0.0.1", 0, b"hi\n")
        cfg = os.path.join(self.work, "h.cfg")
        with open(cfg, "w") as f:
            f.write("global\n    stats socket %s mode 600 level admin\n"
                    "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n"
                    "    timeout server 5s\n"
                    "frontend fe\n    bind 127.0.0.1:%d\n    default_backend be\n"
                    "backend be\n    server s1 127.0.0.1:%d\n    server s2 127.0.0.1:1 disabled\n"
                    % (self.sock, t.free_port(), self.srv.server_address[1]))
        self.hap = t.HAProxy(cfg, os.path.join(self.work, "h.log"), master=self.master,
                             sock=self.sock).start()

    def tearDown(self):
        self.hap.stop()
        self.srv.shutdown()
        self.srv.server_close()
        shutil.rmtree(self.work, ignore_errors=True)

    def test_stat_servers_state_and_reloads(self):
        self.assertEqual(t.haproxy_stat_row(self.sock, "fe", "FRONTEND")["status"], "OPEN")
        self.assertIsNone(t.haproxy_stat_row(self.sock, "be", "nope"))
        st = t.haproxy_servers_state(self.sock, "be")
        self.assertEqual(sorted(st), ["s1", "s2"])
        self.assertEqual(st["s1"]["srv_addr"], "127.0.0.1")
        self.assertTrue(int(st["s2"]["srv_admin_state"]) & 0x01)  # disabled: maintenance
        t.haproxy_cmd(self.sock, "set server be/s2 state ready")
        self.assertFalse(int(t.haproxy_servers_state(self.sock, "be")["s2"]["srv_admin_state"])
                         & 0x01)
        n = t.haproxy_master_reloads(self.master)
        t.haproxy_cmd(self.master, "reload")
        t.wait_until("the reload counted", lambda: t.haproxy_master_reloads(self.master) == n + 1,
                     10)
        out = subprocess.run(CLI + ["haproxy-servers", self.sock, "be"], check=True,
                             capture_output=True, text=True, timeout=30).stdout.split("\n")
        self.assertTrue(out[0].startswith("s1 127.0.0.1:"), out)


def main():
    global DEV
    with t.consul_agent() as DEV:
        unittest.main(verbosity=2)


if __name__ == "__main__":
    main()
