"""Rows of the hot tier as the API shows them: runs, steps and artifact references."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from xray_sdk.contract.vocabulary import STANDARD_METRICS

from xray_server.errors import ValidationFailed
from xray_server.jsonio import iso_utc
from xray_server.query import cursor as cursors


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso_utc(moment)


def _duration_ms(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000, 3)


def run_summary(r: dict[str, Any]) -> dict[str, Any]:
    """A run as the API shows it."""
    return {
        "run_id": str(r["run_id"]),
        "pipeline": r["pipeline"],
        "entity": r["entity"],
        "tags": r["tags"],
        "metadata": r["metadata"],
        "status": r["status"],
        "outcome": r["outcome"],
        "error": r["error"],
        "implicit": r["implicit"],
        "started_at": iso(r["started_at"]),
        "ended_at": iso(r["ended_at"]),
        "duration_ms": _duration_ms(r["started_at"], r["ended_at"]),
    }


def _metrics(r: dict[str, Any]) -> dict[str, Any]:
    merged = {name: r[name] for name in STANDARD_METRICS if r[name] is not None}
    merged.update(r["metrics"] or {})
    return merged


def step_summary(r: dict[str, Any]) -> dict[str, Any]:
    """A step as the cross-run query shows it (no input/output: those are in the run view)."""
    view = {
        "run_id": str(r["run_id"]),
        "step_id": str(r["step_id"]),
        "parent_step_id": str(r["parent_step_id"]) if r["parent_step_id"] else None,
        "seq": r["seq"],
        "name": r["name"],
        "step_type": r["step_type"],
        "status": r["status"],
        "started_at": iso(r["started_at"]),
        "ended_at": iso(r["ended_at"]),
        "duration_ms": _duration_ms(r["started_at"], r["ended_at"]),
        "metrics": _metrics(r),
        "why": r["why"],
        "error": r["error"],
        "contract_violations": r["contract_violations"] or [],
        "rejections": r["rejections"] or {},
    }
    if "pipeline" in r:
        view["pipeline"] = r["pipeline"]
        view["entity"] = r["entity"]
    return view


def step_detail(r: dict[str, Any], artifacts: list[dict[str, Any]]) -> dict[str, Any]:
    """A step as the run view shows it: everything the hot tier holds."""
    view = step_summary(r)
    view["input"] = r["input"]
    view["output"] = r["output"]
    view["artifacts"] = artifacts
    return view


def artifact_view(a: dict[str, Any]) -> dict[str, Any]:
    """An artifact reference: where the evidence is, or why it was not kept."""
    return {
        "artifact_id": str(a["artifact_id"]),
        "name": a["name"],
        "capture": a["capture"],
        "content_type": a["content_type"],
        "status": a["status"],
        "drop_reason": a["drop_reason"],
        "store_key": a["store_key"],
        "size_bytes": a["size_bytes"],
        "sha256": a["sha256"],
        "link": f"/api/v1/artifacts/{a['artifact_id']}" if a["status"] == "stored" else None,
    }



def paginate(rows: list[dict[str, Any]], limit: int,
             key: Callable[[dict[str, Any]], tuple[Any, ...]]) -> tuple[list[dict[str, Any]], str | None]:
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, cursors.encode(*key(page[-1]))


def check_window(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise ValidationFailed({"since": ["must be earlier than until"]})
