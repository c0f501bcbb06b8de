"""Export: `GET /api/v1/steps/export` of every step of a window, with its run's tags, outcome and
labels, to CSV over HTTP, beside a plain `COPY (SELECT ...) TO STDOUT` of the same statement on a
direct connection (the baseline, in the same run), and the read client's JSON Lines into Python
dicts. Steps are loaded with SQL as for `query` (10 a run), then every run gets tags, an outcome
and metadata. Also the plans of the outcome and metadata filters (`/runs?outcome=`,
`/steps?metadata=`), by EXPLAIN ANALYZE.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import psycopg
from psycopg import sql

from xray_cli.read import steps as read_steps
from xray_server.query.export import steps_copy
from xray_server.query.runs import run_filters
from xray_server.query.steps import step_query_sql
from xray_server.runtime.local_server import LocalServer
from xray_server.schemas.queries import RunQuery, StepExportQuery, StepQuery
from xray_server.storage.migrations import migrate

from .database import bench_database
from .query import STEPS_PER_RUN, _grow

TITLE = "Export: every step of a window, with its run, as CSV over HTTP beside a plain COPY"

_DECORATE = """
UPDATE runs SET
    tags = jsonb_build_object('feed', chr(65 + abs(hashtext(run_id::text)) % 4), 'market', 'au'),
    outcome = jsonb_build_object('correct', abs(hashtext(run_id::text || 'o')) % 10 <> 0),
    metadata = jsonb_build_object('version', abs(hashtext(run_id::text || 'm')) % 5)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=1_000_000, help="stored steps, all exported")
    parser.add_argument("--repeat", type=int, default=3, help="timed exports of each kind, interleaved")


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"steps": args.steps}
    with bench_database() as (url, where):
        result["database"] = where
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
            _grow(url, 0, args.steps // STEPS_PER_RUN)
            conn.execute(_DECORATE)
            conn.execute("VACUUM ANALYZE runs")
        env = {"XRAY_DATABASE_URL": url, "XRAY_WORKERS": "1", "XRAY_THREADS": "1"}
        with LocalServer(env) as server, psycopg.connect(url, autocommit=True) as db:
            since = datetime.now(UTC) - timedelta(days=31)
            q = StepExportQuery(since=since, format="csv")
            statement, params = steps_copy(q)
            text = psycopg.ClientCursor(db).mogrify(statement, params)
            path = "/api/v1/steps/export?" + urlencode({"since": since.isoformat(), "format": "csv"})
            timings: dict[str, list[float]] = {"copy": [], "http_csv": [], "read_client_jsonl": []}
            counted: dict[str, int] = {}
            for _ in range(args.repeat):
                for name, export in (
                    ("copy", lambda: _copy(db, text)),
                    ("http_csv", lambda: _http(server.base_url, path)),
                    ("read_client_jsonl", lambda: sum(1 for _ in read_steps(server.base_url, since=since.isoformat()))),
                ):
                    started = time.perf_counter()
                    counted[name] = export()
                    timings[name].append(time.perf_counter() - started)
            rows = args.steps
            result["exports"] = {
                name: {
                    "median_seconds": round(statistics.median(t), 2),
                    "rows_per_second": round(rows / statistics.median(t)),
                    "rows": counted[name] if name == "read_client_jsonl" else rows,
                    "bytes": counted[name] if name != "read_client_jsonl" else None,
                }
                for name, t in timings.items()
            }
            copy_rate = result["exports"]["copy"]["rows_per_second"]
            for export in result["exports"].values():
                export["ratio_to_copy"] = round(export["rows_per_second"] / copy_rate, 2)
            result["plans"] = _plans(db)
    return result


def _copy(db: psycopg.Connection, text: str) -> int:
    """The baseline: the same COPY on a direct connection, every block read; its byte count."""
    size = 0
    with db.cursor() as cursor, cursor.copy(text) as copy:
        for block in copy:
            size += len(block)
    return size


def _http(base_url: str, path: str) -> int:
    """The export over HTTP, every byte read; its byte count."""
    parsed = urlsplit(base_url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=600)
    conn.request("GET", path)
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"export answered {response.status}: {response.read()[:300]!r}")
    size = 0
    while block := response.read(1 << 16):
        size += len(block)
    conn.close()
    return size


def _plans(db: psycopg.Connection) -> dict[str, dict[str, Any]]:
    """EXPLAIN ANALYZE of the outcome filter on /runs and the metadata filter on /steps."""
    day = datetime.now(UTC) - timedelta(hours=24)
    runs_where, runs_params = run_filters(RunQuery(outcome=[("correct", "false")], since=day))
    runs_statement = sql.SQL(
        "SELECT * FROM runs r WHERE {} ORDER BY r.started_at DESC, r.run_id DESC LIMIT 101"
    ).format(sql.SQL(" AND ").join(runs_where))
    steps_statement, steps_params = step_query_sql(
        StepQuery(step_type=["filter"], metadata=[("version", "3")], since=day, limit=100)
    )
    plans = {}
    for label, statement, params in (
        ("/runs?outcome=correct:false&since=24h", runs_statement, runs_params),
        ("/steps?step_type=filter&metadata=version:3&since=24h", steps_statement, steps_params),
    ):
        plan = db.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ") + statement, params).fetchall()
        text = "\n".join(row[0] for row in plan)
        plans[label] = {
            "plan": text,
            "index_served": "Seq Scan on runs" not in text and "Seq Scan on steps" not in text,
        }
    return plans


def report(result: dict[str, Any]) -> str:
    lines = [
        f"Database: {result['database']}. {result['steps']:,} steps, every one exported (the last 31 days).",
        "",
        "| export | median seconds | rows/s | ratio to COPY |",
        "|---|---|---|---|",
    ]
    names = {
        "copy": "`COPY (SELECT ...) TO STDOUT` on a direct connection (baseline)",
        "http_csv": "`GET /api/v1/steps/export?format=csv` over HTTP",
        "read_client_jsonl": "`xray_cli.read.steps(...)`: JSON Lines into Python dicts",
    }
    for name, e in result["exports"].items():
        lines.append(f"| {names[name]} | {e['median_seconds']} | {e['rows_per_second']:,} | {e['ratio_to_copy']} |")
    for label, plan in result["plans"].items():
        lines += ["", f"EXPLAIN (ANALYZE, BUFFERS) of `{label}` (index-served: {plan['index_served']}):", "", "```"]
        lines += [plan["plan"], "```"]
    return "\n".join(lines)


def reading(result: dict[str, Any]) -> str:
    csv = result["exports"]["http_csv"]
    return "\n".join(
        [
            f"- **Goal: at least 50,000 rows/s to CSV**: {csv['rows_per_second']:,} rows/s: "
            f"{'met' if csv['rows_per_second'] >= 50_000 else '**not met**'}.",
            f"- **Goal: at least 0.3x the plain COPY in the same run**: {csv['ratio_to_copy']}x: "
            f"{'met' if csv['ratio_to_copy'] >= 0.3 else '**not met**'}.",
            "- The rows leave PostgreSQL formatted by `COPY`, and the server passes the blocks on: what the export "
            "adds to the COPY is HTTP and one more copy of each block.",
        ]
    )
