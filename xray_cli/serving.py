"""Commands that run the server: serve, migrate."""

from __future__ import annotations

import os
import sys

import click

from xray_server.runtime.config import load_settings

# What serving needs beyond the CLI: the `server` extra.
_SERVER_MODULES = ("flask", "gunicorn", "psycopg", "psycopg_pool", "marshmallow")


def require_server_extra(command: str) -> None:
    """Stop with one line naming the extra when a module the server needs is not installed."""
    import importlib.util

    for module in _SERVER_MODULES:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise click.ClickException(
                f"`xray {command}` needs the server extra ({module} is not installed): "
                "pip install 'xray-decisions[server]'"
            )


@click.command()
@click.option("--host", help="Address to bind (default XRAY_HOST or 127.0.0.1; X-Ray has no auth).")
@click.option("--port", type=int, help="Port to bind (default XRAY_PORT or 8000).")
@click.option("--workers", type=int, help="gunicorn workers (default XRAY_WORKERS or 2).")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the API under gunicorn; starts an embedded PostgreSQL if XRAY_DATABASE_URL is unset."""
    require_server_extra("serve")
    from xray_server.runtime.local_server import gunicorn_command

    settings = load_settings()
    if workers:
        os.environ["XRAY_WORKERS"] = str(workers)
    command = gunicorn_command(host or settings.host, port or settings.port)
    os.execv(command[0], command)


@click.command()
def migrate() -> None:
    """Apply the schema to XRAY_DATABASE_URL (the server also does this when it starts)."""
    require_server_extra("migrate")
    import psycopg

    from xray_server.storage.migrations import migrate as apply
    from xray_server.storage.pool import connection_kwargs

    settings = load_settings()
    if not settings.database_url:
        click.echo("XRAY_DATABASE_URL is not set; `xray serve` migrates its embedded database itself.", err=True)
        sys.exit(2)
    with psycopg.connect(settings.database_url, **connection_kwargs(settings)) as conn:
        click.echo(f"schema at version {apply(conn, partition_days=settings.partition_days)}")


@click.command()
@click.option(
    "--older-than",
    "older_than",
    default="30d",
    show_default=True,
    help="Delete the artifacts of runs that started longer ago than this (30m, 24h, 30d, 8w).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
def gc(older_than: str, dry_run: bool) -> None:
    """Delete old artifacts from the store, mark their rows, and settle rows a crash left pending."""
    require_server_extra("gc")
    from xray_server.artifacts.retention import collect
    from xray_server.artifacts.stores import open_store
    from xray_server.artifacts.sweep import resolve_stale_pending
    from xray_server.schemas.fields import parse_age
    from xray_server.storage.pool import Database

    try:
        age = parse_age(older_than)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    settings = load_settings()
    if not settings.database_url:
        click.echo("XRAY_DATABASE_URL is not set: point it at the server's PostgreSQL.", err=True)
        sys.exit(2)
    db = Database(settings.database_url, settings, open_wait=True)
    try:
        store = open_store(settings)
        settled = 0 if dry_run else resolve_stale_pending(db, store)
        result = collect(db, store, age, dry_run=dry_run)
    finally:
        db.close()
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"{verb} {result['deleted']} artifacts of runs started before {result['cutoff']}"
        f"; {result['failed']} could not be deleted now; {settled} pending rows settled"
    )


@click.group()
def retention() -> None:
    """The hot tier's retention: whole partitions dropped past XRAY_RETENTION_DAYS."""


@retention.command("apply")
@click.option("--dry-run", is_flag=True, help="List the partitions that would be dropped; change nothing.")
def retention_apply(dry_run: bool) -> None:
    """Create the partitions due next, keep the judged runs, and drop the partitions (and their
    artifacts) older than XRAY_RETENTION_DAYS, as the server's own job does every hour."""
    require_server_extra("retention")
    from xray_server.artifacts.stores import open_store
    from xray_server.runtime.upkeep import partition_upkeep
    from xray_server.storage.pool import Database

    settings = load_settings()
    if not settings.database_url:
        click.echo("XRAY_DATABASE_URL is not set: point it at the server's PostgreSQL.", err=True)
        sys.exit(2)
    if settings.retention_days <= 0:
        click.echo("XRAY_RETENTION_DAYS is not set: X-Ray keeps every run; set it to drop older days.", err=True)
        sys.exit(2)
    db = Database(settings.database_url, settings, open_wait=True)
    try:
        report = partition_upkeep(db, open_store(settings), settings, dry_run=dry_run)
    finally:
        db.close()
    if report is None:  # the retention was unset, checked above
        return
    verb = "would drop" if dry_run else "dropped"
    click.echo(
        f"{verb} {len(report.dropped)} partitions of days before {report.cutoff}: {', '.join(report.dropped) or '-'}"
    )
    if not dry_run:
        click.echo(
            f"kept {report.runs_kept} judged runs; {report.kept_runs_expired} kept runs expired;"
            f" {report.objects_deleted} artifacts deleted from the store"
        )
    if report.postponed:
        click.echo(f"postponed (artifacts the store could not delete now): {', '.join(report.postponed)}", err=True)
