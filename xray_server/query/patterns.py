"""What the runs of a window have, counted in PostgreSQL: for each attribute value (a run tag, a
top-level scalar of its metadata, a categorical metric of one of its steps, its status), how
many bad runs and how many other runs have it, and the same for pairs of the most frequent values
among the bad runs. One statement over the window's runs and their steps; its cost follows the
runs in the window, not the table. The statistics are `analysis/patterns.py`'s."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import sql

from xray_server.query.steps import LABELLED, step_filters
from xray_server.schemas.queries import PatternQuery, StepQuery
from xray_server.storage.pool import Database

# Steps are read through the time index, within this margin of their run's window: a step
# starts after its run, and a run that outlasts the margin contributes its later steps no
# attributes (a limit ARCHITECTURE.md states).
STEP_MARGIN = timedelta(days=1)
CLOCK_SKEW = timedelta(minutes=5)
# Pairs are counted among this many of the values most frequent among the bad runs.
PAIR_CANDIDATES = 16
# A value on nearly every run explains nothing a pair could sharpen: left out of pairs.
UBIQUITOUS = 0.9
# Attribute values longer than this are identifiers, not categories.
MAX_VALUE_CHARS = 256


@dataclass
class AttributeCounts:
    """Runs and bad runs in the window, every value with enough bad runs, and the pairs."""

    runs: int
    bad_runs: int
    values_tested: int
    singles: list[dict[str, Any]]
    pairs: list[dict[str, Any]]
    pair_candidates: int


def step_predicate(q: PatternQuery) -> tuple[sql.Composable | None, dict[str, Any]]:
    """`EXISTS (a step of the run matching the step filters)`, or None without step filters."""
    steps = StepQuery(step_type=q.step_type, name=q.name, status=q.status, min_drop_ratio=q.min_drop_ratio,
                      max_drop_ratio=q.max_drop_ratio, violations=q.violations, reason=q.reason,
                      min_reason_share=q.min_reason_share)
    where, params = step_filters(steps)
    if len(where) == 1:  # only `true`: no step filter given
        return None, {}
    where.append(sql.SQL("s.started_at >= %(steps_since)s AND s.started_at < %(steps_until)s"))
    return sql.SQL("EXISTS (SELECT 1 FROM steps s WHERE s.run_id = r.run_id AND {})").format(
        sql.SQL(" AND ").join(where)), params


def bad_predicate(q: PatternQuery) -> tuple[sql.Composable, dict[str, Any]]:
    """What makes a run bad: every given part (its steps, its status, its label) at once."""
    parts: list[sql.Composable] = []
    step_part, params = step_predicate(q)
    if step_part is not None:
        parts.append(step_part)
    if q.run_status is not None:
        parts.append(sql.SQL("r.status = %(run_status)s"))
        params["run_status"] = q.run_status
    if q.label is not None:
        parts.append(sql.SQL(LABELLED.format(run="r.run_id")))
        params["label"] = q.label
    return sql.SQL(" AND ").join(parts), params


_COUNTS = """
WITH w AS MATERIALIZED (
    SELECT r.run_id, r.started_at, r.tags, r.metadata, r.status, coalesce({bad}, false) AS bad
    FROM runs r
    WHERE r.pipeline = %(pipeline)s AND r.started_at >= %(since)s AND r.started_at < %(until)s
), attrs AS MATERIALIZED (
    SELECT w.run_id, w.bad, 'tags' AS kind, '' AS step, t.key AS key, t.value AS value
    FROM w CROSS JOIN LATERAL jsonb_each_text(w.tags) t
    WHERE length(t.value) <= %(max_chars)s
    UNION ALL
    SELECT w.run_id, w.bad, 'metadata', '', m.key, m.value #>> '{{}}'
    FROM w CROSS JOIN LATERAL jsonb_each(
        CASE WHEN jsonb_typeof(w.metadata) = 'object' THEN w.metadata ELSE '{{}}'::jsonb END) m
    WHERE jsonb_typeof(m.value) IN ('string', 'number', 'boolean') AND length(m.value #>> '{{}}') <= %(max_chars)s
    UNION ALL
    SELECT DISTINCT w.run_id, w.bad, 'steps', s.name, x.key, x.value
    FROM w JOIN steps s ON s.run_id = w.run_id
    CROSS JOIN LATERAL (
        SELECT 'model' AS key, s.model AS value WHERE s.model IS NOT NULL
        UNION ALL
        SELECT m.key, m.value #>> '{{}}' FROM jsonb_each(coalesce(s.metrics, '{{}}'::jsonb)) m
        WHERE jsonb_typeof(m.value) IN ('string', 'boolean')
    ) x
    WHERE s.started_at >= %(steps_since)s AND s.started_at < %(steps_until)s
      AND length(x.value) <= %(max_chars)s
    {status}
), singles AS MATERIALIZED (
    SELECT kind, step, key, value, count(*) FILTER (WHERE bad) AS a, count(*) FILTER (WHERE NOT bad) AS b
    FROM attrs GROUP BY kind, step, key, value
), totals AS (
    SELECT count(*) AS runs, count(*) FILTER (WHERE bad) AS bad_runs FROM w
), candidates AS (
    SELECT kind, step, key, value FROM singles, totals
    WHERE a >= greatest(2, ceil(%(min_support)s * totals.bad_runs)) AND (a + b) < %(ubiquitous)s * totals.runs
    ORDER BY a DESC, b, kind, step, key, value LIMIT %(pair_candidates)s
), marked AS (
    SELECT x.* FROM attrs x JOIN candidates USING (kind, step, key, value)
), pairs AS (
    SELECT p.kind AS kind1, p.step AS step1, p.key AS key1, p.value AS value1,
           q.kind AS kind2, q.step AS step2, q.key AS key2, q.value AS value2,
           count(*) FILTER (WHERE p.bad) AS a, count(*) FILTER (WHERE NOT p.bad) AS b
    FROM marked p JOIN marked q ON q.run_id = p.run_id AND (q.kind, q.step, q.key) > (p.kind, p.step, p.key)
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
    HAVING count(*) FILTER (WHERE p.bad) >= greatest(2, ceil(%(min_support)s * (SELECT bad_runs FROM totals)))
)
SELECT 'single' AS row, kind AS kind1, step AS step1, key AS key1, value AS value1,
       NULL AS kind2, NULL AS step2, NULL AS key2, NULL AS value2, a, b
FROM singles, totals WHERE a >= greatest(2, ceil(%(min_support)s * totals.bad_runs))
UNION ALL SELECT 'pair', kind1, step1, key1, value1, kind2, step2, key2, value2, a, b FROM pairs
UNION ALL SELECT 'totals', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, bad_runs, runs - bad_runs FROM totals
UNION ALL SELECT 'tested', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, (SELECT count(*) FROM singles),
                 (SELECT count(*) FROM candidates)
"""
_STATUS = "UNION ALL SELECT w.run_id, w.bad, 'status', '', 'status', w.status FROM w"


def window_params(q: PatternQuery, since: datetime, until: datetime) -> dict[str, Any]:
    """The window's bounds, for runs and (with their margins) for steps."""
    return {"pipeline": q.pipeline, "since": since, "until": until, "steps_since": since - CLOCK_SKEW,
            "steps_until": until + STEP_MARGIN}


def attribute_counts(db: Database, q: PatternQuery, since: datetime, until: datetime) -> AttributeCounts:
    """Count every attribute value of the window's runs among bad and other runs, and the pairs
    of the values most frequent among the bad runs; only values in at least `q.min_support` of
    the bad runs come back (the others cannot be a pattern), but all are counted as tested."""
    bad, params = bad_predicate(q)
    # The run's status is an attribute, unless it is what defines a bad run.
    status = sql.SQL("" if q.run_status is not None else _STATUS)
    statement = sql.SQL(_COUNTS).format(bad=bad, status=status)
    params.update(window_params(q, since, until), min_support=q.min_support, max_chars=MAX_VALUE_CHARS,
                  ubiquitous=UBIQUITOUS, pair_candidates=PAIR_CANDIDATES)
    with db.connection() as conn:
        rows = conn.execute(statement, params).fetchall()
    by_kind: dict[str, list[dict[str, Any]]] = {"single": [], "pair": [], "totals": [], "tested": []}
    for row in rows:
        by_kind[row["row"]].append(row)
    totals, tested = by_kind["totals"][0], by_kind["tested"][0]
    return AttributeCounts(runs=totals["a"] + totals["b"], bad_runs=totals["a"], values_tested=tested["a"],
                           singles=by_kind["single"], pairs=by_kind["pair"], pair_candidates=tested["b"])


Attribute = tuple[str, str, str, str]  # (kind, step, key, value): kind is tags, metadata, steps or status


def _has(attribute: Attribute, i: int, params: dict[str, Any]) -> sql.Composable:
    """The SQL test that run `r` has `attribute`."""
    kind, step, key, value = attribute
    params.update({f"k{i}": key, f"v{i}": value, f"s{i}": step})
    if kind == "tags":
        return sql.SQL("r.tags ->> %(k{0})s = %(v{0})s").format(sql.SQL(str(i)))
    if kind == "metadata":
        return sql.SQL("(jsonb_typeof(r.metadata) = 'object' AND r.metadata ->> %(k{0})s = %(v{0})s)").format(
            sql.SQL(str(i)))
    if kind == "status":
        return sql.SQL("r.status = %(v{0})s").format(sql.SQL(str(i)))
    column = "s.model" if key == "model" else "s.metrics ->> %(k{0})s"
    return sql.SQL("EXISTS (SELECT 1 FROM steps s WHERE s.run_id = r.run_id AND s.name = %(s{0})s AND "
                   + column + " = %(v{0})s AND s.started_at >= %(steps_since)s AND s.started_at < %(steps_until)s)"
                   ).format(sql.SQL(str(i)))


_TIMELINE = """
WITH w AS MATERIALIZED (
    SELECT r.run_id, r.started_at, coalesce({bad}, false) AS bad, {pattern} AS has_pattern
    FROM runs r
    WHERE r.pipeline = %(pipeline)s AND r.started_at >= %(since)s AND r.started_at < %(until)s
), first_bad AS (
    SELECT min(started_at) AS at FROM w WHERE bad AND has_pattern
)
SELECT 'bucket' AS row, to_timestamp(floor(extract(epoch FROM started_at) / %(bucket)s) * %(bucket)s) AS at,
       count(*) AS runs, count(*) FILTER (WHERE bad) AS bad,
       count(*) FILTER (WHERE has_pattern) AS pattern_runs, count(*) FILTER (WHERE bad AND has_pattern) AS pattern_bad
FROM w GROUP BY 2
UNION ALL
SELECT 'bounds', min(started_at) FILTER (WHERE bad), NULL, NULL, NULL, NULL FROM w
UNION ALL
SELECT 'last_bad', max(started_at) FILTER (WHERE bad), NULL, NULL, NULL, NULL FROM w
UNION ALL
SELECT 'pattern_first_bad', (SELECT at FROM first_bad), NULL, NULL, NULL, NULL
UNION ALL
SELECT 'pattern_last_good_before', max(started_at), NULL, NULL, NULL, NULL FROM w
WHERE has_pattern AND NOT bad AND started_at < (SELECT at FROM first_bad)
ORDER BY 1, 2
"""


def timeline_rows(db: Database, q: PatternQuery, since: datetime, until: datetime, bucket_seconds: int,
                  pattern: list[Attribute]) -> list[dict[str, Any]]:
    """Runs and bad runs per time bucket, the first and last bad run, and for the runs that have
    every attribute of `pattern`: the same per bucket, their first bad run and their last good run
    before it (when they started to go bad)."""
    bad, params = bad_predicate(q)
    params.update(window_params(q, since, until), bucket=bucket_seconds)
    has = sql.SQL(" AND ").join([_has(a, i, params) for i, a in enumerate(pattern)]) if pattern else sql.SQL("false")
    statement = sql.SQL(_TIMELINE).format(bad=bad, pattern=has)
    with db.connection() as conn:
        return conn.execute(statement, params).fetchall()
