"""How often `explain` names the right step on real pipelines: real libraries over real data that
ships inside PyPI packages, with bugs planted in the pipelines' code (`bench/real/`).

For each pipeline and each of its bugs, a fresh pipeline name records `--runs` cases through the
SDK against a real server (gunicorn, embedded PostgreSQL). The first `--clean` share of the runs
is the history before the bug was deployed; the rest run with the bug in the code. Ground truth is
the data's: a run is *correct* when it ended without an error and its answer is right; a wrong run is the *bug's* when the same
case, run again with the bug fixed (through a disabled client, nothing recorded), is right; any
other wrong run is the pipeline's own limit and is reported apart. Every run is then explained over
HTTP (`GET /api/v1/runs/<id>/explain`), and scored:

- of the bug's runs, the share whose `cause` is the bug's step; the share that shows a symptom at
  all, and of those the share naming the bug's step (a recall loss can leave no trace in a run);
- of the correct runs, the share with any `cause` (a false accusation).

Runs with fewer earlier runs than explain needs to judge a step (`thresholds.MIN_BASELINE`) are
not scored: explain says nothing of them, which is neither a hit nor a spared correct run.

Each pipeline and bug is its own line: a pipeline that passes is never pooled with one that fails.
"""

from __future__ import annotations

import argparse
import importlib
import random
import tempfile
from typing import Any

import psycopg

import xray_sdk
from xray_server.analysis.thresholds import MIN_BASELINE
from xray_server.runtime.local_server import LocalServer
from xray_server.storage.migrations import migrate

from .database import bench_database
from .explain_eval import get_json, summary
from .real.harness import Bug, Outcome, RealPipeline

TITLE = "Explain on real pipelines: real libraries, real data, bugs planted in code"
COUNTS = (
    "unjudged",
    "runs",
    "bug",
    "named",
    "symptom",
    "named_with_symptom",
    "correct",
    "accused",
    "wrong",
    "wrong_with_cause",
)


# Module and class of each real pipeline, imported only when chosen: `python -m bench` runs without
# their libraries.
PIPELINES = {
    "records": ("bench.real.records", "RecordsPipeline"),
    "places": ("bench.real.places", "PlacesPipeline"),
    "triage": ("bench.real.triage", "DigitTriage"),
    "hubs": ("bench.real.hubs", "HubsPipeline"),
}


def pipelines(only: list[str]) -> list[RealPipeline]:
    """The chosen real pipelines (all when `only` is empty)."""
    chosen = [key for key in PIPELINES if not only or key in only]
    return [getattr(importlib.import_module(PIPELINES[key][0]), PIPELINES[key][1])() for key in chosen]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=400, help="runs per pipeline and bug")
    parser.add_argument("--clean", type=float, default=0.25, help="share of the runs before the bug is deployed")
    parser.add_argument("--seeds", default="1", help="comma-separated seeds, each its own draw of cases")
    parser.add_argument("--only", default="", help=f"comma-separated, of {', '.join(PIPELINES)} (default: all)")


def evaluate(
    base_url: str, pipeline: RealPipeline, bug: Bug, runs: int, clean: float, seed: int, suffix: str = ""
) -> dict[str, Any]:
    """Record one pipeline with one bug deployed part-way, explain every run, and count. `suffix`
    makes the pipeline's name unique in a database that keeps earlier evaluations' runs."""
    rng = random.Random(seed)
    cases = pipeline.cases(rng, runs)
    name = f"{pipeline.name}_{bug.name}_s{seed}{suffix}"
    client = xray_sdk.Client(base_url, delivery=xray_sdk.DeliveryConfig(max_attempts=1000))
    fixed = xray_sdk.Client(base_url, disabled=True)
    deploy = int(clean * runs)
    judged: list[tuple[str, str]] = []
    try:
        for i, case in enumerate(cases):
            bugs = frozenset({bug.name}) if i >= deploy else frozenset()
            out = pipeline.run(client, name, case, bugs)
            if _right(pipeline, case, out):
                kind = "correct"
            elif bugs and _right(pipeline, case, pipeline.run(fixed, name, case, frozenset())):
                kind = "bug"
            else:
                kind = "wrong"
            judged.append((out.run_id, kind))
        if not client.flush(120) or client.stats()["dropped_total"]:
            raise RuntimeError("the evaluation's runs were not all stored; its scores would be wrong")
    finally:
        client.close()
        fixed.close()
    counts = dict.fromkeys(COUNTS, 0)
    examples: dict[str, list[str]] = {"missed": [], "accused": []}
    for run_id, kind in judged:
        answer = get_json(base_url, f"/api/v1/runs/{run_id}/explain")
        if answer["baseline"]["runs"] < MIN_BASELINE:
            counts["unjudged"] += 1  # too short a history: explain judges nothing, and is not scored
            continue
        cause = answer["cause"]["step"] if answer["cause"] else None
        counts["runs"] += 1
        counts[kind] += 1
        if kind == "bug":
            counts["named"] += cause == bug.step
            counts["symptom"] += answer["symptom"] is not None
            counts["named_with_symptom"] += answer["symptom"] is not None and cause == bug.step
            if cause != bug.step and len(examples["missed"]) < 3:
                examples["missed"].append(summary(answer))
        elif kind == "correct":
            counts["accused"] += cause is not None
            if cause is not None and len(examples["accused"]) < 3:
                examples["accused"].append(summary(answer))
        else:
            counts["wrong_with_cause"] += cause is not None
    return {"counts": counts, "examples": examples}


def _right(pipeline: RealPipeline, case: Any, out: Outcome) -> bool:
    """A run is right when it ended without an error and its answer is the data's."""
    return not out.failed and pipeline.correct(case, out.answer)


def run(args: argparse.Namespace) -> dict[str, Any]:
    chosen = pipelines([k for k in args.only.split(",") if k])
    seeds = [int(s) for s in args.seeds.split(",")]
    lines = []
    with bench_database() as (url, _), tempfile.TemporaryDirectory(prefix="xray-real-") as data_dir:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
        env = {"XRAY_WORKERS": "2", "XRAY_DATABASE_URL": url, "XRAY_ARTIFACTS_DIR": f"{data_dir}/artifacts"}
        with LocalServer(env) as server:
            for pipeline in chosen:
                for bug in pipeline.bugs:
                    for seed in seeds:
                        result = evaluate(server.base_url, pipeline, bug, args.runs, args.clean, seed)
                        lines.append(
                            {
                                "pipeline": pipeline.name,
                                "description": pipeline.description,
                                "bug": bug.name,
                                "kind": bug.kind,
                                "step": bug.step,
                                "seed": seed,
                                **result,
                            }
                        )
    return {"lines": lines, "settings": {"runs": args.runs, "clean": args.clean, "seeds": seeds}}


def _share(part: int, whole: int, digits: int = 0) -> str:
    return f"{part / whole:.{digits}%} ({part}/{whole})" if whole else "n/a"


def report(result: dict[str, Any]) -> str:
    rows = [
        "| pipeline | bug (kind, step) | seed | bug runs | bug's step named | with a symptom | named, of those "
        "| correct runs | correct runs with a cause | wrong without the bug |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for line in result["lines"]:
        c = line["counts"]
        rows.append(
            f"| {line['pipeline']} | `{line['bug']}` ({line['kind']}, `{line['step']}`) | {line['seed']} | {c['bug']} "
            f"| {_share(c['named'], c['bug'])} | {_share(c['symptom'], c['bug'])} "
            f"| {_share(c['named_with_symptom'], c['symptom'])} | {c['correct']} "
            f"| {_share(c['accused'], c['correct'], 1)} | {c['wrong']} |"
        )
    return "\n".join(rows)


def _rates(line: dict[str, Any]) -> tuple[float, float, float, bool]:
    """(named, named of those with a symptom, correct runs accused, goals met) of one line."""
    c = line["counts"]
    named = c["named"] / c["bug"] if c["bug"] else 0.0
    of_symptom = c["named_with_symptom"] / c["symptom"] if c["symptom"] else 0.0
    accused = c["accused"] / c["correct"] if c["correct"] else 0.0
    # A recall loss that leaves no trace in a run: named in 90% of the runs that show a symptom.
    found = named >= 0.9 or (line["kind"] == "upstream_recall" and of_symptom >= 0.9)
    return named, of_symptom, accused, found and accused <= 0.01


def goal_rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """One row per pipeline and bug for the goals table: its step named, and correct runs accused."""
    rows = []
    for line in result["lines"]:
        named, of_symptom, accused, met = _rates(line)
        rows.append(
            (
                f"`explain` on {line['pipeline']} / `{line['bug']}` (seed {line['seed']}): at least 90% of bug runs "
                "named, at most 1% of correct runs accused",
                f"{named:.0%} named; {_symptom_share(line):.0%} show a symptom, {of_symptom:.0%} of those named; "
                f"{accused:.1%} accused",
                "met" if met else "**not met**",
            )
        )
    return rows


def _symptom_share(line: dict[str, Any]) -> float:
    """The share of the bug's runs that show a symptom at all."""
    c = line["counts"]
    return c["symptom"] / c["bug"] if c["bug"] else 0.0


def reading(result: dict[str, Any]) -> str:
    met = [line for line in result["lines"] if _rates(line)[3]]
    missed = [
        f"{line['pipeline']} / `{line['bug']}` (seed {line['seed']}: {line['counts']['symptom']} of "
        f"{line['counts']['bug']} bug runs show a symptom, {line['counts']['named_with_symptom']} of those named)"
        for line in result["lines"]
        if not _rates(line)[3]
    ]
    return (
        f"- {len(met)} of {len(result['lines'])} lines meet both goals (at least 90% of the bug's runs name its step, "
        "or of those with a symptom for a recall loss; at most 1% of correct runs with a cause)."
        + (f"\n- Not met: {', '.join(missed)}." if missed else "")
    )
