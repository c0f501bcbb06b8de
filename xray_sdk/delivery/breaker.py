"""`CircuitBreaker`: stop calling something that keeps failing, and try again after a while.

One breaker serves the SDK's delivery (the X-Ray server) and the server's artifact writer (the
store). It only decides open or closed and for how long; what to do meanwhile (back off with
jitter, honour Retry-After, drop a payload) is the caller's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CircuitBreaker:
    """Open after `threshold` consecutive failures, for a cool-down that starts at `cooldown`
    seconds and doubles with each failure while tripped, up to `ceiling`; a success closes it
    and resets the cool-down. Thread-safe; the clock is monotonic.

    `cooldown` and `ceiling` may be changed at any time; the next trip uses the new values.
    """

    __slots__ = ("threshold", "cooldown", "ceiling", "_clock", "_lock", "_failures", "_current", "_open_until")

    def __init__(
        self,
        threshold: int = 3,
        cooldown: float = 2.0,
        ceiling: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.ceiling = ceiling
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._current = 0.0  # the last cool-down; 0 until the breaker trips
        self._open_until = 0.0

    @property
    def failures(self) -> int:
        """Consecutive failures since the last success."""
        return self._failures

    def allows(self) -> bool:
        """True unless within a cool-down: a call may be tried."""
        # One float read: no lock needed, and this runs before every call the breaker guards.
        return self._clock() >= self._open_until

    def is_open(self) -> bool:
        """True within a cool-down."""
        return not self.allows()

    def remaining(self) -> float:
        """Seconds left in the cool-down, 0.0 when closed."""
        return max(0.0, self._open_until - self._clock())

    def record_success(self) -> None:
        """A call succeeded: close, and start the next trip from `cooldown` again."""
        with self._lock:
            self._failures = 0
            self._current = 0.0
            self._open_until = 0.0

    def record_failure(self) -> float:
        """A call failed; returns the cool-down it opened (0.0 if the breaker stays closed)."""
        with self._lock:
            self._failures += 1
            if self._failures < self.threshold:
                return 0.0
            self._current = min(self.ceiling, self._current * 2 if self._current else self.cooldown)
            self._open_until = self._clock() + self._current
            return self._current

    def record(self, ok: bool) -> None:
        """`record_success()` or `record_failure()`."""
        if ok:
            self.record_success()
        else:
            self.record_failure()
