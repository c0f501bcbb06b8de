"""For tests only: fix the clock and the ids every event carries, so that a test can compare
events exactly (the shared test vectors in `tests/vectors/sdk/`, which the TypeScript SDK checks
too, do), and capture what a client would send instead of queueing it.

Nothing in the SDK imports this module, and production code should not: it replaces names in the
SDK's own modules for the duration of a `with` block, in every thread.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .client import Client
from .contract.run_ids import day_number
from .delivery.worker import Item

# The modules that stamp events: each imports some of `now_iso`, `new_id` and `new_run_id` by name, and those names are replaced.
_STAMPED = tuple(importlib.import_module(f"xray_sdk.{name}") for name in ("client", "run", "steps"))
_NAMES = ("now_iso", "new_id", "new_run_id")


@contextmanager
def fixed_clock_and_ids(start: str = "2026-01-01T00:00:00", tick_micros: int = 1000) -> Iterator[None]:
    """Within the block, timestamps are `start` (UTC, to the second), then one `tick_micros`
    later at each call; ids are 00000000-0000-4000-8000-000000000001, ...002, ... in the order
    asked, and a run's id is 00000000-DDDD-8000-8000-00000000000N, DDDD the day it carries (that
    of the next timestamp, in hex, as `xray_sdk.contract.run_ids` lays it out). The TypeScript
    SDK's `fixClockAndIds` makes the same ones."""
    base = _dt.datetime.fromisoformat(start).replace(tzinfo=_dt.UTC)
    ticks = 0
    ids = itertools.count(1)

    def moment() -> _dt.datetime:
        return base + _dt.timedelta(microseconds=ticks * tick_micros)

    def now_iso() -> str:
        nonlocal ticks
        stamp = moment().isoformat(timespec="microseconds")
        ticks += 1
        return stamp

    def new_id() -> str:
        return f"00000000-0000-4000-8000-{next(ids):012d}"

    def new_run_id(started: float | None = None) -> str:
        at = moment() if started is None else _dt.datetime.fromtimestamp(started, _dt.UTC)
        return f"00000000-{day_number(at):04x}-8000-8000-{next(ids):012d}"

    fixed = {"now_iso": now_iso, "new_id": new_id, "new_run_id": new_run_id}
    saved = [(module, name, getattr(module, name)) for module in _STAMPED for name in _NAMES if hasattr(module, name)]
    try:
        for module, name, _ in saved:
            setattr(module, name, fixed[name])
        yield
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


def capture_items(target: Client) -> list[Item]:
    """From now on, what `target` would send is appended to the returned list, not queued."""
    captured: list[Item] = []

    def deliver(item: Item) -> bool:
        captured.append(item)
        return True

    target.recorder._deliver = deliver
    return captured


def decoded(items: list[Item]) -> list[dict[str, Any]]:
    """Captured items as `{"kind", "run_id", "body"}`, the body parsed from the JSON sent."""
    return [{"kind": i.kind, "run_id": i.run_id, "body": json.loads(i.data)} for i in items]
