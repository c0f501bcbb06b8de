"""Whether a step's empty output follows from what it was given: held to the earlier runs whose
step before it ended most alike, not to every earlier run.

A filter that keeps nothing in one run in ten can be doing its job (those runs had nothing that
could pass: the step before it scored every candidate low) or failing (the same filter, given what
it usually gets, rejected everything). The unconditional share of empty outputs cannot tell them
apart; the share among the runs whose previous step handed on alike numbers can. Each number the
previous step recorded is tried on its own (the runs nearest in its percentile): one number that
says "runs like this came out empty" is enough, where requiring every number to be alike at once
would leave too few alike runs.
"""

from __future__ import annotations

import bisect
from typing import Any

from xray_server.analysis import thresholds as t
from xray_server.analysis.baseline import numeric_features


def by_run(baseline_steps: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Earlier runs' steps, by run and step name."""
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    for s in baseline_steps:
        runs.setdefault(s["run_id"], {})[s["name"]] = s
    return runs


def explained_by_input(
    step: dict[str, Any], run_steps: list[dict[str, Any]], earlier_runs: dict[str, dict[str, dict[str, Any]]]
) -> dict[str, Any] | None:
    """When earlier runs (`by_run`) given alike input mostly came out empty at `step` too: which step
    and which of its numbers made them alike, how many runs, and the share that were empty; else
    None."""
    before = _previous(step, run_steps)
    if before is None:
        return None
    context = _context(before)
    if not context:
        return None
    rows = []
    for steps in earlier_runs.values():
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
    alike_runs = max(t.MIN_ALIKE, round(t.ALIKE_SHARE * len(rows)))
    best: tuple[float, str] | None = None
    for feature, ordered in columns.items():
        here = _percentile(ordered, context[feature])
        alike = sorted(
            (abs(_percentile(ordered, ctx[feature]) - here), empty) for ctx, empty in rows if feature in ctx
        )[:alike_runs]
        share = sum(1 for _, empty in alike if empty) / len(alike)
        if best is None or share > best[0]:
            best = (share, feature)
    if best is None or best[0] <= t.MAX_TAIL_SHARE:
        return None
    share, feature = best
    return {"after": before["name"], "feature": feature, "alike_runs": alike_runs, "empty_share": round(share, 3)}


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
