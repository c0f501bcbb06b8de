"""Steps across runs: the cross-run query (`GET /api/v1/steps`) and the filters it shares
with the baselines."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from xray_server.errors import ValidationFailed
from xray_server.query import cursor as cursors
from xray_server.query.days import window_days
from xray_server.query.views import check_window, paginate, step_summary
from xray_server.schemas.queries import TOTAL_BOUND, StepQuery
from xray_server.storage.pool import Database

_STEP_SUMMARY_COLUMNS = (
    "s.run_id, s.step_id, s.parent_step_id, s.seq, s.name, s.step_type, s.status, s.started_at, "
    "s.ended_at, s.candidates_in, s.candidates_out, s.drop_ratio, s.model, s.temperature, s.metrics, "
    "s.why, s.error, s.contract_violations, s.rejections"
)


def find_steps(db: Database, q: StepQuery) -> dict[str, Any]:
    """Steps across runs matching `q`, newest first, with their run's pipeline and entity."""
    check_window(q.since, q.until)
    check_step_filters(q)
    statement, params = step_query_sql(q)
    with db.connection() as conn:
        rows = conn.execute(statement, params).fetchall()
        total = _total(conn, q) if q.total else None
    page, next_cursor = paginate(rows, q.limit, lambda r: (r["started_at"], r["run_id"], r["step_id"]))
    return {"steps": [step_summary(r) for r in page], "next_cursor": next_cursor, **total_view(total)}


def _total(conn: Any, q: StepQuery) -> int:
    where, params = step_filters(replace(q, cursor=None))
    return bounded_count(conn, sql.SQL(_JOINED_RUNS), where, params)


def bounded_count(conn: Any, source: sql.Composable, where: list[sql.Composable], params: dict[str, Any]) -> int:
    """How many rows of `source` match `where`, counted up to one past TOTAL_BOUND."""
    statement = sql.SQL("SELECT count(*) AS n FROM (SELECT 1 FROM {} WHERE {} LIMIT %(count_bound)s) x").format(
        source, sql.SQL(" AND ").join(where)
    )
    return int(conn.execute(statement, {**params, "count_bound": TOTAL_BOUND + 1}).fetchone()["n"])


def total_view(count: int | None) -> dict[str, Any]:
    """`total` and `total_is_exact` of a page answer (both None when no total was asked for)."""
    if count is None:
        return {"total": None, "total_is_exact": None}
    return {"total": min(count, TOTAL_BOUND), "total_is_exact": count <= TOTAL_BOUND}


def check_step_filters(q: Any) -> None:
    """A 400 for step filters that cannot mean anything (a share with no reason, min above max)."""
    if q.min_reason_share is not None and q.reason is None:
        raise ValidationFailed({"min_reason_share": ["needs reason: the share of which reason?"]})
    if q.min_drop_ratio is not None and q.max_drop_ratio is not None and q.min_drop_ratio > q.max_drop_ratio:
        raise ValidationFailed({"min_drop_ratio": ["must not exceed max_drop_ratio"]})


# Without a filter on the run, each step of the page looks up its run (a nested loop the planner
# cannot turn into a hash join, `OFFSET 0` being a fence): the steps are then read newest first
# through the partitions' indexes, and the walk stops at the page. Joined, the planner weighs the
# whole window's runs against the matches it expects, and over partitions it picks a hash join of
# every run and step of the window: 25 times slower for the usual page (BENCHMARKS.md, "Months").
# The window's days go inside the fence too: outside it, the subquery is planned over every
# partition of `runs`, and its cost grows with the days stored (5 ms to plan at 97 partitions).
_PAGE_RUNS = (
    "steps s CROSS JOIN LATERAL (SELECT r.pipeline, r.entity, r.run_day FROM runs r"
    " WHERE r.run_id = s.run_id AND r.run_day = s.run_day{run_days} OFFSET 0) r"
)
_JOINED_RUNS = "steps s JOIN runs r ON r.run_id = s.run_id AND r.run_day = s.run_day"


def step_query_sql(q: StepQuery) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement `find_steps` runs for `q` (one more row than a page, to detect the next)."""
    where, params = step_filters(q)
    on_runs = q.pipeline is not None or bool(q.tag) or bool(q.outcome) or bool(q.metadata)
    if on_runs:
        source: sql.Composable = sql.SQL(_JOINED_RUNS)
    else:  # the run days step_filters bounded outside, repeated inside the fence
        source = sql.SQL(_PAGE_RUNS).format(
            run_days=sql.SQL("").join(sql.SQL(" AND ") + c for c in _run_days(q, params))
        )
    statement = sql.SQL(
        "SELECT {columns}, r.pipeline, r.entity FROM {source} "
        "WHERE {where} ORDER BY s.started_at DESC, s.run_id DESC, s.step_id DESC LIMIT %(limit_plus_one)s"
    ).format(
        columns=sql.SQL(_STEP_SUMMARY_COLUMNS),
        source=source,
        where=sql.SQL(" AND ").join(where),
    )
    params["limit_plus_one"] = q.limit + 1
    return statement, params


# Runs with a label from any source (the latest of each source is the one stored).
LABELLED = "EXISTS (SELECT 1 FROM run_labels l WHERE l.run_id = {run} AND l.label = %(label)s)"


def add_tag_filters(
    where: list[sql.Composable], params: dict[str, Any], tags: list[tuple[str, str]], runs_alias: str | None = None
) -> None:
    """One containment test per `key:value` (ANDed), which the GIN index on `runs.tags` serves."""
    column = sql.Identifier(runs_alias, "tags") if runs_alias else sql.Identifier("tags")
    for i, (key, value) in enumerate(tags):
        where.append(sql.SQL("{} @> {}").format(column, sql.Placeholder(f"tag_{i}")))
        params[f"tag_{i}"] = Jsonb({key: value})


def add_json_filters(
    where: list[sql.Composable],
    params: dict[str, Any],
    column: str,
    filters: list[tuple[str, str]],
    runs_alias: str | None = None,
) -> None:
    """Equality on a top-level key of a run's `outcome` or `metadata`, one test per `key:value`
    (ANDed). The value is typed text from a URL: `3` is the number 3 or the string "3", `true`
    the boolean or the string, anything else a string; each reading is a containment test, which
    the column's GIN index serves (a bitmap OR of two index scans)."""
    target = sql.Identifier(runs_alias, column) if runs_alias else sql.Identifier(column)
    for i, (key, value) in enumerate(filters):
        readings = [Jsonb({key: value})] + [Jsonb({key: typed}) for typed in _typed(value)]
        names = [f"{column}_{i}_{j}" for j in range(len(readings))]
        tests = sql.SQL(" OR ").join(sql.SQL("{} @> {}").format(target, sql.Placeholder(n)) for n in names)
        where.append(sql.SQL("({})").format(tests))
        params.update(zip(names, readings, strict=True))


def _typed(text: str) -> list[Any]:
    """The JSON scalars other than a string that `text` can stand for."""
    if text in ("true", "false"):
        return [text == "true"]
    if text == "null":
        return [None]
    try:
        number = float(text)
    except ValueError:
        return []
    if number != number or number in (float("inf"), float("-inf")):
        return []
    return [int(number)] if number.is_integer() and "." not in text and "e" not in text.lower() else [number]


def step_filters(q: StepQuery) -> tuple[list[sql.Composable], dict[str, Any]]:
    where: list[sql.Composable] = [sql.SQL("true")]
    params: dict[str, Any] = {}

    def add(clause: str, **values: Any) -> None:
        where.append(sql.SQL(clause))
        params.update(values)

    if len(q.step_type) == 1:
        # A single type keeps the (step_type, started_at) index's order usable for LIMIT.
        add("s.step_type = %(step_type)s", step_type=q.step_type[0])
    elif q.step_type:
        add("s.step_type = ANY(%(step_types)s)", step_types=sorted(set(q.step_type)))
    if q.pipeline is not None:
        add("r.pipeline = %(pipeline)s", pipeline=q.pipeline)
    if q.name is not None:
        add("s.name = %(name)s", name=q.name)
    if q.status is not None:
        add("s.status = %(status)s", status=q.status)
    if q.min_drop_ratio is not None:
        add("s.drop_ratio >= %(min_drop_ratio)s", min_drop_ratio=q.min_drop_ratio)
    if q.max_drop_ratio is not None:
        add("s.drop_ratio <= %(max_drop_ratio)s", max_drop_ratio=q.max_drop_ratio)
    if q.violations is True:
        add("s.contract_violations IS NOT NULL")
    elif q.violations is False:
        add("s.contract_violations IS NULL")
    if q.violation is not None:
        add(
            "EXISTS (SELECT 1 FROM unnest(s.contract_violations) v"
            " WHERE v = %(violation)s OR starts_with(v, %(violation_kind)s))",
            violation=q.violation,
            violation_kind=q.violation + ":",
        )
    if q.since is not None:
        add("s.started_at >= %(since)s", since=q.since)
    if q.until is not None:
        add("s.started_at < %(until)s", until=q.until)
    if q.reason is not None:
        add("s.rejections ? %(reason)s", reason=q.reason)
        if q.min_reason_share is not None:
            # The share of the step's candidates this reason removed.
            add(
                "(s.rejections ->> %(reason)s)::float8 / NULLIF(s.candidates_in, 0) >= %(min_reason_share)s",
                min_reason_share=q.min_reason_share,
            )
    add_tag_filters(where, params, q.tag, "r")
    add_json_filters(where, params, "outcome", q.outcome, "r")
    add_json_filters(where, params, "metadata", q.metadata, "r")
    if q.run_label is not None:
        add(LABELLED.format(run="s.run_id"), label=q.run_label)
    # The run's side too: PostgreSQL carries the join's equality on run_day, not the bounds.
    where.extend(window_days("s", params, q.since, q.until))
    where.extend(_run_days(q, params))
    if q.cursor:
        at, run_id, step_id = cursors.decode(q.cursor, 2)
        add(
            "(s.started_at, s.run_id, s.step_id) < (%(c_at)s, %(c_run)s::uuid, %(c_step)s::uuid)",
            c_at=at,
            c_run=run_id,
            c_step=step_id,
        )
        where.extend(window_days("s", params, None, at, name="c_day"))
    return where, params


def _run_days(q: StepQuery, params: dict[str, Any]) -> list[sql.Composable]:
    """The days of the runs (alias `r`) of the window and before the cursor: on the run's side too,
    since PostgreSQL carries the join's equality on run_day, not the bounds."""
    days = window_days("r", params, q.since, q.until, name="run_day")
    if q.cursor:
        days += window_days("r", params, None, cursors.decode(q.cursor, 2)[0], name="c_run_day")
    return days
