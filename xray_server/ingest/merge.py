"""The merge SQL of the write path: how event fragments become one step row and one run row,
whatever the order or repetition of delivery. Each rule picks a winner by a total order."""

from __future__ import annotations

from xray_sdk.contract.vocabulary import STANDARD_METRICS

# The merge rules, as SQL over the stored row `s` and the incoming fragment EXCLUDED. Each
# picks a winner by a total order, so the final row does not depend on arrival order.
_END_WINS = (
    "(EXCLUDED.end_event_id IS NOT NULL AND (s.end_event_id IS NULL OR "
    "(EXCLUDED.ended_at, EXCLUDED.end_event_id) > (s.ended_at, s.end_event_id)))"
)
_START_WINS = (
    "(EXCLUDED.start_event_id IS NOT NULL AND (s.start_event_id IS NULL OR "
    "(EXCLUDED.start_ts, EXCLUDED.start_event_id) < (s.start_ts, s.start_event_id)))"
)
# A step_start's input beats a step_end's; among starts the earliest, among ends the latest.
_INPUT_WINS = (
    "(EXCLUDED.input IS NOT NULL AND (s.input IS NULL"
    " OR (EXCLUDED.input_from_start AND NOT s.input_from_start)"
    " OR (EXCLUDED.input_from_start AND s.input_from_start"
    "     AND (EXCLUDED.input_ts, EXCLUDED.input_event_id) < (s.input_ts, s.input_event_id))"
    " OR (NOT EXCLUDED.input_from_start AND NOT s.input_from_start"
    "     AND (EXCLUDED.input_ts, EXCLUDED.input_event_id) > (s.input_ts, s.input_event_id))))"
)
_IDENTITY_COLUMNS = ("seq", "name", "step_type", "parent_step_id")
_END_COLUMNS = (
    "status",
    "ended_at",
    *STANDARD_METRICS,
    "metrics",
    "output",
    "why",
    "error",
    "contract_violations",
    "rejections",
    "end_event_id",
)
_START_COLUMNS = ("start_ts", "start_event_id")
_INPUT_COLUMNS = ("input", "input_from_start", "input_ts", "input_event_id")
# The columns a step fragment carries, with their SQL types (for jsonb_to_recordset).
STEP_COLUMNS = (
    ("step_id", "uuid"),
    ("parent_step_id", "uuid"),
    ("seq", "integer"),
    ("name", "text"),
    ("step_type", "text"),
    ("status", "text"),
    ("started_at", "timestamptz"),
    ("ended_at", "timestamptz"),
    ("candidates_in", "bigint"),
    ("candidates_out", "bigint"),
    ("drop_ratio", "double precision"),
    ("model", "text"),
    ("temperature", "double precision"),
    ("metrics", "jsonb"),
    ("input", "jsonb"),
    ("output", "jsonb"),
    ("why", "text"),
    ("error", "jsonb"),
    ("contract_violations", "text[]"),
    ("rejections", "jsonb"),
    ("start_ts", "timestamptz"),
    ("start_event_id", "uuid"),
    ("end_event_id", "uuid"),
    ("input_from_start", "boolean"),
    ("input_ts", "timestamptz"),
    ("input_event_id", "uuid"),
)


# What a fragment of a multi-run batch adds: the run it belongs to, and that run's partition day.
_RUN_KEY = (("run_id", "uuid"), ("run_day", "date"))


def _pick(column: str, condition: str) -> str:
    return f"    {column} = CASE WHEN {condition} THEN EXCLUDED.{column} ELSE s.{column} END"


def _steps_merge(where: str = "true", *, many_runs: bool = False) -> str:
    """The step merge over the fragments in %(rows)s that satisfy `where`: of the run in
    %(run_id)s and %(run_day)s, or, with `many_runs`, of the run each fragment names."""
    columns = (*_RUN_KEY, *STEP_COLUMNS) if many_runs else STEP_COLUMNS
    run = "f.run_id, f.run_day" if many_runs else "%(run_id)s, %(run_day)s"
    return "\n".join(
        [
            f"INSERT INTO steps AS s (run_id, run_day, {', '.join(c for c, _ in STEP_COLUMNS)})",
            f"SELECT {run}, {', '.join('f.' + c for c, _ in STEP_COLUMNS)}",
            f"FROM jsonb_to_recordset(%(rows)s) AS f({', '.join(f'{c} {t}' for c, t in columns)})",
            f"WHERE {where}",
            "ORDER BY f.run_id, f.step_id" if many_runs else "ORDER BY f.step_id",
            "ON CONFLICT (run_id, step_id, run_day) DO UPDATE SET",
            "    started_at = LEAST(s.started_at, EXCLUDED.started_at),",
            ",\n".join(
                [_pick(c, f"{_END_WINS} OR (s.end_event_id IS NULL AND {_START_WINS})") for c in _IDENTITY_COLUMNS]
                + [_pick(c, _END_WINS) for c in _END_COLUMNS]
                + [_pick(c, _START_WINS) for c in _START_COLUMNS]
                + [_pick(c, _INPUT_WINS) for c in _INPUT_COLUMNS]
            ),
        ]
    )


UPSERT_STEPS = _steps_merge()
# The same merge for the fragments of many runs, each row naming its run (`POST /api/v1/batch`).
UPSERT_STEPS_OF_RUNS = _steps_merge(many_runs=True)

# The latest run_finish wins (ties by event id), whatever order they arrive in; an implicit
# run's start moves to its earliest event.
_FINISH_WINS = (
    "(EXCLUDED.finish_event_id IS NOT NULL AND (r.finish_event_id IS NULL"
    " OR (r.ended_at, r.finish_event_id) < (EXCLUDED.ended_at, EXCLUDED.finish_event_id)))"
)
_EARLIER_START = "(r.implicit AND EXCLUDED.started_at < r.started_at)"
# One run's values, or one row per run of a multi-run batch: the run's earliest event and its
# latest run_finish (f_*), as the batch found them.
_ONE_RUN = [
    "VALUES (%(run_id)s, %(run_day)s, true, %(earliest)s, coalesce(%(f_status)s, 'running'), %(f_outcome)s, %(f_error)s,",
    "        %(f_ts)s, %(f_event_id)s)",
]
_MANY_RUNS = [
    "SELECT f.run_id, f.run_day, true, f.earliest, coalesce(f.f_status, 'running'), f.f_outcome, f.f_error,",
    "       f.f_ts, f.f_event_id",
    "FROM jsonb_to_recordset(%(runs)s) AS f(run_id uuid, run_day date, earliest timestamptz, f_status text,",
    "     f_outcome jsonb, f_error jsonb, f_ts timestamptz, f_event_id uuid)",
    "ORDER BY f.run_id",
]


def _run_merge(source: list[str]) -> str:
    """The run's upsert from the rows `source` gives (`_ONE_RUN` or `_MANY_RUNS`)."""
    return "\n".join(
        [
            "INSERT INTO runs AS r (run_id, run_day, implicit, started_at, status, outcome, error, ended_at,",
            "                       finish_event_id)",
            *source,
            "ON CONFLICT (run_id, run_day) DO UPDATE SET",
            f"    started_at = CASE WHEN {_EARLIER_START} THEN EXCLUDED.started_at ELSE r.started_at END,",
            ",\n".join(
                f"    {c} = CASE WHEN {_FINISH_WINS} THEN EXCLUDED.{c} ELSE r.{c} END"
                for c in ("status", "outcome", "error", "ended_at", "finish_event_id")
            ),
            f"WHERE {_EARLIER_START} OR {_FINISH_WINS}",
        ]
    )


def _apply(*, many_runs: bool) -> str:
    """Data-modifying CTEs all run, to completion, in one statement: the ledger says which
    events are new, and only their step fragments are merged (replays write nothing)."""
    if many_runs:
        ledger = (
            "    SELECT t.r, t.e FROM unnest(%(run_ids)s::uuid[], %(event_ids)s::uuid[]) AS t(r, e) ORDER BY t.r, t.e"
        )
        returning, fresh = "run_id, event_id", "(f.run_id, coalesce(f.end_event_id, f.start_event_id))"
    else:
        ledger = "    SELECT %(run_id)s, e FROM unnest(%(event_ids)s::uuid[]) AS e ORDER BY e"
        returning, fresh = "event_id", "coalesce(f.end_event_id, f.start_event_id)"
    return "\n".join(
        [
            "WITH fresh AS (",
            "    INSERT INTO ingested_events (run_id, event_id)",
            ledger,
            f"    ON CONFLICT DO NOTHING RETURNING {returning}",
            "), run AS (",
            _run_merge(_MANY_RUNS if many_runs else _ONE_RUN),
            "    RETURNING 1",
            "), merged AS (",
            _steps_merge(f"{fresh} IN (SELECT {returning} FROM fresh)", many_runs=many_runs),
            "    RETURNING 1",
            ")",
            f"SELECT {returning} FROM fresh",
        ]
    )


APPLY_BATCH = _apply(many_runs=False)
# A multi-run batch's events in one statement: %(run_ids)s and %(event_ids)s pair up in the
# ledger, %(runs)s holds a row per run, %(rows)s the step fragments, each naming its run.
APPLY_RUNS_BATCH = _apply(many_runs=True)


def _artifacts_merge(*, many_runs: bool) -> str:
    """The latest step_end describing an artifact wins, as for the step itself. The run is
    given (%s, %s, then the rows), or, with `many_runs`, named by each row (the rows alone)."""
    run = "f.run_id, f.run_day" if many_runs else "%s, %s"
    key = "run_id uuid, run_day date, " if many_runs else ""
    return f"""
INSERT INTO artifacts AS a (run_id, run_day, artifact_id, step_id, name, capture, content_type,
                       status, drop_reason, store_key, size_bytes, sha256, event_ts, event_id)
SELECT {run}, f.artifact_id, f.step_id, f.name, f.capture, f.content_type,
       f.status, f.drop_reason, f.store_key, f.size_bytes, f.sha256, f.event_ts, f.event_id
FROM jsonb_to_recordset(%s) AS f({key}artifact_id uuid, step_id uuid, name text, capture text,
     content_type text, status text, drop_reason text, store_key text, size_bytes bigint, sha256 text,
     event_ts timestamptz, event_id uuid)
ORDER BY f.artifact_id
ON CONFLICT (run_id, artifact_id, run_day) DO UPDATE SET
    capture = EXCLUDED.capture, content_type = EXCLUDED.content_type, status = EXCLUDED.status,
    drop_reason = EXCLUDED.drop_reason, store_key = EXCLUDED.store_key,
    size_bytes = EXCLUDED.size_bytes, sha256 = EXCLUDED.sha256,
    event_ts = EXCLUDED.event_ts, event_id = EXCLUDED.event_id
WHERE (EXCLUDED.event_ts, EXCLUDED.event_id) > (a.event_ts, a.event_id)
"""


INSERT_ARTIFACTS = _artifacts_merge(many_runs=False)
INSERT_ARTIFACTS_OF_RUNS = _artifacts_merge(many_runs=True)
