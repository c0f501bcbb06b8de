"""Terminal output: aligned tables, colour only when writing to a terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click

from xray_sdk.contract.vocabulary import StepStatus

_STATUS_COLOURS = {StepStatus.OK.value: "green", StepStatus.ERROR.value: "red", StepStatus.RUNNING.value: "yellow"}


def colour_enabled() -> bool:
    return sys.stdout.isatty()


def paint(text: str, colour: str | None = None, bold: bool = False) -> str:
    """`text` in colour when stdout is a terminal."""
    if not colour_enabled() or (colour is None and not bold):
        return text
    return click.style(text, fg=colour, bold=bold)


def status(value: str) -> str:
    return paint(value, _STATUS_COLOURS.get(value))


def table(rows: Sequence[Sequence[Any]], header: Sequence[str], *, max_width: int = 60) -> str:
    """Rows under a header, each column as wide as its widest cell (capped)."""
    cells = [[_cell(value, max_width) for value in row] for row in rows]
    widths = [max([len(h)] + [len(_plain(row[i])) for row in cells]) for i, h in enumerate(header)]
    lines = [
        "  ".join(paint(h.ljust(w), bold=True) for h, w in zip(header, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    for row in cells:
        lines.append("  ".join(c + " " * (w - len(_plain(c))) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def metrics(values: dict[str, Any]) -> str:
    """`name=value` pairs, ratios to three decimals."""
    return ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def preview(value: Any, max_chars: int) -> str:
    """A value as compact JSON, cut to `max_chars` with an ellipsis."""
    text = (
        value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    )
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def tags(values: dict[str, Any] | None) -> str:
    """`key=value` pairs, as `--tag` takes them."""
    return " ".join(f"{k}={v}" for k, v in (values or {}).items()) or "-"


# Eighth-blocks, lowest to highest: a bucket with runs and none bad is the lowest, one without runs a space.
_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None]) -> str:
    """A one-line chart: each value as a block scaled to the largest, None (nothing there) as a space."""
    top = max((v for v in values if v is not None), default=0) or 1
    return "".join(
        " " if v is None else _BLOCKS[min(len(_BLOCKS) - 1, int(v / top * (len(_BLOCKS) - 1) + 0.5))] for v in values
    )


def spread(value: float, p10: float, median: float, p90: float, width: int = 40) -> str | None:
    """The run's value (●) drawn beside the earlier runs' p10 to p90 (─) and median (┼), on one
    scale from the smallest to the largest of them; None when they are all one number."""
    low, high = min(value, p10), max(value, p90)
    if high <= low:
        return None

    def at(x: float) -> int:
        return round((x - low) / (high - low) * (width - 1))

    cells = [" "] * width
    for i in range(at(p10), at(p90) + 1):
        cells[i] = "─"
    cells[at(median)] = "┼"
    cells[at(value)] = "●"
    return f"{brief(low)} {''.join(cells)} {brief(high)}"


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _cell(value: Any, max_width: int) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else str(value)
    plain = _plain(text)
    if len(plain) > max_width and plain == text:
        return text[: max_width - 1] + "…"
    return text


def _plain(text: str) -> str:
    return click.unstyle(text)


# ------------------------------------------------------------ the answers, as a person reads them


def runs_text(page: dict[str, Any]) -> str:
    """A page of runs as a table, then how many match and how to see the rest."""
    return table(
        [
            [
                r["run_id"],
                r["started_at"],
                r["pipeline"],
                r["entity"],
                status(r["status"]),
                r["duration_ms"],
                tags(r["tags"]),
                labels(r.get("labels", [])),
                outcome(r),
            ]
            for r in page["runs"]
        ],
        ["run", "started", "pipeline", "entity", "status", "ms", "tags", "labels", "outcome"],
    ) + more(page, "runs")


def more(page: dict[str, Any], what: str) -> str:
    """How many rows match in all, and how to see the rest."""
    shown = len(page[what])
    total = page.get("total")
    if total is None:
        counted = ""
    elif page.get("total_is_exact"):
        counted = f"\n{total:,} {what} match; {shown:,} shown."
    else:
        counted = f"\nMore than {total:,} {what} match; {shown:,} shown."
    cursor = page.get("next_cursor")
    more = f"\nFor the next page add --cursor {cursor}, or --all for every one." if cursor else ""
    return counted + more


def show_text(run: dict[str, Any]) -> str:
    """The step timeline of a run view, as `xray show` prints it."""
    head = (
        f"run {run['run_id']}  pipeline {run['pipeline']}  entity {run['entity']}  "
        f"status {status(run['status'])}  outcome {outcome(run)}"
    )
    if run.get("tags"):
        head += f"\ntags {tags(run['tags'])}"
    for judgement in run.get("labels", []):
        who = f" by {judgement['source']}" if judgement["source"] else ""
        why = f": {judgement['comment']}" if judgement["comment"] else ""
        head += f"\nlabelled {judgement['label']}{who} at {judgement['labeled_at']}{why}"
    rows = [
        [
            s["seq"],
            s["name"],
            s["step_type"],
            status(s["status"]),
            s["duration_ms"],
            metrics(s["metrics"]),
            s["why"],
        ]
        for s in run["steps"]
    ]
    lines = [head, "", table(rows, ["seq", "step", "type", "status", "ms", "metrics", "why"], max_width=90)]
    for step in run["steps"]:
        if step["error"]:
            lines.append(
                paint(
                    f"  step {step['seq']} {step['name']} failed: {step['error']['type']}: {step['error']['message']}",
                    "red",
                )
            )
        if step.get("rejections"):
            removed = sorted(step["rejections"].items(), key=lambda kv: (-kv[1], kv[0]))
            lines.append(
                f"  step {step['seq']} {step['name']} rejected: " + ", ".join(f"{reason} {n}" for reason, n in removed)
            )
        if step["contract_violations"]:
            lines.append(
                paint(
                    f"  step {step['seq']} {step['name']} breaks the contract: {', '.join(step['contract_violations'])}",
                    "yellow",
                )
            )
        for a in step["artifacts"]:
            state = (
                a["status"]
                + (f" ({a['drop_reason']})" if a["drop_reason"] else "")
                + (f" {a['link']}" if a.get("link") else "")
            )
            lines.append(f"  step {step['seq']} {step['name']}: artifact {a['name']} [{a['capture']}] {state}")
    return "\n".join(lines)


def steps_text(rows: list[dict[str, Any]]) -> str:
    """Cross-run step rows as a table."""
    return table(
        [
            [
                s["run_id"],
                s["pipeline"],
                s["entity"],
                s["name"],
                status(s["status"]),
                s["metrics"].get("candidates_in"),
                s["metrics"].get("candidates_out"),
                f"{s['metrics']['drop_ratio']:.3f}" if "drop_ratio" in s["metrics"] else None,
                s["why"],
            ]
            for s in rows
        ],
        ["run", "pipeline", "entity", "step", "status", "in", "out", "drop_ratio", "why"],
    )


def reasons_text(answer: dict[str, Any]) -> str:
    """Reasons as a table, with the window and the steps they were counted over."""
    head = f"{answer['steps']} steps that rejected candidates, since {answer['since']}"
    rows = [
        [
            r["reason"],
            r["total"],
            r["steps"],
            "-" if r["median_share"] is None else f"{r['median_share']:.1%}",
        ]
        for r in answer["reasons"]
    ]
    return head + "\n\n" + table(rows, ["reason", "removed", "steps", "median share"])


def explain_text(result: dict[str, Any]) -> str:
    """Findings, most serious first, then the verdict."""
    lines = [
        f"run {result['run_id']}  pipeline {result['pipeline']}  entity {result['entity']}  "
        f"status {status(result['status'])}  outcome {outcome(result)}",
        "",
    ]
    for f in result["findings"]:
        colour = {"cause": "red", "effect": "yellow"}.get(f["role"])
        label = f"{f['kind']}, {f['role'].replace('unusual', 'also unusual')}"
        lines.append(f"  [{paint(label, colour)}] step {f['seq']} {f['step']}: {f['message']}")
        if f["role"] == "cause":
            drawn = _drawn(f.get("evidence") or {})
            if drawn:
                lines.append(f"      this run ● beside the earlier runs' p10 to p90 ─ and median ┼:  {drawn}")
            if f["why"]:
                lines.append(f"      the step's why: {f['why']}")
    if not result["findings"]:
        lines.append("  no findings")
    lines += ["", paint(result["verdict"], bold=True)]
    return "\n".join(lines)


def _drawn(evidence: dict[str, Any]) -> str | None:
    """The cause's value on its baseline's spread, when it is a number read against one."""
    values = [evidence.get(k) for k in ("value", "p10", "usual", "p90")]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return None
    value, p10, usual, p90 = values
    return spread(value, p10, usual, p90)


def bad_runs_chart(buckets: list[dict[str, Any]], bucket_seconds: int) -> str:
    """The window's bad runs per bucket as a one-line chart; buckets without runs are spaces."""
    if not buckets:
        return ""
    starts = [datetime.fromisoformat(b["start"].replace("Z", "+00:00")).timestamp() for b in buckets]
    first = min(starts)
    slots: list[float | None] = [None] * (int((max(starts) - first) // bucket_seconds) + 1)
    for start, bucket in zip(starts, buckets, strict=True):
        slots[int((start - first) // bucket_seconds)] = bucket["bad"]
    return "▕" + sparkline(slots) + "▏"


def _duration(seconds: int) -> str:
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds} s"


def why_dropped_text(answer: dict[str, Any]) -> str:
    """The answer in a sentence or a few."""
    cid = answer["candidate_id"]
    if answer["found"]:
        f = answer["found"]
        return (
            f"Step {f['seq']} '{f['step']}' dropped {cid}: reason '{f['reason']}' "
            f"(found in its {f['evidence']} artifact).\nCandidate: {brief(f['candidate'])}"
        )
    lines = []
    if answer["kept_by"]:
        lines.append(f"{cid} was kept by: {', '.join(answer['kept_by'])}.")
    lost = answer.get("lost_upstream")
    if lost:
        before = ", ".join(lost["earlier_steps"]) or "no recorded step"
        lines.append(
            f"{cid} never reached step {lost['seq']} '{lost['step']}': it is not among the {lost['candidates_in']} "
            f"candidates the step received (its evidence holds all of them), so it was lost upstream, before it "
            f"({before}): never returned there, not dropped by a later filter."
        )
    for u in answer["unknown_at"]:
        lines.append(
            f"Step {u['seq']} '{u['step']}' rejected {u['rejected']} candidates "
            f"({', '.join(f'{r} {n}' for r, n in u['rejections'].items())}), and {cid} is not in the evidence "
            f"it kept: {u['advice']}."
        )
    return "\n".join(lines) or f"No step of this run recorded candidate decisions, so {cid} cannot be traced."


def diff_text(result: dict[str, Any]) -> str:
    """The changes of a diff, step by step."""
    a, b = result["a"], result["b"]
    lines = [f"a: {a['run_id']} {a['entity']} ({a['status']})", f"b: {b['run_id']} {b['entity']} ({b['status']})"]
    if not result["same_pipeline"]:
        lines.append(paint(f"different pipelines: {a['pipeline']} vs {b['pipeline']}", "yellow"))
    rows = [["(run)", field, brief(left), brief(right)] for field, (left, right) in result.get("run", {}).items()]
    for step in result["steps"]:
        if "only_in" in step:
            rows.append([step["name"], "(step)", f"only in {step['only_in']}", ""])
        for field, (left, right) in step["changes"].items():
            rows.append([step["name"], field, brief(left), brief(right)])
        if not step["changes"] and "only_in" not in step:
            rows.append([step["name"], "", "same", "same"])
    lines += ["", table(rows, ["step", "field", "a", "b"], max_width=70)]
    if result["outcome"]:
        lines += ["", f"outcome: {brief(result['outcome'][0])}  ->  {brief(result['outcome'][1])}"]
    return "\n".join(lines)


def brief(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return "-" if value is None else str(value)


def outcome(run: dict[str, Any]) -> str:
    """The run's outcome as a short JSON preview, or its error's type."""
    if run.get("error"):
        return f"error {run['error'].get('type')}"
    value = run.get("outcome")
    return "-" if value is None else preview(value, 60)


def labels(judgements: list[dict[str, Any]]) -> str:
    """A run's judgements, latest first: `label`, `label=value`, `source:label`."""
    return (
        " ".join(
            (f"{j['source']}:" if j["source"] else "")
            + j["label"]
            + ("" if j.get("value") is None else f"={j['value']:g}")
            for j in judgements
        )
        or "-"
    )


def names(attributes: dict[str, str]) -> str:
    return " & ".join(f"{k}={v}" for k, v in attributes.items())


def patterns_text(answer: dict[str, Any]) -> str:
    """The patterns in a table, then since when."""
    lines = [
        f"{answer['bad_runs']} of {answer['runs']} runs of {answer['pipeline']} are bad "
        f"({answer['since']} to {answer['until']}; {answer['tested']} values and pairs tested); "
        f"good runs are {answer['good_runs_are']}"
        + (f", and {answer['unjudged']} runs neither bad nor good were left out." if answer["unjudged"] else ".")
    ]
    if not answer["patterns"]:
        lines.append(
            "Nothing they share stands out: no attribute value is significantly more common among the bad "
            "runs (one-sided Fisher test, Bonferroni-corrected)."
        )
    else:
        rows = [
            [
                names(p["attributes"]),
                p["bad"],
                p["other"],
                f"{p['support']:.0%}",
                f"{p['precision']:.0%}",
                "unbounded" if p["risk_ratio"] is None else f"{p['risk_ratio']:.1f}",
                f"{p['p_value']:.2g}",
            ]
            for p in answer["patterns"]
        ]
        lines += [
            "",
            table(rows, ["pattern", "bad", "other", "support", "precision", "risk", "p"], max_width=80),
        ]
        top = answer["patterns"][0]
        others = "no other run" if top["other"] == 0 else f"{top['other']} other runs"
        lines += [
            "",
            f"{names(top['attributes'])} is on {top['bad']} of the {answer['bad_runs']} bad runs, and on {others}.",
        ]
    timeline = answer["timeline"]
    if timeline["first_bad"]:
        lines += ["", f"Bad runs from {timeline['first_bad']} to {timeline['last_bad']}."]
        chart = bad_runs_chart(timeline["buckets"], timeline["bucket_seconds"])
        if chart:
            lines.append(f"Bad runs per {_duration(timeline['bucket_seconds'])}, oldest first: {chart}")
    pattern = timeline.get("pattern")
    if pattern and pattern["first_bad"]:
        described = names(pattern["attributes"])
        after = (
            f"; the last good one before was at {pattern['last_good_before']}"
            if pattern["last_good_before"]
            else "; no run with it was good before"
        )
        lines.append(f"Runs with {described} went bad from {pattern['first_bad']}{after}.")
    return "\n".join(lines)
