#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Client side of the front-door test (tests/e2e/frontdoor/run.sh), run in
the client namespace against the line echo servers (tcp_echo.py).

  load.py VIP PORT STATE-DIR [LONG]

LONG (default 8) long-lived connections send a line every 50 ms and must get
it back from the same proxy; a connection that fails once is counted broken
and never retried. Meanwhile an open-loop load opens one new connection
every 20 ms (one request each, 2 s to answer) whatever happened to the
previous ones. STATE-DIR/counts (JSON, rewritten every 100 ms): ok, failed,
broken, long_alive, last_error, failed_at (monotonic seconds of the last
failures). Stops when STATE-DIR/stop exists; writes counts a last time.
"""
import json
import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from drover_testlib import write_atomic  # noqa: E402

lock = threading.Lock()
counts = {"ok": 0, "failed": 0, "broken": 0, "long_alive": 0, "long_ok": 0, "last_error": "",
          "failed_at": []}
stop = threading.Event()


def failed(kind, err):
    with lock:
        counts[kind] += 1
        counts["last_error"] = f"{kind}: {err}"
        counts["failed_at"] = (counts["failed_at"] + [round(time.monotonic(), 3)])[-50:]


def long_conn(vip, port, i):
    try:
        s = socket.create_connection((vip, port), timeout=5)
        s.settimeout(3)
        f = s.makefile("rwb", buffering=0)
        owner = None
        with lock:
            counts["long_alive"] += 1
        n = 0
        while not stop.is_set():
            n += 1
            f.write(b"long %d %d\n" % (i, n))
            line = f.readline().decode().strip()
            name, _, rest = line.partition(" ")
            if rest != f"long {i} {n}":
                raise OSError(f"bad reply '{line}'")
            if owner is None:
                owner = name
            elif name != owner:
                raise OSError(f"answered by {name}, was {owner}")
            with lock:
                counts["long_ok"] += 1
            time.sleep(0.05)
        s.close()
    except OSError as e:
        failed("broken", f"long connection {i}: {e}")
        with lock:
            counts["long_alive"] -= 1


def one_request(vip, port):
    try:
        with socket.create_connection((vip, port), timeout=2) as s:
            s.settimeout(2)
            s.sendall(b"hi\n")
            line = s.makefile("rb").readline().decode().strip()
            if not line.endswith(" hi"):
                raise OSError(f"bad reply '{line}'")
        with lock:
            counts["ok"] += 1
    except OSError as e:
        failed("failed", e)


def main():
    vip, port, state = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    nlong = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    threads = [threading.Thread(target=long_conn, args=(vip, port, i), daemon=True)
               for i in range(nlong)]
    for t in threads:
        t.start()
    next_req = next_write = time.monotonic()
    while not os.path.exists(os.path.join(state, "stop")):
        now = time.monotonic()
        if now >= next_req:
            threading.Thread(target=one_request, args=(vip, port), daemon=True).start()
            next_req += 0.02
        if now >= next_write:
            with lock:
                text = json.dumps(counts)
            write_atomic(os.path.join(state, "counts"), text, fsync=False)
            next_write += 0.1
        time.sleep(max(0.0, min(next_req, next_write) - time.monotonic()))
    stop.set()
    for t in threads:
        t.join(timeout=5)
    time.sleep(2.5)  # the last requests answer or time out
    with lock:
        text = json.dumps(counts)
    write_atomic(os.path.join(state, "counts"), text, fsync=False)


main()
