"""A collector in its own process for the SDK benchmarks: answers every request like a healthy
X-Ray (`ok`), or accepts connections and never answers (`blackhole`). Prints its port."""

from __future__ import annotations

import argparse
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_BODY = b'{"accepted":0,"duplicates":0,"rejected":[],"contract_violations":[],"truncated":[]}'


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = "ok"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        if self.mode == "blackhole":
            threading.Event().wait()  # hold the request forever
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(_BODY)))
        self.end_headers()
        self.wfile.write(_BODY)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["ok", "blackhole"], default="ok")
    args = parser.parse_args()
    Handler.mode = args.mode
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
