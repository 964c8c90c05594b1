#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Client side of the director e2e test.

1. Opens a long-lived connection to the VIP and learns which proxy owns it;
   writes that name to STATE/owner.
2. Waits for STATE/go (the test moved the owner from primary to secondary).
3. The long connection must still be served by the same proxy (second
   chance), and NEW connections must go to the other proxy.
Exit 0 on success; every failure says what happened."""
import os
import socket
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from drover_testlib import wait_until  # noqa: E402

vip, port, state = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def ask(f, text):
    f.write(text.encode() + b"\n")
    line = f.readline()
    if not line:
        sys.exit(f"client: connection closed while waiting for reply to {text!r}")
    return line.decode().split(" ", 1)[0]


def connect():
    s = socket.create_connection((vip, port), timeout=10)
    return s, s.makefile("rwb", buffering=0)


long_sock, long_f = connect()
owner = ask(long_f, "hello")
for i in range(5):
    if ask(long_f, f"warmup {i}") != owner:
        sys.exit("client: long connection changed proxy before the table change")
with open(os.path.join(state, "owner.tmp"), "w") as f:
    f.write(owner)
os.rename(os.path.join(state, "owner.tmp"), os.path.join(state, "owner"))
print(f"client: long connection served by {owner}", flush=True)

try:
    wait_until("the table change (STATE/go)", lambda: os.path.exists(os.path.join(state, "go")),
               60)
except AssertionError as e:
    sys.exit(f"client: {e}")

for i in range(20):
    got = ask(long_f, f"after {i}")
    if got != owner:
        sys.exit(f"client: long connection answered by {got}, expected {owner} (second chance)")
print(f"client: long connection still served by {owner} after the change", flush=True)

others = set()
for i in range(8):
    s, f = connect()
    others.add(ask(f, f"new {i}"))
    s.close()
if owner in others or len(others) != 1:
    sys.exit(f"client: new connections went to {sorted(others)}, expected only the new primary")
print(f"client: new connections served by {others.pop()}", flush=True)
long_sock.close()
