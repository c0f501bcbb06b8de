"""The OpenAPI document, generated from the same marshmallow schemas that validate requests,
so that it cannot drift from what the server accepts."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from xray_sdk.contract.limits import DEFAULT_LIMITS
from xray_server.schemas import responses as r
from xray_server.schemas.batch import BatchRunFinishSchema, BatchRunSchema, BatchStepEndSchema, BatchStepStartSchema
from xray_server.schemas.events import RunFinishSchema, StepEndSchema, StepStartSchema
from xray_server.schemas.fields import JsonValue, TimeBound
from xray_server.schemas.labels import LabelBatchSchema, LabelSchema, RunLabelSchema
from xray_server.schemas.queries import (
    ExplainQuerySchema,
    PatternQuerySchema,
    RunExportQuerySchema,
    RunQuerySchema,
    StepExportQuerySchema,
    StepQuerySchema,
    StepStatsQuerySchema,
    WhyDroppedQuerySchema,
)
from xray_server.schemas.runs import RunCreateSchema

_UUID_PATH = {"in": "path", "name": "run_id", "required": True, "schema": {"type": "string", "format": "uuid"}}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": _json("Error", "Malformed request; `error.details.fields` names each bad field"),
    "503": _json("Error", "PostgreSQL is unreachable; retry after the `Retry-After` seconds"),
}


@lru_cache(maxsize=1)
def build_spec() -> dict[str, Any]:
    """The OpenAPI 3.0 document for every endpoint."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="X-Ray",
        version="1",
        openapi_version="3.0.3",
        plugins=[plugin],
        info={"description": "Why a decision pipeline decided what it did, and bad decisions across runs."},
    )
    plugin.map_to_openapi_type(TimeBound, "string", None)
    plugin.map_to_openapi_type(JsonValue, None, None)
    for name, schema in {
        "RunCreate": RunCreateSchema,
        "StepStart": StepStartSchema,
        "StepEnd": StepEndSchema,
        "RunFinish": RunFinishSchema,
        "Error": r.ErrorSchema,
        "RunCreated": r.RunCreatedSchema,
        "BatchResult": r.BatchResultSchema,
        "StepPage": r.StepPageSchema,
        "RunPage": r.RunPageSchema,
        "RunView": r.RunViewSchema,
        "Status": r.StatusSchema,
        "StepStats": r.StepStatsSchema,
        "Reasons": r.ReasonsSchema,
        "Explain": r.ExplainSchema,
        "Diff": r.DiffSchema,
        "WhyDropped": r.WhyDroppedSchema,
        "Label": LabelSchema,
        "LabelRecorded": r.LabelRecordedSchema,
        "RunLabel": RunLabelSchema,
        "LabelBatch": LabelBatchSchema,
        "LabelsRecorded": r.LabelsRecordedSchema,
        "Patterns": r.PatternsSchema,
        "BatchRun": BatchRunSchema,
        "BatchStepStart": BatchStepStartSchema,
        "BatchStepEnd": BatchStepEndSchema,
        "BatchRunFinish": BatchRunFinishSchema,
        "RunsBatchResult": r.RunsBatchResultSchema,
    }.items():
        spec.components.schema(name, schema=schema)
    _paths(spec)
    return spec.to_dict()


def _batch_path(spec: APISpec) -> None:
    """`POST /api/v1/batch`: the bodies of the other write endpoints, each naming its run."""
    limit = DEFAULT_LIMITS.max_events_per_batch
    event = {
        "oneOf": [{"$ref": f"#/components/schemas/{n}"} for n in ("BatchStepStart", "BatchStepEnd", "BatchRunFinish")],
        "discriminator": {"propertyName": "type"},
    }
    body = {
        "type": "object",
        "additionalProperties": False,
        "description": f"At least one item, at most {limit} in all (runs, events and labels together)",
        "properties": {
            "runs": {"type": "array", "maxItems": limit, "items": {"$ref": "#/components/schemas/BatchRun"}},
            "events": {"type": "array", "maxItems": limit, "items": event},
            "labels": {"type": "array", "maxItems": limit, "items": {"$ref": "#/components/schemas/RunLabel"}},
        },
    }
    spec.path(
        "/api/v1/batch",
        operations={
            "post": {
                "summary": "Create runs, apply their events and record labels, of many runs, in one transaction: "
                "each item is checked on its own, and the valid ones are applied beside a refused one",
                "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                "responses": {
                    "200": _json("RunsBatchResult", "Every item applied, or already seen"),
                    "207": _json(
                        "RunsBatchResult",
                        "Some items refused, each with its index, its `code` (`validation_error`, `conflict`, "
                        "`run_outside_partitions`) and the fields; the others applied",
                    ),
                    "413": _json("Error", "Body too large (`details.limit_bytes`)"),
                    "415": _json("Error", "Not JSON"),
                    **_ERRORS,
                },
            }
        },
    )


def _paths(spec: APISpec) -> None:
    event = {
        "oneOf": [{"$ref": f"#/components/schemas/{n}"} for n in ("StepStart", "StepEnd", "RunFinish")],
        "discriminator": {"propertyName": "type"},
    }
    batch = {
        "type": "object",
        "additionalProperties": False,
        "required": ["events"],
        "properties": {
            "events": {"type": "array", "minItems": 1, "maxItems": DEFAULT_LIMITS.max_events_per_batch, "items": event}
        },
    }
    spec.path(
        "/api/v1/runs",
        operations={
            "post": {
                "summary": "Create a run (idempotent for a client-chosen run_id)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": "RunCreate"}}},
                "responses": {
                    "201": _json("RunCreated", "Created"),
                    "200": _json("RunCreated", "Already existed"),
                    "409": _json("Error", "The run_id exists with other values"),
                    **_ERRORS,
                },
            },
            "get": {
                "summary": "Recent runs, newest first",
                "parameters": [{"in": "query", "schema": RunQuerySchema}],
                "responses": {"200": _json("RunPage", "A page of runs"), **_ERRORS},
            },
        },
    )
    spec.path(
        "/api/v1/runs/{run_id}/events",
        operations={
            "post": {
                "summary": "Apply a batch of step_start, step_end and run_finish events",
                "parameters": [_UUID_PATH],
                "requestBody": {"required": True, "content": {"application/json": {"schema": batch}}},
                "responses": {
                    "200": _json("BatchResult", "Every event applied or already seen"),
                    "207": _json("BatchResult", "Some events rejected; the others applied"),
                    "413": _json("Error", "Body too large"),
                    "415": _json("Error", "Not JSON"),
                    **_ERRORS,
                },
            }
        },
    )
    _batch_path(spec)
    spec.path(
        "/api/v1/runs/{run_id}",
        operations={
            "get": {
                "summary": "One run with its steps in order, metrics, why and artifacts",
                "parameters": [_UUID_PATH],
                "responses": {"200": _json("RunView", "The run"), "404": _json("Error", "No such run"), **_ERRORS},
            }
        },
    )
    spec.path(
        "/api/v1/runs/{run_id}/labels",
        operations={
            "post": {
                "summary": "Record a judgement of a run (the latest per source wins; repeating one changes nothing)",
                "parameters": [_UUID_PATH],
                "requestBody": {"required": True, "content": {"application/json": {"schema": "Label"}}},
                "responses": {
                    "200": _json("LabelRecorded", "The source's current label"),
                    "415": _json("Error", "Not JSON"),
                    **_ERRORS,
                },
            }
        },
    )
    spec.path(
        "/api/v1/labels",
        operations={
            "post": {
                "summary": "Record judgements of many runs in one request (`labels`: RunLabel objects, up to 1,000); "
                "each is checked on its own, and the valid ones are kept beside a refused one",
                "requestBody": {"required": True, "content": {"application/json": {"schema": "LabelBatch"}}},
                "responses": {
                    "200": _json("LabelsRecorded", "Every judgement was recorded"),
                    "207": _json("LabelsRecorded", "Some were refused: `errors` gives each one's index and fields"),
                    "415": _json("Error", "Not JSON"),
                    **_ERRORS,
                },
            }
        },
    )
    spec.path(
        "/api/v1/runs/{run_id}/explain",
        operations={
            "get": {
                "summary": "Which step most likely failed and why, against the baseline of recent runs (rules only)",
                "parameters": [_UUID_PATH, {"in": "query", "schema": ExplainQuerySchema}],
                "responses": {
                    "200": _json("Explain", "Findings, most serious first, and a verdict"),
                    "404": _json("Error", "No such run"),
                    **_ERRORS,
                },
            }
        },
    )
    spec.path(
        "/api/v1/runs/{run_id}/diff/{other_run_id}",
        operations={
            "get": {
                "summary": "Two runs lined up step by step, with what changed",
                "parameters": [
                    _UUID_PATH,
                    {
                        "in": "path",
                        "name": "other_run_id",
                        "required": True,
                        "schema": {"type": "string", "format": "uuid"},
                    },
                ],
                "responses": {
                    "200": _json("Diff", "The changes, step by step"),
                    "404": _json("Error", "No such run"),
                    **_ERRORS,
                },
            }
        },
    )
    spec.path(
        "/api/v1/runs/{run_id}/why-dropped",
        operations={
            "get": {
                "summary": "Which step dropped a candidate and why, from the evidence the run kept",
                "parameters": [_UUID_PATH, {"in": "query", "schema": WhyDroppedQuerySchema}],
                "responses": {
                    "200": _json("WhyDropped", "Where the candidate was dropped, kept, or not traceable"),
                    "404": _json("Error", "No such run"),
                    **_ERRORS,
                },
            }
        },
    )
    spec.path(
        "/api/v1/patterns",
        operations={
            "get": {
                "summary": "What the bad runs of a pipeline have in common over a window, and since when: attribute values "
                "and pairs ranked, with a Bonferroni-corrected one-sided Fisher test",
                "parameters": [{"in": "query", "schema": PatternQuerySchema}],
                "responses": {
                    "200": _json("Patterns", "Significant patterns (none when nothing stands out) and a timeline"),
                    **_ERRORS,
                },
            }
        },
    )
    spec.path(
        "/api/v1/steps",
        operations={
            "get": {
                "summary": "Steps across runs, newest first",
                "parameters": [{"in": "query", "schema": StepQuerySchema}],
                "responses": {"200": _json("StepPage", "A page of steps"), **_ERRORS},
            }
        },
    )
    spec.path(
        "/api/v1/steps/stats",
        operations={
            "get": {
                "summary": "Baselines per pipeline and step name: counts and p10/p50/p90/p99 of drop_ratio, "
                "candidate counts and duration over a window (default: the last 7 days)",
                "parameters": [{"in": "query", "schema": StepStatsQuerySchema}],
                "responses": {"200": _json("StepStats", "One group per pipeline, step name and type"), **_ERRORS},
            }
        },
    )
    spec.path(
        "/api/v1/steps/reasons",
        operations={
            "get": {
                "summary": "Rejection reasons across runs: steps, candidates removed in all, and the median share of "
                "a step's candidates each removed, over a window (default: the last 7 days)",
                "parameters": [{"in": "query", "schema": StepStatsQuerySchema}],
                "responses": {"200": _json("Reasons", "Most candidates removed first"), **_ERRORS},
            }
        },
    )
    for kind, schema in (("steps", StepExportQuerySchema), ("runs", RunExportQuerySchema)):
        spec.path(
            f"/api/v1/{kind}/export",
            operations={
                "get": {
                    "summary": f"Every {kind[:-1]} `/{kind}` would page through, newest first, in one stream: CSV with "
                    "a header (`format=csv`, the default) or one JSON object a line (`format=jsonl`)"
                    + (
                        ", each with its run's pipeline, entity, status, tags, outcome and labels"
                        if kind == "steps"
                        else ""
                    ),
                    "parameters": [{"in": "query", "schema": schema}],
                    "responses": {
                        "200": {
                            "description": "The rows, streamed",
                            "content": {
                                "text/csv": {"schema": {"type": "string"}},
                                "application/x-ndjson": {"schema": {"type": "string"}},
                            },
                        },
                        **_ERRORS,
                    },
                }
            },
        )
    spec.path(
        "/api/v1/artifacts/{artifact_id}",
        operations={
            "get": {
                "summary": "An artifact's content, when it was kept",
                "parameters": [
                    {
                        "in": "path",
                        "name": "artifact_id",
                        "required": True,
                        "schema": {"type": "string", "format": "uuid"},
                    }
                ],
                "responses": {
                    "200": {"description": "The artifact, in its content type"},
                    "404": _json("Error", "Unknown, or not kept: `artifact_dropped` with the reason"),
                    "503": _json("Error", "`artifact_store_unavailable`, or PostgreSQL unreachable"),
                    "400": _ERRORS["400"],
                },
            }
        },
    )
    for path, summary in (("/healthz", "The process is up"), ("/readyz", "PostgreSQL is reachable")):
        spec.path(
            path,
            operations={
                "get": {
                    "summary": summary,
                    "responses": {"200": _json("Status", "OK"), "503": _json("Error", "Not ready")},
                }
            },
        )
    spec.path(
        "/api/v1/openapi.json",
        operations={"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.0 document"}}}},
    )
