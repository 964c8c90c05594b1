# SPDX-License-Identifier: Apache-2.0
"""Helpers for the agent-checker integration tests: start the real daemon on
free loopback ports, talk the agent protocol, read /metrics and /readyz,
write the state file the way the watcher does (temp file + rename), and
clean up whatever happens."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from drover_testlib import (SKIP, free_port, hold_for, http, metric_key,  # noqa: E402,F401
                            parse_metrics, stop_process, wait_until, write_atomic)
# (SKIP, free_port, hold_for and wait_until are re-exported to the tests)


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def ask(port, data=b"", host="127.0.0.1", half_close=False, timeout=5.0):
    """Send one agent request and return the reply (bytes) read until the
    server closes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))
        if data:
            s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            b = s.recv(4096)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)


class Daemon:
    """One drover-agent-checker process in a private temp dir."""

    def __init__(self, binary, workdir, extra=(), state_name="state.json", metrics=True,
                 env=None):
        self.binary = binary
        self.dir = workdir
        self.state = os.path.join(workdir, state_name)
        self.port = free_port()
        self.port6 = free_port(socket.AF_INET6, "::1") if have_ipv6_loopback() else None
        self.mport = free_port() if metrics else None
        self.extra = list(extra)
        self.proc = None
        self.env = env
        self.log_path = os.path.join(workdir, f"agent-checker-{self.port}.log")

    def start(self):
        maddr = f"127.0.0.1:{self.mport}" if self.mport else ""
        args = [self.binary, "--listen", f"127.0.0.1:{self.port}",
                "--state-file", self.state, "--metrics-addr", maddr,
                "--log-level", "debug"] + self.extra
        if self.port6:
            args += ["--listen", f"[::1]:{self.port6}"]
        self.log = open(self.log_path, "ab")
        env = dict(os.environ, **self.env) if self.env else None
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log, env=env)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"agent-checker exited with {self.proc.returncode}:\n"
                                     + self.logs())
            # The daemon logs each listener once it is bound; the metrics
            # server is started last.
            want = "metrics and health on" if self.mport else f"port {self.port6 or self.port})"
            return want in self.logs()
        wait_until("agent-checker to listen", up)
        return self

    def logs(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if not self.proc:
            return None
        rc = stop_process(self.proc, timeout=5)
        self.log.close()
        return rc

    def http(self, path):
        """(status, body) of GET path on the metrics address."""
        st, body, _ = http("GET", f"http://127.0.0.1:{self.mport}{path}", timeout=5)
        return st, body.decode()

    def metric(self, name, labels=None):
        """Value of one sample, or None."""
        return parse_metrics(self.http("/metrics")[1]).get(metric_key(name, labels))

    def write_state(self, doc):
        """Replace the state file atomically, as the watcher does."""
        write_atomic(self.state, doc)


def run(tests, binary):
    """Run test functions (each gets a fresh temp dir); report and exit."""
    failed = 0
    for t in tests:
        work = tempfile.mkdtemp(prefix="drover-agent-it-")
        daemons = []
        start = time.monotonic()
        try:
            t(binary, work, daemons)
            print(f"PASS {t.__name__} ({time.monotonic() - start:.2f}s)", flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure kind
            failed += 1
            print(f"FAIL {t.__name__}: {type(e).__name__}: {e}", flush=True)
            for d in daemons:
                print(f"--- agent-checker log ({d.log_path}):\n{d.logs()}", flush=True)
        finally:
            for d in daemons:
                try:
                    d.stop()
                except Exception:  # noqa: BLE001
                    pass
            shutil.rmtree(work, ignore_errors=True)
    print(f"{len(tests) - failed}/{len(tests)} passed", flush=True)
    sys.exit(1 if failed else 0)
