"""Turn validated events into rows: the bounding and contract checks applied to each.

Pure functions: no database, no Flask. `ingest` feeds them and writes what they return.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from xray_sdk.contract.bounds import bound_json, truncate_text
from xray_sdk.contract.limits import DEFAULT_LIMITS, Limits
from xray_sdk.contract.metrics import check_rejections, evaluate_metrics, unknown_step_type
from xray_sdk.contract.vocabulary import (
    CAPTURE_RANK,
    STANDARD_METRICS,
    ArtifactStatus,
    DropReason,
    EventType,
    StepStatus,
)
from xray_server.artifacts.writer import PendingArtifact

# Artifact ids are derived from (run, step, name) so that a replayed step_end maps onto
# the rows it already made instead of adding new ones.
ARTIFACT_NAMESPACE = uuid.UUID("6f0e8c1a-3b7d-5e2f-9a41-58524159a001")


class EventRejected(Exception):
    """An event broke a rule beyond its schema; `fields` says which and why."""

    def __init__(self, fields: dict[str, list[str]]):
        super().__init__(fields)
        self.fields = fields


@dataclass
class PreparedEvent:
    """One valid event, bounded, with the row fragment it contributes."""

    index: int
    event_id: str
    type: str
    ts: datetime
    step_row: dict[str, Any] | None = None
    artifact_rows: list[dict[str, Any]] = field(default_factory=list)
    finish: dict[str, Any] | None = None
    violations: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    pending: list[PendingArtifact] = field(default_factory=list)
    run_id: str = ""


def artifact_id(run_id: str, step_id: str, name: str) -> str:
    """The stable id of a step's artifact."""
    return str(uuid.uuid5(ARTIFACT_NAMESPACE, f"{run_id}/{step_id}/{name}"))


@dataclass(frozen=True)
class ArtifactPolicy:
    """What the server does with artifacts: whether a store exists, and the highest capture kept."""

    has_store: bool = False
    max_capture: str = "full"


_encode_json = msgspec.json.encode


def uuid_text(value: uuid.UUID) -> str:
    """`str(value)`, the canonical text, in a fifth of the time: msgspec writes it in C, where
    `UUID.__str__` formats a 128-bit integer in Python (three a step, on the ingest path)."""
    return _encode_json(value)[1:-1].decode()


def uuid_array(ids: list[str]) -> str:
    """Canonical UUID texts as one PostgreSQL array literal, for a `%s::uuid[]` parameter.
    psycopg's list dumper walks a list element by element in Python (7% of a worker's CPU on
    the ingest path, by py-spy); canonical UUID text needs no quoting."""
    return "{" + ",".join(ids) + "}"


def prepare(
    run_id: str,
    index: int,
    event: dict[str, Any],
    limits: Limits = DEFAULT_LIMITS,
    policy: ArtifactPolicy = ArtifactPolicy(),
) -> PreparedEvent:
    """Bound a schema-valid event's text and apply the metric contract to it."""
    prepared = PreparedEvent(
        index=index, event_id=uuid_text(event["event_id"]), type=event["type"], ts=event["ts"], run_id=run_id
    )
    if event["type"] == EventType.STEP_START.value:
        prepared.step_row = _start_row(event, prepared, limits)
    elif event["type"] == EventType.STEP_END.value:
        prepared.step_row = _end_row(event, prepared, limits)
        prepared.artifact_rows = [_artifact_row(run_id, event, prepared, a, limits, policy) for a in event["artifacts"]]
    else:
        prepared.finish = {
            "status": event["status"],
            "outcome": _bounded_json(event["outcome"], "outcome", prepared, limits),
            "error": _bounded_error(event["error"], "error", prepared, limits),
        }
    return prepared


def _identity(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "step_id": uuid_text(event["step_id"]),
        "parent_step_id": uuid_text(event["parent_step_id"]) if event["parent_step_id"] else None,
        "seq": event["seq"],
        "name": event["name"],
        "step_type": event["step_type"],
    }


def _start_row(event: dict[str, Any], prepared: PreparedEvent, limits: Limits) -> dict[str, Any]:
    row = _identity(event)
    ts = event["ts"].isoformat()
    row.update(
        status=StepStatus.RUNNING.value,
        started_at=ts,
        start_ts=ts,
        start_event_id=prepared.event_id,
        **_input_source(event, prepared, limits, from_start=True, ts=ts),
    )
    return row


def _input_source(
    event: dict[str, Any], prepared: PreparedEvent, limits: Limits, *, from_start: bool, ts: str
) -> dict[str, Any]:
    """The input an event offers, with the key the merge ranks it by."""
    value = _bounded_json(event["input"], "input", prepared, limits)
    if value is None:
        return {"input": None, "input_from_start": False, "input_ts": None, "input_event_id": None}
    return {"input": value, "input_from_start": from_start, "input_ts": ts, "input_event_id": prepared.event_id}


def _end_row(event: dict[str, Any], prepared: PreparedEvent, limits: Limits) -> dict[str, Any]:
    verdict = evaluate_metrics(event["step_type"], event["metrics"], limits)
    if verdict.errors:
        raise EventRejected({f"metrics.{name}": [problem] for name, problem in verdict.errors.items()})
    rejections = event["rejections"]
    if rejections is not None:
        problem = check_rejections(
            rejections, verdict.metrics.get("candidates_in"), verdict.metrics.get("candidates_out"), limits
        )
        if problem:
            raise EventRejected({"rejections": [problem]})
    declared = [unknown_step_type(event["declared_type"])] if event["declared_type"] else []
    prepared.violations = declared + verdict.violations
    started = min(event["started_at"] or event["ts"], event["ts"])
    row = _identity(event)
    row.update({name: verdict.metrics.get(name) for name in STANDARD_METRICS})
    extra = {k: v for k, v in verdict.metrics.items() if k not in STANDARD_METRICS}
    ended = event["ts"].isoformat()
    row.update(
        status=event["status"],
        started_at=started.isoformat(),
        ended_at=ended,
        metrics=extra or None,
        **_input_source(event, prepared, limits, from_start=False, ts=ended),
        output=_bounded_json(event["output"], "output", prepared, limits),
        why=_bounded_text(event["why"], "why", limits.max_why_chars, prepared),
        error=_bounded_error(event["error"], "error", prepared, limits),
        contract_violations=prepared.violations or None,
        rejections=rejections or None,
        end_event_id=prepared.event_id,
    )
    return row


def _artifact_row(
    run_id: str,
    event: dict[str, Any],
    prepared: PreparedEvent,
    artifact: dict[str, Any],
    limits: Limits,
    policy: ArtifactPolicy,
) -> dict[str, Any]:
    """The artifact's row. A payload or a reference is `pending` until the store settles it
    after commit; without a store, or over a limit, it is `dropped` now, with the reason."""
    step_id = uuid_text(event["step_id"])
    art_id = artifact_id(run_id, step_id, artifact["name"])
    ref = artifact["ref"] or {}
    content_type = artifact["content_type"] or "application/json"
    key, size, digest, data = ref.get("key"), ref.get("size_bytes"), ref.get("sha256"), None
    if artifact["dropped"] is not None:
        status, reason = ArtifactStatus.DROPPED.value, artifact["dropped"]
    elif CAPTURE_RANK[artifact["capture"]] > CAPTURE_RANK[policy.max_capture]:
        status, reason = ArtifactStatus.DROPPED.value, DropReason.CAPTURE_POLICY.value
    elif artifact["ref"] is not None:
        status, reason = (ArtifactStatus.PENDING.value if policy.has_store else ArtifactStatus.REFERENCED.value), None
    else:
        data = json.dumps(artifact["payload"], separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        key, size, digest = f"runs/{run_id}/{step_id}/{art_id}.json", len(data), hashlib.sha256(data).hexdigest()
        if size > limits.max_artifact_payload_bytes:
            status, reason, data = ArtifactStatus.DROPPED.value, DropReason.TOO_LARGE.value, None
        elif not policy.has_store:
            status, reason, data = ArtifactStatus.DROPPED.value, DropReason.NO_STORE.value, None
        else:
            status, reason = ArtifactStatus.PENDING.value, None
    if status == ArtifactStatus.PENDING.value:
        prepared.pending.append(
            PendingArtifact(
                art_id, prepared.event_id, key, content_type, data, prepared.index, artifact["name"], run_id
            )
        )
    return {
        "artifact_id": art_id,
        "step_id": step_id,
        "name": artifact["name"],
        "capture": artifact["capture"],
        "content_type": content_type,
        "status": status,
        "drop_reason": reason,
        "store_key": key,
        "size_bytes": size,
        "sha256": digest,
        "event_ts": event["ts"].isoformat(),
        "event_id": prepared.event_id,
    }


def _bounded_text(text: str | None, name: str, max_chars: int, prepared: PreparedEvent) -> str | None:
    if text is None:
        return None
    bounded, cut = truncate_text(text, max_chars)
    if cut:
        prepared.truncated.append(name)
    return bounded


def _bounded_json(value: Any, name: str, prepared: PreparedEvent, limits: Limits) -> Any:
    if value is None:
        return None
    bounded, cut = bound_json(value, limits.max_summary_bytes)
    if cut:
        prepared.truncated.append(name)
    return bounded


def _bounded_error(error: dict[str, Any] | None, name: str, prepared: PreparedEvent, limits: Limits) -> Any:
    if error is None:
        return None
    return {
        "type": error["type"],
        "message": _bounded_text(error["message"], f"{name}.message", limits.max_error_message_chars, prepared),
        "stack": _bounded_text(error["stack"], f"{name}.stack", limits.max_error_stack_chars, prepared),
    }
