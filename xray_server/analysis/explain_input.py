"""Whether a step's empty output follows from what it was given: held to the earlier runs whose
step before it ended most alike, not to every earlier run.

A filter that keeps nothing in one run in ten can be doing its job (those runs had nothing that
could pass: the step before it scored every candidate low) or failing (the same filter, given what
it usually gets, rejected everything). The unconditional share of empty outputs cannot tell them
apart; the share among the runs whose previous step looked the same can.
"""

from __future__ import annotations

import bisect
from typing import Any

from xray_server.analysis import thresholds as t
from xray_server.analysis.baseline import numeric_features


def explained_by_input(
    step: dict[str, Any], run_steps: list[dict[str, Any]], baseline_steps: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """When earlier runs given alike input mostly came out empty at `step` too: which step's numbers
    made them alike, how many runs, and the share that were empty; else None."""
    before = _previous(step, run_steps)
    if before is None:
        return None
    context = _context(before)
    if not context:
        return None
    by_run: dict[str, dict[str, dict[str, Any]]] = {}
    for s in baseline_steps:
        by_run.setdefault(s["run_id"], {})[s["name"]] = s
    rows = []
    for steps in by_run.values():
        prior, this = steps.get(before["name"]), steps.get(step["name"])
        if prior is None or this is None or not isinstance(this["metrics"].get("candidates_out"), int):
            continue
        rows.append((_context(prior), this["metrics"]["candidates_out"] == 0))
    if len(rows) < t.MIN_BASELINE:
        return None
    columns = {f: sorted(r[0][f] for r in rows if f in r[0]) for f in context}
    columns = {f: v for f, v in columns.items() if len(v) >= t.MIN_BASELINE}
    if not columns:
        return None
    here = {f: _percentile(columns[f], context[f]) for f in columns}
    distances = sorted(
        (max(abs(_percentile(columns[f], ctx[f]) - here[f]) if f in ctx else 1.0 for f in columns), empty)
        for ctx, empty in rows
    )
    nearest = distances[: t.NEIGHBOURS]
    share = sum(1 for _, empty in nearest if empty) / len(nearest)
    if share <= t.MAX_TAIL_SHARE:
        return None
    return {"after": before["name"], "alike_runs": len(nearest), "empty_share": round(share, 3)}


def _previous(step: dict[str, Any], run_steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The step's sibling that ran just before it (same parent), if any."""
    siblings = [
        s for s in run_steps if s.get("parent_step_id") == step.get("parent_step_id") and s["seq"] < step["seq"]
    ]
    return max(siblings, key=lambda s: s["seq"]) if siblings else None


def _context(step: dict[str, Any]) -> dict[str, float]:
    """What a step handed on, in numbers: its output count and its own metrics, not its duration."""
    return {f: v for f, (v, _) in numeric_features(step).items() if f not in ("candidates_in", "duration_ms")}


def _percentile(ordered: list[float], value: float) -> float:
    """The mid-rank percentile of `value` among `ordered` (ties share one percentile)."""
    return (bisect.bisect_left(ordered, value) + bisect.bisect_right(ordered, value)) / (2 * len(ordered))
