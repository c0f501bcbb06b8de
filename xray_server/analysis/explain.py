"""Explain: which step of a run caused what went wrong, and why, by rules only.

Each step is held to the same step (pipeline and name) in the most recent runs of its pipeline,
the run itself left out (`baseline.py`: robust distances over every numeric and categorical
feature). Each unusual feature is a finding of one class:

- a *fault*: the step raised, or never ended;
- a *decision*: what the step did with what it was given: a reducing step's drop ratio, its
  reasons, an empty output, its custom metrics (a rank's `score_max`); any step's model or other
  categorical metric; missing required metrics;
- a *volume*: how many candidates came in or went out (a search's results, an llm's keywords);
- a *time*: the step was slow.

The rules that make a finding a cause rather than a symptom:

- A step starved of input (none, or a tenth of its usual) is a downstream effect: whatever it did
  follows from what it was given. A step whose input is unusual but not starved keeps its
  decisions (its output against its input is its own) and loses its volumes (they follow).
- The cause is the earliest own finding of the strongest class present (fault, then decision,
  volume, time), and within nested steps the innermost: a search that returned 3 results is the
  cause when nothing decided differently; a filter that dropped 94% is, even after a search that
  returned more than usual (a volume, often just a kind of input).
- A volume is unusual from a distance of 8 (counts spread by factors), but from the decisions'
  distance of 4 when the step's output is a tenth of its usual or less, or a later step is
  starved: what it returned is what left the rest with nothing.
- A *weak* finding (a minority value of a metric that normally takes two) is the cause only when a
  strong or mild one follows it in the same run, or when its own step's output moved with it (an
  llm that fell back to another model and returned a third of its usual keywords): alone, it is
  normal variation.

Served at `GET /api/v1/runs/<run_id>/explain`. Deterministic: the same run and the same recent
runs give the same answer (the contract forbids AI-generated explanations).
"""

from __future__ import annotations

from typing import Any

from xray_sdk.contract.vocabulary import REDUCING_STEP_TYPES, ArtifactStatus, StepStatus, StepType
from xray_server import query
from xray_server.analysis.baseline import (
    MIN_Z,
    WITH_OUTPUT_Z,
    Deviation,
    StepBaseline,
    categorical_features,
    numeric_features,
)
from xray_server.query.baselines import recent_steps
from xray_server.storage.pool import Database

# How many recent runs of the pipeline the baseline holds.
BASELINE_RUNS = 200
# Classes of finding, strongest first: a cause is chosen from the strongest class present.
CLASS_ORDER = {"fault": 0, "decision": 1, "volume": 2, "time": 3}
VOLUMES = ("candidates_in", "candidates_out")
# Input at or below this share of its usual size starves a step: what it does is an effect.
STARVED = 0.1
ROLE_ORDER = {"cause": 0, "effect": 1, "unusual": 2}
# Within a step, what says most about its own behaviour comes first: its ratio and reasons before
# its output count (which follows from them), counts before duration.
FEATURE_ORDER = {"drop_ratio": 0, "candidates_out": 3, "candidates_in": 4, "duration_ms": 5}


def _feature_rank(finding: dict[str, Any]) -> int:
    feature = finding["evidence"].get("feature")
    if feature is None:
        return 0
    if feature.startswith("reason:"):
        return 1
    return FEATURE_ORDER.get(feature, 2)


def explain_stored_run(db: Database, run_id: str, baseline_runs: int = BASELINE_RUNS) -> dict[str, Any]:
    """Explain a stored run against the `baseline_runs` most recent other runs of its pipeline."""
    run = query.get_run(db, run_id)
    baseline = recent_steps(db, run["pipeline"], run["run_id"], baseline_runs) if run["pipeline"] else []
    return explain(run, baseline)


def explain(run: dict[str, Any], baseline_steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The cause (or None), every finding with its role and numbers, and a verdict, for `run` (a
    run view) against `baseline_steps` (steps of other recent runs of the same pipeline)."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for step in baseline_steps:
        by_name.setdefault(step["name"], []).append(step)
    baselines = {name: StepBaseline(steps) for name, steps in by_name.items()}
    steps = sorted(run["steps"], key=lambda s: s["seq"])
    findings: list[dict[str, Any]] = []
    starved_at: list[int] = []
    for step in steps:
        step_findings, starved = _step_findings(step, baselines.get(step["name"]))
        findings += step_findings
        if starved:
            starved_at.append(step["seq"])
    _corroborate_volumes(findings, starved_at)
    cause = _choose_cause(findings, steps)
    for f in findings:
        if f is cause:
            f["role"] = "cause"
        elif not f["own"] or (cause is not None and f["seq"] > cause["seq"] and f["class"] == "volume"):
            f["role"] = "effect"
        else:
            f["role"] = "unusual"
    findings.sort(
        key=lambda f: (ROLE_ORDER[f["role"]], f["seq"], CLASS_ORDER.get(f["class"], 4), _feature_rank(f), -f["score"])
    )
    public = [_public(f) for f in findings if not f["mild"]]
    return {
        "run_id": run["run_id"],
        "pipeline": run["pipeline"],
        "entity": run["entity"],
        "status": run["status"],
        "outcome": run["outcome"],
        "error": run["error"],
        "baseline": {"runs": len({s["run_id"] for s in baseline_steps}), "steps": len(baseline_steps)},
        "cause": None if cause is None else _cause(cause),
        "findings": public,
        "verdict": _verdict(cause),
    }


def _step_findings(step: dict[str, Any], base: StepBaseline | None) -> tuple[list[dict[str, Any]], bool]:
    """The step's findings, each with its class and whether it is the step's own doing, and
    whether the step was starved of input."""
    found: list[dict[str, Any]] = []
    metrics = step["metrics"]
    trusted = base is not None and base.trusted
    starved, input_unusual = _input_state(step, base) if trusted else (False, False)

    def add(
        kind: str,
        cls: str,
        score: float,
        message: str,
        *,
        strong: bool = True,
        mild: bool = False,
        corroborated: bool = False,
        **evidence: Any,
    ) -> None:
        own = not starved and not (input_unusual and cls == "volume")
        found.append(
            {
                "kind": kind,
                "class": cls,
                "own": own,
                "mild": mild,
                "corroborated": corroborated,
                "score": round(score, 2),
                "step": step["name"],
                "seq": step["seq"],
                "step_id": step["step_id"],
                "parent_step_id": step.get("parent_step_id"),
                "step_type": step["step_type"],
                "message": message,
                "why": step["why"],
                "strong": strong,
                "evidence": evidence,
            }
        )

    name = step["name"]
    if step["status"] == StepStatus.ERROR.value:
        error = step["error"] or {}
        add(
            "error",
            "fault",
            10,
            f"{name} raised {error.get('type', 'an error')}: {error.get('message', '')}",
            error=error,
        )
    if step["status"] == StepStatus.RUNNING.value:
        add("running", "fault", 10, f"{name} never ended (no step_end arrived)")
    # Missing metrics are a finding unless most recent runs of the step miss them too (then they
    # are how the step is instrumented, not what went wrong in this run).
    if step["contract_violations"] and (not trusted or base.violations / base.size < 0.5):
        add(
            "violation",
            "decision",
            5,
            f"{name} is missing required metrics: {', '.join(step['contract_violations'])};"
            " cross-run queries and this explanation cannot see them",
            violations=step["contract_violations"],
        )
    usual_out = base.usual("candidates_out") if trusted else None
    if metrics.get("candidates_out") == 0 and (usual_out or 0) > 0:
        received = metrics.get("candidates_in")
        add(
            "empty",
            "decision",
            8,
            f"{name} output no candidates where it usually outputs {usual_out:.0f}"
            + (f" (it received {received})" if isinstance(received, int) else ""),
            candidates_out=0,
            usual=usual_out,
        )
    if trusted:
        for deviation in _deviations(step, base):
            if deviation.feature == "candidates_out" and metrics.get("candidates_out") == 0:
                continue  # said as `empty`
            kind, cls = _kind_and_class(step, deviation)
            categorical = isinstance(deviation.value, str)
            strong = deviation.strong and (categorical or abs(deviation.distance) >= MIN_Z[cls])
            add(
                kind,
                cls,
                abs(deviation.distance),
                _message(step, deviation),
                strong=strong,
                mild=not strong and not categorical,
                corroborated=categorical and not strong and _output_moved(step, base),
                feature=deviation.feature,
                **deviation.evidence,
            )
    dropped = [a for a in step.get("artifacts", []) if a["status"] == ArtifactStatus.DROPPED.value]
    if dropped:
        add(
            "dropped_evidence",
            "evidence",
            0,
            f"{name}: evidence not kept: " + ", ".join(f"{a['name']} ({a['drop_reason']})" for a in dropped),
            strong=False,
            artifacts=[a["name"] for a in dropped],
        )
    return found, starved


def _output_moved(step: dict[str, Any], base: StepBaseline) -> bool:
    """Whether the step's output count is at least `WITH_OUTPUT_Z` from its usual, with the
    minimum effect, while its input is not: an output that follows its input is not the step's."""
    out, cin = step["metrics"].get("candidates_out"), step["metrics"].get("candidates_in")
    if isinstance(cin, int) and base.numeric_deviation("candidates_in", float(cin), WITH_OUTPUT_Z) is not None:
        return False
    return isinstance(out, int) and base.numeric_deviation("candidates_out", float(out), WITH_OUTPUT_Z) is not None


def _corroborate_volumes(findings: list[dict[str, Any]], starved_at: list[int]) -> None:
    """A volume that would be unusual at the decision's distance (4) is strong when a later step
    of the run is starved, or when it is an output a tenth of its usual or less: what it returned
    is what left the rest with nothing (a search that is one of several feeding a step starves its
    share of it without starving the step)."""
    for f in findings:
        weak_volume = f["class"] == "volume" and f["own"] and not f["strong"] and f["score"] >= MIN_Z["decision"]
        if weak_volume and (any(seq > f["seq"] for seq in starved_at) or _starved_output(f)):
            f["strong"], f["mild"] = True, False


def _starved_output(finding: dict[str, Any]) -> bool:
    e = finding["evidence"]
    return e.get("feature") == "candidates_out" and (e.get("usual") or 0) > 0 and e["value"] <= STARVED * e["usual"]


def _kind_and_class(step: dict[str, Any], deviation: Deviation) -> tuple[str, str]:
    if deviation.feature == "duration_ms":
        return "slow", "time"
    if isinstance(deviation.value, str):
        return "changed", "decision"
    if deviation.feature in VOLUMES:
        return "outlier", "volume"
    # A filter's drop ratio and reasons are its decision; a rank or a select keeps its top few, so
    # its ratio follows from its input. A source's other numbers describe what it returned; a
    # reducing step's describe its decision.
    if deviation.feature == "drop_ratio":
        return "outlier", "decision" if step["step_type"] == StepType.FILTER.value else "volume"
    reducing = step["step_type"] in REDUCING_STEP_TYPES
    return "outlier", "decision" if reducing or deviation.feature.startswith("reason:") else "volume"


def _input_state(step: dict[str, Any], base: StepBaseline) -> tuple[bool, bool]:
    """(starved, unusual) of the step's input."""
    cin = step["metrics"].get("candidates_in")
    usual = base.usual("candidates_in")
    if not isinstance(cin, int) or usual is None:
        return False, False
    starved = usual > 0 and cin <= STARVED * usual
    deviation = base.numeric_deviation("candidates_in", float(cin), MIN_Z["volume"])
    return starved, starved or deviation is not None


def _deviations(step: dict[str, Any], base: StepBaseline) -> list[Deviation]:
    out = []
    for feature, (value, _) in numeric_features(step).items():
        deviation = base.numeric_deviation(feature, value)
        if deviation is not None:
            out.append(deviation)
    for feature, value in categorical_features(step).items():
        deviation = base.categorical_deviation(feature, value)
        if deviation is not None:
            out.append(deviation)
    return out


def _message(step: dict[str, Any], d: Deviation) -> str:
    name, e = step["name"], d.evidence
    if isinstance(d.value, str):
        return (
            f"{name} had {d.feature}={d.value!r}, which {e['share']:.0%} of {e['baseline_steps']} recent steps had; "
            f"usually {d.usual!r} ({e['usual_share']:.0%})"
        )
    if d.feature == "drop_ratio":
        return (
            f"{name} dropped {d.value:.1%} of {step['metrics'].get('candidates_in')} candidates, against a usual "
            f"{d.usual:.1%} (median; p10 {e['p10']:.1%}, p90 {e['p90']:.1%}) over {e['baseline_steps']} recent "
            f"steps{_dominant_reason(step)}"
        )
    if d.feature.startswith("reason:"):
        reason = d.feature.split(":", 1)[1]
        return (
            f"{name} removed {d.value:.0%} of its candidates for '{reason}', against a usual {d.usual:.0%} over "
            f"{e['baseline_steps']} recent steps"
        )
    if d.feature == "duration_ms":
        return f"{name} took {d.value:.0f} ms, usually {d.usual:.0f} ms (median of {e['baseline_steps']} recent steps)"
    return (
        f"{name} had {d.feature}={_number(d.value)} where it usually has {_number(d.usual)} (median; p10 "
        f"{_number(e['p10'])}, p90 {_number(e['p90'])} over {e['baseline_steps']} recent steps)"
    )


def _dominant_reason(step: dict[str, Any]) -> str:
    rejections, cin = step.get("rejections") or {}, step["metrics"].get("candidates_in")
    if not rejections or not cin:
        return ""
    reason, count = max(rejections.items(), key=lambda kv: (kv[1], kv[0]))
    return f"; {count / cin:.0%} of its candidates for '{reason}'"


def _number(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _choose_cause(findings: list[dict[str, Any]], steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The earliest own finding of the strongest class present; a weak finding only when a strong
    or mild one follows it, or its own step's output moved with it; within nested steps, the
    innermost."""
    own = [f for f in findings if f["own"] and f["class"] in CLASS_ORDER]
    strong = [f for f in own if f["strong"]]
    later = min((f["seq"] for f in strong), default=None)
    weak = [
        f
        for f in own
        if not f["strong"]
        and not f["mild"]
        and (f["corroborated"] or any(g["seq"] > f["seq"] and (g["strong"] or g["mild"]) for g in findings))
    ]
    candidates = strong + [f for f in weak if later is None or f["seq"] < later]
    if not candidates:
        return None
    best = min(CLASS_ORDER[f["class"]] for f in candidates)
    chosen = sorted(
        (f for f in candidates if CLASS_ORDER[f["class"]] == best),
        key=lambda f: (f["seq"], _feature_rank(f), -f["score"]),
    )
    cause = chosen[0]
    # A parent step's findings follow from its children: name the innermost step that has one.
    by_id = {s["step_id"]: s for s in steps}
    descendants = [f for f in chosen if _descends(f, cause["step_id"], by_id)]
    return min(descendants, key=lambda f: (f["seq"], _feature_rank(f), -f["score"])) if descendants else cause


def _descends(finding: dict[str, Any], ancestor: str, steps: dict[str, dict[str, Any]]) -> bool:
    parent = finding.get("parent_step_id")
    while parent:
        if parent == ancestor:
            return True
        parent = (steps.get(parent) or {}).get("parent_step_id")
    return False


def _public(f: dict[str, Any]) -> dict[str, Any]:
    return {k: f[k] for k in ("kind", "role", "score", "step", "seq", "step_type", "message", "why", "evidence")}


def _cause(f: dict[str, Any]) -> dict[str, Any]:
    return {
        "step": f["step"],
        "seq": f["seq"],
        "step_type": f["step_type"],
        "kind": f["kind"],
        "message": f["message"],
        "evidence": f["evidence"],
    }


def _verdict(cause: dict[str, Any] | None) -> str:
    if cause is None:
        return "No step stands out from its baseline: nothing in the recorded metrics explains a failure."
    return f"Most likely cause: step {cause['seq']} '{cause['step']}' ({cause['step_type']}). {cause['message']}."
