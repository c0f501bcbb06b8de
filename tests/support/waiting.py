"""Waiting for a condition in a test without a hand-written loop."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], *, timeout: float = 10, interval: float = 0.02, message: str = "condition not met"
) -> T:
    """Call `condition` until it returns something truthy, and return that; raise
    AssertionError with `message` and the last value if `timeout` seconds pass first.

    The timeout is a liveness bound, never a figure under test: choose it well above the
    time the behaviour needs, so that only a real failure reaches it. An exception raised by
    `condition` propagates at once."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} (within {timeout}s; last value: {value!r})")
        time.sleep(interval)
