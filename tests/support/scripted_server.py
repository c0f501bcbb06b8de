"""A small real HTTP server whose behaviour a test scripts: answer like X-Ray, fail with 500,
throttle with 429 and Retry-After, close connections mid-request, or hold them forever."""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedServer:
    """Modes: ok, error500, throttle429, reject400, weird207, close, blackhole. Switch with `mode = ...` at any time.
    `batch = False` makes it a server older than `POST /api/v1/batch` (a 404 for it)."""

    def __init__(self, mode: str = "ok", *, batch: bool = True) -> None:
        self.mode = mode
        self.batch = batch
        self.events: list[dict] = []
        self.runs: list[dict] = []
        self.labels: list[dict] = []
        self.paths: list[str] = []  # each request's path, in the order they came
        self.requests = 0
        # run id -> how many more times its events are answered 503 (the rest of the server is fine)
        self.failing_events: dict[str, int] = {}
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> ScriptedServer:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def event_ids(self) -> list[str]:
        with self._lock:
            return [e["event_id"] for e in self.events]

    def record(self, path: str, body: dict) -> int:
        with self._lock:
            if path == BATCH:
                self.runs.extend(body["runs"])
                self.events.extend(body["events"])
                self.labels.extend(body["labels"])
                return len(body["events"])
            if path.endswith("/events"):
                self.events.extend(body["events"])
                return len(body["events"])
            self.runs.append(body)
            return 1


def _handler(server: ScriptedServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            server.requests += 1
            server.paths.append(self.path)
            mode = server.mode
            if mode == "blackhole":
                server._release.wait(60)  # hold the request until the test ends
                self.close_connection = True
                return
            if mode == "close":
                self.connection.close()  # mid-request: headers read, no answer
                self.close_connection = True
                return
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == BATCH and not server.batch:
                return self._answer(404, {"error": {"code": "not_found", "message": "scripted"}})
            if self.headers.get("Content-Encoding") == "gzip":
                raw = gzip.decompress(raw)
            failing = next((r for r in server.failing_events if _names_run(self.path, raw, r)), None)
            if failing is not None and server.failing_events[failing] > 0:
                server.failing_events[failing] -= 1
                return self._answer(503, {"error": {"code": "database_unavailable", "message": "scripted"}})
            if mode == "error500":
                return self._answer(500, {"error": {"code": "internal_error", "message": "scripted"}})
            if mode == "weird207":  # a body no X-Ray would send
                return self._answer(207, {"rejected": 3})
            if mode == "reject400":
                return self._answer(400, {"error": {"code": "validation_error", "message": "scripted"}})
            if mode == "throttle429":
                return self._answer(429, {"error": {"code": "throttled", "message": "scripted"}}, {"Retry-After": "1"})
            count = server.record(self.path, json.loads(raw))
            if self.path == BATCH:
                return self._answer(200, _batch_answer(json.loads(raw)))
            if self.path.endswith("/events"):
                return self._answer(
                    200,
                    {"accepted": count, "duplicates": 0, "rejected": [], "contract_violations": [], "truncated": []},
                )
            return self._answer(201, {"run_id": "scripted"})

        def _answer(self, status: int, body: dict, headers: dict | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


BATCH = "/api/v1/batch"


def _names_run(path: str, raw: bytes, run_id: str) -> bool:
    """Whether a request carries events of `run_id` (a batch fails whole: it is one transaction)."""
    if path == BATCH:
        return any(event.get("run_id") == run_id for event in json.loads(raw)["events"])
    return path == f"/api/v1/runs/{run_id}/events"


def _batch_answer(body: dict) -> dict:
    events = {"accepted": len(body["events"]), "duplicates": 0, "rejected": [], "contract_violations": []}
    return {
        "runs": {"created": len(body["runs"]), "existing": 0, "rejected": []},
        "events": {**events, "truncated": [], "artifacts": []},
        "labels": {"recorded": len(body["labels"]), "rejected": []},
    }
