"""End-to-end ingest: SDK clients in separate processes, X-Ray under gunicorn, the embedded
PostgreSQL (or XRAY_BENCH_DATABASE_URL's server), all on this machine.

Each client process sends `--steps` filter steps (three metrics and a `why`, 50 steps a run)
as fast as its SDK will take them, then flushes. The figure is steps stored per second, from
the first step to the last flush, and the hot-tier bytes per stored step.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

import psycopg

from xray_server.local_server import LocalServer

from .database import bench_database

_CLIENT = """
import json, sys, time, xray_sdk
from xray_sdk.delivery import DeliveryConfig
url, steps, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
client = xray_sdk.Client(url, delivery=DeliveryConfig(max_queue_items=steps * 2, max_queue_bytes=2**30))
started = time.perf_counter()
for r in range(steps // 50):
    with client.start_run("ingest_bench", f"{name}-{r}") as run:
        for i in range(50):
            with run.step("compat_filter", "filter") as step:
                step.metrics(candidates_in=2000, candidates_out=40 + i).why("kept same-category candidates")
client.flush(300)
print(json.dumps({"seconds": time.perf_counter() - started, "stats": client.stats()}))
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--steps", type=int, default=20_000, help="steps per client")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")


def run(args: argparse.Namespace) -> dict[str, Any]:
    with bench_database() as (url, where):
        env = {"XRAY_DATABASE_URL": url, "XRAY_WORKERS": str(args.workers), "XRAY_DB_POOL_MAX": "4"}
        with LocalServer(env) as server:
            started = time.perf_counter()
            procs = [subprocess.Popen([sys.executable, "-c", _CLIENT, server.base_url, str(args.steps), f"c{i}"],
                                      stdout=subprocess.PIPE, text=True) for i in range(args.clients)]
            outputs = [json.loads(p.communicate(timeout=3600)[0]) for p in procs]
            elapsed = time.perf_counter() - started
        with psycopg.connect(url) as conn:
            stored = conn.execute("SELECT count(*) FROM steps").fetchone()[0]
            by_table = dict(conn.execute(
                "SELECT t::text, pg_total_relation_size(t) FROM unnest(ARRAY['runs','steps','ingested_events',"
                "'artifacts']::regclass[]) t").fetchall())
            hot_bytes = sum(by_table.values())
    sent = sum(o["stats"]["sent"] for o in outputs)
    dropped = sum(o["stats"]["dropped_total"] for o in outputs)
    return {"database": where, "clients": args.clients, "workers": args.workers, "steps_sent": args.clients * args.steps,
            "steps_stored": stored, "events_sent": sent, "events_dropped": dropped, "seconds": round(elapsed, 2),
            "steps_per_second": round(stored / elapsed), "hot_bytes_per_step": round(hot_bytes / stored),
            "bytes_per_step_by_table": {t: round(b / stored) for t, b in by_table.items()}}


def report(result: dict[str, Any]) -> str:
    return "\n".join([
        f"Database: {result['database']}; {result['clients']} client processes, {result['workers']} gunicorn workers.",
        "",
        "| steps sent | steps stored | events dropped | seconds | steps/s | hot-tier bytes per step |",
        "|---|---|---|---|---|---|",
        f"| {result['steps_sent']:,} | {result['steps_stored']:,} | {result['events_dropped']} | {result['seconds']} | "
        f"{result['steps_per_second']:,} | {result['hot_bytes_per_step']} |",
        "",
        "Bytes per stored step, by table (with its indexes): "
        + ", ".join(f"{t} {b}" for t, b in result["bytes_per_step_by_table"].items()) + ".",
    ])
