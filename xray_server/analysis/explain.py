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
3. **Upstream recall** (`explain_recall.py`): a rank or select whose score fell with no change of
   its own (no new model, as many candidates as usual) ranked worse candidates than usual, and an
   empty output after a search or rank whose best fell far had nothing good to work with. The
   latest search before it is named when its own best score fell with them, or fell far on its
   own; or when it was truncated at the `limit` it records and the earlier runs say its cap leads
   there, with few enough runs that would have ended so anyway (the rule's own false accusations,
   at most 1% of the runs); otherwise the fall is no cause (an entity with no match scores low too).
4. **Or nothing**: "the symptom is here, and nothing upstream shows why".

Served at `GET /api/v1/runs/<run_id>/explain`. Deterministic: the same run and the same earlier
runs give the same answer (the contract forbids AI-generated explanations).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from xray_sdk.contract.vocabulary import REDUCING_STEP_TYPES, ArtifactStatus, DropReason, StepStatus
from xray_server import query
from xray_server.analysis import explain_text as describe
from xray_server.analysis import thresholds as t
from xray_server.analysis.baseline import Reading, StepBaseline, categorical_features, numeric_features
from xray_server.analysis.explain_input import by_run, explained_by_input
from xray_server.analysis.explain_segment import segment_symptom
from xray_server.analysis.explain_trace import VOLUMES, feature_rank, final_decisions, symptom_of, trace
from xray_server.analysis.findings import Finding, FindingClass, Role, StepRef, Strength
from xray_server.query.baselines import earlier_steps
from xray_server.storage.pool import Database


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
    # Earlier runs step by step, for judging an empty output against runs given alike input: read
    # once per explanation, and only when a step of the run came out empty.
    empty = any(s["metrics"].get("candidates_out") == 0 for s in steps)
    earlier_runs = by_run(baseline_steps) if empty else {}
    findings: list[Finding] = []
    starved_at: list[int] = []
    for step in steps:
        step_findings, starved = _step_findings(step, baselines.get(step["name"]), steps, earlier_runs)
        findings += step_findings
        if starved:
            starved_at.append(step["seq"])
    findings = _corroborated(findings, starved_at)
    symptom = symptom_of(findings, steps)
    cause: Finding | None = None
    if symptom is None and any(f.strength is Strength.WEAK for f in findings):
        # A minority setting and a low end, each no finding alone: the earlier runs may tie them.
        earlier_runs = earlier_runs or by_run(baseline_steps)
        tied = segment_symptom(findings, steps, final_decisions(steps), baselines, earlier_runs)
        if tied is not None:
            symptom, cause = tied
            findings = [cause if _same(f, cause) else f for f in findings]
    elif symptom is not None:
        earlier_runs = earlier_runs or by_run(baseline_steps)
        cause = trace(symptom, findings, steps, baselines, earlier_runs)
    if cause is not None and cause not in findings:
        findings.append(cause)  # a recall loss, named at the search that supplied the candidates
    roles = {id(f): _role(f, cause) for f in findings}
    shown = sorted(
        (f for f in findings if f.strength is not Strength.MILD),
        key=lambda f: (_role_order(roles[id(f)], cause), f.step.seq, f.cls.order, feature_rank(f), -f.score),
    )
    runs = len({s["run_id"] for s in baseline_steps})
    return describe.answer(run, runs, len(baseline_steps), symptom, cause, [(f, roles[id(f)]) for f in shown])


# ---------------------------------------------------------------------------------- one step


def _step_findings(
    step: dict[str, Any],
    base: StepBaseline | None,
    run_steps: list[dict[str, Any]],
    earlier_runs: dict[str, dict[str, dict[str, Any]]],
) -> tuple[list[Finding], bool]:
    """The step's findings, and whether it was starved of input."""
    ref = StepRef.of(step)
    trusted = base is not None and base.trusted
    starved, input_unusual = _input_state(step, base) if base is not None and trusted else (False, False)
    found: list[Finding] = []

    def add(kind: str, cls: FindingClass, score: float, message: str, **options: Any) -> None:
        own = options.pop("own", True) and _own(cls, starved, input_unusual)
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
        explained = explained_by_input(step, run_steps, earlier_runs)
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
        own = _own(cls, starved, input_unusual)
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
                _own(FindingClass.DECISION, starved, input_unusual),
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


def _same(a: Finding, b: Finding) -> bool:
    """The same fact of the same step (a finding and its corroborated copy)."""
    return a.step.step_id == b.step.step_id and a.kind == b.kind and a.feature == b.feature


def _own(cls: FindingClass, starved: bool, input_unusual: bool) -> bool:
    """Whether a finding of class `cls` is its step's own doing: a step that raised did so itself,
    whatever it was given; a starved step's findings follow from its input, and so do the volumes
    of a step whose input was unusual."""
    if cls is FindingClass.FAULT:
        return True
    return not starved and not (input_unusual and cls is FindingClass.VOLUME)


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
