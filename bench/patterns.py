"""Patterns and tag filters at scale: `GET /api/v1/patterns` over a window of runs, and the same
window inside a much larger table.

Runs are loaded straight into the tables with SQL: a pipeline whose last 7 days hold `--runs`
runs (100,000 by default) of six steps each (llm with one of two models, search, filter, rank,
select, custom), tagged with an app version, a market and a shard, with a region and a title in
their metadata; the filter drops 95% in runs of app version 4.2 in market au (and in 1% of the
others). `GET /api/v1/patterns` (bad: a filter step dropping 90% or more) is timed over HTTP;
then the table is grown with older runs of this pipeline and of others (outside the window, as a
table grows in use) to `--total-steps` (10,000,000 with `--full`), and the same request is timed
again. At the larger
size, the tag filter on `GET /api/v1/steps` is EXPLAINed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import psycopg

from xray_server.query import StepQuery, step_query_sql
from xray_server.runtime.local_server import LocalServer
from xray_server.storage.migrations import migrate

from .database import bench_database, partition_days_back, run_day_sql, run_id_sql
from .query import _get
from .stats import percentile

TITLE = "Patterns across runs, and tag filters"
STEPS_PER_RUN = 6
_CHUNK = 50_000
PIPELINE = "checkout"

# Runs g in [first, last] of a pipeline, started `age` ago at most (plus `offset`), and their 6 steps.
_LOAD = f"""
WITH new_runs AS (
    INSERT INTO runs (run_id, run_day, pipeline, entity, status, tags, metadata, started_at, ended_at)
    SELECT {run_id_sql("%(salt)s || g", "t")}, {run_day_sql("t")}, %(pipeline)s, 'E' || g, 'ok',
           jsonb_build_object('app_version', (ARRAY['4.0','4.1','4.2','4.3','4.4'])[1 + (random() * 4.999)::int],
                              'market', (ARRAY['au','nz','uk','us'])[1 + (random() * 3.999)::int],
                              'shard', 's' || (random() * 7.999)::int),
           jsonb_build_object('region', (ARRAY['eu','us','ap'])[1 + (random() * 2.999)::int],
                              'title', 'product ' || g),
           t, t + interval '2 seconds'
    FROM (SELECT g, now() - %(offset)s::interval - random() * %(age)s::interval AS t
          FROM generate_series(%(first)s::int, %(last)s::int) g) x
    RETURNING run_id, run_day, started_at, tags
)
INSERT INTO steps (run_id, run_day, step_id, seq, name, step_type, status, started_at, ended_at,
                   candidates_in, candidates_out, drop_ratio, model, start_ts, start_event_id, end_event_id)
SELECT run_id, run_day, md5(run_id::text || seq)::uuid, seq, name, step_type, 'ok', at, at + interval '150 ms',
       cin, cout, CASE WHEN cin IS NULL THEN NULL ELSE 1 - cout::float8 / cin END, model,
       at, md5('start' || run_id::text || seq)::uuid, md5('end' || run_id::text || seq)::uuid
FROM (
  SELECT r.run_id, r.run_day, s.seq,
         (ARRAY['generate_keywords','search_catalogue','compat_filter','rank_candidates','select_best','audit'])
             [s.seq + 1] AS name,
         (ARRAY['llm','search','filter','rank','select','custom'])[s.seq + 1] AS step_type,
         r.started_at + s.seq * interval '200 ms' AS at,
         CASE WHEN s.seq IN (2, 3) THEN 1000 END AS cin,
         CASE WHEN s.seq = 2 THEN
              CASE WHEN (r.tags ->> 'app_version' = '4.2' AND r.tags ->> 'market' = 'au') OR random() < 0.01
                   THEN 50 ELSE 400 + (random() * 400)::int END
              WHEN s.seq = 3 THEN 10 END AS cout,
         CASE WHEN s.seq = 0 THEN (ARRAY['gpt-large','gpt-small'])[1 + (random() < 0.3)::int] END AS model
  FROM new_runs r CROSS JOIN generate_series(0, 5) AS s(seq)
) x
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the 7-day window")
    parser.add_argument("--total-steps", type=int, default=2_000_000, help="stored steps for the second size")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per size")
    parser.add_argument("--full", action="store_true", help="headline sizes: 100,000 runs in 10,000,000 steps")


def run(args: argparse.Namespace) -> dict[str, Any]:
    total = 10_000_000 if args.full else args.total_steps
    result: dict[str, Any] = {"window_runs": args.runs, "sizes": []}
    with bench_database() as (url, where):
        result["database"] = where
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
        partition_days_back(url, 310)  # the 308 days the runs below span, a partition each
        env = {"XRAY_DATABASE_URL": url, "XRAY_WORKERS": "1", "XRAY_THREADS": "1", "XRAY_DB_PREPARED_STATEMENTS": "on"}
        started = time.perf_counter()
        _load(url, PIPELINE, "w", 1, args.runs, offset="1 minute", age="7 days")
        result["sizes"].append(_measure(url, env, args.repeat, time.perf_counter() - started))
        started = time.perf_counter()
        filler_runs = max(0, total // STEPS_PER_RUN - args.runs)
        half = filler_runs // 2
        # The table grows as it does in use: older runs, of this pipeline and of others.
        _load(url, PIPELINE, "old", 1, half, offset="8 days", age="300 days", vacuum=False)
        for i, first in enumerate(range(1, filler_runs - half + 1, _CHUNK)):
            last = min(filler_runs - half, first + _CHUNK - 1)
            _load(
                url,
                f"other_{i % 4}",
                "other",
                first,
                last,
                offset="8 days",
                age="300 days",
                vacuum=last == filler_runs - half,
            )
        result["sizes"].append(_measure(url, env, args.repeat, time.perf_counter() - started, explain=True))
    return result


def _load(
    url: str, pipeline: str, salt: str, first: int, last: int, *, offset: str, age: str, vacuum: bool = True
) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for start in range(first, last + 1, _CHUNK):
            conn.execute(
                _LOAD,
                {
                    "pipeline": pipeline,
                    "salt": f"{salt}-{pipeline}-",
                    "first": start,
                    "last": min(last, start + _CHUNK - 1),
                    "offset": offset,
                    "age": age,
                },
            )
        if vacuum:
            conn.execute("VACUUM ANALYZE runs")
            conn.execute("VACUUM ANALYZE steps")


def _measure(url: str, env: dict[str, str], repeat: int, load_seconds: float, explain: bool = False) -> dict[str, Any]:
    path = "/api/v1/patterns?" + urlencode(
        {"pipeline": PIPELINE, "since": "7d", "step_type": "filter", "min_drop_ratio": 0.9}
    )
    with psycopg.connect(url, autocommit=True) as db:
        steps = db.execute("SELECT count(*) FROM steps").fetchone()[0]
        out: dict[str, Any] = {"steps": steps, "load_seconds": round(load_seconds, 1)}
        if explain:
            statement, params = step_query_sql(
                StepQuery(step_type=["filter"], tag=[("app_version", "4.2")], since=_days_ago(db, 1))
            )
            plan = "\n".join(
                r[0]
                for r in db.execute(
                    psycopg.sql.SQL("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ") + statement, params
                ).fetchall()
            )
            out["tag_filter"] = {"index_served": "Seq Scan" not in plan, "plan": plan}
    with LocalServer(env) as server:
        parsed = urlsplit(server.base_url)
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
        answer = json.loads(_get(conn, path))
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            _get(conn, path)
            times.append((time.perf_counter() - t) * 1000)
        conn.close()
    top = answer["patterns"][0] if answer["patterns"] else None
    out.update(
        runs=answer["runs"],
        bad_runs=answer["bad_runs"],
        p50_ms=round(statistics.median(times), 1),
        p95_ms=round(percentile(times, 0.95), 1),
        top_pattern=top and top["attributes"],
    )
    return out


def _days_ago(db: psycopg.Connection, days: int) -> Any:
    return db.execute("SELECT now() - make_interval(days => %s)", (days,)).fetchone()[0]


def report(result: dict[str, Any]) -> str:
    lines = [
        f"Database: {result['database']}.",
        "",
        "| stored steps | runs in the window | bad runs | `GET /api/v1/patterns` p50 / p95 (ms) | top pattern |",
        "|---|---|---|---|---|",
    ]
    for s in result["sizes"]:
        top = " & ".join(f"{k}={v}" for k, v in (s["top_pattern"] or {}).items()) or "none"
        lines.append(f"| {s['steps']:,} | {s['runs']:,} | {s['bad_runs']:,} | {s['p50_ms']} / {s['p95_ms']} | {top} |")
    largest = result["sizes"][-1]
    if "tag_filter" in largest:
        lines += [
            "",
            f"EXPLAIN (ANALYZE, BUFFERS) at {largest['steps']:,} steps, filter steps of the last 24 h with "
            "`tag=app_version:4.2`:",
            "",
            "```",
            largest["tag_filter"]["plan"],
            "```",
        ]
    return "\n".join(lines)


def reading(result: dict[str, Any]) -> str:
    small, large = result["sizes"][0], result["sizes"][-1]
    growth = large["p95_ms"] / small["p95_ms"]
    return "\n".join(
        [
            f"- **Over a window of {small['runs']:,} runs** the p95 is {small['p95_ms']} ms "
            f"(goal: at most 1,000 ms): {'met' if small['p95_ms'] <= 1000 else '**not met**'}.",
            f"- **The same window inside {large['steps']:,} stored steps**: p95 x{round(growth, 2)} (goal: at most 1.2): "
            f"{'met' if growth <= 1.2 else '**not met**'}. The statement reads the window's runs by "
            "`runs_pipeline_started_idx` and their steps by `steps_type_started_idx`, so the rest of the table is "
            "not read.",
            f"- **The tag filter on `/steps` is index-served** at {large['steps']:,} steps: "
            f"{large.get('tag_filter', {}).get('index_served')}.",
        ]
    )
