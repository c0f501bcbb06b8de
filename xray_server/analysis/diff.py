"""Diff: two runs of a pipeline lined up step by step, with what changed. Served at
`GET /api/v1/runs/<run_a>/diff/<run_b>`."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from xray_server import query
from xray_server.storage.pool import Database

_COMPARED = ("status", "why", "input", "output", "error", "contract_violations")
# What the runs were given and how they are labelled: often the decisive difference (a tag that
# routes a run to another model, an input in another language).
_RUN_FIELDS = ("entity", "tags", "metadata")


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
        changes = _keyed_changes("metrics", sa["metrics"], sb["metrics"])
        # A reason a step did not give removed 0 candidates: compared as such, never as missing.
        changes |= _keyed_changes("rejections", sa.get("rejections") or {}, sb.get("rejections") or {}, missing=0)
        for field in _COMPARED:
            if sa.get(field) != sb.get(field):
                changes[field] = [sa.get(field), sb.get(field)]
        steps.append({"name": key[0], "seq": [sa["seq"], sb["seq"]], "changes": changes})
    return {
        "a": _summary(a),
        "b": _summary(b),
        "same_pipeline": a["pipeline"] == b["pipeline"],
        "run": _run_changes(a, b),
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


def _keyed_changes(prefix: str, a: dict[str, Any], b: dict[str, Any], missing: Any = None) -> dict[str, Any]:
    """`prefix.key: [a's, b's]` for each key whose value differs (`missing` where a side lacks it)."""
    return {
        f"{prefix}.{key}": [a.get(key, missing), b.get(key, missing)]
        for key in sorted(set(a) | set(b))
        if a.get(key, missing) != b.get(key, missing)
    }


def _run_changes(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """What differs between the runs themselves: entity, and each tag and metadata key."""
    changes: dict[str, Any] = {}
    for field in _RUN_FIELDS:
        left, right = a.get(field), b.get(field)
        if isinstance(left, dict) or isinstance(right, dict):
            changes |= _keyed_changes(field, left or {}, right or {})
        elif left != right:
            changes[field] = [left, right]
    return changes


def _summary(run: dict[str, Any]) -> dict[str, Any]:
    return {key: run[key] for key in ("run_id", "pipeline", "entity", "status", "tags")}
