#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Client side of the fleet scenario, run in the client namespace.

  load.py load URL STATE-DIR
      Open loop: one new connection per request, 50 requests/s on a fixed
      schedule whatever the answers take (each request on its own thread,
      4 s timeout), until STATE-DIR/stop exists; then waits for the
      requests in flight. A request that hangs during a fault does not
      hold back the ones after it, so every scheduled request counts (no
      coordinated omission). Rewrites STATE-DIR/counts (JSON: ok, failed,
      answers by node, last error, sent, late: schedule slots the client
      itself could not keep, e.g. on a busy machine) after every answer so
      the caller can read live figures.
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
import threading
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


RATE = 50             # requests per second, on a fixed schedule
TIMEOUT = 4.0         # per request; fleet_load_stop waits 10 s for the end
MAX_IN_FLIGHT = 400   # TIMEOUT x RATE x 2: only a client fault reaches it


def load():
    c = {"ok": 0, "failed": 0, "nodes": {}, "error": "", "sent": 0, "late": 0}
    lock = threading.Lock()
    slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)

    def one():
        try:
            conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
            conn.request("GET", "/", headers={"Connection": "close"})
            r = conn.getresponse()
            text = r.read().decode().strip()
            conn.close()
            if r.status != 200:
                raise RuntimeError("HTTP %d" % r.status)
            with lock:
                c["ok"] += 1
                c["nodes"][text] = c["nodes"].get(text, 0) + 1
                write("counts", c)
        except Exception as e:  # every failure is counted, none is retried
            with lock:
                c["failed"] += 1
                c["error"] = "%s: %s" % (type(e).__name__, e)
                write("counts", c)
        finally:
            slots.release()

    write("counts", c)
    step = 1.0 / RATE
    due = time.monotonic()
    threads = []
    while not os.path.exists(os.path.join(state, "stop")):
        now = time.monotonic()
        if now < due:
            time.sleep(due - now)
        elif now - due > 0.5:  # the client fell behind: skip, never burst
            with lock:
                c["late"] += int((now - due) / step)
            due = now
        due += step
        if not slots.acquire(blocking=False):
            with lock:
                c["failed"] += 1
                c["error"] = "client: %d requests in flight" % MAX_IN_FLIGHT
            continue
        with lock:
            c["sent"] += 1
        t = threading.Thread(target=one, daemon=True)
        t.start()
        threads.append(t)
        threads = [x for x in threads if x.is_alive()] if len(threads) > 64 else threads
    for t in threads:
        t.join(TIMEOUT + 1)
    with lock:
        write("counts", c)


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
