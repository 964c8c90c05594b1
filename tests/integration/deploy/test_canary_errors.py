#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""HAProxy's error counters in the canary watch (issue 15): one proxy host
(a real drover-watcher driving a real HAProxy, status TTL 10 s, so its
counters are read every 3.3 s) on a real Consul dev agent, with HTTP
traffic running through its frontend the whole time.

Steps: the status entry carries the web service's counters and
`droverctl status` shows them; a harmless change canaried with --soak
reports requests and no error rising (exit 0, "canary: healthy"); it is
aborted; a change that adds a server nothing listens on (and drops the
health check that would take it out) is reported by `config apply` as
errors rising on the canary host (exit 1, "NOT healthy", conn errors or
5xx up since its reload, in the text and in --json)."""

import json
import os
import re
import shutil
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import deploylib  # noqa: E402
import watcherlib  # noqa: E402 (deploylib puts it on the path)
from drover_testlib import free_port, http, log, run_main, wait_until  # noqa: E402

WATCHER, CTL, CONSUL_DEV, TEMPLATES = sys.argv[1:5]
KEY = "haproxy/edge/services/web"
TTL_S = 10  # status entry renewed, and counters read, every TTL/3


def ctl(a, *args):
    return deploylib.ctl(CTL, a, *args)


write = deploylib.write_file


class Traffic:
    """GETs through the frontend in a loop until stopped; counts answers."""

    def __init__(self, port):
        self.url = "http://127.0.0.1:%d/" % port
        self.stop_ev = threading.Event()
        self.status = {}
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_ev.is_set():
            try:
                st = http("GET", self.url, timeout=2)[0]
            except Exception:  # noqa: BLE001 (a refused or cut connection is an answer too)
                st = "failed"
            self.status[st] = self.status.get(st, 0) + 1
            self.stop_ev.wait(0.02)

    def stop(self):
        self.stop_ev.set()
        self.t.join(5)
        return self.status


def web_errors(kv, host):
    return kv.get_json("status/%s/haproxy" % host)["services"]["web"].get("errors")


def main():
    if not shutil.which("haproxy"):
        print("SKIP: haproxy not installed")
        return 77
    a = deploylib.Host("proxy-a", WATCHER, CONSUL_DEV, TEMPLATES, "drover-canaryerr-it.", TTL_S)
    kv, port = deploylib.start_fleet(state, (a,))
    dead_port = free_port()  # nothing listens here
    kv.put("kube/prod-a/services/default/dead/http", {"node_port": dead_port})
    kv.put(KEY, a.f.service(maxconn=100))
    a.start()
    traffic = state["traffic"] = Traffic(a.f.FE_PORT)

    # 1. the entry carries the counters (read every TTL/3), status shows them
    e = wait_until("web's counters in proxy-a's status entry with requests",
                   lambda: (lambda e: e and e["requests"] > 0 and e)(web_errors(kv, "proxy-a")),
                   timeout=2 * TTL_S)
    assert set(e) == {"requests", "req_errors", "conn_errors", "resp_errors", "http_5xx"}, e
    rc, out, err = ctl(a, "status")
    assert rc == 0 and "HAProxy counters since its worker started:" in out, (rc, out, err)

    # 2. a harmless canary: requests counted, no error rising
    rc, out, err = ctl(a, "config", "apply", write(a, "ok.json", {KEY: a.f.service(maxconn=200)}),
                       "--canary", "proxy-a", "--wait", "20s", "--soak", "%ds" % (TTL_S // 3 + 2))
    log("harmless canary:", out)
    assert rc == 0 and "canary: healthy" in out and "ERRORS RISING" not in out, (rc, out, err)
    m = re.search(r"web: (\d+) requests, 5xx \+0, conn errors \+0", out)
    assert m and int(m.group(1)) > 0, out
    rc, out, err = ctl(a, "config", "abort")
    assert rc == 0, (rc, out, err)
    wait_until("proxy-a back on maxconn 100", lambda: "maxconn 100" in a.f.cfg_text())

    # 3. a canary that sends part of the traffic to a server that refuses
    # connections: errors rising on the canary host, exit 1
    bad = a.f.service(maxconn=300)
    be = bad["backends"][0]
    del be["check"]  # a health check would take the dead server out
    be["kube"].append(dict(be["kube"][0], service="dead"))
    rc, out, err = ctl(a, "config", "apply", write(a, "bad.json", {KEY: bad}), "--json",
                       "--canary", "proxy-a", "--wait", "20s", "--soak", "%ds" % (2 * TTL_S // 3 + 2))
    seen = traffic.stop()
    log("bad canary:", out, err, "traffic:", seen)
    assert rc == 1, (rc, out, err)
    doc = json.loads(out)
    h = doc["hosts"]["proxy-a"]
    assert doc["healthy"] is False and h["state"] == "applied" and h["errors_rising"], doc
    d = h["errors"]["web"]
    assert d["since_reload"] and d["conn_errors"] + d["http_5xx"] > 0, d
    rc, out, err = ctl(a, "config", "abort")
    assert rc == 0, (rc, out, err)
    return 0


state = {}


def diagnostics():
    hosts = state.get("hosts", ())
    if hosts:
        deploylib.dump_hosts(state, (("droverctl status", lambda: ctl(hosts[0], "status")),))


def cleanup():
    if "traffic" in state:
        state["traffic"].stop()
    deploylib.cleanup(state)


if __name__ == "__main__":
    run_main(main, on_failure=diagnostics, cleanup=cleanup, deadline=100)
