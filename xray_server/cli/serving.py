"""Commands that run the server: serve, migrate."""
from __future__ import annotations

import os
import sys

import click

from ..config import load_settings


@click.command()
@click.option("--host", help="Address to bind (default XRAY_HOST or 127.0.0.1; X-Ray has no auth).")
@click.option("--port", type=int, help="Port to bind (default XRAY_PORT or 8000).")
@click.option("--workers", type=int, help="gunicorn workers (default XRAY_WORKERS or 2).")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the API under gunicorn; starts an embedded PostgreSQL if XRAY_DATABASE_URL is unset."""
    from ..local_server import gunicorn_command

    settings = load_settings()
    if workers:
        os.environ["XRAY_WORKERS"] = str(workers)
    command = gunicorn_command(host or settings.host, port or settings.port)
    os.execv(command[0], command)


@click.command()
def migrate() -> None:
    """Apply the schema to XRAY_DATABASE_URL (the server also does this when it starts)."""
    import psycopg

    from ..db import connection_kwargs
    from ..migrations import migrate as apply

    settings = load_settings()
    if not settings.database_url:
        click.echo("XRAY_DATABASE_URL is not set; `xray serve` migrates its embedded database itself.", err=True)
        sys.exit(2)
    with psycopg.connect(settings.database_url, **connection_kwargs(settings)) as conn:
        click.echo(f"schema at version {apply(conn)}")
