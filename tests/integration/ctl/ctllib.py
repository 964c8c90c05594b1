# SPDX-License-Identifier: Apache-2.0
"""Helpers for the droverctl integration tests: a real Consul dev agent
(from the CTest fixture, $DROVER_CONSUL_STATE), a KV prefix of the test's
own, a fleet of kube nodes / services / HAProxy backends / director proxies
written the way the exporter and operators write them, and a runner for
the real droverctl binary."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from drover_testlib import SKIP, Consul, ConsulDev  # noqa: E402,F401 (SKIP re-exported)


def consul_addr():
    state = os.environ.get("DROVER_CONSUL_STATE")
    if not state:
        print("DROVER_CONSUL_STATE not set (run through ctest)", file=sys.stderr)
        sys.exit(SKIP)
    return ConsulDev(state).addr


class KV(Consul):
    """The test's KV prefix (drover_testlib.Consul below root), plus the
    audit trail droverctl writes there."""

    def audit(self):
        """Audit entries, oldest first: [(key, value dict)]."""
        return [(k, json.loads(v)) for k, (v, _) in sorted(self.dump("audit/").items())]


def node(name, cluster, addr, eligible=True):
    return {"name": name, "cluster": cluster, "addresses": [addr], "address": addr,
            "ready": eligible, "schedulable": True, "excluded": False, "selected": True,
            "eligible": eligible, "labels": {}}


def write_fleet(kv):
    """prod-a: node-a..c eligible (10.0.0.1-3), node-d not; prod-b: node-a
    (10.9.0.1). HAProxy cluster edge: be_web = kube web/http in prod-a +
    static-1 (10.1.2.3); be_api = static api-1, api-2. Director cluster dc1:
    proxies p1 (inactive), p2 (active)."""
    for i, n in enumerate(["node-a", "node-b", "node-c"]):
        kv.put(f"kube/prod-a/nodes/{n}", node(n, "prod-a", f"10.0.0.{i + 1}"))
    kv.put("kube/prod-a/nodes/node-d", node("node-d", "prod-a", "10.0.0.4", eligible=False))
    kv.put("kube/prod-b/nodes/node-a", node("node-a", "prod-b", "10.9.0.1"))
    kv.put("kube/prod-a/services/default/web/http",
           {"cluster": "prod-a", "namespace": "default", "service": "web", "port_name": "http",
            "node_port": 30080, "health_check_port": 30080, "protocol": "TCP"})
    kv.put("haproxy/edge/services/web", {
        "template": "http",
        "frontends": [{"name": "fe_web", "bind": ["127.0.0.1:80"], "mode": "http",
                       "default_backend": "be_web"}],
        "backends": [
            {"name": "be_web", "mode": "http",
             "kube": [{"cluster": "prod-a", "namespace": "default", "service": "web",
                       "port": "http"}],
             "servers": [{"name": "static-1", "address": "10.1.2.3", "port": 8080}]},
            {"name": "be_api", "mode": "http",
             "servers": [{"name": "api-1", "address": "10.1.3.1", "port": 80},
                         {"name": "api-2", "address": "10.1.3.2", "port": 80}]},
        ]})
    kv.put("director/dc1/proxies/p1", {"address": "10.0.1.1", "state": "inactive"})
    kv.put("director/dc1/proxies/p2", {"address": "10.0.1.2", "state": "active", "weight": 100})


class Ctl:
    def __init__(self, binary, addr, root, extra=()):
        self.binary = binary
        self.base = [binary, "--consul-addr", addr, "--kv-prefix", root,
                     "--haproxy-cluster", "edge", "--director-cluster", "dc1", *extra]

    def run(self, *args, env=None):
        e = dict(os.environ)
        e.pop("DROVER_CONFIG", None)
        e.update(env or {})
        p = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=60,
                           env=e)
        return p.returncode, p.stdout, p.stderr


def check(cond, what):
    if not cond:
        raise AssertionError(what)
