"""HTTP only: send one JSON body, report what came back. No retries, no queues here."""

from __future__ import annotations

import gzip
import http.client
import ipaddress
import json
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any

USER_AGENT = "xray-sdk-python/0.1"


class TransportError(Exception):
    """The request did not complete: connection refused, reset, timed out. Retryable."""


@dataclass
class Response:
    """What the server answered."""

    status: int
    body: Any
    retry_after: float | None


class HttpTransport:
    """POSTs JSON to the X-Ray API over a kept-alive connection, with short timeouts."""

    def __init__(self, endpoint: str, *, timeout: float = 3.0, gzip_min_bytes: int | None = None) -> None:
        parsed = urllib.parse.urlsplit(endpoint.rstrip("/"))
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"XRAY_ENDPOINT must be an http(s) URL such as http://127.0.0.1:8000, not {endpoint!r}")
        self.endpoint = endpoint.rstrip("/")
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port
        self._prefix = parsed.path
        self.timeout = timeout
        # gzip a body of at least this many bytes; None: never. By default, bodies to another
        # machine are compressed and those to this one are not: gzip at level 1 saves ~90% of a
        # batch's bytes, which pays on any link slower than ~140 MB/s, but on loopback it costs
        # four times the CPU of sending the plain body (BENCHMARKS.md, the SDK's delivery thread).
        self.gzip_min_bytes = gzip_min_bytes if gzip_min_bytes is not None else _default_gzip_min_bytes(self._host)
        self._local = threading.local()

    def post(self, path: str, body: bytes) -> Response:
        """Send `body` (JSON bytes); raise TransportError if no answer came back."""
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if self.gzip_min_bytes is not None and len(body) >= self.gzip_min_bytes:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        conn = self._connection()
        try:
            conn.request("POST", self._prefix + path, body=body, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            self._discard()
            raise TransportError(f"{type(exc).__name__}: {exc}") from None
        if response.getheader("Connection", "").lower() == "close":
            self._discard()
        return Response(response.status, _json_or_none(raw), _retry_after(response.getheader("Retry-After")))

    def close(self) -> None:
        """Close this thread's connection."""
        self._discard()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def _discard(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass


GZIP_MIN_BYTES = 1024


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine: `localhost`, or an address in 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _default_gzip_min_bytes(host: str) -> int | None:
    return None if is_loopback(host) else GZIP_MIN_BYTES


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from X-Ray; fall back to our own backoff
