"""The read path: steps across runs, baselines, run lists and the run view. Plain functions
over a `Database`; nothing here writes, and nothing here imports the write path."""

from xray_server.query.baselines import step_stats, top_reasons
from xray_server.query.runs import get_run, list_runs
from xray_server.query.steps import find_steps, step_query_sql
from xray_server.schemas.queries import RunQuery, StepQuery, StepStatsQuery

__all__ = [
    "RunQuery",
    "StepQuery",
    "StepStatsQuery",
    "find_steps",
    "get_run",
    "list_runs",
    "step_query_sql",
    "step_stats",
    "top_reasons",
]
