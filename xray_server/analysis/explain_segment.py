"""A minority setting that the earlier runs say leads to a bad end: the second look, for a run
with no symptom of its own.

A final score far down in its tail is no symptom by itself when legitimate hard inputs fill that
tail (the rule "apart" of `baseline.py`). A step that ran with a minority model or scorer is no
cause by itself either: a router that sends one request in twenty to a small model is doing its
job (a weak finding). Together they can be a bug's signature, and the earlier runs can say
whether they are: if the runs that had the same minority value ended as low (at least this low,
or far and rare on the lower side as this run is) significantly more often than the others (one-sided Fisher, at least twice as often, at least a
few runs), that value leads there, and the run's low end is its symptom and the value its cause.
A segment that legitimately scores lower (short inputs sent to the small model) is named too:
the rule cannot tell a deliberate segment from a broken one, and says which value it was.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from xray_server.analysis import explain_text as describe
from xray_server.analysis import thresholds as t
from xray_server.analysis.baseline import COUNTS, Reading, StepBaseline, categorical_features, numeric_features
from xray_server.analysis.explain_tie import EarlierRun, tie
from xray_server.analysis.findings import Finding, FindingClass, StepRef, Strength, Symptom, SymptomKind


def segment_symptom(
    findings: list[Finding],
    steps: list[dict[str, Any]],
    end: set[str],
    baselines: dict[str, StepBaseline],
    earlier_runs: dict[str, dict[str, dict[str, Any]]],
) -> tuple[Symptom, Finding] | None:
    """(symptom, cause) when a final decision (`end`: its step ids) scored far down its tail and
    a weak categorical finding at or before it is a value the earlier runs say leads there."""
    weak = [f for f in findings if f.strength is Strength.WEAK and f.kind == "changed" and f.own]
    if not weak:
        return None
    for step in steps:
        if step["step_id"] not in end or step["name"] not in baselines:
            continue
        base = baselines[step["name"]]
        for feature, value, reading_message in _low_ends(step, base):
            for f in sorted(weak, key=lambda f: f.step.seq):
                if f.step.seq > step["seq"] or f.feature is None:
                    continue
                evidence = _leads_there(f, step["name"], feature, value, base, earlier_runs)
                if evidence is not None:
                    symptom = Symptom(SymptomKind.WORSE_END, StepRef.of(step), reading_message)
                    cause = replace(
                        f,
                        strength=Strength.STRONG,
                        corroborated=True,
                        message=describe.segment(f, step["name"], feature, evidence),
                        evidence={**f.evidence, **evidence},
                    )
                    return symptom, cause
    return None


def _low_ends(step: dict[str, Any], base: StepBaseline) -> list[tuple[str, float, str]]:
    """The step's own numbers (not counts) far and rare on the worse (lower) side, though not apart."""
    out = []
    for feature, (value, _) in numeric_features(step).items():
        if feature in (*COUNTS, "drop_ratio", "duration_ms") or base.scales.get(feature) == "log":
            continue
        reading = _low_end(base, feature, value)
        if reading is not None:
            out.append((feature, value, describe.numeric(step, reading)))
    return out


def _low_end(base: StepBaseline, feature: str, value: float) -> Reading | None:
    """The reading of `value` when it is far and rare on the lower side (apart or not), else None."""
    reading = base.read(feature, value, t.MIN_Z[FindingClass.DECISION.value])
    return reading if reading is not None and reading.lower and reading.tail <= t.MAX_TAIL_SHARE else None


def _leads_there(
    f: Finding,
    end_name: str,
    feature: str,
    value: float,
    base: StepBaseline,
    earlier_runs: dict[str, dict[str, dict[str, Any]]],
) -> dict[str, Any] | None:
    """The counts that say the earlier runs with `f`'s value ended as low as this run significantly
    more often than the others, or None. An earlier run ended as low when its number was at least
    this low, or a low end by the same reading as this run's (far and rare on the lower side): not
    only "at least this low", which the lowest runs of a bug's cluster could never show, since the
    further out a run is, the fewer earlier runs are beyond it."""

    def low_end(run: EarlierRun) -> float | None:
        end = run.get(end_name)
        number = numeric_features(end).get(feature) if end is not None else None
        return None if number is None else number[0]

    def had(run: EarlierRun) -> bool | None:
        at = run.get(f.step.name)
        if at is None or low_end(run) is None:
            return None
        return categorical_features(at).get(f.feature or "") == str(f.evidence.get("value", ""))

    def ended_as_low(run: EarlierRun) -> bool:
        number = low_end(run)
        return number is not None and (number <= value or _low_end(base, feature, number) is not None)

    table = tie(earlier_runs, had, ended_as_low)
    if table is None or not table.significant:
        return None
    return {
        "segment_runs": table.with_runs,
        "segment_share": round(table.with_share, 3),
        "other_runs": table.other_runs,
        "other_share": round(table.other_share, 3),
        "p_value": table.p_value,
    }
