"""Analysis of stored runs: explain, diff and why-dropped, the same answers the CLI prints."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from xray_server.analysis.diff import diff_stored_runs
from xray_server.analysis.explain import explain_stored_run
from xray_server.analysis.patterns import find_patterns
from xray_server.analysis.why_dropped import why_dropped_in_stored_run
from xray_server.schemas.queries import (
    REPEATABLE_PARAMETERS,
    ExplainQuerySchema,
    PatternQuerySchema,
    WhyDroppedQuerySchema,
)
from xray_server.web.context import get_db, get_store
from xray_server.web.request import load_query

bp = Blueprint("analysis", __name__, url_prefix="/api/v1")
_explain_query = ExplainQuerySchema()
_why_dropped_query = WhyDroppedQuerySchema()
_pattern_query = PatternQuerySchema()


@bp.get("/runs/<run_id>/explain")
def explain(run_id: str) -> dict[str, Any]:
    """Which step most likely failed and why, against the baseline of recent runs."""
    q = load_query(_explain_query, request.args)
    return explain_stored_run(get_db(), run_id, q.baseline_runs)


@bp.get("/runs/<run_id>/diff/<other_run_id>")
def diff(run_id: str, other_run_id: str) -> dict[str, Any]:
    """Two runs lined up step by step, with what changed."""
    return diff_stored_runs(get_db(), run_id, other_run_id)


@bp.get("/runs/<run_id>/why-dropped")
def why_dropped(run_id: str) -> dict[str, Any]:
    """Which step dropped a candidate, and why, from the evidence the run kept."""
    q = load_query(_why_dropped_query, request.args)
    return why_dropped_in_stored_run(get_db(), get_store(), run_id, q.candidate)


@bp.get("/patterns")
def patterns() -> dict[str, Any]:
    """What the bad runs of a pipeline have in common over a window, and since when."""
    return find_patterns(get_db(), load_query(_pattern_query, request.args, REPEATABLE_PARAMETERS))
