"""Runs: create, receive event batches (of one run, or of many with their creations and labels), list,
and the one-run debugging view."""

from __future__ import annotations

from flask import Blueprint, Response, request, stream_with_context

from xray_server import ingest, query
from xray_server.query.export import CONTENT_TYPES, export_runs
from xray_server.schemas.queries import REPEATABLE_PARAMETERS, RunExportQuerySchema, RunQuerySchema
from xray_server.web.context import get_db, get_settings, get_writer
from xray_server.web.request import load_query, read_json_body

bp = Blueprint("runs", __name__, url_prefix="/api/v1")
_run_query = RunQuerySchema()
_export_query = RunExportQuerySchema()


@bp.post("/runs")
def create_run():
    """Create a run (201), or repeat an identical create (200)."""
    run_id, created = ingest.create_run(get_db(), read_json_body(request))
    return {"run_id": run_id}, 201 if created else 200


@bp.post("/runs/<run_id>/events")
def post_events(run_id: str):
    """Apply a batch of events; 207 when some were rejected."""
    result = ingest.ingest_events(get_db(), run_id, read_json_body(request), get_writer(), get_settings().max_capture)
    return result.to_dict(), result.http_status


@bp.post("/batch")
def post_batch():
    """Apply the run creations, events and labels of many runs in one transaction; 207 when some were refused."""
    result = ingest.ingest_batch(get_db(), read_json_body(request), get_writer(), get_settings().max_capture)
    return result.to_dict(), result.http_status


@bp.post("/runs/<run_id>/labels")
def label_run(run_id: str):
    """Record a judgement of a run (latest per source wins; repeating one is harmless)."""
    return ingest.record_label(get_db(), run_id, read_json_body(request)), 200


@bp.post("/labels")
def label_runs():
    """Record judgements of many runs in one request; 207 when some were refused."""
    return ingest.record_labels(get_db(), read_json_body(request))


@bp.get("/runs/export")
def export():
    """Every matching run, newest first, streamed as CSV or JSON Lines."""
    q = load_query(_export_query, request.args, REPEATABLE_PARAMETERS)
    return Response(stream_with_context(export_runs(get_db(), q)), content_type=CONTENT_TYPES[q.format])


@bp.get("/runs")
def list_runs():
    """Recent runs, newest first."""
    return query.list_runs(get_db(), load_query(_run_query, request.args, REPEATABLE_PARAMETERS))


@bp.get("/runs/<run_id>")
def get_run(run_id: str):
    """One run with its steps in order."""
    return query.get_run(get_db(), run_id)
