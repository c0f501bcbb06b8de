"""Explain: what went wrong in a run, which step caused it, and why, by rules only.

Each step is held to the same step (pipeline and name) in the runs of its pipeline that started
before it, runs judged bad left out (`baseline.py`: every numeric and categorical feature, read
against the baseline's own distribution). An unusual feature is a finding of one class (fault,
decision, volume, time; `findings.py`). Then, in this order:

1. **The symptom**: what went wrong, as a user sees it: a step raised or never ended; a step
   output nothing where it usually outputs something; the run's final decisions (its trailing
   step, and the rank a final select chose from) came out far worse than usual; a step stopped recording its
   metrics; a step was far slower than usual. A run with no symptom has no cause, whatever is
   unusual in it: a value that normal runs also reach is listed, never blamed.
2. **The cause**, traced back from the symptom: a fault, else the earliest own finding at or
   before it (a count that rose is not a cause: what the next step made of it is its own). A finding is a step's own unless the step was starved (a tenth of its usual
   input or less: what it did follows), its input was unusual (its volumes follow), or, for an
   empty output, earlier runs given the same kind of input came out empty too (a filter that
   received nothing that could pass did its job).
3. **Upstream recall**: a rank or select whose score fell with no change of its own (no new model,
   as many candidates as usual) ranked worse candidates than usual. When the nearest search before
   it was truncated at the `limit` it records, that search is named (what it cut is what the rank
   missed); when it was not, the fall is no cause (an entity with no match scores low too).
4. **Or nothing**: "the symptom is here, and nothing upstream shows why".

Served at `GET /api/v1/runs/<run_id>/explain`. Deterministic: the same run and the same earlier
runs give the same answer (the contract forbids AI-generated explanations).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from xray_sdk.contract.vocabulary import REDUCING_STEP_TYPES, ArtifactStatus, DropReason, StepStatus, StepType
from xray_server import query
from xray_server.analysis import explain_text as describe
from xray_server.analysis import thresholds as t
from xray_server.analysis.baseline import Reading, StepBaseline, categorical_features, numeric_features
from xray_server.analysis.explain_input import explained_by_input
from xray_server.analysis.findings import Finding, FindingClass, Role, StepRef, Strength, Symptom, SymptomKind
from xray_server.query.baselines import earlier_steps
from xray_server.storage.pool import Database

VOLUMES = ("candidates_in", "candidates_out")
# The steps that supply candidates: a recall loss is theirs.
SOURCES = (StepType.SEARCH.value,)
# The metric a search records its result limit in: a count at the limit was truncated.
LIMIT_METRIC = "limit"
# Within a step, what says most about its own behaviour comes first: a changed model or setting,
# then its reasons and ratio, its scores, its output count (which follows from them), its input,
# its duration.
FEATURE_ORDER = {"drop_ratio": 2, "candidates_out": 4, "candidates_in": 5, "duration_ms": 6}
SYMPTOM_ORDER = list(SymptomKind)


def explain_stored_run(db: Database, run_id: str, baseline_runs: int = t.BASELINE_RUNS) -> dict[str, Any]:
    """Explain a stored run against the `baseline_runs` runs of its pipeline that started before it."""
    run = query.get_run(db, run_id)
    baseline = earlier_steps(db, run, baseline_runs, t.BAD_LABEL) if run["pipeline"] else []
    return explain(run, baseline)


def explain(run: dict[str, Any], baseline_steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The symptom, the cause (or None), every finding with its role, and a verdict, for `run` (a run
    view) against `baseline_steps` (steps of earlier runs of the same pipeline)."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for step in baseline_steps:
        by_name.setdefault(step["name"], []).append(step)
    baselines = {name: StepBaseline(steps) for name, steps in by_name.items()}
    steps = sorted(run["steps"], key=lambda s: s["seq"])
    findings: list[Finding] = []
    starved_at: list[int] = []
    for step in steps:
        step_findings, starved = _step_findings(step, baselines.get(step["name"]), steps, baseline_steps)
        findings += step_findings
        if starved:
            starved_at.append(step["seq"])
    findings = _corroborated(findings, starved_at)
    symptom = _symptom(findings, steps)
    cause = _trace(symptom, findings, steps, baselines) if symptom else None
    if cause is not None and cause not in findings:
        findings.append(cause)  # a recall loss, named at the search that supplied the candidates
    roles = {id(f): _role(f, cause) for f in findings}
    shown = sorted(
        (f for f in findings if f.strength is not Strength.MILD),
        key=lambda f: (_role_order(roles[id(f)], cause), f.step.seq, f.cls.order, _feature_rank(f), -f.score),
    )
    runs = len({s["run_id"] for s in baseline_steps})
    return describe.answer(run, runs, len(baseline_steps), symptom, cause, [(f, roles[id(f)]) for f in shown])


# ---------------------------------------------------------------------------------- one step


def _step_findings(
    step: dict[str, Any],
    base: StepBaseline | None,
    run_steps: list[dict[str, Any]],
    baseline_steps: list[dict[str, Any]],
) -> tuple[list[Finding], bool]:
    """The step's findings, and whether it was starved of input."""
    ref = StepRef(step["name"], step["seq"], step["step_id"], step.get("parent_step_id"), step["step_type"])
    trusted = base is not None and base.trusted
    starved, input_unusual = _input_state(step, base) if base is not None and trusted else (False, False)
    found: list[Finding] = []

    def add(kind: str, cls: FindingClass, score: float, message: str, **options: Any) -> None:
        # A step that raised did so itself, whatever it was given.
        fault = cls is FindingClass.FAULT
        own = fault or (options.pop("own", True) and not starved and not (input_unusual and cls is FindingClass.VOLUME))
        found.append(
            Finding(
                kind,
                cls,
                options.pop("strength", Strength.STRONG),
                own,
                round(score, 4),
                ref,
                message,
                step["why"],
                **options,
            )
        )

    name, metrics = step["name"], step["metrics"]
    if step["status"] == StepStatus.ERROR.value:
        error = step["error"] or {}
        share = base.errors / base.size if base is not None and trusted else 0.0
        add("error", FindingClass.FAULT, 1 - share, describe.error(name, error), evidence={"error": error})
    if step["status"] == StepStatus.RUNNING.value:
        add("running", FindingClass.FAULT, 1.0, f"{name} never ended (no step_end arrived)")
    violation_share = base.violations / base.size if base is not None and trusted else 0.0
    if step["contract_violations"] and violation_share < t.VIOLATION_SHARE:
        add(
            "violation",
            FindingClass.DECISION,
            1 - violation_share,
            describe.violation(name, step["contract_violations"]),
            evidence={"violations": step["contract_violations"]},
        )
    usual_out = base.usual("candidates_out") if base is not None and trusted else None
    if base is not None and metrics.get("candidates_out") == 0 and (usual_out or 0) > 0:
        explained = explained_by_input(step, run_steps, baseline_steps)
        add(
            "empty",
            FindingClass.DECISION,
            1 - base.share("candidates_out", lambda v: v == 0),
            describe.empty(step, usual_out, explained),
            feature="candidates_out",
            worse=True,
            own=explained is None,
            evidence={"candidates_out": 0, "usual": usual_out, "explained_by_input": explained},
        )
    if base is not None and trusted:
        for finding in _readings(step, base, ref, starved, input_unusual):
            found.append(finding)
    for artifact in step.get("artifacts", []):
        lost = artifact["status"] == ArtifactStatus.DROPPED.value
        # Evidence the capture level chose not to keep is the configured behaviour, not a finding.
        if lost and artifact["drop_reason"] != DropReason.CAPTURE_POLICY.value:
            add(
                "dropped_evidence",
                FindingClass.EVIDENCE,
                0.0,
                describe.dropped(name, artifact),
                strength=Strength.WEAK,
                own=False,
                evidence={"artifact": artifact["name"]},
            )
    return found, starved


def _readings(
    step: dict[str, Any], base: StepBaseline, ref: StepRef, starved: bool, input_unusual: bool
) -> list[Finding]:
    """The step's numeric and categorical features that are far from its baseline."""
    out: list[Finding] = []
    metrics = step["metrics"]
    for feature, (value, _) in numeric_features(step).items():
        if feature == "candidates_out" and metrics.get("candidates_out") == 0:
            continue  # said as `empty`
        kind, cls = _kind_and_class(step, base, feature)
        # A volume is read at the decisions' distance too: mild there, strong when it starves a
        # later step or is itself a tenth of its usual (`_corroborated`).
        accounts = _accounts_for_output(step, base, feature, value)
        # A reason that removed what the step usually keeps needs no distance: its tail share and
        # its place apart from the core still must say it is unusual.
        min_z = t.MIN_Z[FindingClass.DECISION.value] if cls is FindingClass.VOLUME else t.MIN_Z[cls.value]
        reading = base.read(feature, value, 0.0 if accounts else min_z, large=accounts)
        if reading is None or not reading.unusual:
            continue
        strong = cls is not FindingClass.VOLUME or abs(reading.distance) >= t.MIN_Z[cls.value]
        own = not starved and not (input_unusual and cls is FindingClass.VOLUME)
        out.append(_numeric_finding(step, ref, kind, cls, reading, Strength.STRONG if strong else Strength.MILD, own))
    for feature, value in categorical_features(step).items():
        reading = base.read_category(feature, value)
        if reading is None:
            continue
        corroborated = not reading.unusual and _output_moved(step, base)
        out.append(
            Finding(
                "changed",
                FindingClass.DECISION,
                Strength.STRONG if reading.unusual else Strength.WEAK,
                not starved,
                round(1 - reading.tail, 4),
                ref,
                describe.changed(step["name"], reading),
                step["why"],
                feature,
                False,
                corroborated,
                reading.evidence,
            )
        )
    return out


def _numeric_finding(
    step: dict[str, Any], ref: StepRef, kind: str, cls: FindingClass, reading: Reading, strength: Strength, own: bool
) -> Finding:
    more_is_worse = reading.feature == "drop_ratio" or reading.feature.startswith("reason:")
    worse = (not reading.lower) if more_is_worse else reading.lower
    return Finding(
        kind,
        cls,
        strength,
        own,
        round(1 - reading.tail, 4),
        ref,
        describe.numeric(step, reading),
        step["why"],
        reading.feature,
        worse and reading.feature != "duration_ms",
        False,
        reading.evidence,
    )


def _accounts_for_output(step: dict[str, Any], base: StepBaseline, feature: str, value: float) -> bool:
    """Whether a rejection reason the step usually never gives removed at least as many candidates as
    the step usually keeps: however small its share, it can account for the whole loss."""
    cin, usual_out = step["metrics"].get("candidates_in"), base.usual("candidates_out")
    if not feature.startswith("reason:") or not isinstance(cin, int) or usual_out is None:
        return False
    return (
        base.usual(feature) == 0
        and base.share(feature, lambda v: v > 0) <= t.MAX_TAIL_SHARE
        and (value * cin >= max(1.0, usual_out))
    )


def _output_moved(step: dict[str, Any], base: StepBaseline) -> bool:
    """Whether the step's own output moved while its input did not: its output count, or any of its
    own numeric metrics (a rank whose scorer changed and whose scores fell with it)."""
    metrics = step["metrics"]
    cin = metrics.get("candidates_in")
    if isinstance(cin, int) and base.moved("candidates_in", float(cin), t.WITH_OUTPUT_Z):
        return False
    outputs = {f: v for f, (v, _) in numeric_features(step).items() if f not in ("candidates_in", "duration_ms")}
    return any(base.moved(f, v, t.WITH_OUTPUT_Z) for f, v in outputs.items())


def _input_state(step: dict[str, Any], base: StepBaseline) -> tuple[bool, bool]:
    """(starved, unusual) of the step's input."""
    cin = step["metrics"].get("candidates_in")
    usual = base.usual("candidates_in")
    if not isinstance(cin, int) or usual is None:
        return False, False
    starved = usual > 0 and cin <= t.STARVED * usual
    reading = base.read("candidates_in", float(cin), t.MIN_Z[FindingClass.VOLUME.value])
    return starved, starved or (reading is not None and reading.unusual)


def _kind_and_class(step: dict[str, Any], base: StepBaseline, feature: str) -> tuple[str, FindingClass]:
    if feature == "duration_ms":
        return "slow", FindingClass.TIME
    if feature in VOLUMES:
        return "outlier", FindingClass.VOLUME
    # A filter's drop ratio and reasons are its decision, and so are a reducing step's numbers. A
    # source's counts describe how much it returned (volumes, which spread by factors); its other
    # numbers (a best score, a distance) say how good it was, as a decision's do.
    if feature == "drop_ratio" or feature.startswith("reason:") or step["step_type"] in REDUCING_STEP_TYPES:
        return "outlier", FindingClass.DECISION
    return "outlier", FindingClass.VOLUME if base.scales.get(feature) == "log" else FindingClass.DECISION


def _corroborated(findings: list[Finding], starved_at: list[int]) -> list[Finding]:
    """A mild volume is strong when a later step of the run is starved, or when it is an output a
    tenth of its usual or less: what it returned is what left the rest with nothing."""
    out = []
    for f in findings:
        if (
            f.strength is Strength.MILD
            and f.own
            and (any(seq > f.step.seq for seq in starved_at) or _starved_output(f))
        ):
            f = replace(f, strength=Strength.STRONG)
        out.append(f)
    return out


def _starved_output(f: Finding) -> bool:
    e = f.evidence
    return f.feature == "candidates_out" and (e.get("usual") or 0) > 0 and e["value"] <= t.STARVED * e["usual"]


# ---------------------------------------------------------------------------------- the run


def _symptom(findings: list[Finding], steps: list[dict[str, Any]]) -> Symptom | None:
    """What went wrong in the run, the most serious first, or None."""
    end = _final_decisions(steps)
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


def _final_decisions(steps: list[dict[str, Any]]) -> set[str]:
    """The run's final decision: its last top-level step, and when that is a select, the rank just
    before it (a select takes the rank's best: the rank's scores are the chosen one's)."""
    top = [s for s in steps if not s.get("parent_step_id")]
    if not top:
        return set()
    end = {top[-1]["step_id"]}
    if top[-1]["step_type"] == StepType.SELECT.value and len(top) > 1 and top[-2]["step_type"] == StepType.RANK.value:
        end.add(top[-2]["step_id"])
    return end


def _trace(
    symptom: Symptom, findings: list[Finding], steps: list[dict[str, Any]], baselines: dict[str, StepBaseline]
) -> Finding | None:
    """The cause of `symptom`: a fault, else the earliest own finding at or before it (a time
    symptom is its own cause); a weak finding when corroborated; the innermost of nested steps;
    a score that fell with nothing else changed at its step, traced to the search that supplied it."""
    by_id = {s["step_id"]: s for s in steps}
    # The symptom's step and the steps nested in it (which start after it) are at or before it.
    reach = max([symptom.step.seq] + [f.step.seq for f in findings if _descends(f, symptom.step.step_id, by_id)])
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
        inner = [f for f in chosen if _descends(f, found.step.step_id, by_id)]
        cause = _upstream_recall(min(inner, key=_cause_order) if inner else found, findings, steps, baselines)
        if cause is not None:
            return cause
    return None


def _can_cause(f: Finding) -> bool:
    """A count can cause a worse outcome by falling, not by rising: a search that returned more than
    usual is most often a kind of input, and what the next step made of it is that step's own."""
    return f.feature not in VOLUMES or f.kind == "empty" or f.worse


def _upstream_recall(
    cause: Finding, findings: list[Finding], steps: list[dict[str, Any]], baselines: dict[str, StepBaseline]
) -> Finding | None:
    """A rank's or select's score that fell while nothing else of the step changed (no new model or
    setting, as many candidates as usual) says the candidates it was given were worse. The latest
    search before it that shows it lost some is the cause: one truncated at its recorded `limit`
    (what it cut is what the rank missed, and a recall loss leaves its count looking ordinary), or
    one whose own best score fell with the rank's. When none does, nothing says the best candidate
    was ever there to find (an entity with no match scores low too): the fall is no cause. Any
    other finding is returned as it is."""
    if not _is_score(cause) or not cause.worse:
        return cause
    if any(f.step.step_id == cause.step.step_id and f.kind == "changed" for f in findings):
        return cause
    # The latest search before it that its limit cut (of several, the nearest).
    sources = [
        s
        for s in steps
        if s["seq"] < cause.step.seq
        and s["step_type"] in SOURCES
        and (_truncated(s) or _scored_lower(s, baselines.get(s["name"])))
    ]
    if not sources:
        return None
    source = max(sources, key=lambda s: s["seq"])
    ref = StepRef(source["name"], source["seq"], source["step_id"], source.get("parent_step_id"), source["step_type"])
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
    return f.step.seq, _feature_rank(f), -f.score


def _feature_rank(f: Finding) -> int:
    if f.feature is None or f.kind == "changed":
        return 0
    if f.feature.startswith("reason:"):
        return 1
    return FEATURE_ORDER.get(f.feature, 3)


def _descends(f: Finding, ancestor: str, steps: dict[str, dict[str, Any]]) -> bool:
    parent = f.step.parent_step_id
    while parent:
        if parent == ancestor:
            return True
        parent = (steps.get(parent) or {}).get("parent_step_id")
    return False


def _role(f: Finding, cause: Finding | None) -> Role:
    if f is cause:
        return Role.CAUSE
    # The score a recall loss was seen in follows from it.
    seen_at = cause.evidence.get("seen_at") if cause is not None and cause.kind == "recall" else None
    if seen_at == f.step.name and f.feature == cause.feature:
        return Role.EFFECT
    if not f.own or (cause is not None and f.step.seq > cause.step.seq):
        return Role.EFFECT
    return Role.UNUSUAL


def _role_order(role: Role, cause: Finding | None) -> int:
    """The cause, then what follows from it, then the rest; with no cause, what is unusual in its
    own right comes before what follows from it."""
    if cause is None:
        return {Role.UNUSUAL: 0, Role.EFFECT: 1}.get(role, 2)
    return list(Role).index(role)
