#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Protocol tests for the Kubernetes API fixture, with raw HTTP.

Each test starts its own fixture (kube-fixture.py) in a temporary state
directory and talks to it with a small hand-written HTTP/1.1 client so that
the wire format itself is checked: chunk framing of watch streams, status
codes, headers, Status bodies. Waits are bounded reads, never sleeps.
"""

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from drover_testlib import http, stop_process, wait_until  # noqa: E402

FIXTURE = os.path.join(HERE, "kube-fixture.py")
READ_TIMEOUT = 10.0


class Fixture:
    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="kube-fixture-test.")
        with open(os.path.join(self.dir, "fixture.log"), "w") as logf:
            self.proc = subprocess.Popen(
                [sys.executable, FIXTURE, "--state-dir", self.dir, *args],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=logf)
        try:
            # the fixture writes addr last; an exit ends the wait at once
            wait_until("fixture addr file", lambda: os.path.exists(self.file("addr")) or
                       self.proc.poll() is not None, 15, 0.02)
            if self.proc.poll() is not None:
                raise AssertionError("fixture exited with %d" % self.proc.returncode)
        except AssertionError as e:
            self.close()
            raise RuntimeError("fixture did not start: %s" % e) from None
        url = urllib.parse.urlsplit(self.read("addr"))
        self.tls = url.scheme == "https"
        self.port = url.port
        self.control = self.read("control")
        self.ctx = None
        if self.tls:
            self.ctx = ssl.create_default_context(cafile=self.file("ca.crt"))

    def file(self, name):
        return os.path.join(self.dir, name)

    def read(self, name):
        with open(self.file(name)) as f:
            return f.read().strip()

    def token(self):
        return self.read("token")

    def close(self):
        stop_process(self.proc, timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- control
    def ctl(self, op, body=None, expect=200):
        code, data, _ = http("POST", "%s/v1/%s" % (self.control, op), body or {},
                             {"Content-Type": "application/json"}, timeout=60)
        if code != expect:
            raise AssertionError("control %s: %d %s" % (op, code, data))
        return json.loads(data)

    def ctl_get(self, path):
        code, data, _ = http("GET", "%s/v1/%s" % (self.control, path), timeout=60)
        if code != 200:
            raise AssertionError("control GET %s: %d %s" % (path, code, data))
        return json.loads(data)

    # ---- raw API access
    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port),
                                     timeout=READ_TIMEOUT)
        if self.tls:
            s = self.ctx.wrap_socket(s, server_hostname="127.0.0.1")
        return s

    def request(self, path, token=True, accept="application/json"):
        """One GET on a fresh connection; returns a Response (not read)."""
        s = self.connect()
        hdrs = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % self.port,
                "Accept: %s" % accept, "User-Agent: drover-fixture-test"]
        if token is True:
            token = self.token()
        if token:
            hdrs.append("Authorization: Bearer %s" % token)
        s.sendall(("\r\n".join(hdrs) + "\r\n\r\n").encode())
        return Response(s)

    def get(self, path, **kw):
        r = self.request(path, **kw)
        body = r.read_body()
        r.close()
        return r.status, r.headers, json.loads(body) if body.strip() else None


class Response:
    """Minimal HTTP/1.1 response reader that exposes chunk framing."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        line = self._line()
        parts = line.split(" ", 2)
        self.status = int(parts[1])
        self.headers = {}
        while True:
            line = self._line()
            if not line:
                break
            k, v = line.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
        self.pending = b""  # chunk data not yet split into lines
        self.ended = False  # saw the terminating chunk

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_chunk(self):
        size = int(self._line().split(";")[0], 16)
        data = self._exact(size)
        if self._exact(2) != b"\r\n":
            raise ValueError("chunk not followed by CRLF")
        return data

    def read_body(self):
        if self.headers.get("transfer-encoding") == "chunked":
            out = b""
            while True:
                c = self.read_chunk()
                if not c:
                    return out
                out += c
        return self._exact(int(self.headers.get("content-length", 0)))

    def next_event(self, timeout=READ_TIMEOUT):
        """Next watch event; None once the stream ended cleanly; raises
        EOFError if the connection closed without the terminating chunk."""
        self.sock.settimeout(timeout)
        while b"\n" not in self.pending:
            if self.ended:
                return None
            c = self.read_chunk()
            if not c:  # read_chunk consumed the final CRLF as well
                self.ended = True
                if self.pending:
                    raise ValueError("partial event at end of stream")
                return None
            self.pending += c
        line, self.pending = self.pending.split(b"\n", 1)
        return json.loads(line)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def svc(name, ns="default", **kw):
    return dict({"namespace": ns, "name": name, "type": "NodePort",
                 "ports": [{"name": "http", "port": 80}]}, **kw)


class FixtureTest(unittest.TestCase):
    args = ("--tls", "--seed", "empty")

    def setUp(self):
        self.fx = Fixture(*self.args)
        self.addCleanup(self.fx.close)

    def watch(self, path, **kw):
        r = self.fx.request(path, **kw)
        self.addCleanup(r.close)
        return r


class ListTest(FixtureTest):
    def test_service_list_shape(self):
        fx = self.fx
        fx.ctl("add_service", svc("web", type="LoadBalancer",
                                  externalTrafficPolicy="Local",
                                  ports=[{"name": "http", "port": 80},
                                         {"name": "https", "port": 443}]))
        code, hdrs, body = fx.get("/api/v1/services")
        self.assertEqual(code, 200)
        self.assertEqual(hdrs["content-type"], "application/json")
        self.assertEqual(body["kind"], "ServiceList")
        self.assertEqual(body["apiVersion"], "v1")
        state = fx.ctl_get("state")
        self.assertEqual(body["metadata"]["resourceVersion"],
                         state["resourceVersion"])
        item = body["items"][0]
        # Typed list items carry no kind/apiVersion, as from a real server.
        self.assertNotIn("kind", item)
        self.assertNotIn("apiVersion", item)
        m = item["metadata"]
        for k in ("name", "namespace", "uid", "resourceVersion",
                  "creationTimestamp", "annotations", "managedFields"):
            self.assertIn(k, m)
        s = item["spec"]
        self.assertEqual(s["type"], "LoadBalancer")
        self.assertEqual(s["externalTrafficPolicy"], "Local")
        self.assertTrue(30000 <= s["healthCheckNodePort"] <= 32767)
        self.assertEqual([p["name"] for p in s["ports"]], ["http", "https"])
        ports = {p["nodePort"] for p in s["ports"]}
        self.assertEqual(len(ports | {s["healthCheckNodePort"]}), 3)
        for k in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy",
                  "sessionAffinity", "internalTrafficPolicy",
                  "allocateLoadBalancerNodePorts", "selector"):
            self.assertIn(k, s)
        self.assertEqual(item["status"], {"loadBalancer": {}})

    def test_node_shape_and_single_get(self):
        fx = self.fx
        fx.ctl("add_node", {"name": "n1", "ip": "10.0.0.5",
                            "ipv6": "fd00::5"})
        code, _, node = fx.get("/api/v1/nodes/n1")
        self.assertEqual(code, 200)
        self.assertEqual((node["kind"], node["apiVersion"]), ("Node", "v1"))
        addrs = node["status"]["addresses"]
        self.assertEqual([a["address"] for a in addrs
                          if a["type"] == "InternalIP"],
                         ["10.0.0.5", "fd00::5"])
        conds = {c["type"]: c for c in node["status"]["conditions"]}
        self.assertEqual(set(conds), {"Ready", "MemoryPressure",
                                      "DiskPressure", "PIDPressure",
                                      "NetworkUnavailable"})
        self.assertEqual(conds["Ready"]["status"], "True")
        for k in ("lastHeartbeatTime", "lastTransitionTime", "reason",
                  "message"):
            self.assertIn(k, conds["Ready"])
        self.assertEqual(node["status"]["daemonEndpoints"],
                         {"kubeletEndpoint": {"Port": 10250}})
        self.assertIn("podCIDRs", node["spec"])
        self.assertNotIn("unschedulable", node["spec"])
        code, _, st = fx.get("/api/v1/nodes/nope")
        self.assertEqual(code, 404)
        self.assertEqual((st["kind"], st["reason"], st["code"]),
                         ("Status", "NotFound", 404))
        self.assertEqual(st["details"], {"name": "nope", "kind": "nodes"})

    def test_namespaced_paths(self):
        fx = self.fx
        fx.ctl("add_service", svc("a", ns="one"))
        fx.ctl("add_service", svc("b", ns="two"))
        _, _, body = fx.get("/api/v1/namespaces/two/services")
        self.assertEqual([i["metadata"]["name"] for i in body["items"]],
                         ["b"])
        code, _, one = fx.get("/api/v1/namespaces/one/services/a")
        self.assertEqual((code, one["kind"]), (200, "Service"))
        code, _, _ = fx.get("/api/v1/namespaces/one/services/b")
        self.assertEqual(code, 404)
        code, _, st = fx.get("/api/v1/pods")
        self.assertEqual((code, st["reason"]), (404, "NotFound"))

    def test_pagination_is_a_consistent_snapshot(self):
        fx = self.fx
        for i in range(7):
            fx.ctl("add_service", svc("s%d" % i))
        code, _, p1 = fx.get("/api/v1/services?limit=3")
        self.assertEqual(code, 200)
        rv = p1["metadata"]["resourceVersion"]
        self.assertEqual(p1["metadata"]["remainingItemCount"], 4)
        # Changes after the first page must not show in later pages.
        fx.ctl("delete_service", {"name": "s5"})
        fx.ctl("add_service", svc("s9"))
        names = [i["metadata"]["name"] for i in p1["items"]]
        cont = p1["metadata"]["continue"]
        while cont:
            code, _, p = fx.get("/api/v1/services?limit=3&continue="
                                + urllib.parse.quote(cont))
            self.assertEqual(code, 200)
            self.assertEqual(p["metadata"]["resourceVersion"], rv)
            names += [i["metadata"]["name"] for i in p["items"]]
            cont = p["metadata"].get("continue")
        self.assertEqual(names, ["s%d" % i for i in range(7)])
        _, _, now = fx.get("/api/v1/services")
        self.assertEqual([i["metadata"]["name"] for i in now["items"]],
                         ["s0", "s1", "s2", "s3", "s4", "s6", "s9"])

    def test_continue_expiry(self):
        fx = self.fx
        for i in range(4):
            fx.ctl("add_service", svc("s%d" % i))
        _, _, p1 = fx.get("/api/v1/services?limit=2")
        cont = urllib.parse.quote(p1["metadata"]["continue"])
        fx.ctl("expire_continue")
        code, _, st = fx.get("/api/v1/services?limit=2&continue=" + cont)
        self.assertEqual(code, 410)
        self.assertEqual(st, {"kind": "Status", "apiVersion": "v1",
                              "metadata": {}, "status": "Failure",
                              "message": st["message"], "reason": "Expired",
                              "code": 410})
        # Time-based expiry: a TTL of 0 expires every token at once.
        _, _, p1 = fx.get("/api/v1/services?limit=2")
        fx.ctl("set", {"continue_ttl": 0})
        code, _, st = fx.get("/api/v1/services?limit=2&continue="
                             + urllib.parse.quote(p1["metadata"]["continue"]))
        self.assertEqual((code, st["reason"]), (410, "Expired"))
        # Compaction past the token's revision expires it too.
        fx.ctl("set", {"continue_ttl": 300})
        _, _, p1 = fx.get("/api/v1/services?limit=2")
        fx.ctl("add_service", svc("later"))
        fx.ctl("compact")
        code, _, st = fx.get("/api/v1/services?limit=2&continue="
                             + urllib.parse.quote(p1["metadata"]["continue"]))
        self.assertEqual(code, 410)
        code, _, st = fx.get("/api/v1/services?continue=garbage")
        self.assertEqual((code, st["reason"]), (400, "BadRequest"))

    def test_resource_version_semantics(self):
        fx = self.fx
        fx.ctl("add_service", svc("a"))
        _, _, l1 = fx.get("/api/v1/services")
        rv1 = l1["metadata"]["resourceVersion"]
        fx.ctl("add_service", svc("b"))
        # Exact: the list as of rv1.
        _, _, ex = fx.get("/api/v1/services?resourceVersion=%s"
                          "&resourceVersionMatch=Exact" % rv1)
        self.assertEqual(ex["metadata"]["resourceVersion"], rv1)
        self.assertEqual(len(ex["items"]), 1)
        # NotOlderThan: anything at least as new, here the latest.
        _, _, nt = fx.get("/api/v1/services?resourceVersion=%s"
                          "&resourceVersionMatch=NotOlderThan" % rv1)
        self.assertEqual(len(nt["items"]), 2)
        self.assertGreater(int(nt["metadata"]["resourceVersion"]), int(rv1))
        # Too new: 504 Timeout with a ResourceVersionTooLarge cause.
        code, _, st = fx.get("/api/v1/services?resourceVersion=999999")
        self.assertEqual((code, st["reason"]), (504, "Timeout"))
        # Compacted: 410.
        fx.ctl("compact")
        code, _, st = fx.get("/api/v1/services?resourceVersion=%s"
                             "&resourceVersionMatch=Exact" % rv1)
        self.assertEqual((code, st["reason"]), (410, "Expired"))
        # resourceVersion=0 is served from the cache and ignores limit.
        _, _, z = fx.get("/api/v1/services?resourceVersion=0&limit=1")
        self.assertEqual(len(z["items"]), 2)
        self.assertNotIn("continue", z["metadata"])

    def test_scale_nodes(self):
        fx = self.fx
        r = fx.ctl("scale_nodes", {"prefix": "pool", "count": 3,
                                   "node": {"labels": {"pool": "a"}}})
        self.assertEqual(r["added"], ["pool-1", "pool-2", "pool-3"])
        r = fx.ctl("scale_nodes", {"prefix": "pool", "count": 1})
        self.assertEqual(r, {"added": [], "deleted": ["pool-3", "pool-2"]})
        _, _, nodes = fx.get("/api/v1/nodes?labelSelector=pool%3Da")
        self.assertEqual([n["metadata"]["name"] for n in nodes["items"]],
                         ["pool-1"])

    def test_global_resource_version(self):
        fx = self.fx
        fx.ctl("add_service", svc("a"))
        n = fx.ctl("add_node", {"name": "n1"})
        s = fx.ctl("add_service", svc("b"))
        rvs = [int(n["metadata"]["resourceVersion"]),
               int(s["metadata"]["resourceVersion"])]
        self.assertLess(rvs[0], rvs[1])
        bumped = int(fx.ctl("bump_rv", {"count": 5})["resourceVersion"])
        self.assertEqual(bumped, rvs[1] + 5)
        _, _, nodes = fx.get("/api/v1/nodes")
        self.assertEqual(nodes["metadata"]["resourceVersion"], str(bumped))

    def test_selectors(self):
        fx = self.fx
        fx.ctl("add_service", svc("a", labels={"tier": "web"}))
        fx.ctl("add_service", svc("b", labels={"tier": "db"}))
        fx.ctl("add_service", svc("c"))
        cases = {"tier=web": ["a"], "tier!=web": ["b", "c"],
                 "tier in (web,db)": ["a", "b"], "!tier": ["c"],
                 "tier": ["a", "b"], "tier notin (web)": ["b", "c"]}
        for sel, want in cases.items():
            _, _, body = fx.get("/api/v1/services?labelSelector="
                                + urllib.parse.quote(sel))
            self.assertEqual([i["metadata"]["name"] for i in body["items"]],
                             want, sel)
        _, _, body = fx.get("/api/v1/services?fieldSelector="
                            + urllib.parse.quote("metadata.name=b"))
        self.assertEqual([i["metadata"]["name"] for i in body["items"]],
                         ["b"])
        code, _, st = fx.get("/api/v1/services?fieldSelector=spec.nope%3Dx")
        self.assertEqual((code, st["reason"]), (400, "BadRequest"))

    def test_table_and_discovery(self):
        fx = self.fx
        fx.ctl("add_service", svc("web"))
        table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        _, _, t = fx.get("/api/v1/services", accept=table)
        self.assertEqual((t["kind"], t["apiVersion"]),
                         ("Table", "meta.k8s.io/v1"))
        self.assertEqual(t["columnDefinitions"][0]["name"], "Name")
        self.assertEqual(t["rows"][0]["cells"][0], "web")
        self.assertEqual(t["rows"][0]["object"]["kind"],
                         "PartialObjectMetadata")
        _, _, v = fx.get("/version", token=None)
        self.assertEqual(v["major"], "1")
        _, _, apis = fx.get("/api")
        self.assertEqual(apis["versions"], ["v1"])
        code, hdrs, agg = fx.get("/api", accept=(
            "application/json;g=apidiscovery.k8s.io;v=v2;"
            "as=APIGroupDiscoveryList,application/json"))
        self.assertIn("as=APIGroupDiscoveryList", hdrs["content-type"])
        res = {r["resource"] for r in agg["items"][0]["versions"][0][
            "resources"]}
        self.assertEqual(res, {"services", "nodes"})
        _, _, rl = fx.get("/api/v1")
        self.assertEqual(rl["kind"], "APIResourceList")


class ControlOpsTest(FixtureTest):
    def test_apply_patch_update(self):
        fx = self.fx
        obj = {"kind": "Service", "apiVersion": "v1",
               "metadata": {"name": "raw", "namespace": "x",
                            "annotations": {"a": "1"}},
               "spec": {"type": "NodePort", "clusterIP": "10.96.9.9",
                        "ports": [{"port": 80, "nodePort": 31000,
                                   "protocol": "TCP", "targetPort": 80}]},
               "status": {"loadBalancer": {}}}
        made = fx.ctl("apply", obj)
        for k in ("uid", "resourceVersion", "creationTimestamp"):
            self.assertIn(k, made["metadata"])
        code, _, got = fx.get("/api/v1/namespaces/x/services/raw")
        self.assertEqual(got["spec"], obj["spec"])
        patched = fx.ctl("patch", {"kind": "Service", "namespace": "x",
                                   "name": "raw", "patch": {
                                       "metadata": {"annotations": {
                                           "a": None, "b": "2"}}}})
        self.assertEqual(patched["metadata"]["annotations"], {"b": "2"})
        self.assertEqual(patched["metadata"]["uid"], made["metadata"]["uid"])
        self.assertGreater(int(patched["metadata"]["resourceVersion"]),
                           int(made["metadata"]["resourceVersion"]))
        # update_service keeps node ports for ports that stay.
        first = fx.ctl("add_service", svc("web", ports=[80, 443]))
        nps = {p["port"]: p["nodePort"] for p in first["spec"]["ports"]}
        upd = fx.ctl("update_service", svc("web", ports=[80, 8443]))
        nps2 = {p["port"]: p["nodePort"] for p in upd["spec"]["ports"]}
        self.assertEqual(nps2[80], nps[80])
        self.assertNotIn(nps2[8443], nps.values())
        fx.ctl("delete_service", {"name": "nope"}, expect=404)
        fx.ctl("apply", {"kind": "Pod", "metadata": {"name": "p"}},
               expect=400)

    def test_seed_file(self):
        seed = os.path.join(self.fx.dir, "seed.json")
        with open(seed, "w") as f:
            json.dump({"services": [svc("from-spec", ns="a")], "nodes": [
                {"kind": "Node", "apiVersion": "v1",
                 "metadata": {"name": "raw-node"},
                 "spec": {}, "status": {"addresses": [
                     {"type": "InternalIP", "address": "10.1.1.1"}]}}]}, f)
        other = Fixture("--seed", seed)
        self.addCleanup(other.close)
        _, _, svcs = other.get("/api/v1/services")
        self.assertEqual([i["metadata"]["name"] for i in svcs["items"]],
                         ["from-spec"])
        _, _, node = other.get("/api/v1/nodes/raw-node")
        self.assertEqual(node["status"]["addresses"][0]["address"],
                         "10.1.1.1")

    def test_node_not_ready_unknown_and_heartbeat(self):
        fx = self.fx
        fx.ctl("add_node", {"name": "n"})
        n = fx.ctl("set_node_ready", {"name": "n", "ready": "Unknown"})
        conds = {c["type"]: c for c in n["status"]["conditions"]}
        self.assertEqual(conds["Ready"]["status"], "Unknown")
        self.assertEqual(conds["Ready"]["reason"], "NodeStatusUnknown")
        self.assertIn("node.kubernetes.io/unreachable",
                      [t["key"] for t in n["spec"]["taints"]])
        back = fx.ctl("set_node_ready", {"name": "n", "ready": True})
        self.assertNotIn("taints", back["spec"])
        before = fx.get("/api/v1/nodes/n")[2]
        fx.ctl("heartbeat", {"name": "n"})
        after = fx.get("/api/v1/nodes/n")[2]
        self.assertNotEqual(before["metadata"]["resourceVersion"],
                            after["metadata"]["resourceVersion"])
        self.assertEqual(before["spec"], after["spec"])
        strip = [dict(c, lastHeartbeatTime=None)
                 for c in before["status"]["conditions"]]
        self.assertEqual(strip, [dict(c, lastHeartbeatTime=None)
                                 for c in after["status"]["conditions"]])


class AuthTest(FixtureTest):
    def test_bad_and_missing_token(self):
        code, _, st = self.fx.get("/api/v1/services", token="wrong")
        self.assertEqual(code, 401)
        self.assertEqual(st, {"kind": "Status", "apiVersion": "v1",
                              "metadata": {}, "status": "Failure",
                              "message": "Unauthorized",
                              "reason": "Unauthorized", "code": 401})
        code, _, _ = self.fx.get("/api/v1/services", token=None)
        self.assertEqual(code, 401)

    def test_rotation(self):
        fx = self.fx
        old = fx.token()
        new = fx.ctl("rotate_token")["token"]
        self.assertNotEqual(old, new)
        self.assertEqual(fx.token(), new)  # the token file was rewritten
        self.assertEqual(fx.get("/api/v1/nodes", token=old)[0], 401)
        self.assertEqual(fx.get("/api/v1/nodes", token=new)[0], 200)
        # With a grace period the old token keeps working (bound tokens).
        newer = fx.ctl("rotate_token", {"keep_old_seconds": 600})["token"]
        self.assertEqual(fx.get("/api/v1/nodes", token=new)[0], 200)
        self.assertEqual(fx.get("/api/v1/nodes", token=newer)[0], 200)
        reqs = fx.ctl_get("requests")
        self.assertEqual([r["auth"] for r in reqs][-4:],
                         ["invalid", "bearer", "bearer", "bearer"])


    def test_token_file_rewritten_by_a_test(self):
        fx = self.fx
        old = fx.token()
        with open(fx.file("token.new"), "w") as f:
            f.write("rewritten-by-test\n")
        os.replace(fx.file("token.new"), fx.file("token"))
        self.assertEqual(fx.get("/api/v1/nodes", token=old)[0], 401)
        self.assertEqual(fx.get("/api/v1/nodes",
                                token="rewritten-by-test")[0], 200)


class FaultTest(FixtureTest):
    def test_429_and_500(self):
        fx = self.fx
        fx.ctl("fail", {"status": 429, "count": 2, "retry_after": 3})
        for _ in range(2):
            code, hdrs, st = fx.get("/api/v1/services")
            self.assertEqual(code, 429)
            self.assertEqual(hdrs["retry-after"], "3")
            self.assertEqual(st["reason"], "TooManyRequests")
            self.assertEqual(st["details"]["retryAfterSeconds"], 3)
        self.assertEqual(fx.get("/api/v1/services")[0], 200)
        fx.ctl("fail", {"status": 500, "count": 1, "watch": True})
        self.assertEqual(fx.get("/api/v1/services")[0], 200)  # not a watch
        code, _, st = fx.get("/api/v1/services?watch=1&timeoutSeconds=1")
        self.assertEqual((code, st["reason"]), (500, "InternalError"))

    def test_request_log(self):
        fx = self.fx
        seq = fx.ctl_get("state")["requests"]
        fx.get("/api/v1/services?limit=5")
        r = fx.ctl("wait_request", {"since": seq, "path": "/api/v1/services",
                                    "query": {"limit": "5"}, "timeout": 5})
        self.assertEqual((r["status"], r["watch"]), (200, False))
        fx.ctl("wait_request", {"since": r["seq"], "path": "/api/v1/nodes",
                                "timeout": 0.2}, expect=408)


class WatchTest(FixtureTest):
    def test_events_in_order(self):
        fx = self.fx
        _, _, l = fx.get("/api/v1/services")
        rv = l["metadata"]["resourceVersion"]
        w = self.watch("/api/v1/services?watch=1&resourceVersion=%s"
                       "&timeoutSeconds=30" % rv)
        self.assertEqual(w.status, 200)
        self.assertEqual(w.headers["transfer-encoding"], "chunked")
        fx.ctl("add_service", svc("a"))
        fx.ctl("annotate", {"namespace": "default", "name": "a",
                            "annotations": {"drover.io/exported": "true"}})
        fx.ctl("delete_service", {"name": "a"})
        evs = [w.next_event() for _ in range(3)]
        self.assertEqual([e["type"] for e in evs],
                         ["ADDED", "MODIFIED", "DELETED"])
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in evs]
        self.assertEqual(rvs, sorted(set(rvs)))
        self.assertGreater(rvs[0], int(rv))
        for e in evs:
            self.assertEqual(e["object"]["kind"], "Service")
            self.assertEqual(e["object"]["apiVersion"], "v1")
        self.assertEqual(evs[1]["object"]["metadata"]["annotations"][
            "drover.io/exported"], "true")

    def test_replay_from_resource_version(self):
        fx = self.fx
        a = fx.ctl("add_service", svc("a"))
        rv = a["metadata"]["resourceVersion"]
        fx.ctl("add_service", svc("b"))
        fx.ctl("add_node", {"name": "n1"})  # other kind: not in the stream
        fx.ctl("delete_service", {"name": "a"})
        w = self.watch("/api/v1/services?watch=true&resourceVersion=%s" % rv)
        evs = [w.next_event() for _ in range(2)]
        self.assertEqual([(e["type"], e["object"]["metadata"]["name"])
                          for e in evs], [("ADDED", "b"), ("DELETED", "a")])

    def test_without_resource_version_starts_with_state(self):
        fx = self.fx
        fx.ctl("add_node", {"name": "n1"})
        fx.ctl("add_node", {"name": "n2"})
        w = self.watch("/api/v1/nodes?watch=1")
        evs = [w.next_event() for _ in range(2)]
        self.assertEqual([(e["type"], e["object"]["metadata"]["name"])
                          for e in evs], [("ADDED", "n1"), ("ADDED", "n2")])
        fx.ctl("set_node_ready", {"name": "n2", "ready": False})
        e = w.next_event()
        self.assertEqual(e["type"], "MODIFIED")
        conds = {c["type"]: c for c in e["object"]["status"]["conditions"]}
        self.assertEqual(conds["Ready"]["status"], "False")
        taints = [t["key"] for t in e["object"]["spec"]["taints"]]
        self.assertIn("node.kubernetes.io/not-ready", taints)
        fx.ctl("cordon", {"name": "n1"})
        e = w.next_event()
        self.assertTrue(e["object"]["spec"]["unschedulable"])

    def test_bookmarks(self):
        fx = self.fx
        _, _, l = fx.get("/api/v1/services")
        rv = l["metadata"]["resourceVersion"]
        plain = self.watch("/api/v1/services?watch=1&resourceVersion=%s" % rv)
        w = self.watch("/api/v1/services?watch=1&resourceVersion=%s"
                       "&allowWatchBookmarks=true" % rv)
        fx.ctl("wait_watchers", {"count": 2})
        bumped = fx.ctl("bump_rv", {"count": 3})["resourceVersion"]
        fx.ctl("send_bookmark")
        e = w.next_event()
        self.assertEqual(e, {"type": "BOOKMARK", "object": {
            "kind": "Service", "apiVersion": "v1",
            "metadata": {"resourceVersion": bumped,
                         "creationTimestamp": None},
            "spec": {}, "status": {"loadBalancer": {}}}})
        # Without allowWatchBookmarks no bookmark arrives: the next event
        # on that stream is the service added after the bookmark.
        fx.ctl("add_service", svc("a"))
        self.assertEqual(plain.next_event()["type"], "ADDED")
        self.assertEqual(w.next_event()["type"], "ADDED")
        # Periodic bookmarks at the configured interval.
        fx.ctl("set", {"bookmark_interval": 0.2})
        e = w.next_event()
        self.assertEqual(e["type"], "BOOKMARK")

    def test_send_initial_events(self):
        fx = self.fx
        fx.ctl("add_node", {"name": "n1"})
        w = self.watch("/api/v1/nodes?watch=1&sendInitialEvents=true"
                       "&allowWatchBookmarks=true"
                       "&resourceVersionMatch=NotOlderThan")
        self.assertEqual(w.next_event()["type"], "ADDED")
        bm = w.next_event()
        self.assertEqual(bm["type"], "BOOKMARK")
        self.assertEqual(bm["object"]["metadata"]["annotations"],
                         {"k8s.io/initial-events-end": "true"})

    def test_timeout_ends_stream_cleanly(self):
        w = self.watch("/api/v1/services?watch=1&resourceVersion=0"
                       "&timeoutSeconds=1")
        self.assertIsNone(w.next_event())
        self.assertTrue(w.ended)

    def test_label_selector_watch(self):
        fx = self.fx
        fx.ctl("add_service", svc("a", labels={"export": "yes"}))
        w = self.watch("/api/v1/services?watch=1&labelSelector=export%3Dyes")
        self.assertEqual(w.next_event()["type"], "ADDED")
        fx.ctl("add_service", svc("other"))
        fx.ctl("label", {"namespace": "default", "name": "a",
                         "labels": {"export": None}})
        e = w.next_event()
        # Leaving the selector looks like a deletion to the watcher.
        self.assertEqual((e["type"], e["object"]["metadata"]["name"]),
                         ("DELETED", "a"))

    def test_expired_resource_version_event(self):
        fx = self.fx
        a = fx.ctl("add_service", svc("a"))
        fx.ctl("add_service", svc("b"))
        fx.ctl("compact")
        w = self.watch("/api/v1/services?watch=1&resourceVersion=%s"
                       % a["metadata"]["resourceVersion"])
        self.assertEqual(w.status, 200)
        e = w.next_event()
        self.assertEqual(e["type"], "ERROR")
        st = e["object"]
        self.assertEqual((st["kind"], st["apiVersion"], st["status"],
                          st["reason"], st["code"]),
                         ("Status", "v1", "Failure", "Expired", 410))
        self.assertIn("too old resource version", st["message"])
        self.assertIsNone(w.next_event())  # stream ends after the error

    def test_expired_resource_version_http(self):
        fx = self.fx
        a = fx.ctl("add_service", svc("a"))
        fx.ctl("add_service", svc("b"))
        fx.ctl("compact")
        fx.ctl("set", {"watch_410_mode": "http"})
        code, _, st = fx.get("/api/v1/services?watch=1&resourceVersion=%s"
                             % a["metadata"]["resourceVersion"])
        self.assertEqual((code, st["reason"], st["code"]),
                         (410, "Expired", 410))

    def test_history_window(self):
        fx = self.fx
        fx.ctl("set", {"history": 3})
        a = fx.ctl("add_service", svc("a"))
        for i in range(5):
            fx.ctl("add_service", svc("x%d" % i))
        w = self.watch("/api/v1/services?watch=1&resourceVersion=%s"
                       % a["metadata"]["resourceVersion"])
        self.assertEqual(w.next_event()["type"], "ERROR")

    def test_forced_410_both_ways(self):
        fx = self.fx
        fx.ctl("force_410", {"mode": "http"})
        fx.ctl("force_410", {"mode": "event"})
        code, _, st = fx.get("/api/v1/services?watch=1&resourceVersion=0")
        self.assertEqual(code, 410)
        w = self.watch("/api/v1/services?watch=1&resourceVersion=0")
        self.assertEqual(w.next_event()["object"]["code"], 410)
        w2 = self.watch("/api/v1/services?watch=1&resourceVersion=0"
                        "&timeoutSeconds=1")
        self.assertIsNone(w2.next_event())  # queue used up: normal watch

    def test_drop_mid_stream(self):
        fx = self.fx
        w = self.watch("/api/v1/services?watch=1&timeoutSeconds=60")
        fx.ctl("add_service", svc("a"))
        self.assertEqual(w.next_event()["type"], "ADDED")
        self.assertEqual(fx.ctl("drop_watches")["dropped"], 1)
        with self.assertRaises(EOFError):
            w.next_event()  # no terminating chunk
        fx.ctl("wait_watchers", {"count": 0, "exact": True})

    def test_drop_cuts_an_event_in_half(self):
        fx = self.fx
        w = self.watch("/api/v1/services?watch=1&timeoutSeconds=60")
        fx.ctl("wait_watchers", {"count": 1})
        fx.ctl("drop_watches", {"partial": True})
        with self.assertRaises(EOFError):
            w.next_event()
        self.assertTrue(w.buf.startswith(b'{"type":"ADDED"'))

    def test_injected_watch_error(self):
        fx = self.fx
        w = self.watch("/api/v1/nodes?watch=1&timeoutSeconds=60")
        fx.ctl("wait_watchers", {"count": 1})
        fx.ctl("add_node", {"name": "n1"})
        fx.ctl("inject_watch_error", {"code": 500})
        evs = [w.next_event(), w.next_event()]
        self.assertEqual([e["type"] for e in evs], ["ADDED", "ERROR"])
        self.assertEqual((evs[1]["object"]["code"],
                          evs[1]["object"]["reason"]), (500, "InternalError"))
        self.assertIsNone(w.next_event())

    def test_stall(self):
        fx = self.fx
        w = self.watch("/api/v1/services?watch=1&timeoutSeconds=60"
                       "&allowWatchBookmarks=true")
        fx.ctl("wait_watchers", {"count": 1})
        fx.ctl("stall_watches", {"seconds": 30})
        fx.ctl("add_service", svc("a"))
        fx.ctl("send_bookmark")
        with self.assertRaises(TimeoutError):
            w.next_event(timeout=0.5)  # nothing arrives while stalled
        fx.ctl("stall_watches", {"seconds": 0})
        self.assertEqual(w.next_event()["type"], "ADDED")

    def test_client_close_is_noticed(self):
        fx = self.fx
        w = self.fx.request("/api/v1/services?watch=1&timeoutSeconds=60")
        fx.ctl("wait_watchers", {"count": 1})
        w.close()
        fx.ctl("wait_watchers", {"count": 0, "exact": True})

    def test_table_watch(self):
        fx = self.fx
        accept = "application/json;as=Table;v=v1;g=meta.k8s.io"
        w = self.watch("/api/v1/services?watch=1&resourceVersion=0",
                       accept=accept)
        fx.ctl("wait_watchers", {"count": 1})
        fx.ctl("add_service", svc("t"))
        e = w.next_event()
        self.assertEqual(e["object"]["kind"], "Table")
        self.assertEqual(e["object"]["rows"][0]["cells"][0], "t")


class RestartTest(FixtureTest):
    def test_restart_keeps_state(self):
        fx = self.fx
        a = fx.ctl("add_service", svc("a"))
        rv = a["metadata"]["resourceVersion"]
        w = self.watch("/api/v1/services?watch=1&resourceVersion=%s" % rv)
        fx.ctl("wait_watchers", {"count": 1})
        fx.ctl("restart", {"down_seconds": 0.5})
        with self.assertRaises((EOFError, ConnectionError, ssl.SSLError)):
            w.next_event()
        # Refused while down, then back on the same port with the same
        # objects and the same revision counter.
        refused = []

        def services():
            try:
                return fx.get("/api/v1/services")
            except OSError:
                refused.append(True)
                raise
        code, _, body = wait_until("the API back after the restart", services, 10,
                                   retry_on=OSError)
        self.assertTrue(refused)
        self.assertEqual(code, 200)
        self.assertEqual(body["items"][0]["metadata"]["uid"],
                         a["metadata"]["uid"])
        fx.ctl("add_service", svc("b"))
        w = self.watch("/api/v1/services?watch=1&resourceVersion=%s" % rv)
        e = w.next_event()
        self.assertEqual((e["type"], e["object"]["metadata"]["name"]),
                         ("ADDED", "b"))

    def test_restart_with_compaction(self):
        fx = self.fx
        a = fx.ctl("add_service", svc("a"))
        fx.ctl("add_service", svc("b"))
        fx.ctl("restart", {"down_seconds": 0, "compact": True})
        wait_until("the fixture up again", lambda: not fx.ctl_get("state")["down"], 10)
        w = self.watch("/api/v1/services?watch=1&resourceVersion=%s"
                       % a["metadata"]["resourceVersion"])
        self.assertEqual(w.next_event()["object"]["code"], 410)


class PlainHttpTest(FixtureTest):
    args = ("--seed", "default")

    def test_plain_http_default_seed(self):
        self.assertFalse(self.fx.tls)
        _, _, body = self.fx.get("/api/v1/services")
        names = [(i["metadata"]["namespace"], i["metadata"]["name"])
                 for i in body["items"]]
        self.assertEqual(names, [("default", "kubernetes"),
                                 ("kube-system", "kube-dns")])
        _, _, nodes = self.fx.get("/api/v1/nodes")
        self.assertEqual(len(nodes["items"]), 3)
        kc = self.fx.read("kubeconfig")
        self.assertIn("server: http://127.0.0.1:%d" % self.fx.port, kc)


if __name__ == "__main__":
    unittest.main(verbosity=2)
