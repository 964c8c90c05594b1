#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Line echo server for the director e2e test: answers every line with
'<name> <line>' so the client can tell which proxy served it."""
import socket
import sys
import threading


def serve(conn, name):
    with conn:
        f = conn.makefile("rwb", buffering=0)
        for line in f:
            f.write(name.encode() + b" " + line)


def main():
    name, port = sys.argv[1], int(sys.argv[2])
    srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 and IPv6
    srv.bind(("::", port))
    srv.listen(64)
    print(f"{name} listening on {port}", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, name), daemon=True).start()


main()
