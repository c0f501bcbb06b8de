"""From a run's symptom to its cause: what went wrong (`symptom_of`), and which step's own
behaviour changed to make it so (`trace`), reading a fallen score or an output that had nothing
good to work with as a recall loss where a search shows it supplied worse candidates
(`explain_recall.py`). The rules are `explain.py`'s docstring; the numbers `thresholds.py`'s."""

from __future__ import annotations

from typing import Any

from xray_sdk.contract.vocabulary import StepType
from xray_server.analysis.baseline import COUNTS, StepBaseline, numeric_features
from xray_server.analysis.explain_recall import (
    SCORERS,
    Ends,
    fell_far,
    is_score,
    truncation_recall,
    upstream_recall,
    worse_matches,
)
from xray_server.analysis.findings import Finding, FindingClass, Strength, Symptom, SymptomKind

# The candidate counts: a step's volumes.
VOLUMES = COUNTS
# Within a step, what says most about its own behaviour comes first: a changed model or setting,
# then its reasons and ratio, its scores, its output count (which follows from them), its input,
# its duration.
FEATURE_ORDER = {"drop_ratio": 2, "candidates_out": 4, "candidates_in": 5, "duration_ms": 6}
SYMPTOM_ORDER = list(SymptomKind)


def symptom_of(findings: list[Finding], steps: list[dict[str, Any]]) -> Symptom | None:
    """What went wrong in the run, the most serious first, or None."""
    end = final_decisions(steps)
    found: list[tuple[int, int, Symptom]] = []
    for f in findings:
        if f.strength is not Strength.STRONG:
            continue
        kind = None
        if f.cls is FindingClass.FAULT:
            kind = SymptomKind.ERROR
        elif f.kind == "empty":
            kind = SymptomKind.EMPTY
        elif f.kind == "violation":
            kind = SymptomKind.MISSING_METRICS
        elif f.cls is FindingClass.TIME:
            kind = SymptomKind.SLOW
        elif f.worse and f.step.step_id in end and f.cls is FindingClass.DECISION:
            kind = SymptomKind.WORSE_END
        if kind is not None:
            found.append((SYMPTOM_ORDER.index(kind), f.step.seq, Symptom(kind, f.step, f.message)))
    return min(found, key=lambda x: (x[0], x[1]))[2] if found else None


def final_decisions(steps: list[dict[str, Any]]) -> set[str]:
    """The run's final decision: its last top-level step, and when that is a select, the rank just
    before it (a select takes the rank's best: the rank's scores are the chosen one's)."""
    top = [s for s in steps if not s.get("parent_step_id")]
    if not top:
        return set()
    end = {top[-1]["step_id"]}
    if top[-1]["step_type"] == StepType.SELECT.value and len(top) > 1 and top[-2]["step_type"] == StepType.RANK.value:
        end.add(top[-2]["step_id"])
    return end


def trace(
    symptom: Symptom,
    findings: list[Finding],
    steps: list[dict[str, Any]],
    baselines: dict[str, StepBaseline],
    earlier_runs: dict[str, dict[str, dict[str, Any]]],
) -> Finding | None:
    """The cause of `symptom`: a fault, else the earliest own finding at or before it (a time
    symptom is its own cause); a weak finding when corroborated; the innermost of nested steps;
    a score that fell with nothing else changed at its step, traced to the search that supplied it;
    else, for a symptom nothing at or before it explains, a search that found far worse matches
    than usual, or one truncated at its limit when earlier runs show its truncation led there."""
    ends = _ends_like(symptom, findings)
    cause = _own_cause(symptom, findings, steps, baselines, ends, earlier_runs)
    if cause is None and symptom.kind in (SymptomKind.EMPTY, SymptomKind.WORSE_END):
        cause = worse_matches(symptom, steps, baselines) or truncation_recall(
            symptom, steps, symptom.step.seq, ends, earlier_runs
        )
    return cause


def _own_cause(
    symptom: Symptom,
    findings: list[Finding],
    steps: list[dict[str, Any]],
    baselines: dict[str, StepBaseline],
    ends: Ends | None,
    earlier_runs: dict[str, dict[str, dict[str, Any]]],
) -> Finding | None:
    by_id = {s["step_id"]: s for s in steps}
    # The symptom's step and the steps nested in it (which start after it) are at or before it.
    reach = max([symptom.step.seq] + [f.step.seq for f in findings if descends(f, symptom.step.step_id, by_id)])
    before = [
        f
        for f in findings
        if f.own
        and f.step.seq <= reach
        and f.cls is not FindingClass.EVIDENCE
        # A slow run is slowed by its slow step, whatever else is unusual in it.
        and ((f.cls is FindingClass.TIME) == (symptom.kind is SymptomKind.SLOW) or f.cls is FindingClass.FAULT)
    ]
    strong = [f for f in before if f.strength is Strength.STRONG]
    first_strong = min((f.step.seq for f in strong), default=None)
    weak = [
        f
        for f in before
        if f.strength is Strength.WEAK
        and (f.corroborated or any(g.step.seq > f.step.seq and g.strength is Strength.STRONG for g in findings))
        and (first_strong is None or f.step.seq < first_strong)
    ]
    # A step that output nothing after a rank scored everything far lower than usual, or after a
    # search or rank whose best fell far down its tail, was given nothing that could pass: its
    # emptiness follows (a select that chose none of worse candidates did its job).
    scored_low = min(
        [f.step.seq for f in strong if is_score(f) and f.worse]
        + [s["seq"] for s in steps if s["step_type"] in SCORERS and fell_far(s, baselines.get(s["name"]))],
        default=None,
    )
    kept = [
        f
        for f in strong + weak
        if _can_cause(f) and not (f.kind == "empty" and scored_low is not None and f.step.seq > scored_low)
    ]
    if not kept:
        return None
    # A fault is its own step's; otherwise the earliest step whose own behaviour changed. A score
    # that fell is read last of all (a later step's change, not a supplier's, is nearer to it).
    faults = [f for f in kept if f.cls is FindingClass.FAULT]
    chosen = sorted(faults or kept, key=_cause_order)
    for found in chosen:
        inner = [f for f in chosen if descends(f, found.step.step_id, by_id)]
        cause = upstream_recall(
            min(inner, key=_cause_order) if inner else found, findings, steps, baselines, ends, earlier_runs
        )
        if cause is not None:
            return cause
    return None


def _can_cause(f: Finding) -> bool:
    """A count can cause a worse outcome by falling, not by rising: a search that returned more than
    usual is most often a kind of input, and what the next step made of it is that step's own."""
    return f.feature not in VOLUMES or f.kind == "empty" or f.worse


def _ends_like(symptom: Symptom, findings: list[Finding]) -> Ends | None:
    """Whether an earlier run (its steps by name) ended like this one: the symptom's step output
    nothing too, or its final decision was at least as far on the worse side. None when the
    symptom is no number to compare (then no earlier run can vouch for a cause upstream)."""
    name = symptom.step.name
    if symptom.kind is SymptomKind.EMPTY:
        return lambda run: name in run and run[name]["metrics"].get("candidates_out") == 0
    worse = next(
        (
            f
            for f in findings
            if f.step.step_id == symptom.step.step_id and f.worse and f.feature and "value" in f.evidence
        ),
        None,
    )
    if worse is None or worse.feature is None:
        return None
    feature, value, lower = worse.feature, worse.evidence["value"], worse.evidence["value"] < worse.evidence["usual"]

    def ended_worse(run: dict[str, dict[str, Any]]) -> bool:
        earlier = numeric_features(run[name]).get(feature) if name in run else None
        return earlier is not None and (earlier[0] <= value if lower else earlier[0] >= value)

    return ended_worse


def _cause_order(f: Finding) -> tuple[int, int, float]:
    return f.step.seq, feature_rank(f), -f.score


def feature_rank(f: Finding) -> int:
    if f.feature is None or f.kind == "changed":
        return 0
    if f.feature.startswith("reason:"):
        return 1
    return FEATURE_ORDER.get(f.feature, 3)


def descends(f: Finding, ancestor: str, steps: dict[str, dict[str, Any]]) -> bool:
    parent = f.step.parent_step_id
    while parent:
        if parent == ancestor:
            return True
        parent = (steps.get(parent) or {}).get("parent_step_id")
    return False
