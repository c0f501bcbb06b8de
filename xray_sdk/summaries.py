"""Summaries and samples of candidate lists: what the contract's capture levels keep."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .serialize import to_json_safe


def field_value(item: Any, name: str) -> Any:
    """`item[name]` for a mapping, `item.name` otherwise, None when absent."""
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


def summarize(items: Iterable[Any], *, fields: Sequence[str] = (), examples: int = 3, top: int = 5) -> dict[str, Any]:
    """The `summary` capture of a candidate list: its count, a few examples, and for each
    of `fields` the `top` most frequent values with their counts (the rest as `_other`)."""
    items = list(items)
    summary: dict[str, Any] = {"count": len(items)}
    if examples:
        summary["examples"] = [to_json_safe(item) for item in items[:examples]]
    if fields:
        summary["distributions"] = {name: _distribution(items, name, top) for name in fields}
    return summary


def _distribution(items: list[Any], name: str, top: int) -> dict[str, int]:
    counts = Counter(str(to_json_safe(field_value(item, name))) for item in items)
    common = dict(counts.most_common(top))
    other = sum(counts.values()) - sum(common.values())
    if other:
        common["_other"] = other
    return common


def sample(items: Iterable[Any], k: int, *, seed: int | str = 0) -> list[Any]:
    """A reproducible sample of at most `k` items, in their original order (the `sample` capture)."""
    items = list(items)
    if len(items) <= k:
        return items
    chosen = sorted(random.Random(seed).sample(range(len(items)), k))
    return [items[i] for i in chosen]
