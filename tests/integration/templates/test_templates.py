#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Shipped HAProxy templates against the real `haproxy -c`.

usage: test_templates.py RENDER_TOOL TEMPLATE_DIR THIS_DIR GRAFANA_DASHBOARD

1. Every haproxy-templates/*.mustache rendered with every examples/*.json
   must pass `haproxy -c -f` without alerts or warnings (except the missing
   server-state file, which is normal before the first reload), and must
   contain every backend, server slot and bind of the data, with agent-send
   "<backend>/<server>\\n" on every server.
2. Values that would inject a newline, a directive or an unquoted space
   are refused by the renderer, which names template, line and key, and
   writes nothing.
3. A config that renders but that HAProxy rejects is caught by `haproxy -c`
   (so part 1 can fail).
4. Template syntax errors name template, line and column.
5. HAProxy really runs a rendered config (loopback binds, temp paths): each
   server's agent check sends its own "<backend>/<server>\n" to the agent
   port, free slots too (so the agent must answer "maint" for a free slot:
   an agent "ready" would lift its `disabled`); the runtime API fills a free
   slot (addr, port, weight, state ready) without a reload; HAProxy's own
   Prometheus exporter on the "metrics" frontend serves per-server series
   and every haproxy_* metric the Grafana dashboard queries.
"""
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from drover_testlib import (Checks, HAProxy, LineServer, free_port, haproxy_cmd,  # noqa: E402
                            haproxy_servers_state, http, parse_metrics, wait_until)

STATE_FILE_WARNING = "Can't open global server state file"
CHECKS = Checks()
fail = CHECKS.fail


def render(tool, tpl_dir, name, data, out_path, workdir):
    data_path = os.path.join(workdir, "data.json")
    with open(data_path, "w") as f:
        json.dump(data, f)
    if os.path.exists(out_path):
        os.unlink(out_path)
    return subprocess.run([tool, tpl_dir, name, data_path, out_path],
                          capture_output=True, text=True, timeout=30)


def haproxy_check(path):
    res = subprocess.run(["haproxy", "-c", "-f", path], capture_output=True,
                         text=True, timeout=30)
    out = res.stdout + res.stderr
    problems = [line for line in out.splitlines()
                if ("[WARNING]" in line or "[ALERT]" in line)
                and STATE_FILE_WARNING not in line]
    return res.returncode, problems, out


def sections(text):
    """{ 'backend NAME': [lines], ... } of a rendered config."""
    result, current = {}, None
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            current = line.strip()
            result[current] = []
        elif current and line.strip():
            result[current].append(line.strip())
    return result


def check_structure(label, text, data):
    secs = sections(text)
    for be in data["backends"]:
        lines = secs.get("backend " + be["name"])
        if lines is None:
            fail(f"{label}: backend {be['name']} missing")
            continue
        servers = [l for l in lines if l.startswith("server ")]
        if len(servers) != len(be["servers"]):
            fail(f"{label}: backend {be['name']}: {len(servers)} server lines, "
                 f"want {len(be['servers'])}")
        for srv, line in zip(be["servers"], servers):
            words = line.split()
            if words[1] != srv["name"]:
                fail(f"{label}: server {words[1]} where {srv['name']} was expected")
            if f'agent-send "{be["name"]}/{srv["name"]}\\n"' not in line:
                fail(f"{label}: {be['name']}/{srv['name']} lacks its agent-send: {line}")
            disabled = "disabled" in words
            if disabled != (srv.get("free", False) or not srv.get("enabled", False)):
                fail(f"{label}: {be['name']}/{srv['name']} disabled={disabled}: {line}")
    for fe in data["frontends"]:
        lines = secs.get("frontend " + fe["name"])
        if lines is None:
            fail(f"{label}: frontend {fe['name']} missing")
            continue
        binds = [l for l in lines if l.startswith("bind ")]
        if len(binds) != len(fe["binds"]):
            fail(f"{label}: frontend {fe['name']}: {len(binds)} binds, want {len(fe['binds'])}")
        if f"default_backend {fe['default_backend']}" not in lines:
            fail(f"{label}: frontend {fe['name']} lacks its default_backend")
    if "metrics" in data:
        check_metrics_frontend(label, secs, data["metrics"])


def check_metrics_frontend(label, secs, metrics):
    lines = secs.get("frontend " + metrics["name"])
    if lines is None:
        fail(f"{label}: metrics frontend {metrics['name']} missing")
        return
    want = [f"bind {b['addr']}:{b['port']}" for b in metrics["binds"]]
    binds = [l for l in lines if l.startswith("bind ")]
    if binds != want:
        fail(f"{label}: metrics frontend binds {binds}, want {want}")
    if "http-request use-service prometheus-exporter if { path /metrics }" not in lines:
        fail(f"{label}: metrics frontend does not serve the Prometheus exporter: {lines}")


# (description, mutation on the data, key the error must name)
def set_path(data, path, value):
    node = data
    for p in path[:-1]:
        node = node[p]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value


BAD_VALUES = [
    ("newline + directive in a server address",
     ["backends", 0, "servers", 0, "addr"], "10.0.0.11\n    stats enable", "addr"),
    ("space in a backend name", ["backends", 0, "name"], "api http", "name"),
    ("ACL injection through a host", ["frontends", 0, "routes", 0, "hosts", 0],
     "api.example.com } || { always_true", "."),
    ("directive after the stats socket path", ["global", "stats_socket"],
     "/run/x.sock\nuser root", "global.stats_socket"),
    ("carriage return in quoted text", ["service", "description"], "a\rb",
     "service.description"),
    ("comment in the balance word", ["backends", 0, "balance"], "roundrobin#x", "balance"),
    ("port 0", ["backends", 0, "servers", 0, "port"], 0, "port"),
    ("duration with a space", ["timeouts", "connect"], "5 s", "timeouts.connect"),
    ("extra words after the agent address", ["agent", "addr"], "127.0.0.1 agent-port 1",
     "agent.addr"),
    ("header injection through a check path", ["backends", 0, "check", "http", "path"],
     "/healthz hdr X y", "path"),
    ("NUL byte in a server name", ["backends", 0, "servers", 1, "name"], "slot2\u0000x", "name"),
    ("missing agent settings (strict variables)", ["agent"], KeyError, "agent.addr"),
]


class Agent(LineServer):
    """A stand-in agent-checker: records what HAProxy sends; answers
    "up ready" for the servers in self.ready, "up maint" for the rest."""

    def __init__(self):
        self.ready = set()
        self.seen = set()
        super().__init__(self.reply, lambda line: self.seen.add(line.decode(errors="replace")))

    def reply(self, line):
        word = b"ready" if line.decode(errors="replace") in self.ready else b"maint"
        return b"up " + word + b" #drover-test\n"


def exporter_families(port):
    """The metric family names HAProxy's exporter serves on port, and the
    samples; also checks that other paths of the frontend answer 404."""
    st, body, _ = http("GET", f"http://127.0.0.1:{port}/metrics", timeout=10)
    if st != 200:
        raise AssertionError(f"GET /metrics on the metrics frontend: HTTP {st}")
    samples = parse_metrics(body.decode())
    st, _, _ = http("GET", f"http://127.0.0.1:{port}/", timeout=10)
    if st != 404:
        fail(f"run: GET / on the metrics frontend: HTTP {st}, want 404")
    return {k.partition("{")[0] for k in samples}, samples


def check_exporter(data, dashboard, slot):
    """Scrape HAProxy's Prometheus exporter: per-server series of every
    backend (the slot just filled counted as UP or in a check state), and
    every haproxy_* metric the Grafana dashboard queries is really served."""
    port = data["metrics"]["binds"][0]["port"]
    try:
        families, samples = exporter_families(port)
    except (AssertionError, OSError) as e:
        fail(f"run: HAProxy's Prometheus exporter: {e}")
        return
    for be in data["backends"]:
        for srv in be["servers"]:
            key = f'haproxy_server_weight{{proxy="{be["name"]}",server="{srv["name"]}"}}'
            if key not in samples:
                fail(f"run: exporter has no {key}")
    with open(dashboard) as f:
        used = set(re.findall(r"\bhaproxy_[a-z0-9_]+", f.read()))
    if not used:
        fail(f"run: {dashboard} queries no haproxy_* metric")
    missing = sorted(used - families)
    if missing:
        fail(f"run: the dashboard queries haproxy metrics the exporter does not serve: {missing}")
    else:
        print(f"ok HAProxy's exporter serves per-server series and the dashboard's "
              f"{len(used)} haproxy_* metrics (slot {slot} filled)", flush=True)


def run_haproxy(tool, tpl_dir, base, work, dashboard):
    data = copy.deepcopy(base)
    sock = os.path.join(work, "stats.sock")
    data["global"].update(maxconn=1000, stats_socket=sock,
                          server_state_file=os.path.join(work, "server.state"))
    data["global"].pop("nbthread", None)
    data["metrics"]["binds"] = [{"addr": "127.0.0.1", "port": free_port()}]
    for fe in data["frontends"]:
        fe["binds"] = [{"addr": "127.0.0.1", "port": free_port()}]
        fe.pop("maxconn", None)
    agent = Agent()
    agent.ready = {f"{be['name']}/{srv['name']}\n" for be in data["backends"]
                   for srv in be["servers"] if srv.get("enabled")}
    data["agent"].update(addr="127.0.0.1", port=agent.port, inter="100ms")
    cfg = os.path.join(work, "run.cfg")
    proc = None
    try:
        res = render(tool, tpl_dir, "http", data, cfg, work)
        if res.returncode != 0:
            fail(f"run: render failed: {res.stderr.strip()}")
            return
        proc = HAProxy(cfg, os.path.join(work, "haproxy.log"), sock=sock)
        try:
            proc.start(timeout=10)
        except AssertionError as e:
            fail(f"run: HAProxy did not start: {e}")
            return
        # every server, free slots included, gets agent checks with its
        # own agent-send string
        want = {f"{be['name']}/{srv['name']}\n" for be in data["backends"]
                for srv in be["servers"]}
        try:
            wait_until("agent checks of every server", lambda: want <= agent.seen, 15, 0.1)
        except AssertionError:
            pass  # reported below, with what is missing
        if want != agent.seen:
            fail(f"run: agent-send strings: missing {sorted(want - agent.seen)}, "
                 f"unexpected {sorted(agent.seen - want)}")
        # fill a free slot through the runtime API, no reload
        be = next(b for b in data["backends"] if any(s.get("free") for s in b["servers"]))
        slot = next(s["name"] for s in be["servers"] if s.get("free"))
        before = haproxy_servers_state(sock, be["name"])[slot]
        if int(before["srv_admin_state"]) & 0x23 == 0:
            fail(f"run: free slot {be['name']}/{slot} is not in maintenance: {before}")
        want_weight = str(next(s["weight"] for s in be["servers"] if s["name"] == slot))
        if before["srv_iweight"] != want_weight:
            fail(f"run: free slot {be['name']}/{slot} configured weight "
                 f"{before['srv_iweight']}, want {want_weight}")
        port = free_port()
        agent.ready.add(f"{be['name']}/{slot}\n")
        haproxy_cmd(sock, f"set server {be['name']}/{slot} addr 127.0.0.1 port {port}")
        haproxy_cmd(sock, f"set server {be['name']}/{slot} state ready")
        after = haproxy_servers_state(sock, be["name"])[slot]
        if (after["srv_addr"], after["srv_port"], after["srv_uweight"]) != \
                ("127.0.0.1", str(port), want_weight) or int(after["srv_admin_state"]) & 0x23:
            fail(f"run: runtime API did not fill slot {be['name']}/{slot}: {after}")
        check_exporter(data, dashboard, slot)
        if proc.proc.poll() is not None:
            fail("run: HAProxy exited")
        else:
            print(f"ok HAProxy runs the config; agent-send per server; slot {slot} filled",
                  flush=True)
    finally:
        if proc:
            proc.stop()
        agent.close()


def main():
    if len(sys.argv) != 5:
        print(__doc__)
        return 2
    tool, tpl_dir, dashboard = sys.argv[1], sys.argv[2], sys.argv[4]
    if not shutil.which("haproxy"):
        print("SKIP: haproxy is not installed")
        return 77
    templates = sorted(f[:-len(".mustache")] for f in os.listdir(tpl_dir)
                       if f.endswith(".mustache"))
    examples = sorted(f for f in os.listdir(os.path.join(tpl_dir, "examples"))
                      if f.endswith(".json"))
    if not templates or not examples:
        fail(f"no templates ({templates}) or no examples ({examples}) in {tpl_dir}")
        return 1
    work = tempfile.mkdtemp(prefix="drover-templates-")
    try:
        cfg = os.path.join(work, "haproxy.cfg")
        # 1. every template x every example
        for name in templates:
            for ex in examples:
                label = f"{name} x {ex}"
                with open(os.path.join(tpl_dir, "examples", ex)) as f:
                    data = json.load(f)
                res = render(tool, tpl_dir, name, data, cfg, work)
                if res.returncode != 0:
                    fail(f"{label}: render failed: {res.stderr.strip()}")
                    continue
                rc, problems, out = haproxy_check(cfg)
                if rc != 0 or problems:
                    fail(f"{label}: haproxy -c rc={rc}: {problems or out}")
                with open(cfg) as f:
                    check_structure(label, f.read(), data)
                print(f"ok {label}", flush=True)

        # 2. bad values are refused before HAProxy ever sees them
        # the bad-value cases are written against the HTTP example
        with open(os.path.join(tpl_dir, "examples", "web.json")) as f:
            base = json.load(f)
        for what, path, value, key in BAD_VALUES:
            data = copy.deepcopy(base)
            set_path(data, path, value)
            res = render(tool, tpl_dir, "http", data, cfg, work)
            err = res.stderr
            if res.returncode != 1:
                fail(f"bad value '{what}': exit {res.returncode}, want 1")
            elif os.path.exists(cfg):
                fail(f"bad value '{what}': a config was written")
            elif f"key '{key}'" not in err or not re.search(r"template \S+ line \d+ column \d+",
                                                            err):
                fail(f"bad value '{what}': error does not name template, line and key "
                     f"'{key}': {err.strip()}")
            else:
                print(f"ok refused: {what}", flush=True)

        # 3. the harness notices a config HAProxy rejects
        data = copy.deepcopy(base)
        data["backends"][0]["balance"] = "no-such-algorithm"
        res = render(tool, tpl_dir, "http", data, cfg, work)
        rc, problems, _ = haproxy_check(cfg) if res.returncode == 0 else (0, [], "")
        if res.returncode != 0 or rc == 0:
            fail(f"an unknown balance algorithm was not rejected by haproxy -c "
                 f"(render {res.returncode}, check {rc})")
        else:
            print("ok haproxy -c rejects a bad config", flush=True)

        # 4. template syntax errors name template, line and column
        bad_dir = os.path.join(work, "bad-templates")
        os.mkdir(bad_dir)
        with open(os.path.join(bad_dir, "x.mustache"), "w") as f:
            f.write("global\n  {{#s}}\n")
        res = render(tool, bad_dir, "x", {}, cfg, work)
        if res.returncode != 1 or "template x line 2 column 3: key 's'" not in res.stderr:
            fail(f"parse error not reported with its position: {res.stderr.strip()}")
        else:
            print("ok parse error names its position", flush=True)

        # 5. a real HAProxy with agent checks and the runtime API
        run_haproxy(tool, tpl_dir, base, work, dashboard)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return CHECKS.finish()


if __name__ == "__main__":
    sys.exit(main())
