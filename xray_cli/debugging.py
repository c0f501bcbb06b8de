"""Commands to debug runs from a terminal or a script: runs, show, steps, explain, diff,
why-dropped. Each reads the HTTP API only; the analysis is the server's, rendered here."""

from __future__ import annotations

import json
from typing import Any

import click

from xray_cli import render
from xray_cli.api import Api, segment
from xray_cli.options import (
    all_option,
    cursor_option,
    json_option,
    metadata_option,
    outcome_option,
    step_filter_options,
    step_filter_params,
    tag_filters,
    tag_option,
    url_option,
)
from xray_sdk.contract.vocabulary import RUN_STATUSES, STEP_TYPES


def _fetch_page(api: Api, path: str, key: str, all_pages: bool, **params: Any) -> dict[str, Any]:
    """One page of `path`, or with `all_pages` every row, as one answer of the same shape."""
    if all_pages:  # pages of the largest size; --limit and --cursor do not apply
        params.pop("cursor", None)
        params.pop("limit", None)
        return {key: api.get_all(path, key, **params), "next_cursor": None}
    return api.get(path, total="true", **params)


def _more(page: dict[str, Any], what: str) -> str:
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


@click.command()
@url_option
@json_option
@click.option("--pipeline")
@click.option("--entity")
@click.option("--status", type=click.Choice(RUN_STATUSES))
@click.option("--since", help="RFC 3339, or an age such as 30m, 24h, 7d.")
@click.option("--until")
@tag_option
@outcome_option
@metadata_option
@click.option("--label", "run_label", help="Only runs some source labelled so (see `xray label`).")
@click.option("--limit", type=int, default=20, show_default=True)
@cursor_option
@all_option
def runs(
    url: str,
    as_json: bool,
    pipeline: str | None,
    entity: str | None,
    status: str | None,
    since: str | None,
    until: str | None,
    tags: tuple[str, ...],
    outcome: tuple[str, ...],
    metadata: tuple[str, ...],
    run_label: str | None,
    limit: int,
    cursor: str | None,
    all_pages: bool,
) -> None:
    """Recent runs, newest first."""
    page = _fetch_page(
        Api(url),
        "/api/v1/runs",
        "runs",
        all_pages,
        pipeline=pipeline,
        entity=entity,
        status=status,
        since=since,
        until=until,
        tag=tag_filters(tags),
        outcome=tag_filters(outcome, "--outcome"),
        metadata=tag_filters(metadata, "--metadata"),
        label=run_label,
        limit=limit,
        cursor=cursor,
    )
    if as_json:
        return render.emit_json(page)
    click.echo(
        render.table(
            [
                [
                    r["run_id"],
                    r["started_at"],
                    r["pipeline"],
                    r["entity"],
                    render.status(r["status"]),
                    r["duration_ms"],
                    render.tags(r["tags"]),
                    _labels(r.get("labels", [])),
                    _outcome(r),
                ]
                for r in page["runs"]
            ],
            ["run", "started", "pipeline", "entity", "status", "ms", "tags", "labels", "outcome"],
        )
        + _more(page, "runs")
    )


@click.command()
@url_option
@json_option
@click.argument("run_id")
def show(url: str, as_json: bool, run_id: str) -> None:
    """One run's steps in order: metrics, why, status and artifacts."""
    api = Api(url)
    run = api.run(api.resolve(run_id))
    if as_json:
        return render.emit_json(run)
    click.echo(show_text(run))


def show_text(run: dict[str, Any]) -> str:
    """The step timeline of a run view, as `xray show` prints it."""
    head = (
        f"run {run['run_id']}  pipeline {run['pipeline']}  entity {run['entity']}  "
        f"status {render.status(run['status'])}  outcome {_outcome(run)}"
    )
    if run.get("tags"):
        head += f"\ntags {render.tags(run['tags'])}"
    for judgement in run.get("labels", []):
        who = f" by {judgement['source']}" if judgement["source"] else ""
        why = f": {judgement['comment']}" if judgement["comment"] else ""
        head += f"\nlabelled {judgement['label']}{who} at {judgement['labeled_at']}{why}"
    rows = [
        [
            s["seq"],
            s["name"],
            s["step_type"],
            render.status(s["status"]),
            s["duration_ms"],
            render.metrics(s["metrics"]),
            s["why"],
        ]
        for s in run["steps"]
    ]
    lines = [head, "", render.table(rows, ["seq", "step", "type", "status", "ms", "metrics", "why"], max_width=90)]
    for step in run["steps"]:
        if step["error"]:
            lines.append(
                render.paint(
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
                render.paint(
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


@click.command()
@url_option
@json_option
@click.option("--pipeline")
@step_filter_options
@click.option("--since", help="RFC 3339, or an age such as 30m, 24h, 7d.")
@click.option("--until")
@tag_option
@outcome_option
@metadata_option
@click.option("--run-label", help="Only steps of runs some source labelled so.")
@click.option("--limit", type=int, default=50, show_default=True)
@cursor_option
@all_option
def steps(
    url: str,
    as_json: bool,
    pipeline: str | None,
    since: str | None,
    until: str | None,
    tags: tuple[str, ...],
    outcome: tuple[str, ...],
    metadata: tuple[str, ...],
    run_label: str | None,
    limit: int,
    cursor: str | None,
    all_pages: bool,
    **filters: Any,
) -> None:
    """The cross-run query: steps across runs, newest first."""
    page = _fetch_page(
        Api(url),
        "/api/v1/steps",
        "steps",
        all_pages,
        pipeline=pipeline,
        since=since,
        until=until,
        tag=tag_filters(tags),
        outcome=tag_filters(outcome, "--outcome"),
        metadata=tag_filters(metadata, "--metadata"),
        run_label=run_label,
        limit=limit,
        cursor=cursor,
        **step_filter_params(**filters),
    )
    if as_json:
        return render.emit_json(page)
    click.echo(steps_text(page["steps"]) + _more(page, "steps"))


def steps_text(rows: list[dict[str, Any]]) -> str:
    """Cross-run step rows as a table."""
    return render.table(
        [
            [
                s["run_id"],
                s["pipeline"],
                s["entity"],
                s["name"],
                render.status(s["status"]),
                s["metrics"].get("candidates_in"),
                s["metrics"].get("candidates_out"),
                f"{s['metrics']['drop_ratio']:.3f}" if "drop_ratio" in s["metrics"] else None,
                s["why"],
            ]
            for s in rows
        ],
        ["run", "pipeline", "entity", "step", "status", "in", "out", "drop_ratio", "why"],
    )


@click.command()
@url_option
@json_option
@click.option("--pipeline")
@click.option("--name", help="Step name.")
@click.option(
    "--type", "step_type", multiple=True, type=click.Choice(STEP_TYPES), help="Step type; repeat for several."
)
@click.option("--since", help="RFC 3339, or an age such as 30m, 24h, 7d (the server's default: 7 days).")
@click.option("--until")
def reasons(
    url: str,
    as_json: bool,
    pipeline: str | None,
    name: str | None,
    step_type: tuple[str, ...],
    since: str | None,
    until: str | None,
) -> None:
    """Rejection reasons across runs: candidates removed in all, most first, and the usual share."""
    answer = Api(url).get(
        "/api/v1/steps/reasons", pipeline=pipeline, name=name, step_type=list(step_type), since=since, until=until
    )
    if as_json:
        return render.emit_json(answer)
    click.echo(reasons_text(answer))


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
    return head + "\n\n" + render.table(rows, ["reason", "removed", "steps", "median share"])


@click.command()
@url_option
@json_option
@click.option(
    "--baseline-runs",
    type=int,
    default=None,
    help="How many earlier runs the baseline holds (default: the server's, 200).",
)
@click.argument("run_id")
def explain(url: str, as_json: bool, baseline_runs: int | None, run_id: str) -> None:
    """What went wrong, which step caused it, and why, against the same steps in the runs before it."""
    api = Api(url)
    result = explain_for(api, api.resolve(run_id), baseline_runs)
    if as_json:
        return render.emit_json(result)
    click.echo(explain_text(result))


def explain_for(api: Api, run_id: str, baseline_runs: int | None = None) -> dict[str, Any]:
    """The server's explanation of a run against the same steps in its pipeline's earlier runs."""
    return api.get(f"/api/v1/runs/{segment(run_id)}/explain", baseline_runs=baseline_runs)


def explain_text(result: dict[str, Any]) -> str:
    """Findings, most serious first, then the verdict."""
    lines = [
        f"run {result['run_id']}  pipeline {result['pipeline']}  entity {result['entity']}  "
        f"status {render.status(result['status'])}  outcome {_outcome(result)}",
        "",
    ]
    for f in result["findings"]:
        colour = {"cause": "red", "effect": "yellow"}.get(f["role"])
        label = f"{f['kind']}, {f['role'].replace('unusual', 'also unusual')}"
        lines.append(f"  [{render.paint(label, colour)}] step {f['seq']} {f['step']}: {f['message']}")
        if f["why"] and f["role"] == "cause":
            lines.append(f"      the step's why: {f['why']}")
    if not result["findings"]:
        lines.append("  no findings")
    lines += ["", render.paint(result["verdict"], bold=True)]
    return "\n".join(lines)


@click.command("why-dropped")
@url_option
@json_option
@click.argument("run_id")
@click.argument("candidate_id")
def why_dropped(url: str, as_json: bool, run_id: str, candidate_id: str) -> None:
    """Which step dropped a candidate, and why, from the evidence the run kept."""
    api = Api(url)
    answer = why_dropped_for(api, api.resolve(run_id), candidate_id)
    if as_json:
        return render.emit_json(answer)
    click.echo(why_dropped_text(answer))


def why_dropped_for(api: Api, run_id: str, candidate_id: str) -> dict[str, Any]:
    """The server's answer: which step dropped the candidate, from the evidence the run kept."""
    return api.get(f"/api/v1/runs/{segment(run_id)}/why-dropped", candidate=candidate_id)


def why_dropped_text(answer: dict[str, Any]) -> str:
    """The answer in a sentence or a few."""
    cid = answer["candidate_id"]
    if answer["found"]:
        f = answer["found"]
        return (
            f"Step {f['seq']} '{f['step']}' dropped {cid}: reason '{f['reason']}' "
            f"(found in its {f['evidence']} artifact).\nCandidate: {_brief(f['candidate'])}"
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


@click.command()
@url_option
@json_option
@click.argument("run_a")
@click.argument("run_b")
def diff(url: str, as_json: bool, run_a: str, run_b: str) -> None:
    """Two runs lined up step by step: what changed in metrics, outputs and why."""
    api = Api(url)
    result = diff_for(api, api.resolve(run_a), api.resolve(run_b))
    if as_json:
        return render.emit_json(result)
    click.echo(diff_text(result))


def diff_for(api: Api, run_a: str, run_b: str) -> dict[str, Any]:
    """The server's diff of two runs."""
    return api.get(f"/api/v1/runs/{segment(run_a)}/diff/{segment(run_b)}")


def diff_text(result: dict[str, Any]) -> str:
    """The changes of a diff, step by step."""
    a, b = result["a"], result["b"]
    lines = [f"a: {a['run_id']} {a['entity']} ({a['status']})", f"b: {b['run_id']} {b['entity']} ({b['status']})"]
    if not result["same_pipeline"]:
        lines.append(render.paint(f"different pipelines: {a['pipeline']} vs {b['pipeline']}", "yellow"))
    rows = [["(run)", field, _brief(left), _brief(right)] for field, (left, right) in result.get("run", {}).items()]
    for step in result["steps"]:
        if "only_in" in step:
            rows.append([step["name"], "(step)", f"only in {step['only_in']}", ""])
        for field, (left, right) in step["changes"].items():
            rows.append([step["name"], field, _brief(left), _brief(right)])
        if not step["changes"] and "only_in" not in step:
            rows.append([step["name"], "", "same", "same"])
    lines += ["", render.table(rows, ["step", "field", "a", "b"], max_width=70)]
    if result["outcome"]:
        lines += ["", f"outcome: {_brief(result['outcome'][0])}  ->  {_brief(result['outcome'][1])}"]
    return "\n".join(lines)


def _brief(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return "-" if value is None else str(value)


def _outcome(run: dict[str, Any]) -> str:
    """The run's outcome as a short JSON preview, or its error's type."""
    if run.get("error"):
        return f"error {run['error'].get('type')}"
    outcome = run.get("outcome")
    return "-" if outcome is None else render.preview(outcome, 60)


def _labels(judgements: list[dict[str, Any]]) -> str:
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


@click.command()
@url_option
@json_option
@click.option("--source", default="", help="Who judged: a reviewer, a check (the latest judgement per source wins).")
@click.option("--comment", help="Why, in a sentence.")
@click.option("--value", type=float, help="A judgement that is a number: a 1-5 review, a judge's 0.3, a click.")
@click.option(
    "--from",
    "from_file",
    type=click.File("r"),
    help="Also judge the run ids in this file, one a line ('-': standard input).",
)
@click.argument("run_ids", nargs=-1)
@click.argument("label")
def label(
    url: str,
    as_json: bool,
    source: str,
    comment: str | None,
    value: float | None,
    from_file: Any,
    run_ids: tuple[str, ...],
    label: str,
) -> None:
    """Record a judgement of runs that arrived after them, such as `bad` or `good`: RUN_ID... LABEL,
    or --from FILE LABEL for many (one request)."""
    ids = list(run_ids) + ([line.strip() for line in from_file if line.strip()] if from_file else [])
    if not ids:
        raise click.UsageError("give the run ids to judge: RUN_ID... LABEL, or --from FILE LABEL")
    body: dict[str, Any] = {"label": label, "source": source}
    if comment is not None:
        body["comment"] = comment
    if value is not None:
        body["value"] = value
    api = Api(url)
    if len(ids) == 1:
        answer = api.post(f"/api/v1/runs/{segment(api.resolve(ids[0]))}/labels", body)
        if as_json:
            return render.emit_json(answer)
        who = f" by {answer['source']}" if answer["source"] else ""
        known = "" if answer["run_known"] else " (no such run yet: the label is kept for when it arrives)"
        value = "" if answer.get("value") is None else f"={answer['value']:g}"
        click.echo(f"run {answer['run_id']} labelled {answer['label']}{value}{who}{known}")
        return None
    answer = api.post("/api/v1/labels", {"labels": [{**body, "run_id": api.resolve(i)} for i in ids]})
    if as_json:
        return render.emit_json(answer)
    click.echo(f"{answer['recorded']} runs labelled {label}; {answer['refused']} refused")
    for error in answer["errors"]:
        click.echo(f"  {ids[error['index']]}: {error['fields']}", err=True)
    if answer["refused"]:
        raise SystemExit(1)
    return None


@click.command()
@url_option
@json_option
@click.option("--pipeline", required=True)
@click.option("--since", help="RFC 3339, or an age such as 30m, 24h, 7d (default: the last 7 days).")
@click.option("--until")
@step_filter_options
@click.option("--run-status", type=click.Choice(RUN_STATUSES), help="Bad runs have this status.")
@click.option("--label", "run_label", help="Bad runs carry this label.")
@click.option(
    "--outcome", "outcome", multiple=True, metavar="KEY=VALUE", help="Bad runs finished with this outcome value."
)
@click.option("--value-below", type=float, help="Bad runs carry a judgement whose value is below this.")
@click.option(
    "--good-label",
    help="Good runs carry this label; the runs neither bad nor good are left out as unjudged "
    "(with --value-below: good runs are judged at or above it).",
)
@click.option("--min-support", type=float, help="Share of the bad runs a pattern must explain (default 0.2).")
def patterns(
    url: str,
    as_json: bool,
    pipeline: str,
    since: str | None,
    until: str | None,
    run_status: str | None,
    run_label: str | None,
    outcome: tuple[str, ...],
    value_below: float | None,
    good_label: str | None,
    min_support: float | None,
    **filters: Any,
) -> None:
    """What the bad runs have in common, and since when. A run is bad when it matches every
    given filter: a step filter (--type, --name, --min-drop-ratio, --reason, ...), --run-status,
    --label, --value-below. Every other run is good, unless --good-label (or --value-below) says
    which are."""
    judged = run_label is not None or value_below is not None or bool(outcome)
    if run_status is None and not judged and not any(v not in (None, ()) for v in filters.values()):
        raise click.UsageError(
            "say which runs are bad: a step filter (--type, --name, --min-drop-ratio, --reason, ...), "
            "--run-status, --outcome, --label or --value-below"
        )
    answer = patterns_for(
        Api(url),
        pipeline=pipeline,
        since=since,
        until=until,
        run_status=run_status,
        label=run_label,
        outcome=tag_filters(outcome, "--outcome"),
        value_below=value_below,
        good_label=good_label,
        min_support=min_support,
        **step_filter_params(**filters),
    )
    if as_json:
        return render.emit_json(answer)
    click.echo(patterns_text(answer))


def _names(attributes: dict[str, str]) -> str:
    return " & ".join(f"{k}={v}" for k, v in attributes.items())


def patterns_for(api: Api, **params: Any) -> dict[str, Any]:
    """The server's patterns for a failure predicate (the parameters of `GET /api/v1/patterns`)."""
    return api.get("/api/v1/patterns", **params)


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
                _names(p["attributes"]),
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
            render.table(rows, ["pattern", "bad", "other", "support", "precision", "risk", "p"], max_width=80),
        ]
        top = answer["patterns"][0]
        others = "no other run" if top["other"] == 0 else f"{top['other']} other runs"
        lines += [
            "",
            f"{_names(top['attributes'])} is on {top['bad']} of the {answer['bad_runs']} bad runs, and on {others}.",
        ]
    timeline = answer["timeline"]
    if timeline["first_bad"]:
        lines += ["", f"Bad runs from {timeline['first_bad']} to {timeline['last_bad']}."]
    pattern = timeline.get("pattern")
    if pattern and pattern["first_bad"]:
        names = _names(pattern["attributes"])
        after = (
            f"; the last good one before was at {pattern['last_good_before']}"
            if pattern["last_good_before"]
            else "; no run with it was good before"
        )
        lines.append(f"Runs with {names} went bad from {pattern['first_bad']}{after}.")
    return "\n".join(lines)
