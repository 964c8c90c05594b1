# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by drover's Python integration tests. Import with
    sys.path.insert(0, os.path.join(<source root>, "tests", "lib"))
    from drover_testlib import free_port, wait_until
Ports come from the kernel (bind to port 0), never fixed; waiting is polling
against a deadline, never a sleep standing in for an assertion."""

import socket
import time


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A TCP port the kernel just handed out on host."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(what, fn, timeout=10.0, interval=0.05):
    """Poll fn() until it returns a truthy value and return that; raise
    AssertionError naming `what` (and the last value) after timeout s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
