#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Client side of the fleet scenario, run in the client namespace.

  load.py load URL STATE-DIR
      One new connection per request, about 50 requests/s, until
      STATE-DIR/stop exists. Rewrites STATE-DIR/counts (JSON: ok, failed,
      answers by node, last error) after every request so the caller can
      read live figures.
  load.py long URL STATE-DIR
      One keep-alive connection, one request every 100 ms, until
      STATE-DIR/stop-long exists; writes STATE-DIR/long (JSON: local port,
      ok, failed, last error). A failure ends the connection and is never
      retried: the connection either survives or the count says it did not.
  load.py count STATE-DIR ok|failed|node [NODE]
      One figure of STATE-DIR/counts: ok, failed, or the answers by NODE.
  load.py summary STATE-DIR
      STATE-DIR/counts in one line.
"""
import http.client
import json
import os
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "lib"))
from drover_testlib import write_atomic  # noqa: E402

mode = sys.argv[1]
if mode in ("load", "long"):
    url, state = sys.argv[2], sys.argv[3]
    u = urllib.parse.urlsplit(url)
    host, port = u.hostname, u.port or 80
else:
    state = sys.argv[2]


def write(name, data):
    # rewritten after every request: no fsync
    write_atomic(os.path.join(state, name), data, fsync=False)


def load():
    c = {"ok": 0, "failed": 0, "nodes": {}, "error": ""}
    while not os.path.exists(os.path.join(state, "stop")):
        try:
            conn = http.client.HTTPConnection(host, port, timeout=5)
            conn.request("GET", "/", headers={"Connection": "close"})
            r = conn.getresponse()
            text = r.read().decode().strip()
            conn.close()
            if r.status != 200:
                raise RuntimeError("HTTP %d" % r.status)
            c["ok"] += 1
            c["nodes"][text] = c["nodes"].get(text, 0) + 1
        except Exception as e:  # every failure is counted, none is retried
            c["failed"] += 1
            c["error"] = "%s: %s" % (type(e).__name__, e)
        write("counts", c)
        time.sleep(0.02)


def long():
    c = {"port": 0, "ok": 0, "failed": 0, "error": ""}
    try:
        conn = http.client.HTTPConnection(host, port, timeout=5)
        conn.connect()
        c["port"] = conn.sock.getsockname()[1]
        while not os.path.exists(os.path.join(state, "stop-long")):
            conn.request("GET", "/")
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError("HTTP %d" % r.status)
            c["ok"] += 1
            write("long", c)
            time.sleep(0.1)
    except Exception as e:
        c["failed"] += 1
        c["error"] = "%s: %s" % (type(e).__name__, e)
    write("long", c)


def counts():
    with open(os.path.join(state, "counts")) as f:
        return json.load(f)


def count():
    c = counts()
    print(c["nodes"].get(sys.argv[4], 0) if sys.argv[3] == "node" else c[sys.argv[3]])


def summary():
    c = counts()
    print("ok %d, failed %d, by node: %s%s" % (c["ok"], c["failed"],
          ", ".join("%s %d" % kv for kv in sorted(c["nodes"].items())),
          (" (last error: %s)" % c["error"]) if c["failed"] else ""))


{"load": load, "long": long, "count": count, "summary": summary}[mode]()
