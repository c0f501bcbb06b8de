"""What `explain` says: the sentence of each finding, the symptom and the verdict, and the answer's
shape (`ExplainSchema`)."""

from __future__ import annotations

from typing import Any

from xray_sdk.contract.metrics import UNKNOWN_STEP_TYPE
from xray_sdk.contract.vocabulary import STEP_TYPES
from xray_server.analysis.baseline import Reading
from xray_server.analysis.findings import Finding, Role, Symptom
from xray_server.schemas.responses import ExplainSchema

_schema = ExplainSchema()


def error(name: str, error: dict[str, Any]) -> str:
    return f"{name} raised {error.get('type', 'an error')}: {error.get('message', '')}"


def violation(name: str, violations: list[str]) -> str:
    unknown = [v.split(":", 1)[1] for v in violations if v.startswith(f"{UNKNOWN_STEP_TYPE}:")]
    others = [v for v in violations if not v.startswith(f"{UNKNOWN_STEP_TYPE}:")]
    parts = []
    if unknown:
        parts.append(
            f"{name} was given the step type {unknown[0]!r}, which is none of {', '.join(STEP_TYPES)}: it is stored "
            "as 'custom', and queries by type do not find it"
        )
    if others:
        parts.append(
            f"{name} breaks the contract ({', '.join(others)}); cross-run queries and this explanation cannot see "
            "what is missing"
        )
    return "; ".join(parts)


def empty(step: dict[str, Any], usual: float, explained: dict[str, Any] | None) -> str:
    received = step["metrics"].get("candidates_in")
    text = f"{step['name']} output no candidates where it usually outputs {usual:.0f}"
    if isinstance(received, int):
        text += f" (it received {received}{_top_reason(step)})"
    if explained:
        text += (
            f"; {explained['empty_share']:.0%} of the {explained['alike_runs']} earlier runs whose "
            f"'{explained['after']}' had an alike {explained['feature']} came out empty too: it follows from its input"
        )
    return text


def dropped(name: str, artifact: dict[str, Any]) -> str:
    return f"{name}: evidence not kept: {artifact['name']} ({artifact['drop_reason']})"


def changed(name: str, r: Reading) -> str:
    e = r.evidence
    return (
        f"{name} had {r.feature}={r.value!r}, which {e['share']:.0%} of {e['baseline_steps']} earlier steps had; "
        f"usually {r.usual!r} ({e['usual_share']:.0%})"
    )


def numeric(step: dict[str, Any], r: Reading) -> str:
    name, e = step["name"], r.evidence
    side = "low" if r.lower else "high"
    n = e["baseline_steps"]
    rare = (
        f"none of {n} earlier steps was as {side}"
        if e["tail_share"] == 0
        else (f"{e['tail_share']:.0%} of {n} earlier steps were as {side}")
    )
    if r.feature == "drop_ratio":
        return (
            f"{name} dropped {r.value:.1%} of {step['metrics'].get('candidates_in')} candidates{_top_reason(step)}, "
            f"against a usual {r.usual:.1%} (median; p10 {e['p10']:.1%}, p90 {e['p90']:.1%}); {rare}"
        )
    if r.feature.startswith("reason:"):
        reason = r.feature.split(":", 1)[1]
        return (
            f"{name} removed {r.value:.0%} of its candidates for '{reason}', against a usual {r.usual:.0%} "
            f"(p90 {e['p90']:.0%}); {rare}"
        )
    if r.feature == "duration_ms":
        return f"{name} took {r.value:.0f} ms, usually {r.usual:.0f} ms (median); {rare}"
    return (
        f"{name} had {r.feature}={_number(r.value)} where it usually has {_number(r.usual)} (median; p10 "
        f"{_number(e['p10'])}, p90 {_number(e['p90'])}); {rare}"
    )


def recall(source: dict[str, Any], seen: Finding) -> str:
    e = seen.evidence
    return (
        f"{seen.step.name} ranked worse candidates than usual ({seen.feature}={_number(e['value'])} where it "
        f"usually has {_number(e['usual'])}; {e['tail_share']:.0%} of earlier runs were as low) with nothing of its "
        f"own changed: {source['name']} supplied them, and a recall loss leaves no trace in its count"
    )


def worse_matches(source: dict[str, Any], seen_at: str, e: dict[str, Any]) -> str:
    return (
        f"{source['name']} found worse matches than usual ({e['feature']}={_number(e['value'])} where it usually has "
        f"{_number(e['usual'])}; {e['tail_share']:.0%} of earlier runs were as low): what {seen_at} got had "
        "nothing better in it"
    )


def segment(f: Finding, end: str, feature: str, e: dict[str, Any]) -> str:
    return (
        f"{f.step.name} ran with {f.feature}={f.evidence.get('value')!r}, a minority value; "
        f"{e['segment_share']:.0%} of the {e['segment_runs']} earlier runs with it ended with {end}'s {feature} as low "
        f"as this one, against {e['other_share']:.0%} of the {e['other_runs']} others: that value leads there"
    )


def truncation(source: dict[str, Any], seen_at: str, e: dict[str, Any]) -> str:
    cut = f"{source['name']} returned {source['metrics'].get('candidates_out')} candidates, its limit of {_number(e['limit'])}"
    if e["only_when_cut"]:
        return (
            f"{cut}: truncated; {e['other_share']:.0%} of the {e['other_runs']} earlier runs whose {source['name']} "
            f"returned less than its limit ended like this one at {seen_at}, and nothing else upstream changed: what "
            "the cap cut is what a later step needed"
        )
    return (
        f"{cut}: truncated; {e['truncated_share']:.0%} of the {e['truncated_runs']} earlier runs whose {source['name']} "
        f"was truncated ended like this one at {seen_at}, against {e['other_share']:.0%} of the {e['other_runs']} "
        "others: what the cap cut is what a later step needed"
    )


def _top_reason(step: dict[str, Any]) -> str:
    rejections, cin = step.get("rejections") or {}, step["metrics"].get("candidates_in")
    if not rejections or not cin:
        return ""
    reason, count = max(rejections.items(), key=lambda kv: (kv[1], kv[0]))
    return f"; {count / cin:.0%} of them for '{reason}'"


def _number(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def answer(
    run: dict[str, Any],
    baseline_runs: int,
    baseline_steps: int,
    symptom: Symptom | None,
    cause: Finding | None,
    findings: list[tuple[Finding, Role]],
) -> dict[str, Any]:
    """The answer, in `ExplainSchema`'s shape."""
    body = {
        "run_id": run["run_id"],
        "pipeline": run["pipeline"],
        "entity": run["entity"],
        "status": run["status"],
        "outcome": run["outcome"],
        "error": run["error"],
        "baseline": {"runs": baseline_runs, "steps": baseline_steps},
        "symptom": None if symptom is None else _symptom(symptom),
        "cause": None if cause is None else _cause(cause),
        "findings": [_finding(f, role) for f, role in findings],
        "verdict": _verdict(symptom, cause, sum(1 for _, role in findings if role is Role.UNUSUAL)),
    }
    return _schema.dump(body)


def _step(f: Finding | Symptom) -> dict[str, Any]:
    return {"step": f.step.name, "seq": f.step.seq, "step_type": f.step.step_type}


def _symptom(s: Symptom) -> dict[str, Any]:
    return {**_step(s), "kind": s.kind.value, "message": s.message}


def _cause(f: Finding) -> dict[str, Any]:
    return {**_step(f), "kind": f.kind, "message": f.message, "evidence": f.evidence}


def _finding(f: Finding, role: Role) -> dict[str, Any]:
    return {
        **_step(f),
        "kind": f.kind,
        "role": role.value,
        "strength": f.strength.value,
        "score": f.score,
        "message": f.message,
        "why": f.why,
        "evidence": f.evidence,
    }


def _verdict(symptom: Symptom | None, cause: Finding | None, unusual: int) -> str:
    if symptom is None:
        aside = f" ({unusual} value{'s' if unusual != 1 else ''} outside the usual, listed below)" if unusual else ""
        return f"Nothing went wrong that the recorded metrics show{aside}: no symptom, so no cause."
    seen = f"Symptom at step {symptom.step.seq} '{symptom.step.name}': {symptom.message}."
    if cause is None:
        return f"{seen} Nothing at or before it stands out from its baseline: the recorded metrics do not say why."
    return f"{seen} Most likely cause: step {cause.step.seq} '{cause.step.name}' ({cause.step.step_type}). {cause.message}."
