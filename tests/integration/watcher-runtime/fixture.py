#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Loopback fixture for the watcher-runtime integration test.

Starts N tiny HTTP servers (each answers "b<i>\n") and one agent-check
responder that answers every request with the word given on the command
line (e.g. "ready up") and logs the line HAProxy sent (its agent-send) to
a file. Prints "PORTS <http ports...> <agent port>" once everything listens,
then runs until stdin closes (the test process died or is done).
"""
import os
import sys
import threading

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from drover_testlib import LineServer, serve_http  # noqa: E402


def main():
    count, answer, log_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    ports = [serve_http("127.0.0.1", 0, ("b%d\n" % (i + 1)).encode()).server_address[1]
             for i in range(count)]
    lock = threading.Lock()

    def log(line):
        with lock, open(log_path, "ab") as f:
            f.write(line if line.endswith(b"\n") else line + b"\n")
    ports.append(LineServer(lambda line: (answer + "\n").encode(), log).port)
    print("PORTS " + " ".join(str(p) for p in ports), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
