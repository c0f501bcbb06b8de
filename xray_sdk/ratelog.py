"""Logging that cannot flood: one line per kind of problem per interval."""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger("xray_sdk")
# A library does not configure logging: the application decides where warnings go.
logger.addHandler(logging.NullHandler())


class RateLimitedLog:
    """Log each `key` at most once per `interval` seconds, saying how many were suppressed."""

    def __init__(self, interval: float = 30.0) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def warning(self, key: str, message: str, *args: object) -> None:
        """Log `message` unless `key` was logged within the interval. Never raises."""
        try:
            now = time.monotonic()
            with self._lock:
                if now - self._last.get(key, -self.interval) < self.interval:
                    self._suppressed[key] = self._suppressed.get(key, 0) + 1
                    return
                self._last[key] = now
                suppressed = self._suppressed.pop(key, 0)
            if suppressed:
                message += f" ({suppressed} similar messages suppressed)"
            logger.warning(message, *args)
        except Exception:
            pass
