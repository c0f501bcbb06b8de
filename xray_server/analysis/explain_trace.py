"""From a run's symptom to its cause: what went wrong (`symptom_of`), and which step's own
behaviour changed to make it so (`trace`), reading a fallen score as a recall loss where a search
shows it lost candidates. The rules are `explain.py`'s docstring; the numbers `thresholds.py`'s."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xray_sdk.contract.vocabulary import StepType
from xray_server.analysis import explain_text as describe
from xray_server.analysis import thresholds as t
from xray_server.analysis.baseline import COUNTS, StepBaseline, numeric_features
from xray_server.analysis.explain_tie import EarlierRun, tie
from xray_server.analysis.findings import Finding, FindingClass, StepRef, Strength, Symptom, SymptomKind

# The candidate counts: a step's volumes.
VOLUMES = COUNTS
# The steps that supply candidates: a recall loss is theirs.
SOURCES = (StepType.SEARCH.value,)
# The metric a search records its result limit in: a count at the limit was truncated.
LIMIT_METRIC = "limit"
# Within a step, what says most about its own behaviour comes first: a changed model or setting,
# then its reasons and ratio, its scores, its output count (which follows from them), its input,
# its duration.
FEATURE_ORDER = {"drop_ratio": 2, "candidates_out": 4, "candidates_in": 5, "duration_ms": 6}
SYMPTOM_ORDER = list(SymptomKind)
# Whether an earlier run (its steps by name) ended like the run explained.
Ends = Callable[[EarlierRun], bool]


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
    else a search truncated at its limit, when earlier runs show its truncation led to the symptom."""
    ends = _ends_like(symptom, findings)
    cause = _own_cause(symptom, findings, steps, baselines, ends, earlier_runs)
    if cause is None and symptom.kind in (SymptomKind.EMPTY, SymptomKind.WORSE_END):
        cause = _truncation_recall(symptom, steps, symptom.step.seq, ends, earlier_runs)
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
    # A step that output nothing after a rank scored everything far lower than usual was given
    # nothing that could pass: its emptiness follows.
    scored_low = min((f.step.seq for f in strong if _is_score(f) and f.worse), default=None)
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
        cause = _upstream_recall(
            min(inner, key=_cause_order) if inner else found, findings, steps, baselines, ends, earlier_runs
        )
        if cause is not None:
            return cause
    return None


def _can_cause(f: Finding) -> bool:
    """A count can cause a worse outcome by falling, not by rising: a search that returned more than
    usual is most often a kind of input, and what the next step made of it is that step's own."""
    return f.feature not in VOLUMES or f.kind == "empty" or f.worse


def _upstream_recall(
    cause: Finding,
    findings: list[Finding],
    steps: list[dict[str, Any]],
    baselines: dict[str, StepBaseline],
    ends: Ends | None,
    earlier_runs: dict[str, dict[str, dict[str, Any]]],
) -> Finding | None:
    """A rank's or select's score that fell while nothing else of the step changed (no new model or
    setting, as many candidates as usual) says the candidates it was given were worse. The latest
    search before it that shows it lost some is the cause: one whose own best score fell with the
    rank's, or one truncated at its recorded `limit` when earlier runs show its truncation leads
    to this end (`_truncation_recall`). When none does, nothing says the best candidate was ever
    there to find (an entity with no match scores low too): the fall is no cause. Any other
    finding is returned as it is."""
    if not _is_score(cause) or not cause.worse:
        return cause
    if any(f.step.step_id == cause.step.step_id and f.kind == "changed" for f in findings):
        return cause
    # The latest search before it that shows it lost candidates (of several, the nearest).
    sources = [
        s
        for s in steps
        if s["seq"] < cause.step.seq and s["step_type"] in SOURCES and _scored_lower(s, baselines.get(s["name"]))
    ]
    if not sources:
        return _truncation_recall(cause, steps, cause.step.seq, ends, earlier_runs)
    source = max(sources, key=lambda s: s["seq"])
    ref = StepRef.of(source)
    return Finding(
        "recall",
        FindingClass.DECISION,
        Strength.STRONG,
        True,
        cause.score,
        ref,
        describe.recall(source, cause),
        source["why"],
        cause.feature,
        True,
        False,
        {**cause.evidence, "seen_at": cause.step.name},
    )


def _truncation_recall(
    seen: Finding | Symptom,
    steps: list[dict[str, Any]],
    before: int,
    ends: Ends | None,
    earlier_runs: dict[str, dict[str, dict[str, Any]]],
) -> Finding | None:
    """The latest search before step `before` that was truncated at its recorded limit, when the
    earlier runs whose same search was truncated ended like this run (`ends`) significantly more
    often than the runs whose search was not: a cap that cuts what a later step needed. A
    truncation that leads nowhere in particular (an entity with no match is truncated as often as
    any other) is no cause, however bad this run's end. When almost none of the earlier runs whose
    search returned less than its limit ended like this one (none may have, yet: a bug's first
    runs), and there are enough of them to say so, the end is no usual thing without the cap, and
    the cap is named: nothing says an uncut search gets here."""
    if ends is None:
        return None
    sources = [s for s in steps if s["seq"] <= before and s["step_type"] in SOURCES and _truncated(s)]
    for source in sorted(sources, key=lambda s: -s["seq"]):
        table = tie(earlier_runs, _truncated_in(source["name"]), ends)
        if table is None:
            continue
        only_when_cut = table.other_share <= t.RARE_END_SHARE and table.other_runs >= t.MIN_UNCUT_RUNS
        if not (only_when_cut or table.significant):
            continue
        ref = StepRef.of(source)
        p = table.p_value
        evidence = {
            "limit": source["metrics"].get(LIMIT_METRIC),
            "truncated_runs": table.with_runs,
            "truncated_share": round(table.with_share, 3),
            "other_runs": table.other_runs,
            "other_share": round(table.other_share, 3),
            "p_value": p,
            "only_when_cut": only_when_cut and not table.significant,
            "seen_at": seen.step.name,
        }
        return Finding(
            "recall",
            FindingClass.DECISION,
            Strength.STRONG,
            True,
            round(1 - p, 4),
            ref,
            describe.truncation(source, seen.step.name, evidence),
            source["why"],
            "candidates_out",
            True,
            False,
            evidence,
        )
    return None


def _truncated_in(name: str) -> Callable[[EarlierRun], bool | None]:
    """Whether an earlier run's step `name` was truncated at its limit (None: it has no such step
    with a count)."""

    def truncated(run: EarlierRun) -> bool | None:
        earlier = run.get(name)
        if earlier is None or not isinstance(earlier["metrics"].get("candidates_out"), int):
            return None
        return _truncated(earlier)

    return truncated


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


def _is_score(f: Finding) -> bool:
    """A rank's or select's own number (a best score, a gap): what it made of its candidates."""
    ranking = f.step.step_type in (StepType.RANK.value, StepType.SELECT.value)
    plain = f.feature is not None and f.feature not in (*VOLUMES, "drop_ratio", "duration_ms")
    return ranking and plain and f.kind != "changed" and not (f.feature or "").startswith("reason:")


def _scored_lower(step: dict[str, Any], base: StepBaseline | None) -> bool:
    """Whether one of a search's own numbers that are not counts (a best score) fell by a mild
    distance or more, with the minimum effect: it found worse matches than usual, too."""
    if base is None or not base.trusted:
        return False
    return any(
        base.scales.get(feature) != "log"
        and value < (base.usual(feature) or 0.0)
        and base.moved(feature, value, t.MILD_Z)
        for feature, (value, _) in numeric_features(step).items()
        if feature not in (*VOLUMES, LIMIT_METRIC, "duration_ms")
    )


def _truncated(step: dict[str, Any]) -> bool:
    """A search whose result count reached the limit it recorded returned all it was allowed to."""
    out, limit = step["metrics"].get("candidates_out"), step["metrics"].get(LIMIT_METRIC)
    return isinstance(out, int) and isinstance(limit, (int, float)) and limit > 0 and out >= limit


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
