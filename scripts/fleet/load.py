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
"""
import http.client
import json
import os
import sys
import time
import urllib.parse

mode, url, state = sys.argv[1], sys.argv[2], sys.argv[3]
u = urllib.parse.urlsplit(url)
host, port = u.hostname, u.port or 80


def write(name, data):
    tmp = os.path.join(state, name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.rename(tmp, os.path.join(state, name))


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


{"load": load, "long": long}[mode]()
