"""Background delivery: a bounded queue and one thread that batches, sends and retries.

The contract with the pipeline (after sentry-python's worker and OpenTelemetry's
BatchSpanProcessor, and better than both on these points):
- `submit()` never blocks and never waits on I/O; it returns whether the item was taken.
- Memory is bounded by item count and bytes; beyond the bound, items are dropped and counted.
- Batches go out by count, by bytes and by interval, each in one request (`POST /api/v1/batch`,
  whatever the number of runs in it; the server applies a run's create before its events), or,
  on a server too old to have it (404), as before: a run's create, then each run's events.
- Only what can succeed later is retried (network errors, 408, 429, 5xx), a bounded number of
  times, with exponential backoff and jitter, honouring Retry-After; a 4xx never is.
- Repeated failures open a circuit breaker: nothing is sent during a cool-down, the queue keeps
  what fits, and delivery resumes by itself when the server is back.
- After fork() the child starts empty with its own thread: nothing is sent twice.
- `stats()` reconciles exactly: enqueued == sent + dropped + pending.
"""

from __future__ import annotations

import atexit
import os
import random
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..contract.limits import DEFAULT_LIMITS
from ..ratelog import RateLimitedLog
from .breaker import CircuitBreaker
from .transport import HttpTransport, Response, TransportError

RUN = "run"
EVENT = "event"
# A judgement of a run, sent on its own (`POST /api/v1/runs/<run_id>/labels`).
LABEL = "label"
# Everything queued in one request: the run creations, events and labels of many runs.
BATCH_PATH = "/api/v1/batch"

_instances: weakref.WeakSet[Delivery] = weakref.WeakSet()


class Item:
    """One request body fragment: a run create, or one event of a run."""

    __slots__ = ("run_id", "kind", "data", "attempts", "order")

    def __init__(self, run_id: str, kind: str, data: bytes) -> None:
        self.run_id = run_id
        self.kind = kind
        self.data = data
        self.attempts = 0
        self.order = 0  # its place among the items the queue accepted, for flush()


@dataclass
class DeliveryConfig:
    """Bounds and timings of delivery. The defaults suit a pipeline on one machine."""

    max_queue_items: int = 20_000
    max_queue_bytes: int = 32 * 1024 * 1024
    batch_max_items: int = 500
    batch_max_bytes: int = 1024 * 1024
    flush_interval: float = 0.5
    max_attempts: int = 5
    backoff_base: float = 0.25
    backoff_max: float = 8.0
    retry_after_max: float = 60.0
    breaker_threshold: int = 3
    breaker_cooldown: float = 2.0
    breaker_cooldown_max: float = 30.0
    # gzip a body of at least this many bytes. None: 1 KiB to another machine, never to this one
    # (on loopback gzip costs more CPU than it saves); set it for a loopback address that is a
    # tunnel to another machine, or to a very large number for never.
    gzip_min_bytes: int | None = None


@dataclass
class _Unit:
    path: str
    items: list[Item] = field(default_factory=list)


class Delivery:
    """Owns the queue and the background thread of one client."""

    def __init__(
        self, transport: HttpTransport, config: DeliveryConfig | None = None, on_tick: Callable[[], None] | None = None
    ) -> None:
        self.transport = transport
        self.config = config or DeliveryConfig()
        self.on_tick = on_tick
        self.shutdown_timeout = 2.0
        self.log = RateLimitedLog()
        self._reset()
        _instances.add(self)

    # ------------------------------------------------------------------ pipeline side

    def submit(self, item: Item) -> bool:
        """Queue `item` for delivery; False (and counted) if it had to be dropped."""
        if self._pid != os.getpid():
            self._reset()
        c = self.config
        with self._lock:
            self._enqueued += 1
            if self._closed:
                self._dropped["closed"] += 1
                return False
            if len(self._queue) >= c.max_queue_items or self._queued_bytes + len(item.data) > c.max_queue_bytes:
                self._dropped["queue_full"] += 1
                full = True
            else:
                item.order = self._accepted
                self._queue.append(item)
                self._queued_bytes += len(item.data)
                self._accepted += 1
                full = False
            ready = len(self._queue) >= c.batch_max_items or self._queued_bytes >= c.batch_max_bytes
        if full:
            self.log.warning("queue_full", "X-Ray queue is full: dropping events (is the server reachable?)")
            return False
        if self._thread is None or not self._thread.is_alive():
            self._start_thread()
        if ready:
            self._wake.set()
        return True

    def pressure(self) -> float:
        """How full the queue is, 0.0 to 1.0, by bytes or count, whichever is higher."""
        c = self.config
        return max(self._queued_bytes / c.max_queue_bytes, len(self._queue) / c.max_queue_items)

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued before this call is delivered or dropped (items queued
        meanwhile by other threads are not waited for); False on timeout."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            # Items are not resolved in the order they were queued (a batch sends run creations
            # first, and a failed request's items go back to wait): wait for those queued before.
            target = self._accepted
            while self._waiting_before(target):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._thread is None:
                    return False
                self._wake.set()
                self._idle.wait(min(remaining, 0.05))
        return True

    def close(self, timeout: float) -> bool:
        """Flush within `timeout`, then stop; what is left is dropped as `shutdown`."""
        if self._pid != os.getpid():
            return True
        delivered = self.flush(timeout)
        with self._lock:
            self._closed = True
            left = len(self._queue)
            self._queue.clear()
            self._queued_bytes = 0
            self._dropped["shutdown"] += left
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=0.1)
        self.transport.close()
        return delivered and left == 0

    def stats(self) -> dict[str, Any]:
        """Counters that reconcile: enqueued == sent + sum(dropped) + pending."""
        with self._lock:
            dropped = dict(self._dropped)
            return {
                "enqueued": self._enqueued,
                "sent": self._sent,
                "dropped": dropped,
                "dropped_total": sum(dropped.values()),
                "pending": len(self._queue) + len(self._inflight),
                "queue_bytes": self._queued_bytes,
                "requests": self._requests,
                "retries": self._retries,
                "circuit": "open" if self._breaker.is_open() else "closed",
            }

    # ------------------------------------------------------------------ worker side

    def _reset(self) -> None:
        """Fresh state: at construction, and in a forked child (whose locks may be held)."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._queue: deque[Item] = deque()
        self._queued_bytes = 0
        self._inflight: set[int] = set()  # the orders of the items being sent
        self._enqueued = self._sent = self._requests = self._retries = 0
        self._accepted = 0  # items that entered the queue
        self._dropped: Counter[str] = Counter()
        self._closed = False
        self._thread: threading.Thread | None = None
        c = self.config
        self._breaker = CircuitBreaker(c.breaker_threshold, c.breaker_cooldown, c.breaker_cooldown_max)
        self._retry_at = 0.0  # no request before this (monotonic): backoff, Retry-After or the breaker
        self._one_request = True  # until the server answers 404 for BATCH_PATH (a server older than it)

    def _start_thread(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="xray-delivery", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.config.flush_interval)
            self._wake.clear()
            try:
                if self.on_tick is not None:
                    self.on_tick()
                self._drain()
            except Exception as exc:  # the loop must outlive any bug
                self.log.warning("worker", "X-Ray delivery error: %s", type(exc).__name__)

    def _drain(self) -> None:
        while not self._stop.is_set():
            delay = self._retry_at - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            units = self._take()
            if not units:
                return
            if not self._deliver(units):
                return

    def _take(self) -> list[_Unit]:
        c = self.config
        taken: list[Item] = []
        size = 0
        with self._lock:
            # Never more items than the server takes in one request, whatever the setting says.
            most = min(c.batch_max_items, DEFAULT_LIMITS.max_events_per_batch)
            while self._queue and len(taken) < most and (not taken or size < c.batch_max_bytes):
                item = self._queue.popleft()
                taken.append(item)
                size += len(item.data)
            self._queued_bytes -= size
            self._inflight.update(i.order for i in taken)
        if not taken:
            return []
        return [_Unit(BATCH_PATH, taken)] if self._one_request else _per_run_units(taken)

    def _deliver(self, units: list[_Unit]) -> bool:
        """Send units in order; on a retryable failure, put it and the rest back and back off."""
        for index, unit in enumerate(units):
            try:
                outcome = self._send(unit)
            except Exception as exc:  # a bug or a bizarre answer: never leave items in flight
                self._resolve(unit.items, dropped={"internal_error": len(unit.items)})
                self.log.warning(
                    "send", "X-Ray delivery error, %d events dropped: %s", len(unit.items), type(exc).__name__
                )
                continue
            if isinstance(outcome, _OlderServer):
                # Not a failure: the same items, at once, the way this server takes them.
                return self._deliver(_per_run_units(unit.items) + units[index + 1 :])
            if outcome is not None:
                self._back_off(units[index:], outcome)
                return False
        return True

    def _send(self, unit: _Unit) -> Response | TransportError | _OlderServer | None:
        """Send one unit; resolve its items unless the failure is worth retrying (returned), or
        the server has no batch endpoint (`_OLDER_SERVER`: nothing is resolved)."""
        body = _body(unit)
        self._requests += 1
        try:
            response = self.transport.post(unit.path, body)
        except TransportError as exc:
            return exc
        status = response.status
        if status in (408, 429) or status >= 500:
            return response
        self._breaker.record_success()
        if status == 404 and unit.path == BATCH_PATH:
            self._one_request = False
            self.log.warning("older_server", "X-Ray has no %s (an older server): sending each run's own", BATCH_PATH)
            return _OLDER_SERVER
        n = len(unit.items)
        rejected = _rejected(response.body, batch=unit.path == BATCH_PATH) if status == 207 else None
        if status in (200, 201):
            self._resolve(unit.items, sent=n)
        elif rejected is not None:
            rejected = min(n, rejected)
            self._resolve(unit.items, sent=n - rejected, dropped={"rejected_by_server": rejected})
            self.log.warning("rejected", "X-Ray rejected %d of %d items: %s", rejected, n, _first_error(response.body))
        else:
            self._resolve(unit.items, dropped={"rejected_by_server": n})
            self.log.warning(
                f"http_{status}",
                "X-Ray answered %d to %s: %s",
                status,
                unit.path.split("/")[-1],
                _error_code(response.body),
            )
        return None

    def _back_off(self, units: list[_Unit], failure: Response | TransportError) -> None:
        c = self.config
        failed, rest = units[0], units[1:]
        cooldown = self._breaker.record_failure()
        # The exponent is capped: a long outage must not grow the float past what it can hold.
        exponent = min(self._breaker.failures - 1, 30)
        delay = min(c.backoff_max, c.backoff_base * 2**exponent) * random.uniform(0.5, 1.0)
        if isinstance(failure, Response) and failure.retry_after is not None:
            delay = max(delay, min(failure.retry_after, c.retry_after_max))
        delay = max(delay, cooldown)
        self._retry_at = time.monotonic() + delay
        reason = f"http_{failure.status}" if isinstance(failure, Response) else "network"
        self.log.warning(f"retry_{reason}", "X-Ray unreachable (%s); retrying in %.1fs", reason, delay)
        exhausted = []
        for item in failed.items:
            item.attempts += 1
            if item.attempts >= c.max_attempts:
                exhausted.append(item)
        retry = [i for i in failed.items if i.attempts < c.max_attempts] + [i for u in rest for i in u.items]
        with self._lock:
            closed = self._closed
            if not closed:
                self._retries += 1
                self._queue.extendleft(reversed(retry))
                self._queued_bytes += sum(len(i.data) for i in retry)
                self._inflight.difference_update(i.order for i in retry)
        if closed:  # close() already gave up on the queue: these go the same way
            self._resolve(retry, dropped={"shutdown": len(retry)})
        if exhausted:
            self._resolve(exhausted, dropped={"retries_exhausted": len(exhausted)})

    def _waiting_before(self, order: int) -> bool:
        """Whether an item queued before `order` is still queued or being sent (under the lock)."""
        return any(o < order for o in self._inflight) or any(i.order < order for i in self._queue)

    def _resolve(self, items: list[Item], *, sent: int = 0, dropped: dict[str, int] | None = None) -> None:
        with self._lock:
            self._inflight.difference_update(i.order for i in items)
            self._sent += sent
            for reason, n in (dropped or {}).items():
                if n:
                    self._dropped[reason] += n
            self._idle.notify_all()


def _error_code(body: Any) -> str:
    try:
        return str(body["error"]["code"])
    except Exception:
        return "no error body"


def _first_error(body: Any) -> str:
    try:
        if "rejected" not in body:  # a multi-run batch's answer: the first list with a refusal
            kind = next(k for k in _BATCH_LISTS if body[k]["rejected"])
            first = body[kind]["rejected"][0]
            return f"{kind[:-1]} {first['index']}: {first['code']}, fields {sorted(first['errors'])}"
        first = body["rejected"][0]
        return f"event {first['index']}: fields {sorted(first['errors'])}"
    except Exception:
        return "no details"


class _OlderServer:
    """What `_send` returns when the server has no batch endpoint."""


_OLDER_SERVER = _OlderServer()
_BATCH_LISTS = ("runs", "events", "labels")


def _per_run_units(items: list[Item]) -> list[_Unit]:
    """The requests of a server without the batch endpoint: each create, each run's events, each label."""
    creates = [_Unit("/api/v1/runs", [i]) for i in items if i.kind == RUN]
    by_run: dict[str, _Unit] = {}
    for item in items:
        if item.kind == EVENT:
            by_run.setdefault(item.run_id, _Unit(f"/api/v1/runs/{item.run_id}/events")).items.append(item)
    labels = [_Unit(f"/api/v1/runs/{i.run_id}/labels", [i]) for i in items if i.kind == LABEL]
    return creates + list(by_run.values()) + labels


def _body(unit: _Unit) -> bytes:
    """A unit's request body, from the items' encoded JSON without decoding it: a batch's events and
    labels name their run by a key spliced in before their first."""
    if unit.path == BATCH_PATH:
        lists: dict[str, list[bytes]] = {RUN: [], EVENT: [], LABEL: []}
        for item in unit.items:
            lists[item.kind].append(item.data if item.kind == RUN else _naming_run(item))
        return b'{"runs":[%b],"events":[%b],"labels":[%b]}' % tuple(b",".join(lists[k]) for k in (RUN, EVENT, LABEL))
    if unit.items[0].kind == EVENT:
        return b'{"events":[' + b",".join(i.data for i in unit.items) + b"]}"
    return unit.items[0].data


def _naming_run(item: Item) -> bytes:
    key = b'{"run_id":"' + item.run_id.encode() + b'"'
    return key + (b"}" if item.data == b"{}" else b"," + item.data[1:])


def _rejected(body: Any, *, batch: bool) -> int | None:
    """How many items a 207 refused, or None when the answer is not one X-Ray gives."""
    if not isinstance(body, dict):
        return None
    if not batch:
        return len(body["rejected"]) if isinstance(body.get("rejected"), list) else None
    total = 0
    for key in _BATCH_LISTS:
        part = body.get(key)
        if not isinstance(part, dict) or not isinstance(part.get("rejected"), list):
            return None
        total += len(part["rejected"])
    return total


def _after_fork_in_child() -> None:
    for delivery in list(_instances):
        delivery._reset()


def _close_all_at_exit() -> None:
    """At interpreter exit, give every delivery of this process one shared deadline (the
    largest `shutdown_timeout` among them), so that many clients do not add up their waits."""
    deliveries = [d for d in list(_instances) if d._pid == os.getpid()]
    if not deliveries:
        return
    deadline = time.monotonic() + max(d.shutdown_timeout for d in deliveries)
    for delivery in deliveries:
        try:
            delivery.close(max(0.0, deadline - time.monotonic()))
        except Exception:
            pass


atexit.register(_close_all_at_exit)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
