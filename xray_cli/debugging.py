"""Commands to debug runs from a terminal or a script: runs, show, steps, explain, diff,
why-dropped. Each reads the HTTP API only; the analysis is the server's, rendered here."""

from __future__ import annotations

from typing import Any

import click

from xray_cli import render
from xray_cli.api import Api
from xray_cli.options import (
    all_option,
    cursor_option,
    json_option,
    run_filter_options,
    run_filter_params,
    step_filter_options,
    step_filter_params,
    tag_filters,
    url_option,
    window_options,
)
from xray_sdk.contract.vocabulary import RUN_STATUSES, STEP_TYPES


def _fetch_page(api: Api, path: str, key: str, all_pages: bool, **params: Any) -> dict[str, Any]:
    """One page of `path`, or with `all_pages` every row, as one answer of the same shape."""
    if all_pages:  # pages of the largest size; --limit and --cursor do not apply
        params.pop("cursor", None)
        params.pop("limit", None)
        return {key: api.get_all(path, key, **params), "next_cursor": None}
    return api.get(path, total="true", **params)


@click.command()
@url_option
@json_option
@click.option("--pipeline")
@click.option("--entity")
@click.option("--status", type=click.Choice(RUN_STATUSES))
@window_options
@run_filter_options
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
        **run_filter_params(tags, outcome, metadata),
        label=run_label,
        limit=limit,
        cursor=cursor,
    )
    if as_json:
        return render.emit_json(page)
    click.echo(render.runs_text(page))


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
    click.echo(render.show_text(run))


@click.command()
@url_option
@json_option
@click.option("--pipeline")
@step_filter_options
@window_options
@run_filter_options
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
        **run_filter_params(tags, outcome, metadata),
        run_label=run_label,
        limit=limit,
        cursor=cursor,
        **step_filter_params(**filters),
    )
    if as_json:
        return render.emit_json(page)
    click.echo(render.steps_text(page["steps"]) + render.more(page, "steps"))


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
    answer = Api(url).reasons(pipeline=pipeline, name=name, step_type=list(step_type), since=since, until=until)
    if as_json:
        return render.emit_json(answer)
    click.echo(render.reasons_text(answer))


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
    result = api.explain(api.resolve(run_id), baseline_runs)
    if as_json:
        return render.emit_json(result)
    click.echo(render.explain_text(result))


@click.command("why-dropped")
@url_option
@json_option
@click.argument("run_id")
@click.argument("candidate_id")
def why_dropped(url: str, as_json: bool, run_id: str, candidate_id: str) -> None:
    """Which step dropped a candidate, and why, from the evidence the run kept."""
    api = Api(url)
    answer = api.why_dropped(api.resolve(run_id), candidate_id)
    if as_json:
        return render.emit_json(answer)
    click.echo(render.why_dropped_text(answer))


@click.command()
@url_option
@json_option
@click.argument("run_a")
@click.argument("run_b")
def diff(url: str, as_json: bool, run_a: str, run_b: str) -> None:
    """Two runs lined up step by step: what changed in metrics, outputs and why."""
    api = Api(url)
    result = api.diff(api.resolve(run_a), api.resolve(run_b))
    if as_json:
        return render.emit_json(result)
    click.echo(render.diff_text(result))


@click.command()
@url_option
@json_option
@click.option("--source", help="Who judged: a reviewer, a check (the latest judgement per source wins).")
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
    source: str | None,
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
    # Only what was given: the server owns the defaults (no source is the empty one).
    body: dict[str, Any] = {"label": label}
    if source is not None:
        body["source"] = source
    if comment is not None:
        body["comment"] = comment
    if value is not None:
        body["value"] = value
    api = Api(url)
    if len(ids) == 1:
        answer = api.label(api.resolve(ids[0]), body)
        if as_json:
            return render.emit_json(answer)
        who = f" by {answer['source']}" if answer["source"] else ""
        known = "" if answer["run_known"] else " (no such run yet: the label is kept for when it arrives)"
        value = "" if answer.get("value") is None else f"={answer['value']:g}"
        click.echo(f"run {answer['run_id']} labelled {answer['label']}{value}{who}{known}")
        return None
    answer = api.labels([{**body, "run_id": api.resolve(i)} for i in ids])
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
    answer = Api(url).patterns(
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
    click.echo(render.patterns_text(answer))
