# SPDX-License-Identifier: Apache-2.0
"""Helpers for tests that run the real drover-watcher against a real Consul
dev agent and a real HAProxy 2.6 (master-worker) on loopback: tiny HTTP
servers acting as NodePorts, Consul KV writes, HAProxy's stats and master
sockets, starting the watcher (with a $NOTIFY_SOCKET read like systemd
does) and HAProxy, polling, and cleanup.

Importing this module has no side effect. A test makes one Fleet (its temp
dir, ports and paths), sets what it wants different, starts what it needs
and calls Fleet.cleanup() in a finally block. Used by
tests/integration/watcher/test_watcher.py and
tests/integration/chatops/test_chatops.py."""

import base64
import http.server
import json
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from drover_testlib import free_port, wait_until  # noqa: E402

T0 = time.time()


def log(*a):
    print("[%6.2f]" % (time.time() - T0), *a, flush=True)


def wait_for(what, fn, timeout=15.0, interval=0.05):
    """wait_until, except that an exception from fn counts as "not yet"
    (a socket, file or endpoint the watcher has not made yet) and is named
    in the AssertionError if it was the last result."""
    err = []

    def attempt():
        try:
            err.clear()
            return fn()
        except Exception as e:  # noqa: BLE001 - reported below
            err.append(e)
            return None

    try:
        return wait_until(what, attempt, timeout, interval)
    except AssertionError as e:
        if err:
            raise AssertionError("%s; last exception: %r" % (e, err[0])) from None
        raise


def start_backends(addrs):
    """One HTTP server per "node" address, all on one free port (the
    NodePort); node i answers "node<i+1>". Returns (port, servers)."""
    while True:
        port = free_port()
        servers = []
        try:
            for i, a in enumerate(addrs):
                class H(http.server.BaseHTTPRequestHandler):
                    name = ("node%d\n" % (i + 1)).encode()

                    def do_GET(self):
                        self.send_response(200)
                        self.send_header("Content-Length", str(len(self.name)))
                        self.end_headers()
                        self.wfile.write(self.name)

                    def log_message(self, *args):
                        pass

                class Srv(socketserver.ThreadingTCPServer):
                    daemon_threads = True

                    def handle_error(self, request, client_address):
                        pass  # health checks hang up early; not our concern
                srv = Srv((a, port), H)
                threading.Thread(target=srv.serve_forever, daemon=True).start()
                servers.append(srv)
            return port, servers
        except OSError:
            for s in servers:
                s.shutdown()
                s.server_close()


def sock_cmd(path, cmd, timeout=5):
    """One command on a HAProxy stats or master socket; the whole answer."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(path)
    s.sendall((cmd + "\n").encode())
    s.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    return out.decode()


def node(addr, eligible=True):
    """A kube node value as the watcher reads it."""
    return {"addresses": [addr], "eligible": eligible}


class Fleet:
    """One test's watcher setup: temp dir, Consul state, ports and paths
    (the upper-case attributes; change them before starting anything)."""

    ROOT = "drover/v1/"

    def __init__(self, watcher, consul_dev, templates, prefix="drover-watcher-it."):
        self.WATCHER, self.CONSUL_DEV, self.TEMPLATES = watcher, consul_dev, templates
        self.work = tempfile.mkdtemp(prefix=prefix)
        self.consul_state = os.path.join(self.work, "consul")
        self.procs = []
        self.FE_PORT, self.METRICS_PORT, self.AGENT_PORT = free_port(), free_port(), free_port()
        self.NODE_PORT = None
        self.CFG = os.path.join(self.work, "cfg")
        self.TPL = os.path.join(self.work, "templates")
        self.MASTER = os.path.join(self.work, "master.sock")
        self.STATS = os.path.join(self.work, "stats.sock")
        self.AGENT = os.path.join(self.work, "agent.json")
        self.SNAP = os.path.join(self.work, "snap.pb")
        self.NOTIFY_PATH = os.path.join(self.work, "notify.sock")
        self.NOTIFY = None
        self.NOTIFY_MSGS = []
        self.watcher_args = ["--agent-interval", "300ms", "--wait-min", "300ms",
                             "--wait-max", "3s", "--resync-interval", "1s",
                             "--consul-wait", "10s", "--log-level", "debug"]

    # module helpers, reachable through the fleet object too
    log = staticmethod(log)
    wait_for = staticmethod(wait_for)
    free_port = staticmethod(free_port)
    start_backends = staticmethod(start_backends)
    sock_cmd = staticmethod(sock_cmd)
    node = staticmethod(node)

    @property
    def T0(self):
        return T0

    # ---- consul ----

    def consul(self, cmd):
        """consul-dev.sh start|kill|restart|stop on this fleet's agent."""
        subprocess.run([self.CONSUL_DEV, cmd, self.consul_state], check=True,
                       stdout=subprocess.DEVNULL)

    def consul_addr(self):
        with open(os.path.join(self.consul_state, "addr")) as f:
            return f.read().strip()

    def kv_put(self, key, value):
        data = value if isinstance(value, str) else json.dumps(value)
        req = urllib.request.Request(self.consul_addr() + "/v1/kv/" + self.ROOT + key,
                                     data=data.encode(), method="PUT")
        urllib.request.urlopen(req, timeout=5).read()

    def kv_txn_set(self, pairs):
        """Set several keys in one Consul transaction (one snapshot)."""
        ops = [{"KV": {"Verb": "set", "Key": self.ROOT + k,
                       "Value": base64.b64encode(json.dumps(v).encode()).decode()}}
               for k, v in pairs]
        req = urllib.request.Request(self.consul_addr() + "/v1/txn",
                                     data=json.dumps(ops).encode(), method="PUT")
        urllib.request.urlopen(req, timeout=5).read()

    def kv_delete(self, key):
        req = urllib.request.Request(self.consul_addr() + "/v1/kv/" + self.ROOT + key,
                                     method="DELETE")
        urllib.request.urlopen(req, timeout=5).read()

    # ---- haproxy ----

    def start_haproxy(self):
        """HAProxy in master-worker mode on the config dir."""
        hp = subprocess.Popen(["haproxy", "-W", "-S", self.MASTER, "-f", self.CFG],
                              stdout=open(os.path.join(self.work, "haproxy.log"), "ab"),
                              stderr=subprocess.STDOUT)
        self.procs.append(hp)
        return hp

    def servers_state(self, backend):
        """slot name -> (addr, port, op_state, admin_state)"""
        text = sock_cmd(self.STATS, "show servers state " + backend)
        lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")
                 and ln[0].isdigit()]
        header = None
        for ln in text.splitlines():
            if ln.startswith("# be_id"):
                header = ln[2:].split()
        out = {}
        for ln in lines[1:] if lines and lines[0].strip().isdigit() else lines:
            f = dict(zip(header, ln.split()))
            out[f["srv_name"]] = (f["srv_addr"], int(f["srv_port"]), int(f["srv_op_state"]),
                                  int(f["srv_admin_state"]))
        return out

    def master_reloads(self):
        # the master CLI refuses connections for a moment while it re-executes
        def once():
            for ln in sock_cmd(self.MASTER, "show proc").splitlines():
                if "master" in ln:
                    return str(int(ln.split()[2]))
            return None
        return int(wait_for("master CLI show proc", once, timeout=10))

    def get(self, path="/"):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.FE_PORT, path),
                                    timeout=5) as r:
            assert r.status == 200, r.status
            return r.read().decode()

    def requests_ok(self, n=6):
        seen = set()
        for _ in range(n):
            seen.add(self.get().strip())
        return seen

    # ---- watcher ----

    def metric(self, name):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.METRICS_PORT,
                                    timeout=5) as r:
            for ln in r.read().decode().splitlines():
                if ln.startswith(name + " ") or ln.startswith(name + "{"):
                    return float(ln.rsplit(" ", 1)[1])
        return 0.0

    def readyz(self):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % self.METRICS_PORT,
                                        timeout=2) as r:
                return r.status == 200
        except urllib.error.HTTPError:
            return False

    def service(self, slots=4, template="http", balance="roundrobin", maxconn=None):
        """Service "web": frontend fe_web on FE_PORT, backend be_web from
        kube prod-a default/web/http."""
        fe = {"name": "fe_web", "bind": ["127.0.0.1:%d" % self.FE_PORT],
              "default_backend": "be_web"}
        if maxconn:
            fe["maxconn"] = maxconn
        return {"template": template, "frontends": [fe],
                "backends": [{"name": "be_web", "balance": balance, "slots": slots,
                              "check": {"type": "http", "path": "/", "interval": "500ms"},
                              "kube": [{"cluster": "prod-a", "namespace": "default",
                                        "service": "web", "port": "http"}]}]}

    def copy_templates(self):
        shutil.copytree(self.TEMPLATES, self.TPL)

    def open_notify(self):
        """Bind $NOTIFY_SOCKET and drain it like systemd does: an unread
        datagram queue (10 deep) would block the watcher's sd_notify."""
        self.NOTIFY = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.NOTIFY.bind(self.NOTIFY_PATH)

        def reader(sock):
            while True:
                try:
                    d = sock.recv(4096)
                except OSError:
                    return
                if not d:
                    return  # shut down by cleanup()
                self.NOTIFY_MSGS.append(d.decode())
        threading.Thread(target=reader, args=(self.NOTIFY,), daemon=True).start()

    def start_watcher(self):
        """drover-watcher on this fleet (haproxy cluster edge, kube cluster
        prod-a), $NOTIFY_SOCKET + watchdog, log in <work>/watcher.log;
        returns once /metrics answers."""
        args = [self.WATCHER, "--consul-addr", self.consul_addr(), "--haproxy-cluster", "edge",
                "--kube-cluster", "prod-a", "--template-dir", self.TPL, "--config-dir", self.CFG,
                "--haproxy-master-socket", self.MASTER, "--haproxy-stats-socket", self.STATS,
                "--haproxy-state-file", os.path.join(self.work, "web.state"),
                "--agent-state-file", self.AGENT, "--snapshot-file", self.SNAP,
                "--metrics-addr", "127.0.0.1:%d" % self.METRICS_PORT, "--haproxy-maxconn", "500",
                "--agent-port", str(self.AGENT_PORT)] + self.watcher_args
        logf = open(os.path.join(self.work, "watcher.log"), "ab")
        env = dict(os.environ, NOTIFY_SOCKET=self.NOTIFY_PATH, WATCHDOG_USEC="1000000")
        p = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT, env=env)
        self.procs.append(p)
        wait_for("watcher metrics endpoint",
                 lambda: self.metric("drover_watcher_snapshots_total") >= 0)
        return p

    def cfg_text(self, name="web"):
        with open(os.path.join(self.CFG, name + ".cfg")) as f:
            return f.read()

    # ---- diagnostics and cleanup ----

    def dump_logs(self, files=("watcher.log", "haproxy.log"), lines=40):
        for f in files:
            p = os.path.join(self.work, f)
            if os.path.exists(p):
                print("---- last lines of", f)
                with open(p, errors="replace") as fh:
                    print("".join(fh.readlines()[-lines:]))

    def cleanup(self, stop_consul=True):
        """Stop every process started (newest first), the Consul agent
        unless told not to, close the notify socket, remove the temp dir."""
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if stop_consul:
            subprocess.run([self.CONSUL_DEV, "stop", self.consul_state],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.NOTIFY:
            # after the watcher is gone: its sd_notify calls need a reader
            try:
                self.NOTIFY.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.NOTIFY.close()
        shutil.rmtree(self.work, ignore_errors=True)
