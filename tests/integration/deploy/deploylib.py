# SPDX-License-Identifier: Apache-2.0
"""The deploy tests' setup on top of watcherlib: proxy hosts that share one
Consul dev agent and one frontend port, each with its own drover-watcher
(reporting R status/<host>/haproxy) and real HAProxy; a template that
renders but fails `haproxy -c`; diagnostics and cleanup for run_main.
Used by test_fleet_status.py, test_config_canary.py and
test_canary_errors.py."""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "watcher"))
import watcherlib  # noqa: E402

BROKEN_TEMPLATE = "{{> global}}\n\n{{> defaults}}\n    no-such-directive x\n"


class Host:
    """One proxy host: its own watcher work dir, HAProxy and watcher. The
    second and later hosts share host a's Consul agent and frontend port."""

    def __init__(self, name, watcher, consul_dev, templates, prefix, ttl_s, a=None):
        self.name = name
        self.f = watcherlib.Fleet(watcher, consul_dev, templates, prefix=prefix)
        if a:
            self.f.consul_dev = a.f.consul_dev
            self.f.FE_PORT = a.f.FE_PORT
        self.f.watcher_args += ["--status-host", name, "--status-ttl", "%ds" % ttl_s]
        self.proc = self.hp = None

    def start(self):
        """Start the watcher (again), and HAProxy once its first config is in."""
        if not os.path.isdir(self.f.TPL):
            self.f.copy_templates()
            # renders, but HAProxy refuses it
            with open(os.path.join(self.f.TPL, "broken.mustache"), "w") as f:
                f.write(BROKEN_TEMPLATE)
            self.f.open_notify()
        self.proc = self.f.start_watcher()
        if not self.hp:
            watcherlib.wait_for("%s: first config" % self.name,
                                lambda: os.path.exists(os.path.join(self.f.CFG, "web.cfg")))
            self.hp = self.f.start_haproxy()

    def reloads(self):
        return self.f.master_reloads()

    def cleanup(self, own_consul):
        if not own_consul:
            self.f.consul_dev = type("NoConsul", (), {"close": lambda self: None})()
        self.f.cleanup()


def start_fleet(state, hosts):
    """Consul on the first host, one NodePort backend and the web service's
    kube entries; state["hosts"] and state["servers"] for cleanup. Returns
    (the KV client, the NodePort)."""
    state["hosts"] = hosts
    hosts[0].f.consul("start")
    kv = hosts[0].f.kv
    port, servers = watcherlib.start_backends(["127.0.0.1"])
    state["servers"] = servers
    kv.put("kube/prod-a/nodes/n1", watcherlib.node("127.0.0.1"))
    kv.put("kube/prod-a/services/default/web/http", {"node_port": port})
    return kv, port


def dump_hosts(state, extra=()):
    """run_main's on_failure: the given (title, fn) outputs, then every
    host's logs."""
    for title, fn in extra:
        print("====", title, fn())
    for h in state.get("hosts", ()):
        print("==== host", h.name)
        h.f.dump_logs()


def cleanup(state):
    hosts = state.get("hosts", ())
    for h in reversed(hosts):
        h.cleanup(own_consul=h is hosts[0])
    for s in state.get("servers", ()):
        s.shutdown()
        s.server_close()


def ctl(binary, a, *args):
    """droverctl (binary) on host a's Consul and KV root, haproxy cluster
    edge, author tester: (returncode, stdout, stderr)."""
    p = subprocess.run([binary, "--consul-addr", a.f.consul_addr(), "--kv-prefix", a.f.ROOT,
                        "--haproxy-cluster", "edge", "--template-dir", a.f.TPL,
                        "--author", "tester", *args],
                       capture_output=True, text=True, timeout=90)
    return p.returncode, p.stdout, p.stderr


def write_file(a, name, content):
    """content (text as is, anything else as JSON) into name in host a's
    work dir; its path."""
    path = os.path.join(a.f.work, name)
    with open(path, "w") as f:
        f.write(content if isinstance(content, str) else json.dumps(content))
    return path
