"""Baselines: what a step usually does over a window (`GET /api/v1/steps/stats`) and which
rejection reasons it usually gives (`GET /api/v1/steps/reasons`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import sql

from xray_server.query.days import RUN_SPAN
from xray_server.query.steps import step_filters
from xray_server.query.views import check_window, iso, merged_metrics
from xray_server.schemas import responses
from xray_server.schemas.queries import StepQuery, StepStatsQuery
from xray_server.schemas.views import projector
from xray_server.storage.partitions import KEPT_DAY
from xray_server.storage.pool import Database

BASELINE_WINDOW = timedelta(days=7)
MAX_STAT_GROUPS = 1000
_QUANTILES = (0.1, 0.5, 0.9, 0.99)


def _window_filters(q: StepStatsQuery) -> tuple[datetime, list[sql.Composable], dict[str, Any]]:
    """The window (default: the last seven days) and filters of a stats query, built by the
    same code as the cross-run query's."""
    since = q.since or datetime.now(UTC) - BASELINE_WINDOW
    check_window(since, q.until)
    where, params = step_filters(
        StepQuery(step_type=q.step_type, pipeline=q.pipeline, name=q.name, since=since, until=q.until)
    )
    return since, where, params


def top_reasons(db: Database, q: StepStatsQuery) -> dict[str, Any]:
    """Rejection reasons of the matching steps over the window: for each, how many steps it
    appears in, the candidates it removed in all, and the median share of a step's candidates
    it removed, over every matching step (0 where it does not appear). Most removed first."""
    since, where, params = _window_filters(q)
    where.append(sql.SQL("s.rejections IS NOT NULL"))
    statement = sql.SQL("""
        WITH chosen AS (
            SELECT s.rejections, s.candidates_in FROM steps s JOIN runs r ON r.run_id = s.run_id AND r.run_day = s.run_day WHERE {where}),
        reasons AS (SELECT DISTINCT jsonb_object_keys(rejections) AS reason FROM chosen)
        -- A step without the reason counts as a share of 0: "usual" means over every step.
        SELECT x.reason, count(*) FILTER (WHERE c.rejections ? x.reason) AS steps,
               sum(coalesce((c.rejections ->> x.reason)::bigint, 0)) AS total,
               percentile_cont(0.5) WITHIN GROUP (
                   ORDER BY coalesce((c.rejections ->> x.reason)::float8, 0) / NULLIF(c.candidates_in, 0)
               ) AS median_share,
               count(*) AS of_steps
        FROM reasons x CROSS JOIN chosen c
        GROUP BY x.reason ORDER BY total DESC, x.reason LIMIT 100
    """).format(where=sql.SQL(" AND ").join(where))
    with db.connection() as conn:
        rows = conn.execute(statement, params).fetchall()
    return {
        "since": iso(since),
        "until": iso(q.until),
        "steps": rows[0]["of_steps"] if rows else 0,
        "reasons": [_reason(r) for r in rows],
    }


def step_stats(db: Database, q: StepStatsQuery) -> dict[str, Any]:
    """Per pipeline and step name: counts, error and violation counts, and quantiles of
    drop_ratio, candidate counts and duration over the window: the baseline a run is held to."""
    since, where, params = _window_filters(q)
    params.update(quantiles=list(_QUANTILES), max_groups=MAX_STAT_GROUPS)
    statement = sql.SQL("""
        SELECT r.pipeline, s.name, s.step_type, count(*) AS steps, count(DISTINCT s.run_id) AS runs,
               count(*) FILTER (WHERE s.status = 'error') AS errors,
               count(*) FILTER (WHERE s.status = 'running') AS running,
               count(*) FILTER (WHERE s.contract_violations IS NOT NULL) AS violations,
               percentile_cont(%(quantiles)s::float8[]) WITHIN GROUP (ORDER BY s.drop_ratio) AS drop_ratio,
               percentile_cont(%(quantiles)s::float8[]) WITHIN GROUP (ORDER BY s.candidates_in) AS candidates_in,
               percentile_cont(%(quantiles)s::float8[]) WITHIN GROUP (ORDER BY s.candidates_out) AS candidates_out,
               percentile_cont(%(quantiles)s::float8[]) WITHIN GROUP (
                   ORDER BY extract(epoch FROM s.ended_at - s.started_at) * 1000) AS duration_ms
        FROM steps s JOIN runs r ON r.run_id = s.run_id AND r.run_day = s.run_day
        WHERE {where}
        GROUP BY r.pipeline, s.name, s.step_type
        ORDER BY r.pipeline NULLS LAST, s.name, s.step_type
        LIMIT %(max_groups)s
    """).format(where=sql.SQL(" AND ").join(where))
    with db.connection() as conn:
        rows = conn.execute(statement, params).fetchall()
    return {"since": iso(since), "until": iso(q.until), "groups": [_stats_group(r) for r in rows]}


def _quantiles(column: str) -> Any:
    def get(r: dict[str, Any]) -> dict[str, float] | None:
        values = r[column]
        if values is None or values[0] is None:
            return None
        return {f"p{round(q * 100)}": round(float(v), 6) for q, v in zip(_QUANTILES, values, strict=True)}

    return get


_stats_group = projector(
    responses.StepStatsGroupSchema,
    **{column: _quantiles(column) for column in ("drop_ratio", "candidates_in", "candidates_out", "duration_ms")},
)
_reason = projector(
    responses.ReasonSchema,
    total=lambda r: int(r["total"]),
    median_share=lambda r: None if r["median_share"] is None else round(r["median_share"], 6),
)


# The runs of the pipeline that started before the one explained (so its verdict never changes as
# later runs arrive), none judged bad, with their steps: a baseline whose cost is that of this many
# runs whatever the size of the table or the window (`runs_pipeline_started_idx`, then each run's
# steps by primary key).
#
# The runs are first looked for in the partitions of the last EARLIER_DAYS days before the run (and
# the kept runs'), and only when those hold too few, in every partition.
_EARLIER_STEPS = """
WITH earlier AS (
    SELECT r.run_id, r.run_day FROM runs r
    WHERE r.pipeline = %(pipeline)s AND (r.started_at, r.run_id) < (%(started_at)s, %(run_id)s::uuid)
      AND r.run_day <= %(day_to)s {recent}
      AND NOT EXISTS (SELECT 1 FROM run_labels l WHERE l.run_id = r.run_id AND l.label = %(bad)s)
    ORDER BY r.started_at DESC, r.run_id DESC
    LIMIT %(runs)s
)
SELECT s.run_id, s.step_id, s.parent_step_id, s.name, s.step_type, s.status, s.candidates_in, s.candidates_out,
       s.drop_ratio, s.model, s.temperature, s.metrics, s.rejections, s.contract_violations,
       extract(epoch FROM s.ended_at - s.started_at) * 1000 AS duration_ms
FROM earlier CROSS JOIN LATERAL (
    -- Each earlier run's steps by its key, in its own partition (a fence: joined, PostgreSQL hashes
    -- every step of every partition against the few runs, 500 ms where this takes a few).
    -- The days go inside too, or the subquery is planned over every partition of `steps`.
    SELECT * FROM steps s WHERE s.run_id = earlier.run_id AND s.run_day = earlier.run_day {recent_steps} OFFSET 0
) s
"""
EARLIER_DAYS = timedelta(days=7)
# Two statements, not one with a NULL test: PostgreSQL prunes partitions of a prepared statement's
# generic plan only on plain comparisons of the key.
_RECENT = "AND ({a}.run_day >= %(day_from)s OR {a}.run_day = %(kept_day)s)"
EARLIER_STEPS_RECENT = _EARLIER_STEPS.format(
    recent=_RECENT.format(a="r"), recent_steps=_RECENT.format(a="s") + " AND s.run_day <= %(day_to)s"
)
EARLIER_STEPS = _EARLIER_STEPS.format(recent="", recent_steps="")


def earlier_steps(db: Database, run: dict[str, Any], runs: int, bad_label: str) -> list[dict[str, Any]]:
    """The steps of the `runs` latest runs of `run`'s pipeline that started before it (ties broken by
    run id) and that no source labelled `bad_label`, each with its metrics merged as the API shows them."""
    # The run as the API shows it: its start is an RFC 3339 string.
    started = datetime.fromisoformat(run["started_at"]).astimezone(UTC)
    params = {
        "pipeline": run["pipeline"],
        "started_at": run["started_at"],
        "run_id": run["run_id"],
        "runs": runs,
        "bad": bad_label,
        "day_from": (started - EARLIER_DAYS).date(),
        "day_to": (started + RUN_SPAN).date(),
        "kept_day": KEPT_DAY,
    }
    with db.connection() as conn, conn.transaction():
        # Over many partitions the plan's estimated cost passes PostgreSQL's JIT threshold, and
        # compiling it costs ten times what running it does (400 ms against 30 on PostgreSQL 15).
        conn.execute("SET LOCAL jit = off")
        rows = conn.execute(EARLIER_STEPS_RECENT, params).fetchall()
        if len({row["run_id"] for row in rows}) < runs:
            rows = conn.execute(EARLIER_STEPS, params).fetchall()
    for row in rows:
        row["run_id"] = str(row["run_id"])
        row["metrics"] = merged_metrics(row)
        row["rejections"] = row["rejections"] or {}
        row["contract_violations"] = row["contract_violations"] or []
        row["duration_ms"] = None if row["duration_ms"] is None else float(row["duration_ms"])
    return rows
