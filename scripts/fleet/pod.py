#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A fleet "pod": answers every HTTP GET with its node name, on each port
given (the services' NodePorts). Writes "listening" to stdout when every
port is bound.

usage: pod.py NODE-NAME PORT [PORT...]"""
import http.server
import socketserver
import sys
import threading

name = sys.argv[1]
body = (name + "\n").encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


servers = [Server(("0.0.0.0", int(p)), Handler) for p in sys.argv[2:]]
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("listening", flush=True)
servers[0].serve_forever()
