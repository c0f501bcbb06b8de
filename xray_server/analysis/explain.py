"""Explain: which step of a run most likely failed, and why, by rules only.

Each step is held to the baseline of the same pipeline and step name over recent runs
(what `GET /api/v1/steps/stats` answers). Served at `GET /api/v1/runs/<run_id>/explain`.
Findings are ranked by severity, then by how far the step is from normal; each carries the numbers that justify it. Deterministic: the same run and the
same baseline give the same answer (the contract forbids AI-generated explanations).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from xray_sdk.contract.vocabulary import ArtifactStatus, StepStatus
from xray_server import query
from xray_server.schemas.queries import StepStatsQuery
from xray_server.storage.pool import Database

# Fewer baseline steps than this and "usual" means nothing.
MIN_BASELINE = 5
# A drop_ratio this far above its step's median is abnormal whatever the rest of the baseline.
LARGE_GAP = 0.3
SEVERITY = {"error": 4, "outlier": 3, "empty": 3, "violation": 2, "running": 2, "dropped_evidence": 1}


def explain_stored_run(db: Database, run_id: str, baseline_since: datetime | None = None) -> dict[str, Any]:
    """Explain a stored run against its pipeline's baseline since `baseline_since` (default: the
    baselines' window)."""
    run = query.get_run(db, run_id)
    if not run["pipeline"]:
        return explain(run, {})
    stats = query.step_stats(db, StepStatsQuery(pipeline=run["pipeline"], since=baseline_since))
    reasons = {
        s["name"]: query.top_reasons(db, StepStatsQuery(pipeline=run["pipeline"], name=s["name"], since=baseline_since))
        for s in run["steps"]
        if s.get("rejections")
    }
    return explain(run, stats, reasons)


def explain(
    run: dict[str, Any], stats: dict[str, Any], reasons: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Findings for `run` (a run view) against `stats` (a steps/stats answer for its pipeline)
    and `reasons` (per step name, a steps/reasons answer: the usual share of each reason)."""
    baselines = {(g["name"], g["step_type"]): g for g in stats.get("groups", [])}
    findings: list[dict[str, Any]] = []
    for step in run["steps"]:
        usual_reasons = {r["reason"]: r for r in (reasons or {}).get(step["name"], {}).get("reasons", [])}
        findings += _step_findings(step, baselines.get((step["name"], step["step_type"])), usual_reasons)
    findings.sort(key=lambda f: (-SEVERITY[f["kind"]], -f["score"], f["seq"]))
    return {
        "run_id": run["run_id"],
        "pipeline": run["pipeline"],
        "entity": run["entity"],
        "status": run["status"],
        "outcome": run["outcome"],
        "error": run["error"],
        "findings": findings,
        "verdict": _verdict(run, findings),
    }


def _step_findings(
    step: dict[str, Any], baseline: dict[str, Any] | None, usual_reasons: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    found = []
    metrics = step["metrics"]

    def add(kind: str, score: float, message: str, **evidence: Any) -> None:
        found.append(
            {
                "kind": kind,
                "score": round(score, 2),
                "step": step["name"],
                "seq": step["seq"],
                "step_type": step["step_type"],
                "message": message,
                "why": step["why"],
                "evidence": evidence,
            }
        )

    if step["status"] == StepStatus.ERROR.value:
        error = step["error"] or {}
        add(
            "error",
            10,
            f"{step['name']} raised {error.get('type', 'an error')}: {error.get('message', '')}",
            error=error,
        )
    if step["status"] == StepStatus.RUNNING.value:
        add("running", 1, f"{step['name']} never ended (no step_end arrived)")
    if step["contract_violations"]:
        add(
            "violation",
            len(step["contract_violations"]),
            f"{step['name']} is missing required metrics: {', '.join(step['contract_violations'])}; "
            "cross-run queries cannot see it",
            violations=step["contract_violations"],
        )
    if metrics.get("candidates_in") and metrics.get("candidates_out") == 0:
        add(
            "empty",
            5,
            f"{step['name']} kept none of its {metrics['candidates_in']} candidates",
            candidates_in=metrics["candidates_in"],
        )
    if baseline is not None and baseline["steps"] >= MIN_BASELINE:
        _outliers(step, baseline, add, usual_reasons)
    dropped = [a for a in step.get("artifacts", []) if a["status"] == ArtifactStatus.DROPPED.value]
    if dropped:
        add(
            "dropped_evidence",
            0,
            f"{step['name']}: evidence not kept: " + ", ".join(f"{a['name']} ({a['drop_reason']})" for a in dropped),
            artifacts=[a["name"] for a in dropped],
        )
    return found


def _dominant_reason(step: dict[str, Any], usual_reasons: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """`; 92% of its candidates for 'reason', against a usual 17%`, and the numbers behind it."""
    rejections, cin = step.get("rejections") or {}, step["metrics"].get("candidates_in")
    if not rejections or not cin:
        return "", {}
    reason, count = max(rejections.items(), key=lambda kv: (kv[1], kv[0]))
    share = count / cin
    usual = (usual_reasons.get(reason) or {}).get("median_share") or 0.0
    return (
        f"; {share:.0%} of its candidates for '{reason}', against a usual {usual:.0%}",
        {"reason": reason, "reason_share": round(share, 4), "usual_reason_share": usual},
    )


def _outliers(
    step: dict[str, Any], baseline: dict[str, Any], add: Any, usual_reasons: dict[str, dict[str, Any]]
) -> None:
    metrics = step["metrics"]
    ratio, usual = metrics.get("drop_ratio"), baseline.get("drop_ratio")
    if ratio is not None and usual:
        spread = max(usual["p90"] - usual["p10"], 0.05)
        distance = (ratio - usual["p50"]) / spread
        # Far above the median, or above p90: when a tenth of recent runs share the same bug,
        # p90 is itself abnormal, so a large gap to the median is enough.
        if ratio - usual["p50"] >= LARGE_GAP or (ratio > usual["p90"] and ratio - usual["p50"] >= 0.1):
            because, reason = _dominant_reason(step, usual_reasons)
            add(
                "outlier",
                distance,
                f"{step['name']} dropped {ratio:.1%} of {metrics.get('candidates_in')} candidates, against a usual "
                f"{usual['p50']:.1%} (p50; p90 {usual['p90']:.1%}) over {baseline['steps']} recent steps{because}",
                drop_ratio=ratio,
                baseline=usual,
                baseline_steps=baseline["steps"],
                **reason,
            )
    kept, usual_out = metrics.get("candidates_out"), baseline.get("candidates_out")
    if kept is not None and usual_out and usual_out["p50"] >= 5 * max(kept, 1):
        add(
            "outlier",
            usual_out["p50"] / max(kept, 1) / 10,
            f"{step['name']} kept {kept} candidates where it usually keeps {usual_out['p50']:.0f} (p50)",
            candidates_out=kept,
            baseline=usual_out,
        )
    duration, usual_ms = step.get("duration_ms"), baseline.get("duration_ms")
    if duration is not None and usual_ms and duration > 3 * usual_ms["p99"] and duration - usual_ms["p50"] > 50:
        add(
            "outlier",
            duration / max(usual_ms["p99"], 1) / 3,
            f"{step['name']} took {duration:.0f} ms, usually {usual_ms['p50']:.0f} ms (p50; p99 {usual_ms['p99']:.0f})",
            duration_ms=duration,
            baseline=usual_ms,
        )


def _verdict(run: dict[str, Any], findings: list[dict[str, Any]]) -> str:
    serious = [f for f in findings if SEVERITY[f["kind"]] >= 2]
    if not serious:
        return "No step stands out from its baseline: nothing in the recorded metrics explains a failure."
    top = serious[0]
    return f"Most likely cause: step {top['seq']} '{top['step']}' ({top['step_type']}). {top['message']}."
