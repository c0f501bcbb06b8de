"""`xray why-dropped`: which step dropped a candidate, and why, from the kept evidence."""
from __future__ import annotations

from typing import Any, Callable

ID_FIELDS = ("id", "asin", "candidate_id", "sku", "product_id")
EVIDENCE = ("rejected_all", "rejected_sample", "kept_sample")


def matches(candidate: Any, candidate_id: str) -> bool:
    """A candidate is its id, or an object with an id field equal to it."""
    if isinstance(candidate, dict):
        return any(str(candidate.get(field)) == candidate_id for field in ID_FIELDS if field in candidate)
    return str(candidate) == candidate_id


def why_dropped(run: dict[str, Any], candidate_id: str, fetch: Callable[[str], Any]) -> dict[str, Any]:
    """Search each step's kept evidence for the candidate; `fetch(link)` reads an artifact."""
    answer: dict[str, Any] = {"run_id": run["run_id"], "candidate_id": candidate_id, "found": None, "kept_by": [],
                              "unknown_at": []}
    for step in sorted(run["steps"], key=lambda s: s["seq"]):
        artifacts = {a["name"]: a for a in step["artifacts"] if a["name"] in EVIDENCE}
        if not artifacts and not step.get("rejections"):
            continue
        where = _search(artifacts, candidate_id, fetch)
        if where and where[0] != "kept_sample":
            answer["found"] = {"step": step["name"], "seq": step["seq"], "reason": where[1], "candidate": where[2],
                               "evidence": where[0]}
            return answer
        if where:
            answer["kept_by"].append(step["name"])
            continue
        answer["unknown_at"].append(_why_unknown(step, artifacts))
    return answer


def _search(artifacts: dict[str, dict[str, Any]], candidate_id: str, fetch: Callable[[str], Any]):
    for name in EVIDENCE:
        artifact = artifacts.get(name)
        if artifact is None or not artifact.get("link"):
            continue
        content = fetch(artifact["link"])
        for item in content if isinstance(content, list) else []:
            if name == "kept_sample":
                if matches(item, candidate_id):
                    return name, None, item
            elif isinstance(item, dict) and matches(item.get("candidate"), candidate_id):
                return name, item.get("reason"), item.get("candidate")
    return None


def _why_unknown(step: dict[str, Any], artifacts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The step saw more candidates than its evidence kept: say which capture would have."""
    dropped = {name: a["drop_reason"] for name, a in artifacts.items() if a["status"] != "stored"}
    rejected = sum((step.get("rejections") or {}).values())
    if "rejected_all" in artifacts and "rejected_all" not in dropped:
        advice = "it is not among the step's rejected candidates: this step kept it, or never saw it"
    elif dropped:
        advice = f"its evidence was not kept ({', '.join(f'{k}: {v}' for k, v in sorted(dropped.items()))})"
    else:
        advice = ("capture 'sample' keeps a few candidates per reason; run this step with capture 'full' to "
                  "keep every rejected candidate (artifact rejected_all)")
    return {"step": step["name"], "seq": step["seq"], "rejected": rejected, "rejections": step.get("rejections") or {},
            "advice": advice}


def why_dropped_text(answer: dict[str, Any]) -> str:
    """The answer in a sentence or a few."""
    cid = answer["candidate_id"]
    if answer["found"]:
        f = answer["found"]
        return (f"Step {f['seq']} '{f['step']}' dropped {cid}: reason '{f['reason']}' "
                f"(found in its {f['evidence']} artifact).\nCandidate: {f['candidate']}")
    lines = []
    if answer["kept_by"]:
        lines.append(f"{cid} was kept by: {', '.join(answer['kept_by'])}.")
    for u in answer["unknown_at"]:
        lines.append(f"Step {u['seq']} '{u['step']}' rejected {u['rejected']} candidates "
                     f"({', '.join(f'{r} {n}' for r, n in u['rejections'].items())}), and {cid} is not in the evidence "
                     f"it kept: {u['advice']}.")
    return "\n".join(lines) or f"No step of this run recorded candidate decisions, so {cid} cannot be traced."
