"""The `xray` command group: serve the API, run the demo, and debug runs over HTTP."""

from __future__ import annotations

import logging

import click

from xray_cli.debugging import diff, explain, label, patterns, reasons, runs, show, steps, why_dropped
from xray_cli.demo import demo
from xray_cli.export import export
from xray_cli.serving import gc, migrate, retention, serve


@click.group()
def main() -> None:
    """X-Ray: why a decision pipeline decided what it did."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


for command in (
    serve,
    migrate,
    gc,
    retention,
    demo,
    runs,
    show,
    steps,
    reasons,
    explain,
    diff,
    why_dropped,
    label,
    patterns,
    export,
):
    main.add_command(command)

__all__ = ["main"]
