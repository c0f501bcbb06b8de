"""Read the hot tier: steps across runs, recent runs, and one run's debugging view."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from psycopg import sql

from xray_sdk.vocabulary import STANDARD_METRICS

from . import cursor as cursors
from .db import Database
from .errors import NotFound, ValidationFailed, parse_uuid
from .ingest import parse_run_id
from .jsonio import iso_utc


@dataclass
class StepQuery:
    """Filters of `GET /api/v1/steps`. Ratios are inclusive bounds; times bound `started_at`."""

    step_type: list[str] = field(default_factory=list)
    pipeline: str | None = None
    name: str | None = None
    status: str | None = None
    min_drop_ratio: float | None = None
    max_drop_ratio: float | None = None
    violations: bool | None = None
    reason: str | None = None
    min_reason_share: float | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    cursor: str | None = None


@dataclass
class StepStatsQuery:
    """Filters of `GET /api/v1/steps/stats`; `since` defaults to seven days ago."""

    pipeline: str | None = None
    name: str | None = None
    step_type: list[str] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None


BASELINE_WINDOW = timedelta(days=7)
MAX_STAT_GROUPS = 1000
_QUANTILES = (0.1, 0.5, 0.9, 0.99)


@dataclass
class RunQuery:
    """Filters of `GET /api/v1/runs`."""

    pipeline: str | None = None
    entity: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    cursor: str | None = None


_STEP_SUMMARY_COLUMNS = (
    "s.run_id, s.step_id, s.parent_step_id, s.seq, s.name, s.step_type, s.status, s.started_at, "
    "s.ended_at, s.candidates_in, s.candidates_out, s.drop_ratio, s.model, s.temperature, s.metrics, "
    "s.why, s.error, s.contract_violations, s.rejections"
)


def find_steps(db: Database, q: StepQuery) -> dict[str, Any]:
    """Steps across runs matching `q`, newest first, with their run's pipeline and entity."""
    _check_window(q.since, q.until)
    if q.min_reason_share is not None and q.reason is None:
        raise ValidationFailed({"min_reason_share": ["needs reason: the share of which reason?"]})
    if q.min_drop_ratio is not None and q.max_drop_ratio is not None and q.min_drop_ratio > q.max_drop_ratio:
        raise ValidationFailed({"min_drop_ratio": ["must not exceed max_drop_ratio"]})
    statement, params = step_query_sql(q)
    with db.connection() as conn:
        rows = conn.execute(statement, params).fetchall()
    page, next_cursor = _paginate(rows, q.limit, lambda r: (r["started_at"], r["run_id"], r["step_id"]))
    return {"steps": [step_summary(r) for r in page], "next_cursor": next_cursor}


def step_query_sql(q: StepQuery) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement `find_steps` runs for `q` (one more row than a page, to detect the next)."""
    where, params = _step_filters(q)
    statement = sql.SQL(
        "SELECT {columns}, r.pipeline, r.entity FROM steps s JOIN runs r ON r.run_id = s.run_id "
        "WHERE {where} ORDER BY s.started_at DESC, s.run_id DESC, s.step_id DESC LIMIT %(limit_plus_one)s"
    ).format(columns=sql.SQL(_STEP_SUMMARY_COLUMNS), where=sql.SQL(" AND ").join(where))
    params["limit_plus_one"] = q.limit + 1
    return statement, params


def _step_filters(q: StepQuery) -> tuple[list[sql.Composable], dict[str, Any]]:
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
    if q.since is not None:
        add("s.started_at >= %(since)s", since=q.since)
    if q.until is not None:
        add("s.started_at < %(until)s", until=q.until)
    if q.reason is not None:
        add("s.rejections ? %(reason)s", reason=q.reason)
        if q.min_reason_share is not None:
            # The share of the step's candidates this reason removed.
            add("(s.rejections ->> %(reason)s)::float8 / NULLIF(s.candidates_in, 0) >= %(min_reason_share)s",
                min_reason_share=q.min_reason_share)
    if q.cursor:
        at, run_id, step_id = cursors.decode(q.cursor, 2)
        add("(s.started_at, s.run_id, s.step_id) < (%(c_at)s, %(c_run)s::uuid, %(c_step)s::uuid)",
            c_at=at, c_run=run_id, c_step=step_id)
    return where, params


def list_runs(db: Database, q: RunQuery) -> dict[str, Any]:
    """Recent runs matching `q`, newest first."""
    _check_window(q.since, q.until)
    where: list[sql.Composable] = [sql.SQL("true")]
    params: dict[str, Any] = {"limit_plus_one": q.limit + 1}
    for column in ("pipeline", "entity", "status"):
        value = getattr(q, column)
        if value is not None:
            where.append(sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column)))
            params[column] = value
    if q.since is not None:
        where.append(sql.SQL("started_at >= %(since)s"))
        params["since"] = q.since
    if q.until is not None:
        where.append(sql.SQL("started_at < %(until)s"))
        params["until"] = q.until
    if q.cursor:
        at, run_id = cursors.decode(q.cursor, 1)
        where.append(sql.SQL("(started_at, run_id) < (%(c_at)s, %(c_run)s::uuid)"))
        params.update(c_at=at, c_run=run_id)
    statement = sql.SQL(
        "SELECT * FROM runs WHERE {where} ORDER BY started_at DESC, run_id DESC LIMIT %(limit_plus_one)s"
    ).format(where=sql.SQL(" AND ").join(where))
    with db.connection() as conn:
        rows = conn.execute(statement, params).fetchall()
    page, next_cursor = _paginate(rows, q.limit, lambda r: (r["started_at"], r["run_id"]))
    return {"runs": [run_summary(r) for r in page], "next_cursor": next_cursor}


def get_run(db: Database, run_id: str) -> dict[str, Any]:
    """One run with its steps in order, each with its metrics, `why` and artifacts."""
    run_id = parse_run_id(run_id)
    with db.connection() as conn:
        run = conn.execute("SELECT * FROM runs WHERE run_id = %s", (run_id,)).fetchone()
        if run is None:
            raise NotFound(f"no run {run_id}: check the id, or whether its events were sent", {"run_id": run_id})
        steps = conn.execute(
            "SELECT * FROM steps WHERE run_id = %s ORDER BY seq, started_at, step_id", (run_id,)
        ).fetchall()
        artifacts = conn.execute(
            "SELECT * FROM artifacts WHERE run_id = %s ORDER BY created_at, name", (run_id,)
        ).fetchall()
    by_step: dict[str, list[dict[str, Any]]] = {}
    for a in artifacts:
        by_step.setdefault(str(a["step_id"]), []).append(artifact_view(a))
    view = run_summary(run)
    view["steps"] = [step_detail(s, by_step.get(str(s["step_id"]), [])) for s in steps]
    counts = {"stored": 0, "pending": 0, "dropped": 0, "referenced": 0}
    for a in artifacts:
        counts[a["status"]] = counts.get(a["status"], 0) + 1
    view["evidence"] = counts
    # Degraded, never failed: a missing artifact leaves the run readable from its metrics.
    view["degraded"] = counts["pending"] + counts["dropped"] > 0
    view["summary"] = {
        "steps": len(steps),
        "errors": sum(1 for s in steps if s["status"] == "error"),
        "running": sum(1 for s in steps if s["status"] == "running"),
        "contract_violations": sum(1 for s in steps if s["contract_violations"]),
    }
    return view


def _window_filters(q: StepStatsQuery) -> tuple[datetime, list[sql.Composable], dict[str, Any]]:
    """The window (default: the last seven days) and filters of a stats query, built by the
    same code as the cross-run query's."""
    since = q.since or datetime.now(timezone.utc) - BASELINE_WINDOW
    _check_window(since, q.until)
    where, params = _step_filters(StepQuery(step_type=q.step_type, pipeline=q.pipeline, name=q.name,
                                            since=since, until=q.until))
    return since, where, params


def top_reasons(db: Database, q: StepStatsQuery) -> dict[str, Any]:
    """Rejection reasons of the matching steps over the window: for each, how many steps it
    appears in, the candidates it removed in all, and the median share of a step's candidates
    it removed, over every matching step (0 where it does not appear). Most removed first."""
    since, where, params = _window_filters(q)
    where.append(sql.SQL("s.rejections IS NOT NULL"))
    statement = sql.SQL("""
        WITH chosen AS (
            SELECT s.rejections, s.candidates_in FROM steps s JOIN runs r ON r.run_id = s.run_id WHERE {where}),
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
    return {"since": _iso(since), "until": _iso(q.until), "steps": rows[0]["of_steps"] if rows else 0,
            "reasons": [{"reason": r["reason"], "steps": r["steps"], "total": int(r["total"]),
                         "median_share": None if r["median_share"] is None else round(r["median_share"], 6)}
                        for r in rows]}


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
        FROM steps s JOIN runs r ON r.run_id = s.run_id
        WHERE {where}
        GROUP BY r.pipeline, s.name, s.step_type
        ORDER BY r.pipeline NULLS LAST, s.name, s.step_type
        LIMIT %(max_groups)s
    """).format(where=sql.SQL(" AND ").join(where))
    with db.connection() as conn:
        rows = conn.execute(statement, params).fetchall()
    return {"since": _iso(since), "until": _iso(q.until), "groups": [_stats_group(r) for r in rows]}


def _stats_group(r: dict[str, Any]) -> dict[str, Any]:
    group = {key: r[key] for key in ("pipeline", "name", "step_type", "steps", "runs", "errors", "running",
                                     "violations")}
    for key in ("drop_ratio", "candidates_in", "candidates_out", "duration_ms"):
        values = r[key]
        group[key] = None if values is None or values[0] is None else {
            f"p{round(q * 100)}": round(float(v), 6) for q, v in zip(_QUANTILES, values)}
    return group


# --------------------------------------------------------------------------- rows -> JSON

def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso_utc(moment)


def _duration_ms(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000, 3)


def run_summary(r: dict[str, Any]) -> dict[str, Any]:
    """A run as the API shows it."""
    return {
        "run_id": str(r["run_id"]),
        "pipeline": r["pipeline"],
        "entity": r["entity"],
        "tags": r["tags"],
        "metadata": r["metadata"],
        "status": r["status"],
        "outcome": r["outcome"],
        "error": r["error"],
        "implicit": r["implicit"],
        "started_at": _iso(r["started_at"]),
        "ended_at": _iso(r["ended_at"]),
        "duration_ms": _duration_ms(r["started_at"], r["ended_at"]),
    }


def _metrics(r: dict[str, Any]) -> dict[str, Any]:
    merged = {name: r[name] for name in STANDARD_METRICS if r[name] is not None}
    merged.update(r["metrics"] or {})
    return merged


def step_summary(r: dict[str, Any]) -> dict[str, Any]:
    """A step as the cross-run query shows it (no input/output: those are in the run view)."""
    view = {
        "run_id": str(r["run_id"]),
        "step_id": str(r["step_id"]),
        "parent_step_id": str(r["parent_step_id"]) if r["parent_step_id"] else None,
        "seq": r["seq"],
        "name": r["name"],
        "step_type": r["step_type"],
        "status": r["status"],
        "started_at": _iso(r["started_at"]),
        "ended_at": _iso(r["ended_at"]),
        "duration_ms": _duration_ms(r["started_at"], r["ended_at"]),
        "metrics": _metrics(r),
        "why": r["why"],
        "error": r["error"],
        "contract_violations": r["contract_violations"] or [],
        "rejections": r["rejections"] or {},
    }
    if "pipeline" in r:
        view["pipeline"] = r["pipeline"]
        view["entity"] = r["entity"]
    return view


def step_detail(r: dict[str, Any], artifacts: list[dict[str, Any]]) -> dict[str, Any]:
    """A step as the run view shows it: everything the hot tier holds."""
    view = step_summary(r)
    view["input"] = r["input"]
    view["output"] = r["output"]
    view["artifacts"] = artifacts
    return view


def artifact_view(a: dict[str, Any]) -> dict[str, Any]:
    """An artifact reference: where the evidence is, or why it was not kept."""
    return {
        "artifact_id": str(a["artifact_id"]),
        "name": a["name"],
        "capture": a["capture"],
        "content_type": a["content_type"],
        "status": a["status"],
        "drop_reason": a["drop_reason"],
        "store_key": a["store_key"],
        "size_bytes": a["size_bytes"],
        "sha256": a["sha256"],
        "link": f"/api/v1/artifacts/{a['artifact_id']}" if a["status"] == "stored" else None,
    }


def find_artifact(db: Database, artifact_id: str) -> dict[str, Any]:
    """An artifact's row by id, or a 404 that says so."""
    artifact_id = parse_uuid(artifact_id, "artifact_id", "as listed in GET /api/v1/runs/<run_id>")
    with db.connection() as conn:
        row = conn.execute("SELECT * FROM artifacts WHERE artifact_id = %s LIMIT 1", (artifact_id,)).fetchone()
    if row is None:
        raise NotFound(f"no artifact {artifact_id}", {"artifact_id": artifact_id})
    return row


def _paginate(rows: list[dict[str, Any]], limit: int, key) -> tuple[list[dict[str, Any]], str | None]:
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, cursors.encode(*key(page[-1]))


def _check_window(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise ValidationFailed({"since": ["must be earlier than until"]})
