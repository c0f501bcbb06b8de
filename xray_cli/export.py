"""`xray export steps|runs`: every row of a filtered query, streamed as CSV or JSON Lines to a file
or standard output (the server's `/steps/export` and `/runs/export`: no pages to follow)."""

from __future__ import annotations

import sys
from typing import Any

import click

from xray_cli.api import Api
from xray_cli.options import (
    run_filter_options,
    run_filter_params,
    step_filter_options,
    step_filter_params,
    url_option,
    window_options,
)
from xray_sdk.contract.vocabulary import RUN_STATUSES

format_option = click.option(
    "--format", "fmt", type=click.Choice(("csv", "jsonl")), help="CSV (the server's default) or JSON Lines."
)
output_option = click.option(
    "--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write here instead of standard output."
)


@click.group()
def export() -> None:
    """Every step or run of a filtered query, as CSV or JSON Lines."""


@export.command("steps")
@url_option
@format_option
@output_option
@click.option("--pipeline")
@step_filter_options
@window_options
@run_filter_options
@click.option("--run-label", help="Only steps of runs some source labelled so.")
def export_steps(
    url: str,
    fmt: str | None,
    output: str | None,
    tags: tuple[str, ...],
    outcome: tuple[str, ...],
    metadata: tuple[str, ...],
    **filters: Any,
) -> None:
    """Steps with their run's pipeline, entity, status, tags, outcome and labels, newest first."""
    params = {key: filters.pop(key) for key in ("pipeline", "since", "until", "run_label")}
    _write(
        Api(url, timeout=300),
        "/api/v1/steps/export",
        output,
        format=fmt,
        **run_filter_params(tags, outcome, metadata),
        **params,
        **step_filter_params(**filters),
    )


@export.command("runs")
@url_option
@format_option
@output_option
@click.option("--pipeline")
@click.option("--entity")
@click.option("--status", type=click.Choice(RUN_STATUSES))
@window_options
@run_filter_options
@click.option("--label", "run_label", help="Only runs some source labelled so.")
def export_runs(
    url: str,
    fmt: str | None,
    output: str | None,
    tags: tuple[str, ...],
    outcome: tuple[str, ...],
    metadata: tuple[str, ...],
    run_label: str | None,
    **params: Any,
) -> None:
    """Runs with their tags, metadata, outcome, error and labels, newest first."""
    _write(
        Api(url, timeout=300),
        "/api/v1/runs/export",
        output,
        format=fmt,
        **run_filter_params(tags, outcome, metadata),
        label=run_label,
        **params,
    )


def _write(api: Api, path: str, output: str | None, **params: Any) -> None:
    """Stream the export to `output` (or standard output), block by block."""
    sink = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115
    try:
        for block in api.stream(path, **params):
            sink.write(block)
    finally:
        if output:
            sink.close()
        else:
            sink.flush()
