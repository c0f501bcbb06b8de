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
from .delivery.worker import Item

# The modules that stamp events (by name: the package's `step` is the decorator, not the module);
# each imports `now_iso` and `new_id` by name, and those names are what is replaced.
_STAMPED = tuple(importlib.import_module(f"xray_sdk.{name}") for name in ("client", "run", "step"))


@contextmanager
def fixed_clock_and_ids(start: str = "2026-01-01T00:00:00", tick_micros: int = 1000) -> Iterator[None]:
    """Within the block, timestamps are `start` (UTC, to the second), then one `tick_micros`
    later at each call, and ids are 00000000-0000-4000-8000-000000000001, ...002, ... in the
    order asked (the TypeScript SDK's `fixClockAndIds` makes the same ones)."""
    base = _dt.datetime.fromisoformat(start).replace(tzinfo=_dt.UTC)
    ticks = itertools.count()
    ids = itertools.count(1)

    def now_iso() -> str:
        return (base + _dt.timedelta(microseconds=next(ticks) * tick_micros)).isoformat(timespec="microseconds")

    def new_id() -> str:
        return f"00000000-0000-4000-8000-{next(ids):012d}"

    saved = [(module, module.now_iso, module.new_id) for module in _STAMPED]
    try:
        for module in _STAMPED:
            setattr(module, "now_iso", now_iso)  # noqa: B010 (a module's global, replaced on purpose)
            setattr(module, "new_id", new_id)  # noqa: B010
        yield
    finally:
        for module, saved_now, saved_id in saved:
            setattr(module, "now_iso", saved_now)  # noqa: B010
            setattr(module, "new_id", saved_id)  # noqa: B010


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
