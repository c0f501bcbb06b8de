"""Recall lost upstream: which search supplied the candidates a later step could do nothing with.

A recall loss leaves no trace in a search's count: it returns as many candidates as usual, just
not the right one, and the first visible sign is further down (a rank's best score that fell, a
filter that kept nothing, a select that chose nothing). Three readings name the search:

- **its own best score fell** with the rank's (`upstream_recall`): a rank or select whose score
  fell with nothing of its own changed ranked worse candidates, and the latest search before it
  that scored lower too supplied them;
- **it found worse matches** (`worse_matches`), for a symptom nothing at or before it explains:
  the latest search before the symptom whose own best score fell far down its tail, rarer than
  hard inputs make it, or only lower than usual with a rank or select after it that fell so;
- **it was truncated** at the `limit` it records (`truncation_recall`), when the earlier runs say
  its truncation leads to this end, and say it with few enough runs that would have ended so
  anyway to keep the rule's own false accusations within budget.

The numbers are `thresholds.py`'s; the rules as a whole `explain.py`'s docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xray_sdk.contract.vocabulary import StepType
from xray_server.analysis import explain_text as describe
from xray_server.analysis import thresholds as t
from xray_server.analysis.baseline import COUNTS, Reading, StepBaseline, numeric_features
from xray_server.analysis.explain_tie import EarlierRun, tie
from xray_server.analysis.findings import Finding, FindingClass, StepRef, Strength, Symptom

# The steps that supply candidates: a recall loss is theirs.
SOURCES = (StepType.SEARCH.value,)
# The steps that score the candidates they were given: a fall of theirs can be the supplier's.
RANKERS = (StepType.RANK.value, StepType.SELECT.value)
# The steps whose own numbers say how good their candidates were.
SCORERS = (*SOURCES, *RANKERS)
# The metric a search records its result limit in: a count at the limit was truncated.
LIMIT_METRIC = "limit"
# Whether an earlier run (its steps by name) ended like the run explained.
Ends = Callable[[EarlierRun], bool]


def upstream_recall(
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
    to this end (`truncation_recall`). When none does, nothing says the best candidate was ever
    there to find (an entity with no match scores low too): the fall is no cause. Any other
    finding is returned as it is."""
    if not is_score(cause) or not cause.worse:
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
        return truncation_recall(cause, steps, cause.step.seq, ends, earlier_runs)
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


def worse_matches(symptom: Symptom, steps: list[dict[str, Any]], baselines: dict[str, StepBaseline]) -> Finding | None:
    """The latest search at or before the symptom that found worse matches than usual, so that what
    came after had nothing better to work with; or None. For a symptom nothing at or before it
    explains (an empty filter or select that followed from its input, a final score that fell with
    nothing of its step changed). A search shows it on its own when its best score fell far down
    its tail (`fell_far`); a search whose best only scored lower (`_scored_lower`) shows it when a
    rank or select after it fell far too: two steps in a row say the candidates were worse."""
    before = [s for s in steps if s["seq"] <= symptom.step.seq]
    fell = [s["seq"] for s in before if s["step_type"] in RANKERS and fell_far(s, baselines.get(s["name"]))]
    for source in sorted((s for s in before if s["step_type"] in SOURCES), key=lambda s: -s["seq"]):
        base = baselines.get(source["name"])
        reading = fell_far(source, base)
        if reading is None and any(seq > source["seq"] for seq in fell):
            reading = _lower(source, base)
        if reading is None:
            continue
        evidence = {**reading.evidence, "seen_at": symptom.step.name}
        return Finding(
            "recall",
            FindingClass.DECISION,
            Strength.STRONG,
            True,
            round(1 - reading.tail, 4),
            StepRef.of(source),
            describe.worse_matches(source, symptom.step.name, evidence),
            source["why"],
            reading.feature,
            True,
            False,
            evidence,
        )
    return None


def fell_far(step: dict[str, Any], base: StepBaseline | None) -> Reading | None:
    """The reading of one of the step's own quality numbers (a best score or similarity: not a
    count, a share it dropped, a limit or a duration) that fell far down its tail: at the
    decisions' distance, and rarer than hard inputs make it (`FELL_RARE_SHARE`). A value inside
    the tail that hard inputs fill (a typo's lower similarity) is not, even where that tail is a
    cluster apart from the core. None when no number fell so."""
    if base is None or not base.trusted:
        return None
    for feature, (value, _) in numeric_features(step).items():
        if feature in (*COUNTS, LIMIT_METRIC, "duration_ms", "drop_ratio") or feature.startswith("reason:"):
            continue
        if base.scales.get(feature) == "log":
            continue
        reading = base.read(feature, value, t.MIN_Z[FindingClass.DECISION.value], large=True)
        if reading is None or not reading.lower:
            continue
        if reading.tail <= t.FELL_RARE_SHARE:
            return reading
    return None


def truncation_recall(
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
    the cap is named: nothing says an uncut search gets here. Either way, only when the truncated
    runs that would have ended so without the cap are few enough (`RECALL_WRONG_SHARE`): they
    look exactly like the bug's, and the rule would name them too."""
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
        # The truncated runs that would have ended so without the cap (at the uncut runs' rate) are
        # the runs this rule names wrongly: as a share of every earlier run, within the budget.
        wrong_share = table.with_runs / (table.with_runs + table.other_runs) * table.other_share
        if wrong_share > t.RECALL_WRONG_SHARE:
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
            "wrong_share": round(wrong_share, 4),
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


def is_score(f: Finding) -> bool:
    """A rank's or select's own number (a best score, a gap): what it made of its candidates."""
    ranking = f.step.step_type in (StepType.RANK.value, StepType.SELECT.value)
    plain = f.feature is not None and f.feature not in (*COUNTS, "drop_ratio", "duration_ms")
    return ranking and plain and f.kind != "changed" and not (f.feature or "").startswith("reason:")


def _scored_lower(step: dict[str, Any], base: StepBaseline | None) -> bool:
    """Whether one of a search's own numbers that are not counts (a best score) fell by a mild
    distance or more, with the minimum effect: it found worse matches than usual, too."""
    return _lower(step, base) is not None


def _lower(step: dict[str, Any], base: StepBaseline | None) -> Reading | None:
    """The reading of the first of a search's own numbers that are not counts that fell by a mild
    distance or more, and by a share's gap or a quarter of its usual size; or None. Not by its
    p10-p90 range, as a finding must: a bug in a tenth or more of the earlier runs is that p10, and
    a later step's fall already says the change mattered."""
    if base is None or not base.trusted:
        return None
    for feature, (value, _) in numeric_features(step).items():
        scale = base.scales.get(feature)
        if feature in (*COUNTS, LIMIT_METRIC, "duration_ms") or scale == "log":
            continue
        reading = base.read(feature, value, t.MILD_Z, large=True)
        if reading is None or not reading.lower:
            continue
        gap = t.SHARE_GAP if scale == "ratio" else t.CUSTOM_SHARE_OF_USUAL * abs(reading.usual)
        if reading.usual - value >= gap:
            return reading
    return None


def _truncated(step: dict[str, Any]) -> bool:
    """A search whose result count reached the limit it recorded returned all it was allowed to."""
    out, limit = step["metrics"].get("candidates_out"), step["metrics"].get(LIMIT_METRIC)
    return isinstance(out, int) and isinstance(limit, (int, float)) and limit > 0 and out >= limit
