"""Diff: two runs of a pipeline lined up step by step, with what changed. Served at
`GET /api/v1/runs/<run_a>/diff/<run_b>`."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from xray_server import query
from xray_server.storage.pool import Database

_COMPARED = ("status", "why", "output", "error", "contract_violations")


def diff_stored_runs(db: Database, run_a: str, run_b: str) -> dict[str, Any]:
    """Diff two stored runs."""
    return diff_runs(query.get_run(db, run_a), query.get_run(db, run_b))


def diff_runs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Align the steps of runs `a` and `b` by name (and occurrence) and list the differences."""
    left, right = _by_key(a["steps"]), _by_key(b["steps"])
    keys = sorted(set(left) | set(right), key=lambda k: (min(s["seq"] for s in (left.get(k), right.get(k)) if s), k))
    steps = []
    for key in keys:
        sa, sb = left.get(key), right.get(key)
        if sa is None or sb is None:
            steps.append({"name": key[0], "only_in": "a" if sb is None else "b", "changes": {}})
            continue
        changes = _metric_changes(sa["metrics"], sb["metrics"])
        for field in _COMPARED:
            if sa.get(field) != sb.get(field):
                changes[field] = [sa.get(field), sb.get(field)]
        steps.append({"name": key[0], "seq": [sa["seq"], sb["seq"]], "changes": changes})
    return {
        "a": _summary(a),
        "b": _summary(b),
        "same_pipeline": a["pipeline"] == b["pipeline"],
        "outcome": None if a["outcome"] == b["outcome"] else [a["outcome"], b["outcome"]],
        "steps": steps,
    }


def _by_key(steps: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    seen: dict[str, int] = defaultdict(int)
    keyed = {}
    for step in sorted(steps, key=lambda s: s["seq"]):
        keyed[(step["name"], seen[step["name"]])] = step
        seen[step["name"]] += 1
    return keyed


def _metric_changes(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {
        f"metrics.{name}": [a.get(name), b.get(name)] for name in sorted(set(a) | set(b)) if a.get(name) != b.get(name)
    }


def _summary(run: dict[str, Any]) -> dict[str, Any]:
    return {key: run[key] for key in ("run_id", "pipeline", "entity", "status", "tags")}
