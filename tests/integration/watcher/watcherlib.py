# SPDX-License-Identifier: Apache-2.0
"""The watcher's test setup on top of tests/lib/drover_testlib.py (Consul,
HAProxy sockets, waiting, processes): a Fleet that runs the real
drover-watcher against a real Consul dev agent and a real HAProxy 2.6
(master-worker) on loopback, with tiny HTTP servers acting as NodePorts,
the watcher's $NOTIFY_SOCKET read like systemd does, and cleanup.

Importing this module has no side effect. A test makes one Fleet (its temp
dir, ports and paths), sets what it wants different, starts what it needs
and calls Fleet.cleanup() in a finally block. Used by
tests/integration/watcher/test_watcher.py and
tests/integration/chatops/test_chatops.py."""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from drover_testlib import (KV_ROOT, T0, ConsulDev, HAProxy, NotifySocket, free_port,  # noqa: E402
                            haproxy_master_reloads, haproxy_servers_state, http, log, metric,
                            scrape, serve_http, stop_process, tail, wait_until)

def wait_for(what, fn, timeout=15.0, interval=0.05):
    """wait_until, except that an exception from fn counts as "not yet"
    (a socket, file or endpoint the watcher has not made yet) and is named
    in the AssertionError if it was the last result."""
    return wait_until(what, fn, timeout, interval, retry_on=Exception)


def start_backends(addrs):
    """One HTTP server per "node" address, all on one free port (the
    NodePort); node i answers "node<i+1>". Returns (port, servers)."""
    while True:
        port = free_port()
        servers = []
        try:
            for i, a in enumerate(addrs):
                servers.append(serve_http(a, port, ("node%d\n" % (i + 1)).encode()))
            return port, servers
        except OSError:
            for s in servers:
                s.shutdown()
                s.server_close()


def node(addr, eligible=True):
    """A kube node value as the watcher reads it."""
    return {"addresses": [addr], "eligible": eligible}


class Fleet:
    """One test's watcher setup: temp dir, Consul agent, ports and paths
    (the upper-case attributes; change them before starting anything)."""

    ROOT = KV_ROOT

    def __init__(self, watcher, consul_dev, templates, prefix="drover-watcher-it."):
        self.WATCHER, self.TEMPLATES = watcher, templates
        self.work = tempfile.mkdtemp(prefix=prefix)
        # a private agent (consul("start")) unless the test sets the CTest
        # fixture's: ConsulDev.from_env
        self.consul_dev = ConsulDev(os.path.join(self.work, "consul"), consul_dev)
        self.procs = []
        self.FE_PORT, self.METRICS_PORT, self.AGENT_PORT = free_port(), free_port(), free_port()
        self.NODE_PORT = None
        self.CFG = os.path.join(self.work, "cfg")
        self.TPL = os.path.join(self.work, "templates")
        self.MASTER = os.path.join(self.work, "master.sock")
        self.STATS = os.path.join(self.work, "stats.sock")
        self.AGENT = os.path.join(self.work, "agent.json")
        self.SNAP = os.path.join(self.work, "snap.pb")
        self.STATE = os.path.join(self.work, "web.state")  # "{service}" allowed
        self.NOTIFY_PATH = os.path.join(self.work, "notify.sock")
        self.NOTIFY = None  # NotifySocket, open_notify()
        self.HAPROXY_EXTRA = []  # config files start_haproxy loads after CFG
        self.watcher_args = ["--agent-interval", "300ms", "--wait-min", "300ms",
                             "--wait-max", "3s", "--resync-interval", "1s",
                             "--consul-wait", "10s", "--log-level", "debug"]

    # module helpers, reachable through the fleet object too
    log = staticmethod(log)
    wait_for = staticmethod(wait_for)
    free_port = staticmethod(free_port)
    start_backends = staticmethod(start_backends)
    node = staticmethod(node)

    @property
    def T0(self):
        return T0

    # ---- consul ----

    def consul(self, cmd):
        """start|kill|restart|stop this fleet's agent (consul-dev.sh)."""
        getattr(self.consul_dev, cmd)()

    def consul_addr(self):
        return self.consul_dev.addr

    @property
    def kv(self):
        """The agent's KV below ROOT (drover_testlib.Consul)."""
        return self.consul_dev.client(self.ROOT)

    # ---- haproxy ----

    def start_haproxy(self):
        """HAProxy in master-worker mode on the config dir (then the files
        in HAPROXY_EXTRA)."""
        hp = HAProxy(self.CFG, os.path.join(self.work, "haproxy.log"), master=self.MASTER,
                     extra=self.HAPROXY_EXTRA)
        self.procs.append(hp.start().proc)
        return hp

    def servers_state(self, backend):
        """slot name -> (addr, port, op_state, admin_state)"""
        return {name: (f["srv_addr"], int(f["srv_port"]), int(f["srv_op_state"]),
                       int(f["srv_admin_state"]))
                for name, f in haproxy_servers_state(self.STATS, backend).items()}

    def master_reloads(self):
        return haproxy_master_reloads(self.MASTER)

    def get(self, path="/"):
        st, body, _ = http("GET", "http://127.0.0.1:%d%s" % (self.FE_PORT, path), timeout=5)
        assert st == 200, st
        return body.decode()

    def requests_ok(self, n=6):
        seen = set()
        for _ in range(n):
            seen.add(self.get().strip())
        return seen

    # ---- watcher ----

    def metric(self, name):
        return metric(self.METRICS_PORT, name)

    def settled(self, what, key=None):
        """Wait until the watcher has read KV up to key's ModifyIndex (any
        index without key) and has nothing pending (drover_watcher_idle): a
        reload, render or runtime apply the change caused has happened by
        then, so "nothing happened" can be asserted without a sleep."""
        want = self.kv.entry(key)[0]["ModifyIndex"] if key else 0

        def done():
            s = scrape(self.METRICS_PORT)
            return s.get("drover_watcher_kv_index", 0) >= want and s.get("drover_watcher_idle") == 1
        wait_for("the watcher to settle after %s (KV index >= %d, idle)" % (what, want), done)

    def readyz(self):
        return http("GET", "http://127.0.0.1:%d/readyz" % self.METRICS_PORT, timeout=2)[0] == 200

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
        """Bind $NOTIFY_SOCKET and drain it like systemd does."""
        self.NOTIFY = NotifySocket(self.NOTIFY_PATH)

    def start_watcher(self):
        """drover-watcher on this fleet (haproxy cluster edge, kube cluster
        prod-a), $NOTIFY_SOCKET + watchdog, log in <work>/watcher.log;
        returns once /metrics answers. A watcher that exits fails at once,
        with its log; one that exits because another process took its
        metrics port between free_port() and its bind (it binds that port
        first, before it talks to Consul) is started again on a new port."""
        logpath = os.path.join(self.work, "watcher.log")
        for _ in range(3):
            since = os.path.getsize(logpath) if os.path.exists(logpath) else 0
            p = self._spawn_watcher(logpath)

            def up():
                if p.poll() is not None:
                    return "exited"
                return self.metric("drover_watcher_snapshots_total") >= 0 and "up"
            if wait_for("watcher metrics endpoint on port %d" % self.METRICS_PORT, up) == "up":
                return p
            with open(logpath, errors="replace") as f:
                f.seek(since)
                said = f.read()
            taken = "cannot listen on 127.0.0.1:%d: address already in use" % self.METRICS_PORT
            if taken not in said:
                raise AssertionError("drover-watcher exited with %d at start:\n%s"
                                     % (p.returncode, said[-3000:]))
            log("watcher: metrics port %d taken by another process; again on a new port"
                % self.METRICS_PORT)
            self.METRICS_PORT = free_port()
        raise AssertionError("drover-watcher found its metrics port taken three times in a row")

    def _spawn_watcher(self, logpath):
        args = [self.WATCHER, "--consul-addr", self.consul_addr(), "--haproxy-cluster", "edge",
                "--kube-cluster", "prod-a", "--template-dir", self.TPL, "--config-dir", self.CFG,
                "--haproxy-master-socket", self.MASTER, "--haproxy-stats-socket", self.STATS,
                "--haproxy-state-file", self.STATE,
                "--agent-state-file", self.AGENT, "--snapshot-file", self.SNAP,
                "--metrics-addr", "127.0.0.1:%d" % self.METRICS_PORT, "--haproxy-maxconn", "500",
                "--agent-port", str(self.AGENT_PORT)] + self.watcher_args
        env = dict(os.environ, NOTIFY_SOCKET=self.NOTIFY_PATH, WATCHDOG_USEC="1000000")
        with open(logpath, "ab") as logf:
            p = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT, env=env)
        self.procs.append(p)
        return p

    def render_args(self, config_dir):
        """`drover-watcher render` with the options start_watcher gives the
        daemon that shape its configs, comparing with config_dir (add
        "render", "--diff" or the like)."""
        return [self.WATCHER, "--consul-addr", self.consul_addr(), "--haproxy-cluster", "edge",
                "--kube-cluster", "prod-a", "--template-dir", self.TPL, "--config-dir",
                config_dir, "--haproxy-stats-socket", self.STATS, "--haproxy-state-file",
                self.STATE, "--snapshot-file", self.SNAP, "--haproxy-maxconn", "500",
                "--agent-port", str(self.AGENT_PORT), "--agent-interval", "300ms"]

    def cfg_text(self, name="web"):
        with open(os.path.join(self.CFG, name + ".cfg")) as f:
            return f.read()

    # ---- diagnostics and cleanup ----

    def dump_logs(self, files=("watcher.log", "haproxy.log"), lines=40):
        for f in files:
            p = os.path.join(self.work, f)
            if os.path.exists(p):
                print("---- last lines of", f)
                print(tail(p, lines))

    def cleanup(self):
        """Stop every process started (newest first), the Consul agent if
        this fleet started it, close the notify socket, remove the temp dir."""
        for p in reversed(self.procs):
            stop_process(p)
        self.consul_dev.close()
        if self.NOTIFY:
            # after the watcher is gone: its sd_notify calls need a reader
            self.NOTIFY.close()
        shutil.rmtree(self.work, ignore_errors=True)
