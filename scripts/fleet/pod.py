#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A fleet "pod": answers every HTTP GET with its node name, on each port
given (the services' NodePorts), HTTP/1.1 keep-alive. Writes "listening" to
stdout when every port is bound.

usage: pod.py NODE-NAME PORT [PORT...]"""
import os
import sys
import threading

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "lib"))
from drover_testlib import serve_http  # noqa: E402

body = (sys.argv[1] + "\n").encode()
servers = [serve_http("0.0.0.0", int(p), body, keepalive=True) for p in sys.argv[2:]]
print("listening", flush=True)
threading.Event().wait()  # the servers run in their threads until killed
