"""Why-dropped: which step dropped a candidate, and why, from the evidence the run kept.
Served at `GET /api/v1/runs/<run_id>/why-dropped?candidate=ID`.

A candidate is found by the id its step recorded (the SDK's `id_field=` or `keep/reject(..., id=)`
put it beside the candidate in the evidence). When the step recorded none, a candidate matches
when it is the id itself, or an object whose `id` field, or a field ending in `_id`, equals it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from xray_sdk.contract.vocabulary import ArtifactStatus, DropReason
from xray_server import query
from xray_server.artifacts.read import read_artifact
from xray_server.artifacts.stores import ArtifactStore
from xray_server.storage.pool import Database

EVIDENCE = ("rejected_all", "rejected_sample", "kept_sample")
KEPT = "kept_sample"


def why_dropped_in_stored_run(db: Database, store: ArtifactStore, run_id: str, candidate_id: str) -> dict[str, Any]:
    """Search a stored run's kept evidence for the candidate."""

    def fetch(artifact: dict[str, Any]) -> Any:
        data, _ = read_artifact(db, store, artifact["artifact_id"])
        return json.loads(data)

    return why_dropped(query.get_run(db, run_id), candidate_id, fetch)


def why_dropped(run: dict[str, Any], candidate_id: str, fetch: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """Search each step's kept evidence for the candidate; `fetch(artifact)` reads a stored artifact.

    When a step's evidence is complete (every candidate it kept and rejected is in it) and the
    candidate is not there, the step never saw it: it was lost before, upstream, and the answer
    says so (`lost_upstream`) rather than pointing at a later step or a capture level."""
    answer: dict[str, Any] = {
        "run_id": run["run_id"],
        "candidate_id": candidate_id,
        "found": None,
        "kept_by": [],
        "unknown_at": [],
        "lost_upstream": None,
    }
    contents: dict[str, Any] = {}

    def read(artifact: dict[str, Any]) -> Any:
        if artifact["artifact_id"] not in contents:
            contents[artifact["artifact_id"]] = fetch(artifact)
        return contents[artifact["artifact_id"]]

    steps = sorted(run["steps"], key=lambda s: s["seq"])
    for step in steps:
        artifacts = {a["name"]: a for a in step["artifacts"] if a["name"] in EVIDENCE}
        if not artifacts and not step.get("rejections"):
            continue
        where = _search(artifacts, candidate_id, read)
        if where and where[0] != KEPT:
            answer["found"] = {
                "step": step["name"],
                "seq": step["seq"],
                "reason": where[1],
                "candidate": where[2],
                "evidence": where[0],
            }
            return answer
        if where:
            answer["kept_by"].append(step["name"])
            continue
        if _complete(step, artifacts, read):
            answer["lost_upstream"] = {
                "step": step["name"],
                "seq": step["seq"],
                "candidates_in": step["metrics"].get("candidates_in"),
                "earlier_steps": [s["name"] for s in steps if s["seq"] < step["seq"] and s["parent_step_id"] is None],
            }
            return answer
        answer["unknown_at"].append(_why_unknown(step, artifacts))
    return answer


def _complete(
    step: dict[str, Any], artifacts: dict[str, dict[str, Any]], read: Callable[[dict[str, Any]], Any]
) -> bool:
    """Whether the step's evidence holds every candidate it kept and every one it rejected."""
    metrics = step["metrics"]
    cin, cout = metrics.get("candidates_in"), metrics.get("candidates_out")
    if not isinstance(cin, int) or not isinstance(cout, int):
        return False

    def holds(name: str, count: int) -> bool:
        if count == 0:
            return True
        artifact = artifacts.get(name)
        if artifact is None or artifact["status"] != ArtifactStatus.STORED.value:
            return False
        content = read(artifact)
        return isinstance(content, list) and len(content) >= count

    rejected = cin - cout
    return holds(KEPT, cout) and (holds("rejected_all", rejected) or holds("rejected_sample", rejected))


def matches(candidate: Any, candidate_id: str) -> bool:
    """A candidate is its id, or an object with an id field equal to it."""
    if isinstance(candidate, dict):
        return any(
            _is_id_field(key) and isinstance(value, (str, int)) and str(value) == candidate_id
            for key, value in candidate.items()
        )
    return str(candidate) == candidate_id


def _is_id_field(key: str) -> bool:
    return key == "id" or key.endswith("_id")


def _entry(item: Any, kept: bool) -> tuple[Any, str | None, Any]:
    """(candidate, recorded id, reason) of one evidence entry. Kept entries are the candidate
    itself unless the step recorded an id (`{"id", "candidate"}`); rejected entries are
    `{"reason", "candidate"}`, with `id` when recorded. At the default capture level the entries
    are ids alone: `{"id"}` kept, `{"reason", "id"}` rejected (the candidate is None)."""
    if not isinstance(item, dict):
        return item, None, None
    if kept and set(item) not in ({"id", "candidate"}, {"id"}):
        return item, None, None
    recorded = item.get("id") if "candidate" in item or set(item) <= {"id", "reason"} else None
    return item.get("candidate"), None if recorded is None else str(recorded), item.get("reason")


def _search(
    artifacts: dict[str, dict[str, Any]], candidate_id: str, read: Callable[[dict[str, Any]], Any]
) -> tuple[str, str | None, Any] | None:
    for name in EVIDENCE:
        artifact = artifacts.get(name)
        if artifact is None or artifact["status"] != ArtifactStatus.STORED.value:
            continue
        content = read(artifact)
        for item in content if isinstance(content, list) else []:
            candidate, recorded, reason = _entry(item, name == KEPT)
            if recorded == candidate_id or (recorded is None and matches(candidate, candidate_id)):
                return name, reason, candidate
    return None


def _why_unknown(step: dict[str, Any], artifacts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The step saw more candidates than its evidence kept: say which capture would have."""
    dropped = {name: a["drop_reason"] for name, a in artifacts.items() if a["status"] != ArtifactStatus.STORED.value}
    rejected = sum((step.get("rejections") or {}).values())
    if "rejected_all" in artifacts and "rejected_all" not in dropped:
        advice = "it is not among the step's rejected candidates: this step kept it, or never saw it"
    elif dropped:
        advice = f"its evidence was not kept ({', '.join(f'{k}: {v}' for k, v in sorted(dropped.items()))})"
        by_policy = sorted(
            {a["capture"] for a in artifacts.values() if a["drop_reason"] == DropReason.CAPTURE_POLICY.value}
        )
        if by_policy:
            advice += (
                f": capture {' or '.join(repr(level) for level in by_policy)} would have kept it (per step, run or "
                "client: capture=...); or give the step id_field= (or keep/reject(..., id=)), and the default "
                "level keeps the sampled candidates' ids"
            )
    else:
        advice = (
            "capture 'sample' keeps a few candidates per reason; run this step with capture 'full' to "
            "keep every rejected candidate (artifact rejected_all)"
        )
    return {
        "step": step["name"],
        "seq": step["seq"],
        "rejected": rejected,
        "rejections": step.get("rejections") or {},
        "advice": advice,
    }
