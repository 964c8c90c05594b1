# SPDX-License-Identifier: Apache-2.0
"""Hostile HTTP clients against the real drover-agent-checker's metrics and
health port (common/http_server.c, issue 20 items 1 and 2):

1. 40 connections each pipelining 2,621 `GET /metrics` requests without
   ever reading an answer: the daemon's peak RSS (VmHWM) stays under
   PIPELINE_RSS_LIMIT (it was 480 MB before answers were taken one at a
   time), /healthz still answers in time, and the memory is back down
   once the clients leave.
2. 2,000 connections that send nothing, held open: /healthz and /metrics
   answer in time (the quietest connection makes room at the cap), the
   closures are counted in drover_http_connections_closed_total and logged
   as a summary, not one line per connection.

"In time" is not a fixed wall time but what a wrong server would wait
for: one that found no room for a probe (or never got to read it beside
the pipelining clients) serves it only once a connection is closed by the
daemon's header timeout (HEADER_TIMEOUT_S, common/http_server.c's
default), so each probe must answer within half of that. A loaded CI
machine stretches a correct probe from milliseconds to a few hundred; it
does not stretch it to seconds.

Usage: test_http_hostile.py /path/to/drover-agent-checker"""

import os
import resource
import socket
import sys
import tempfile
import time

from agentlib import Daemon, wait_until

# Per connection: one 64 KiB read chunk held while an answer is pending,
# one /metrics answer (a few KiB here) and ~2 KiB of state. 40 of them
# are ~3 MiB over the daemon's own baseline (~10 MiB); the figure leaves
# room for allocator slack and is far below the 128 MiB of the unit's
# MemoryMax.
PIPELINE_RSS_LIMIT = 48 << 20
PIPELINE_CONNS = 40
PIPELINE_REQUESTS = 2621
IDLE_CONNS = 2000
# the daemon's header timeout (http_server_opts.header_timeout_ms, 0 = 5 s);
# the agent-checker keeps the default
HEADER_TIMEOUT_S = 5.0
PROBE_LIMIT_S = HEADER_TIMEOUT_S / 2


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} missing from /proc/{pid}/status")


def timed_get(port, path):
    """GET path on a new connection; return (status line, seconds)."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=HEADER_TIMEOUT_S * 2) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    took = time.monotonic() - t0
    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    return line, took


def assert_probe_fast(d, path, why):
    line, took = timed_get(d.mport, path)
    assert line.startswith("HTTP/1.1 200"), f"{path} {why}: got {line!r}"
    assert took < PROBE_LIMIT_S, \
        f"{path} {why}: answered after {took:.2f} s (limit {PROBE_LIMIT_S:.1f} s: half the " \
        f"{HEADER_TIMEOUT_S:.0f} s header timeout a server without room would wait for)"
    return took


def test_pipelining_memory(d):
    pid = d.proc.pid
    base_kb = status_kb(pid, "VmRSS")
    burst = b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n" * PIPELINE_REQUESTS
    socks = []
    for _ in range(PIPELINE_CONNS):
        s = socket.create_connection(("127.0.0.1", d.mport), timeout=5)
        s.setblocking(False)
        socks.append([s, 0])
    # Push the requests as far as the daemon takes them (it stops reading
    # while an answer is pending, so most stay in the socket buffers);
    # never read an answer. Bounded: 10 s of no progress on any socket.
    last_progress = time.monotonic()
    while time.monotonic() - last_progress < 2.0:
        progressed = False
        for entry in socks:
            s, off = entry
            if off >= len(burst):
                continue
            try:
                n = s.send(burst[off:off + 65536])
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                entry[1] = len(burst)  # closed by the daemon: fine
                continue
            entry[1] += n
            progressed = True
        if progressed:
            last_progress = time.monotonic()
        if all(off >= len(burst) for _, off in socks):
            break
        time.sleep(0.01)
    # Let the daemon parse whatever it will parse: wait until its RSS has
    # not moved for 1 s (bounded: 15 s; a server that queues every answer
    # keeps growing for seconds).
    deadline = time.monotonic() + 15
    last, since = status_kb(pid, "VmRSS"), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < 1.0:
        time.sleep(0.1)
        now = status_kb(pid, "VmRSS")
        if now != last:
            last, since = now, time.monotonic()
    hwm_kb = status_kb(pid, "VmHWM")
    rss_kb = status_kb(pid, "VmRSS")
    print(f"pipelining: {PIPELINE_CONNS} connections x {PIPELINE_REQUESTS} requests, "
          f"RSS {base_kb} kB before, {rss_kb} kB now, peak {hwm_kb} kB "
          f"(limit {PIPELINE_RSS_LIMIT >> 10} kB)")
    assert hwm_kb * 1024 < PIPELINE_RSS_LIMIT, \
        f"peak RSS {hwm_kb} kB over {PIPELINE_RSS_LIMIT >> 10} kB under pipelining"
    assert_probe_fast(d, "/healthz", f"with {PIPELINE_CONNS} pipelining clients")
    # How many answers were built depends on what the kernel's socket
    # buffers took (several MB per connection on loopback); the daemon's
    # own memory above is the bound that matters.
    answered = d.metric("drover_http_requests_total", {"code": "200"}) or 0
    print(f"pipelining: {answered:.0f} answers written into socket buffers")
    for s, _ in socks:
        s.close()


def test_idle_connections(d):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = IDLE_CONNS + 64
    if soft < need:
        if hard < need:
            print(f"SKIP: RLIMIT_NOFILE hard limit {hard} < {need} for {IDLE_CONNS} connections")
            sys.exit(77)
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    before_lines = d.logs().count("connections on 127.0.0.1")
    held = []
    for _ in range(IDLE_CONNS):
        held.append(socket.create_connection(("127.0.0.1", d.mport), timeout=5))
    worst = 0.0
    for path in ("/healthz", "/readyz", "/metrics", "/healthz"):
        if path == "/readyz":
            line, took = timed_get(d.mport, path)
            assert took < PROBE_LIMIT_S, f"/readyz answered after {took:.2f} s"
        else:
            took = assert_probe_fast(d, path, f"with {IDLE_CONNS} idle connections held")
        worst = max(worst, took)
    print(f"idle: {IDLE_CONNS} silent connections held, probes answered in at most "
          f"{worst * 1000:.0f} ms")
    evicted = d.metric("drover_http_connections_closed_total", {"reason": "evicted"}) or 0
    assert evicted >= IDLE_CONNS - 256, f"only {evicted} connections evicted at the cap"
    lines = d.logs().count("connections on 127.0.0.1") - before_lines
    assert 1 <= lines <= 3, f"{lines} log lines about the connection limit (want a summary)"
    for s in held:
        s.close()


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        d = Daemon(binary, tmp)
        try:
            d.write_state({"version": 1, "generated": "2026-01-01T00:00:00Z", "servers": {}})
            d.start()
            wait_until("/healthz to answer", lambda: d.http("/healthz")[0] == 200)
            test_pipelining_memory(d)
            test_idle_connections(d)
            assert d.proc.poll() is None, "agent-checker died"
            rc = d.stop()
            assert rc == 0, f"agent-checker exit status {rc} (sanitizer report?)"
        except BaseException:
            sys.stderr.write(d.logs()[-4000:])
            raise
        finally:
            d.stop()
    print("ok")


if __name__ == "__main__":
    main()
