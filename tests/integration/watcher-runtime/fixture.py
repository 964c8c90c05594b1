#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Loopback fixture for the watcher-runtime integration test.

Starts N tiny HTTP servers (each answers "b<i>\n") and one agent-check
responder that answers every request with the word given on the command
line (e.g. "ready up") and logs the line HAProxy sent (its agent-send) to
a file. Prints "PORTS <http ports...> <agent port>" once everything listens,
then runs until stdin closes (the test process died or is done).
"""
import http.server
import socket
import socketserver
import sys
import threading


def http_server(index):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = ("b%d\n" % index).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]


def agent_server(answer, log_path):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    lock = threading.Lock()

    def serve():
        while True:
            conn, _ = sock.accept()
            try:
                conn.settimeout(1.0)
                data = b""
                while not data.endswith(b"\n") and len(data) < 256:
                    chunk = conn.recv(256)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall((answer + "\n").encode())
                with lock, open(log_path, "ab") as log:
                    log.write(data if data.endswith(b"\n") else data + b"\n")
            except OSError:
                pass
            finally:
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return sock.getsockname()[1]


def main():
    count, answer, log_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    ports = [http_server(i + 1) for i in range(count)]
    ports.append(agent_server(answer, log_path))
    print("PORTS " + " ".join(str(p) for p in ports), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
