"""The events the ingest benchmarks send: plain `step_end`s of a filter, as the SDK sends a
step shorter than a second (three metrics and a `why`)."""

from __future__ import annotations

import uuid
from typing import Any

from xray_sdk.values import now_iso


def filter_step_ends(count: int) -> list[dict[str, Any]]:
    """`count` step_end events of one run, seq 0 to count - 1."""
    return [
        {
            "event_id": str(uuid.uuid4()),
            "type": "step_end",
            "ts": now_iso(),
            "step_id": str(uuid.uuid4()),
            "seq": i,
            "name": "compat_filter",
            "step_type": "filter",
            "status": "ok",
            "started_at": now_iso(),
            "metrics": {"candidates_in": 2000, "candidates_out": 40 + i % 50},
            "why": "kept same-category candidates",
        }
        for i in range(count)
    ]
