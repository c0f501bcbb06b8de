"""What the runs of a window have, counted in PostgreSQL: for each attribute value (a run tag, a
top-level scalar of its metadata, a categorical metric of one of its steps, its status) found on
enough bad runs, how many bad runs and how many other runs have it, and the same for pairs of the
values most frequent among the bad runs. Two statements over the window's runs and their steps;
their cost follows the runs in the window, not the table. The statements of one request run in
one snapshot (`snapshot`): the window ends at now, runs keep arriving, and counts taken from two
snapshots need not agree. The statistics are `analysis/patterns.py`'s."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

from xray_server.query.days import RUN_SPAN
from xray_server.query.steps import LABELLED, add_json_filters, step_filters
from xray_server.schemas.queries import PatternQuery, StepFilters, StepQuery
from xray_server.storage.partitions import KEPT_DAY
from xray_server.storage.pool import Database

# Steps are read through the time index, within this margin of their run's window: a step
# starts after its run, and a run that outlasts the margin contributes its later steps no
# attributes (a limit ARCHITECTURE.md states).
STEP_MARGIN = timedelta(days=1)
CLOCK_SKEW = timedelta(minutes=5)
# Values counted: those in at least `min_support` of the bad runs, at most this many, the bits of
# a bigint (a value needs 20% of the bad runs by default, so an attribute holds at most five).
MAX_CANDIDATES = 62
# Pairs are counted among this many of the values most frequent among the bad runs.
PAIR_CANDIDATES = 16
# Attribute values longer than this are identifiers, not categories.
MAX_VALUE_CHARS = 256
# The statements below run with `prepare=False`: with prepared statements on, PostgreSQL switches a
# statement to a generic plan after five runs, and for these (whose best plan depends on the window
# and the candidates) the generic plan was twice as slow (bench patterns: 0.43 s against 0.83 s).


Attribute = tuple[str, str, str, str]  # (kind, step, key, value): kind is tags, metadata, steps or status


class Bucket(NamedTuple):
    """Runs in one time bucket: how many, how many bad, the first and last bad run's start and the
    last good run's start."""

    runs: int
    bad: int
    first_bad: datetime | None
    last_bad: datetime | None
    last_good: datetime | None


@dataclass
class Counts:
    """Runs and bad runs with a value (or pair), in all and per time bucket."""

    parts: list[Attribute]
    bad: int = 0
    other: int = 0
    buckets: dict[int, Bucket] = field(default_factory=dict)


@dataclass
class AttributeCounts:
    """The window's runs and bad runs per bucket, and the counts of every value on enough bad runs
    and of the pairs of the most frequent of them."""

    runs: int
    # Runs of the window left out: neither bad nor good, when good runs are defined.
    unjudged: int
    bad_runs: int
    values_tested: int
    pair_candidates: int
    bucket_seconds: int
    buckets: Counts
    singles: list[Counts] = field(default_factory=list)
    pairs: list[Counts] = field(default_factory=list)


@contextmanager
def snapshot(db: Database) -> Iterator[psycopg.Connection]:
    """A connection inside one read-only REPEATABLE READ transaction: every statement run on it
    sees the same runs. Without it (the pool's connections are autocommit) a bad run committed
    between statement 1 and statement 2 is counted by statement 2 only, and a value can then
    have more bad runs than the window. The isolation level is set by `SET TRANSACTION`, for this
    transaction alone: nothing outlives it on the connection, or on a transaction pooler's
    server connection. The snapshot is taken by the first query after it."""
    with db.connection() as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        # Estimated over a window's partitions, the statements pass PostgreSQL's JIT threshold,
        # and compiling them costs more than running them does (as for explain's baseline).
        conn.execute("SET LOCAL jit = off")
        yield conn


def step_predicate(q: PatternQuery) -> tuple[sql.Composable | None, dict[str, Any]]:
    """`EXISTS (a step of the run matching the step filters)`, or None without step filters."""
    steps = StepQuery(**{f.name: getattr(q, f.name) for f in fields(StepFilters)})
    where, params = step_filters(steps)
    if len(where) == 1:  # only `true`: no step filter given
        return None, {}
    where.append(
        sql.SQL(
            "s.started_at >= %(steps_since)s AND s.started_at < %(steps_until)s AND (s.run_day >= %(day_from)s OR s.run_day = %(kept_day)s) AND s.run_day <= %(day_to)s"
        )
    )
    return sql.SQL("EXISTS (SELECT 1 FROM steps s WHERE s.run_id = r.run_id AND s.run_day = r.run_day AND {})").format(
        sql.SQL(" AND ").join(where)
    ), params


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
    if q.outcome:
        add_json_filters(parts, params, "outcome", q.outcome, "r")
    if q.value_below is not None:
        parts.append(
            sql.SQL("EXISTS (SELECT 1 FROM run_labels l WHERE l.run_id = r.run_id AND l.value < %(value_below)s)")
        )
        params["value_below"] = q.value_below
    return sql.SQL(" AND ").join(parts), params


def good_predicate(q: PatternQuery) -> tuple[sql.Composable, dict[str, Any]] | None:
    """What makes a run good, when not "every run that is not bad": a label, or a judged value at
    or above `value_below`. None: every other run is good, and none is unjudged."""
    if q.good_label is not None:
        test = "EXISTS (SELECT 1 FROM run_labels l WHERE l.run_id = r.run_id AND l.label = %(good_label)s)"
        return sql.SQL(test), {"good_label": q.good_label}
    if q.value_below is not None:
        test = "EXISTS (SELECT 1 FROM run_labels l WHERE l.run_id = r.run_id AND l.value >= %(value_below)s)"
        return sql.SQL(test), {"value_below": q.value_below}
    return None


def judged_predicate(q: PatternQuery) -> tuple[sql.Composable, sql.Composable, dict[str, Any]]:
    """(bad, judged, params): the runs a pattern is counted over are the judged ones, bad or good."""
    bad, params = bad_predicate(q)
    good = good_predicate(q)
    if good is None:
        return bad, sql.SQL("true"), params
    return bad, sql.SQL("(coalesce({}, false) OR {})").format(bad, good[0]), {**params, **good[1]}


def window_params(q: PatternQuery, since: datetime, until: datetime) -> dict[str, Any]:
    """The window's bounds, for runs and (with their margins) for steps."""
    return {
        "pipeline": q.pipeline,
        "since": since,
        "until": until,
        "steps_since": since - CLOCK_SKEW,
        "steps_until": until + STEP_MARGIN,
        # The partitions of the window (query/days.py): runs and steps alike, with the margins.
        "day_from": (since - CLOCK_SKEW - RUN_SPAN).astimezone(UTC).date(),
        "day_to": (until + STEP_MARGIN + RUN_SPAN).astimezone(UTC).date(),
        "kept_day": KEPT_DAY,
    }


# Statement 1: the values of the bad runs only (few), counted; the candidates are those on enough
# of them. Values that no bad run has cannot explain anything and are never counted.
_BAD_VALUES = """
WITH b AS MATERIALIZED (
    SELECT r.run_id, r.run_day, r.tags, r.metadata, r.status
    FROM runs r
    WHERE r.pipeline = %(pipeline)s AND r.started_at >= %(since)s AND r.started_at < %(until)s AND {bad}
      AND (r.run_day >= %(day_from)s OR r.run_day = %(kept_day)s) AND r.run_day <= %(day_to)s
), judged AS MATERIALIZED (
    SELECT count(*) FILTER (WHERE {judged}) AS judged, count(*) AS runs
    FROM runs r WHERE r.pipeline = %(pipeline)s AND r.started_at >= %(since)s AND r.started_at < %(until)s
      AND (r.run_day >= %(day_from)s OR r.run_day = %(kept_day)s) AND r.run_day <= %(day_to)s
), bs AS MATERIALIZED (
    SELECT b.run_id, s.name, s.step_type, s.model, s.metrics
    FROM b CROSS JOIN LATERAL (
        SELECT name, step_type, model, metrics FROM steps s
        WHERE s.run_id = b.run_id AND s.run_day = b.run_day
          AND s.started_at >= %(steps_since)s AND s.started_at < %(steps_until)s
          AND (s.run_day >= %(day_from)s OR s.run_day = %(kept_day)s) AND s.run_day <= %(day_to)s
          AND (s.model IS NOT NULL OR s.metrics IS NOT NULL)) s
), bad_values AS (
    SELECT b.run_id, 'tags' AS kind, '' AS step, t.key AS key, t.value AS value
    FROM b CROSS JOIN LATERAL jsonb_each_text(b.tags) t
    UNION ALL
    SELECT b.run_id, 'metadata', '', m.key, m.value #>> '{{}}'
    FROM b CROSS JOIN LATERAL jsonb_each(
        CASE WHEN jsonb_typeof(b.metadata) = 'object' THEN b.metadata ELSE '{{}}'::jsonb END) m
    WHERE jsonb_typeof(m.value) IN ('string', 'number', 'boolean')
    UNION ALL
    (SELECT run_id, 'steps', name, 'model', model FROM bs WHERE model IS NOT NULL
     UNION
     SELECT x.run_id, 'steps', x.name, m.key, m.value #>> '{{}}'
     FROM bs x CROSS JOIN LATERAL jsonb_each(x.metrics) m
     WHERE x.metrics IS NOT NULL AND jsonb_typeof(m.value) IN ('string', 'boolean'))
    {status}
), counted AS MATERIALIZED (
    SELECT kind, step, key, value, count(*) AS a FROM bad_values
    WHERE length(value) <= %(max_chars)s GROUP BY kind, step, key, value
)
(SELECT 'value' AS row, kind, step, key, value, a, NULL::bigint AS b FROM counted
 WHERE a >= greatest(2, ceil(%(min_support)s * (SELECT count(*) FROM b)))
 ORDER BY a DESC, kind, step, key, value LIMIT %(max_candidates)s)
UNION ALL
SELECT 'totals', NULL, NULL, NULL, NULL, (SELECT judged FROM judged), (SELECT count(*) FROM b)
UNION ALL
SELECT 'unjudged', NULL, NULL, NULL, NULL, (SELECT runs - judged FROM judged), NULL
UNION ALL
SELECT 'tested', NULL, NULL, NULL, NULL, (SELECT count(*) FROM counted), NULL
UNION ALL
SELECT DISTINCT 'step_type', NULL, name, NULL, step_type, NULL::bigint, NULL::bigint FROM bs
"""
_STATUS = "UNION ALL SELECT b.run_id, 'status', '', 'status', b.status FROM b"

# Statement 2: every run of the window as the bitmask of the candidates it has (one cheap test
# per run and candidate, built from the candidates found), runs with the same mask counted
# once, and from those few rows each candidate's and each pair's counts.
_MASK_COUNTS = """
WITH w AS (
    SELECT r.run_id, r.started_at, coalesce({bad}, false) AS bad, ({run_mask})::bigint AS mask,
           floor(extract(epoch FROM r.started_at) / %(bucket)s)::bigint AS bucket
    FROM runs r
    WHERE r.pipeline = %(pipeline)s AND r.started_at >= %(since)s AND r.started_at < %(until)s AND {judged}
      AND (r.run_day >= %(day_from)s OR r.run_day = %(kept_day)s) AND r.run_day <= %(day_to)s
), step_masks AS (
    SELECT s.run_id, bit_or(({step_mask})::bigint) AS mask
    FROM steps s
    WHERE s.step_type = ANY (%(step_types)s) AND s.started_at >= %(steps_since)s AND s.started_at < %(steps_until)s
      AND (s.run_day >= %(day_from)s OR s.run_day = %(kept_day)s) AND s.run_day <= %(day_to)s
      AND s.name = ANY (%(step_names)s)
    GROUP BY s.run_id
), sets AS MATERIALIZED (
    SELECT w.mask | coalesce(sm.mask, 0) AS mask, w.bad, w.bucket, count(*) AS n,
           min(w.started_at) AS first_at, max(w.started_at) AS last_at
    FROM w LEFT JOIN step_masks sm USING (run_id)
    GROUP BY 1, 2, 3
)
SELECT -1 AS i, -1 AS j, bucket, coalesce(sum(n) FILTER (WHERE bad), 0)::bigint AS a,
       coalesce(sum(n) FILTER (WHERE NOT bad), 0)::bigint AS b,
       min(first_at) FILTER (WHERE bad) AS first_bad, max(last_at) FILTER (WHERE bad) AS last_bad,
       max(last_at) FILTER (WHERE NOT bad) AS last_good
FROM sets GROUP BY bucket
UNION ALL
SELECT i, j, bucket, coalesce(sum(n) FILTER (WHERE bad), 0)::bigint, coalesce(sum(n) FILTER (WHERE NOT bad), 0)::bigint,
       min(first_at) FILTER (WHERE bad), max(last_at) FILTER (WHERE bad), max(last_at) FILTER (WHERE NOT bad)
FROM sets CROSS JOIN generate_series(0, %(last)s) AS i CROSS JOIN generate_series(0, %(last)s) AS j
WHERE (i = j OR (i < j AND j < %(pair_candidates)s))
  AND (mask >> i) & 1 = 1 AND (mask >> j) & 1 = 1
GROUP BY i, j, bucket
"""


def _test(candidate: Attribute, i: int, params: dict[str, Any]) -> sql.Composable:
    """The SQL test that run `r` (or, for a step value, step `s`) has `candidate`."""
    kind, step, key, value = candidate
    params.update({f"k{i}": key, f"v{i}": value, f"s{i}": step})
    n = sql.SQL(str(i))
    if kind == "tags":
        return sql.SQL("r.tags ->> %(k{0})s = %(v{0})s").format(n)
    if kind == "metadata":
        return sql.SQL("(jsonb_typeof(r.metadata) = 'object' AND r.metadata ->> %(k{0})s = %(v{0})s)").format(n)
    if kind == "status":
        return sql.SQL("r.status = %(v{0})s").format(n)
    column = sql.SQL("s.model") if key == "model" else sql.SQL("s.metrics ->> %(k{0})s").format(n)
    return sql.SQL("(s.name = %(s{0})s AND {1} = %(v{0})s)").format(n, column)


def _mask(tests: list[tuple[int, sql.Composable]]) -> sql.Composable:
    if not tests:
        return sql.SQL("0")
    return sql.SQL(" | ").join(
        sql.SQL("CASE WHEN {} THEN {} ELSE 0 END").format(test, sql.Literal(1 << i)) for i, test in tests
    )


def attribute_counts(
    conn: psycopg.Connection, q: PatternQuery, since: datetime, until: datetime, bucket_seconds: int
) -> AttributeCounts:
    """Count, among bad and other runs and per time bucket, the attribute values on at least
    `q.min_support` of the bad runs (the others cannot be a pattern), and pairs of the most frequent
    of them. Every value found on a bad run counts as tested. `conn` is a `snapshot`'s: its two
    statements must see the same runs."""
    bad, judged, params = judged_predicate(q)
    window = window_params(q, since, until)
    # The run's status is an attribute, unless it is what defines a bad run.
    status = sql.SQL("" if q.run_status is not None else _STATUS)
    found = conn.execute(
        sql.SQL(_BAD_VALUES).format(bad=bad, judged=judged, status=status),
        {
            **params,
            **window,
            "min_support": q.min_support,
            "max_chars": MAX_VALUE_CHARS,
            "max_candidates": MAX_CANDIDATES,
        },
        prepare=False,
    ).fetchall()
    candidates = [(r["kind"], r["step"], r["key"], r["value"]) for r in found if r["row"] == "value"]
    totals = next(r for r in found if r["row"] == "totals")
    counts = AttributeCounts(
        runs=totals["a"],
        unjudged=next(r for r in found if r["row"] == "unjudged")["a"],
        bad_runs=totals["b"],
        values_tested=next(r for r in found if r["row"] == "tested")["a"],
        pair_candidates=min(PAIR_CANDIDATES, len(candidates)),
        bucket_seconds=bucket_seconds,
        buckets=Counts([]),
    )
    mask_params = {**params, **window}
    run_tests = [(i, _test(c, i, mask_params)) for i, c in enumerate(candidates) if c[0] != "steps"]
    step_tests = [(i, _test(c, i, mask_params)) for i, c in enumerate(candidates) if c[0] == "steps"]
    step_names = sorted({c[1] for c in candidates if c[0] == "steps"})
    mask_params.update(
        step_names=step_names,
        # By type and time (`steps_type_started_idx`), so the pass reads the window's steps of
        # those types and never the table; a step name is taken to keep the type its bad runs gave it.
        step_types=sorted({r["value"] for r in found if r["row"] == "step_type" and r["step"] in step_names}),
        last=len(candidates) - 1,
        pair_candidates=counts.pair_candidates,
        bucket=bucket_seconds,
    )
    statement = sql.SQL(_MASK_COUNTS).format(
        bad=bad, judged=judged, run_mask=_mask(run_tests), step_mask=_mask(step_tests)
    )
    rows = conn.execute(statement, mask_params, prepare=False).fetchall()
    _gather(rows, candidates, counts)
    return counts


def _gather(rows: list[dict[str, Any]], candidates: list[Attribute], counts: AttributeCounts) -> None:
    """Sum the per-bucket rows of statement 2 into one `Counts` per value and pair."""
    by_key: dict[tuple[int, int], Counts] = {}
    for row in rows:
        key = (row["i"], row["j"])
        if key == (-1, -1):
            entry = counts.buckets
        elif key not in by_key:
            first, second = candidates[row["i"]], candidates[row["j"]]
            if key[0] != key[1] and first[:3] == second[:3]:
                continue  # two values of one attribute (a step repeated with two models): not a pair
            entry = by_key[key] = Counts([first] if key[0] == key[1] else [first, second])
        else:
            entry = by_key[key]
        entry.bad += row["a"]
        entry.other += row["b"]
        entry.buckets[row["bucket"]] = Bucket(
            row["a"] + row["b"],
            row["a"],
            row["first_bad"],
            row["last_bad"],
            row["last_good"],
        )
    for (i, j), entry in sorted(by_key.items()):
        (counts.singles if i == j else counts.pairs).append(entry)


def _has(attribute: Attribute, i: int, params: dict[str, Any]) -> sql.Composable:
    """The SQL test that run `r` has `attribute`."""
    test = _test(attribute, i, params)
    if attribute[0] != "steps":
        return test
    return sql.SQL(
        "EXISTS (SELECT 1 FROM steps s WHERE s.run_id = r.run_id AND s.run_day = r.run_day AND {} AND s.started_at >= "
        "%(steps_since)s AND s.started_at < %(steps_until)s AND (s.run_day >= %(day_from)s OR s.run_day = %(kept_day)s) AND s.run_day <= %(day_to)s)"
    ).format(test)


def last_good_before(
    conn: psycopg.Connection, q: PatternQuery, pattern: list[Attribute], start: datetime, first_bad: datetime
) -> datetime | None:
    """The start of the last good run with every attribute of `pattern` in [start, first_bad): the
    bucket of the pattern's first bad run, where the per-bucket counts cannot tell. `conn` is the
    `snapshot` the counts came from."""
    bad, judged, params = judged_predicate(q)
    params.update(window_params(q, start, first_bad))
    has = sql.SQL(" AND ").join([_has(a, i, params) for i, a in enumerate(pattern)])
    statement = sql.SQL(
        "SELECT max(r.started_at) AS at FROM runs r WHERE r.pipeline = %(pipeline)s AND r.started_at >= %(since)s "
        "AND r.started_at < %(until)s AND (r.run_day >= %(day_from)s OR r.run_day = %(kept_day)s) AND r.run_day <= %(day_to)s AND NOT coalesce({bad}, false) AND {judged} AND {has}"
    ).format(bad=bad, judged=judged, has=has)
    return conn.execute(statement, params, prepare=False).fetchone()["at"]
