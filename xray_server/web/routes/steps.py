"""The cross-run query."""

from __future__ import annotations

from flask import Blueprint, Response, request, stream_with_context

from xray_server import query
from xray_server.query.export import CONTENT_TYPES, export_steps
from xray_server.schemas.queries import (
    REPEATABLE_PARAMETERS,
    StepExportQuerySchema,
    StepQuerySchema,
    StepStatsQuerySchema,
)
from xray_server.web.context import get_db
from xray_server.web.request import load_query

bp = Blueprint("steps", __name__, url_prefix="/api/v1")
_step_query = StepQuerySchema()
_stats_query = StepStatsQuerySchema()
_export_query = StepExportQuerySchema()


@bp.get("/steps")
def find_steps():
    """Steps across runs, filtered, newest first."""
    return query.find_steps(get_db(), load_query(_step_query, request.args, REPEATABLE_PARAMETERS))


@bp.get("/steps/export")
def export():
    """Every matching step, newest first, streamed as CSV or JSON Lines."""
    q = load_query(_export_query, request.args, REPEATABLE_PARAMETERS)
    return Response(stream_with_context(export_steps(get_db(), q)), content_type=CONTENT_TYPES[q.format])


@bp.get("/steps/reasons")
def top_reasons():
    """Rejection reasons across runs: total removed and median share, most removed first."""
    return query.top_reasons(get_db(), load_query(_stats_query, request.args, REPEATABLE_PARAMETERS))


@bp.get("/steps/stats")
def step_stats():
    """Baselines per pipeline and step name: counts and quantiles over a time window."""
    return query.step_stats(get_db(), load_query(_stats_query, request.args, REPEATABLE_PARAMETERS))
