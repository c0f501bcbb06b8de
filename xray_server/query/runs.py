"""Runs: recent runs (`GET /api/v1/runs`) and one run's debugging view (`GET /api/v1/runs/<id>`)."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from xray_sdk.contract.vocabulary import ArtifactStatus, StepStatus
from xray_server.errors import NotFound
from xray_server.ids import parse_run_id
from xray_server.query import cursor as cursors
from xray_server.query.days import window_days
from xray_server.query.steps import LABELLED, add_json_filters, add_tag_filters, bounded_count, total_view
from xray_server.query.views import (
    artifact_view,
    check_window,
    label_view,
    paginate,
    run_summary,
    run_view,
    step_detail,
)
from xray_server.schemas.queries import RunQuery
from xray_server.storage.partitions import KEPT_DAY, carried_day
from xray_server.storage.pool import Database


def list_runs(db: Database, q: RunQuery) -> dict[str, Any]:
    """Recent runs matching `q`, newest first."""
    check_window(q.since, q.until)
    where, params = run_filters(q)
    conditions = list(where)
    if q.cursor:
        at, run_id = cursors.decode(q.cursor, 1)
        conditions.append(sql.SQL("(r.started_at, r.run_id) < (%(c_at)s, %(c_run)s::uuid)"))
        params.update(c_at=at, c_run=run_id)
        conditions.extend(window_days("r", params, None, at, name="c_day"))
    params["limit_plus_one"] = q.limit + 1
    # The labels are read for the page's runs only, after the page is chosen.
    statement = sql.SQL(
        "SELECT p.*, {labels} FROM ("
        "SELECT * FROM runs r WHERE {where} ORDER BY r.started_at DESC, r.run_id DESC LIMIT %(limit_plus_one)s) p "
        "ORDER BY p.started_at DESC, p.run_id DESC"
    ).format(labels=sql.SQL(_LABELS.format(run="p")), where=sql.SQL(" AND ").join(conditions))
    with db.connection() as conn:
        rows = conn.execute(statement, params).fetchall()
        # The total is of the whole query: the cursor's clause left out.
        total = bounded_count(conn, sql.SQL("runs r"), where, params) if q.total else None
    page, next_cursor = paginate(rows, q.limit, lambda r: (r["started_at"], r["run_id"]))
    for row in page:
        row["labels"] = [label_view(label) for label in row["labels"]]
    return {"runs": [run_summary(r) for r in page], "next_cursor": next_cursor, **total_view(total)}


def run_filters(q: RunQuery, alias: str = "r") -> tuple[list[sql.Composable], dict[str, Any]]:
    """The conditions on `runs` (as `alias`) that `q`'s filters make, its cursor aside."""
    where: list[sql.Composable] = [sql.SQL("true")]
    params: dict[str, Any] = {}
    for column in ("pipeline", "entity", "status"):
        value = getattr(q, column)
        if value is not None:
            where.append(sql.SQL("{} = {}").format(sql.Identifier(alias, column), sql.Placeholder(column)))
            params[column] = value
    if q.since is not None:
        where.append(sql.SQL("{}.started_at >= %(since)s").format(sql.Identifier(alias)))
        params["since"] = q.since
    if q.until is not None:
        where.append(sql.SQL("{}.started_at < %(until)s").format(sql.Identifier(alias)))
        params["until"] = q.until
    where.extend(window_days(alias, params, q.since, q.until))
    add_tag_filters(where, params, q.tag, alias)
    add_json_filters(where, params, "outcome", q.outcome, alias)
    add_json_filters(where, params, "metadata", q.metadata, alias)
    if q.id_prefix is not None:
        digits = q.id_prefix.replace("-", "").lower()[:32]
        where.append(sql.SQL("{}.run_id BETWEEN %(id_low)s::uuid AND %(id_high)s::uuid").format(sql.Identifier(alias)))
        params.update(id_low=digits.ljust(32, "0"), id_high=digits.ljust(32, "f"))
    if q.label is not None:
        where.append(sql.SQL(LABELLED.format(run=f"{alias}.run_id")))
        params["label"] = q.label
    return where, params


# A run's judgements, latest first, read with it (one index probe a run: the key is (run_id, source)).
_LABELS = """coalesce((
    SELECT jsonb_agg(jsonb_build_object('source', l.source, 'label', l.label, 'value', l.value,
                                        'comment', l.comment, 'labeled_at', extract(epoch FROM l.labeled_at))
                     ORDER BY l.labeled_at DESC, l.source)
    FROM run_labels l WHERE l.run_id = {run}.run_id), '[]'::jsonb) AS labels"""
# A run by id: in the partition its id places it in (and the kept runs'), or in all of them. Two
# statements, not one with a NULL test: PostgreSQL prunes partitions of a prepared statement's
# generic plan only on plain comparisons of the key.
_RUN_BY_ID = f"SELECT r.*, {_LABELS.format(run='r')} FROM runs r WHERE r.run_id = %(run_id)s"
RUN_ON_DAYS = _RUN_BY_ID + " AND (r.run_day = %(day)s OR r.run_day = %(kept_day)s)"
_RUN_STEPS = "SELECT * FROM steps WHERE run_id = %(run_id)s AND run_day = %(run_day)s ORDER BY seq, started_at, step_id"
_RUN_ARTIFACTS = "SELECT * FROM artifacts WHERE run_id = %(run_id)s AND run_day = %(run_day)s ORDER BY created_at, name"


def get_run(db: Database, run_id: str) -> dict[str, Any]:
    """One run with its steps in order, each with its metrics, `why` and artifacts."""
    run_id = parse_run_id(run_id)
    with db.connection() as conn:
        # The run's labels come with it (no round trip of their own): its judgements, latest first.
        # Kept runs outlive their day's partition: a run found twice (kept, and its day not yet
        # dropped) is read from its day's partition, which ingest still writes.
        day = carried_day(conn, run_id)
        found = conn.execute(
            _RUN_BY_ID if day is None else RUN_ON_DAYS, {"run_id": run_id, "day": day, "kept_day": KEPT_DAY}
        )
        run = max(found.fetchall(), key=lambda r: r["run_day"], default=None)
        if run is None:
            raise NotFound(f"no run {run_id}: check the id, or whether its events were sent", {"run_id": run_id})
        where = {"run_id": run_id, "run_day": run["run_day"]}
        steps = conn.execute(_RUN_STEPS, where).fetchall()
        artifacts = conn.execute(_RUN_ARTIFACTS, where).fetchall()
    by_step: dict[str, list[dict[str, Any]]] = {}
    for a in artifacts:
        by_step.setdefault(a["step_id"], []).append(artifact_view(a))
    for s in steps:
        s["artifacts"] = by_step.get(s["step_id"], [])
    counts = {status.value: 0 for status in ArtifactStatus}
    for a in artifacts:
        counts[a["status"]] = counts.get(a["status"], 0) + 1
    run["steps"] = [step_detail(s) for s in steps]
    run["evidence"] = counts
    run["labels"] = [label_view(label) for label in run["labels"]]
    # Degraded, never failed: a missing artifact leaves the run readable from its metrics.
    run["degraded"] = counts[ArtifactStatus.PENDING.value] + counts[ArtifactStatus.DROPPED.value] > 0
    run["summary"] = {
        "steps": len(steps),
        "errors": sum(1 for s in steps if s["status"] == StepStatus.ERROR.value),
        "running": sum(1 for s in steps if s["status"] == StepStatus.RUNNING.value),
        "contract_violations": sum(1 for s in steps if s["contract_violations"]),
    }
    return run_view(run)
