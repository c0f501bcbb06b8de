"""Build valid X-Ray events for tests, the way a client would send them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any


def new_id() -> str:
    return str(uuid.uuid4())


def ts(offset_seconds: float = 0.0, base: datetime | None = None) -> str:
    base = base or datetime.now(UTC)
    return (base + timedelta(seconds=offset_seconds)).isoformat()


def step_start(step_id: str, seq: int, name: str, step_type: str, *, at: str | None = None, **extra: Any) -> dict:
    return {
        "event_id": new_id(),
        "type": "step_start",
        "ts": at or ts(),
        "step_id": step_id,
        "seq": seq,
        "name": name,
        "step_type": step_type,
        **extra,
    }


def step_end(
    step_id: str, seq: int, name: str, step_type: str, *, at: str | None = None, status: str = "ok", **extra: Any
) -> dict:
    return {
        "event_id": new_id(),
        "type": "step_end",
        "ts": at or ts(),
        "step_id": step_id,
        "seq": seq,
        "name": name,
        "step_type": step_type,
        "status": status,
        **extra,
    }


def run_finish(status: str = "ok", *, at: str | None = None, **extra: Any) -> dict:
    return {"event_id": new_id(), "type": "run_finish", "ts": at or ts(), "status": status, **extra}


def competitor_run(drop_ratio_bad: bool = False, base: datetime | None = None) -> list[dict]:
    """The events of a five-step competitor-selection run; its filter is bad if asked."""
    base = base or datetime.now(UTC)
    out, score = (12, 0.41) if drop_ratio_bad else (640, 0.93)
    steps = [
        ("generate_keywords", "llm", {"model": "fake-llm-1", "temperature": 0.2}, "asked for 5 keywords"),
        ("search_catalogue", "search", {"results": 2000}, "2000 hits for 5 keywords"),
        ("compat_filter", "filter", {"candidates_in": 2000, "candidates_out": out}, "kept same-category items"),
        # What the bad filter left holds no good match: the best score the rank finds falls with it.
        ("rank_candidates", "rank", {"candidates_in": out, "candidates_out": 10, "score_max": score}, "by similarity"),
        ("select_best", "select", {"chosen": 1}, "highest score"),
    ]
    events = []
    for seq, (name, step_type, metrics, why) in enumerate(steps):
        step_id = new_id()
        events.append(step_start(step_id, seq, name, step_type, at=ts(seq, base), input={"seq": seq}))
        events.append(
            step_end(
                step_id, seq, name, step_type, at=ts(seq + 0.5, base), metrics=metrics, why=why, output={"ok": True}
            )
        )
    events.append(run_finish(at=ts(len(steps), base), outcome={"competitor": "B0TEST"}))
    return events
