"""`python -m bench report`: write BENCHMARKS.md and the query chart from bench/results/*.json.

Nothing in BENCHMARKS.md is typed by hand except the prose around the figures: every figure,
and every "met" or "not met", is computed here from the JSON a benchmark wrote, so that
re-running a benchmark and this command brings the document up to date.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from . import (
    artifacts,
    decisions,
    explain_eval,
    export,
    ingest,
    months,
    patterns,
    query,
    real_eval,
    sdk_delivery,
    sdk_js,
    sdk_overhead,
    server_path,
    server_profile,
)

RESULTS = Path(__file__).parent / "results"
CHART_NAME = "query_latency.png"
SECTIONS: list[tuple[str, ModuleType]] = [
    ("ingest", ingest),
    ("server_path", server_path),
    ("server_profile", server_profile),
    ("query", query),
    ("sdk_overhead", sdk_overhead),
    ("sdk_js", sdk_js),
    ("sdk_delivery", sdk_delivery),
    ("artifacts", artifacts),
    ("decisions", decisions),
    ("patterns", patterns),
    ("explain_eval", explain_eval),
    ("real_eval", real_eval),
    ("export", export),
    ("months", months),
]

HEADER = """# X-Ray benchmarks

Every figure here comes from a command in `bench/` (`python -m bench NAME`), run on the machine
and date its section names, with its baseline measured in the same run. These machines are
shared and noisy (two virtual cores; the same command can move by half from one run to the
next): compare the ratios within a table, not absolute times across runs or days. Timings are
never asserted in tests.

This file and `bench/results/query_latency.png` are generated: run the benchmarks with
`--json bench/results/NAME.json`, then `.venv/bin/python -m bench report`. Install the
benchmark tools first: `.venv/bin/pip install -e '.[server,test,bench]'`.
"""


def load_results(directory: Path = RESULTS) -> dict[str, dict[str, Any]]:
    """Each benchmark's latest result, by name; a benchmark never run is absent."""
    found = {}
    for name, _ in SECTIONS:
        path = directory / f"{name}.json"
        if path.exists():
            found[name] = json.loads(path.read_text())
    return found


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def goals(results: dict[str, dict[str, Any]]) -> str:
    """The performance issue's goals, each with the figure that decides it."""
    rows: list[tuple[str, str, str]] = []
    if "sdk_overhead" in results:
        r = results["sdk_overhead"]
        ratio = r["per_step"]["ratio_xray_to_opentelemetry"]
        rows.append(
            (
                "SDK step vs an OpenTelemetry span: median ratio <= 1.0",
                f"median {ratio['median']}, p99 {ratio['p99']}",
                _verdict(ratio["median"] <= 1.0),
            )
        )
        worst = max(m["p99_us"] for m in r["unreachable_collector"].values())
        rows.append(
            (
                "Collector blackholed or down: p99 enqueue under 100 µs",
                f"worst p99 {worst} µs for a whole step",
                _verdict(worst < 100),
            )
        )
        growth = max(m["rss_mb"][-1][1] - m["rss_mb"][0][1] for m in r["memory"].values())
        rows.append(
            (
                f"RSS flat over {r['sizes']['memory_steps']:,} steps with the collector unreachable",
                f"grew at most {round(growth, 1)} MB from the first tenth to the last",
                _verdict(growth <= 2),
            )
        )
        p = r["pipeline"]
        slowdown = max(p[k]["ratio_to_no_xray"] - p["healthy"]["ratio_to_no_xray"] for k in ("blackholed", "down"))
        rows.append(
            (
                "Collector blackholed or down: no slowdown beyond the healthy case",
                f"pipeline ratios healthy {p['healthy']['ratio_to_no_xray']}, blackholed "
                f"{p['blackholed']['ratio_to_no_xray']}, down {p['down']['ratio_to_no_xray']}",
                _verdict(slowdown <= 0.05),
            )
        )
    if "ingest" in results:
        r = results["ingest"]
        best_label, best = max(r["settings"].items(), key=lambda kv: kv[1]["median_steps_per_second"])
        rows.append(
            (
                "End-to-end ingest: at least 10,000 steps/s",
                f"{best['median_steps_per_second']:,} steps/s (gunicorn {best_label})",
                _verdict(best["median_steps_per_second"] >= 10_000),
            )
        )
        rows.append(
            (
                "End-to-end ingest: at least 0.3 of COPY's rows/s",
                f"{best['ratio_to_copy']} of COPY ({r['copy_median_rows_per_second']:,} rows/s)",
                _verdict(best["ratio_to_copy"] >= 0.3),
            )
        )
        cpu = best["cpu_us_per_step"]
        server, postgres = cpu["X-Ray server (gunicorn)"], cpu["PostgreSQL"]
        rows.append(
            (
                "X-Ray server CPU per stored step: at most PostgreSQL's, and at most 50 µs",
                f"{server} µs against PostgreSQL's {postgres}",
                _verdict(server <= postgres and server <= 50),
            )
        )
        copy_cpu = r.get("copy_postgres_cpu_us_per_row")
        if copy_cpu:
            rows.append(
                (
                    "PostgreSQL CPU per stored step: at most 2x COPY's per row",
                    f"{postgres} µs against {copy_cpu} (x{round(postgres / copy_cpu, 2)})",
                    _verdict(postgres <= 2 * copy_cpu),
                )
            )
        lat = r["latency"]
        rows.append(
            (
                "Latency per batch of 100 events at half the peak: p99 at most 30 ms",
                f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms",
                _verdict(lat["p99_ms"] <= 30),
            )
        )
        rows.append(
            (
                "Hot-tier bytes per step at most 1 KB",
                f"{r['hot_bytes_per_step']} bytes",
                _verdict(r["hot_bytes_per_step"] <= 1024),
            )
        )
    if "query" in results:
        r = results["query"]
        label = next(iter(r["sizes"][0]["queries"]))
        worst = max(s["queries"][label]["ratio_p95"] for s in r["sizes"])
        sizes = ", ".join(f"{s['steps']:,}" for s in r["sizes"])
        rows.append(
            (
                f"`GET /api/v1/steps` p95 at most 2x direct SQL ({sizes} steps)",
                "p95 ratios " + ", ".join(str(s["queries"][label]["ratio_p95"]) for s in r["sizes"]),
                _verdict(worst <= 2.0),
            )
        )
        if len(r["sizes"]) >= 2:
            a, b = r["sizes"][-2], r["sizes"][-1]
            growth = b["queries"][label]["api_ms_p95"] / a["queries"][label]["api_ms_p95"]
            # At the two sizes the goal names (a table of 100,000 steps over 31 daily partitions is
            # read by sequential scans of its small partitions, rightly).
            served = all(s["queries"][label]["index_served"] for s in (a, b))
            rows.append(
                (
                    f"Nearly flat from {a['steps']:,} to {b['steps']:,} steps, index-served",
                    f"p95 x{round(growth, 2)}; index-served: {served}",
                    _verdict(growth <= 1.5 and served),
                )
            )
        worst_run = max(s["run"]["ratio_p95"] for s in r["sizes"])
        rows.append(
            (
                "`GET /api/v1/runs/<id>` (10 steps) p95 at most 2x direct SQL",
                "p95 ratios " + ", ".join(str(s["run"]["ratio_p95"]) for s in r["sizes"]),
                _verdict(worst_run <= 2.0),
            )
        )
        largest = r["sizes"][-1]
        if "explain" in largest:
            e = largest["explain"]
            rows.append(
                (
                    f"`GET /api/v1/runs/<id>/explain` p95 at most 50 ms at {largest['steps']:,} steps",
                    f"p95 {e['api_ms_p95']} ms (a plain run fetch in the same run: {e['direct_ms_p95']} ms)",
                    _verdict(e["api_ms_p95"] <= 50),
                )
            )
    if "patterns" in results:
        r = results["patterns"]
        small, large = r["sizes"][0], r["sizes"][-1]
        rows.append(
            (
                f"`GET /api/v1/patterns` over {small['runs']:,} runs: p95 at most 1 s",
                f"p95 {small['p95_ms']} ms",
                _verdict(small["p95_ms"] <= 1000),
            )
        )
        growth = large["p95_ms"] / small["p95_ms"]
        rows.append(
            (
                f"The same window inside {large['steps']:,} steps: at most 1.2x",
                f"x{round(growth, 2)}",
                _verdict(growth <= 1.2),
            )
        )
        served = large.get("tag_filter", {}).get("index_served", False)
        rows.append((f"Tag filter on `/steps` index-served at {large['steps']:,} steps", str(served), _verdict(served)))
    if "explain_eval" in results:
        (named, named_kind, named_seed), (accused, accused_kind, accused_seed) = explain_eval.worst(
            results["explain_eval"]
        )
        rows.append(
            (
                "`explain`: at least 95% of bad runs name the injected step, for each fault kind and seed",
                f"worst `{named_kind}` (seed {named_seed}) {named:.0%}",
                _verdict(named >= 0.95),
            )
        )
        rows.append(
            (
                "`explain`: at most 1% of good runs name any cause, for each fault kind and seed",
                f"worst `{accused_kind}` (seed {accused_seed}) {accused:.1%}",
                _verdict(accused <= 0.01),
            )
        )
    if "real_eval" in results:
        rows += real_eval.goal_rows(results["real_eval"])
    if "sdk_js" in results:
        rows += sdk_js.goal_rows(results["sdk_js"])
    if "months" in results:
        rows += months.goal_rows(results["months"])
    lines = ["## The goals at a glance", "", "| goal | measured | verdict |", "|---|---|---|"]
    lines += [f"| {goal} | {measured} | {verdict} |" for goal, measured, verdict in rows]
    return "\n".join(lines)


def section(name: str, module: ModuleType, result: dict[str, Any], chart: str) -> str:
    """One benchmark: what it measures, the command, its tables, and what they say."""
    doc = (module.__doc__ or "").strip().split("\n\n", 1)[-1].strip()  # the title says the first paragraph
    command = result.get("command", f"python -m bench {name}")
    parts = [
        f"## {module.TITLE}",
        "",
        doc,
        "",
        "Command:",
        "",
        "```sh",
        f".venv/bin/{command}",
        "```",
        "",
        f"Output ({result['machine']}; {result['date']}):",
        "",
        module.report(result),
    ]
    if name == "query":
        parts += ["", f"![Query latency against stored steps]({chart})"]
    reading = module.reading(result)
    if reading:
        parts += ["", "Reading:", "", reading]
    return "\n".join(parts)


def write(directory: Path = RESULTS, out: Path = Path("BENCHMARKS.md")) -> Path:
    """Regenerate BENCHMARKS.md (and the chart) from the results in `directory`."""
    results = load_results(directory)
    chart = directory / CHART_NAME
    if "query" in results:
        query.chart(results["query"], str(chart))
    link = os.path.relpath(chart, out.resolve().parent if out.is_absolute() else Path.cwd() / out.parent)
    parts = [HEADER, goals(results)]
    parts += [section(name, module, results[name], link) for name, module in SECTIONS if name in results]
    missing = [name for name, _ in SECTIONS if name not in results]
    if missing:
        parts.append("Not run yet: " + ", ".join(f"`{m}`" for m in missing) + ".")
    out.write_text("\n\n".join(parts) + "\n")
    return out
