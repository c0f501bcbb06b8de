"""The read path: steps across runs, baselines, run lists and the run view. Plain functions
over a `Database`; nothing here writes, and nothing here imports the write path."""
from xray_server.query.baselines import StepStatsQuery, step_stats, top_reasons
from xray_server.query.runs import RunQuery, get_run, list_runs
from xray_server.query.steps import StepQuery, find_steps, step_query_sql

__all__ = ["RunQuery", "StepQuery", "StepStatsQuery", "find_steps", "get_run", "list_runs", "step_query_sql",
           "step_stats", "top_reasons"]
