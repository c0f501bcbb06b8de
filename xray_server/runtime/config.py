"""Server configuration, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class ConfigError(ValueError):
    """An environment variable holds a value the server cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything the server can be told. Each field maps to one `XRAY_*` variable."""

    database_url: str | None = None
    """`XRAY_DATABASE_URL`. None: `xray serve` starts an embedded PostgreSQL in `data_dir`."""
    data_dir: Path = Path(".xray")
    """`XRAY_DATA_DIR`: where the embedded PostgreSQL keeps its data between restarts."""
    pool_min_size: int = 2
    """`XRAY_DB_POOL_MIN`: connections each worker keeps open."""
    pool_max_size: int = 10
    """`XRAY_DB_POOL_MAX`: connections each worker may open."""
    pool_timeout: float = 2.0
    """`XRAY_DB_POOL_TIMEOUT`: seconds a request waits for a connection before a 503."""
    connect_timeout: int = 2
    """`XRAY_DB_CONNECT_TIMEOUT`: seconds to open one connection to PostgreSQL."""
    reconnect_timeout: float = 5.0
    """`XRAY_DB_RECONNECT_TIMEOUT`: seconds the pool retries a lost connection in the background
    before leaving it to the next request. Short, because psycopg_pool's backoff doubles
    without a cap: a long value means minutes of 503s after PostgreSQL is back."""
    prepared_statements: bool = False
    """`XRAY_DB_PREPARED_STATEMENTS`: off by default so transaction poolers (Supabase, pgbouncer) work."""
    migrate_on_start: bool = True
    """`XRAY_MIGRATE_ON_START`: apply schema.sql when a worker starts (idempotent, locked)."""
    retry_after_seconds: int = 2
    """`XRAY_RETRY_AFTER`: the `Retry-After` sent with a 503 when PostgreSQL is unreachable."""
    artifacts_dir: Path = Path("artifacts")
    """`XRAY_ARTIFACTS_DIR`: the local artifact store's folder, used when no S3 endpoint is set."""
    s3_endpoint: str | None = None
    """`XRAY_S3_ENDPOINT`: host:port of MinIO or any S3-compatible store; set it to use S3."""
    s3_access_key: str = ""
    """`XRAY_S3_ACCESS_KEY`: the S3 access key."""
    s3_secret_key: str = ""
    """`XRAY_S3_SECRET_KEY`: the S3 secret key."""
    s3_bucket: str = "xray-artifacts"
    """`XRAY_S3_BUCKET`: the bucket, created if missing."""
    s3_secure: bool = False
    """`XRAY_S3_SECURE`: use TLS to reach the S3 store."""
    artifact_timeout: float = 1.0
    """`XRAY_ARTIFACT_TIMEOUT`: seconds one store operation may take."""
    artifact_budget_ms: int = 300
    """`XRAY_ARTIFACT_BUDGET_MS`: time one ingest request may spend writing artifacts after commit."""
    artifact_budget_bytes: int = 8 * 1024 * 1024
    """`XRAY_ARTIFACT_BUDGET_BYTES`: artifact bytes one ingest request may write."""
    artifact_concurrency: int = 2
    """`XRAY_ARTIFACT_CONCURRENCY`: requests of one worker writing artifacts at once."""
    artifact_sweep_seconds: float = 60.0
    """`XRAY_ARTIFACT_SWEEP_SECONDS`: how often a worker settles rows a crash left pending (0: never)."""
    ledger_hours: float = 24.0
    """`XRAY_LEDGER_HOURS`: how long the idempotency ledger remembers an event (an SDK retries for
    minutes; a replay older than this is applied again and changes nothing; 0: forever)."""
    ledger_prune_seconds: float = 600.0
    """`XRAY_LEDGER_PRUNE_SECONDS`: how often a worker prunes the ledger (0: never)."""
    partition_days: int = 1
    """`XRAY_PARTITION_DAYS`: how many days one partition of runs, steps and artifact rows holds."""
    retention_days: float = 0.0
    """`XRAY_RETENTION_DAYS`: runs older than this are dropped, a whole partition at a time, with
    their steps and artifacts (0: keep forever)."""
    judged_retention_days: float = 365.0
    """`XRAY_JUDGED_RETENTION_DAYS`: how long a run with a label is kept when the retention drops
    its partition (copied into the kept partition first); not longer than the retention: none."""
    partition_upkeep_seconds: float = 3600.0
    """`XRAY_PARTITION_UPKEEP_SECONDS`: how often a worker creates the partitions due in the next
    days and applies the retention (0: never; `xray retention apply` does it by hand)."""
    max_capture: str = "full"
    """`XRAY_MAX_CAPTURE`: the highest capture level kept; artifacts above it are dropped."""
    host: str = "127.0.0.1"
    """`XRAY_HOST`: the address `xray serve` binds; X-Ray has no auth, keep it private."""
    port: int = 8000
    """`XRAY_PORT`: the port `xray serve` binds."""
    workers: int = 2
    """`XRAY_WORKERS`: gunicorn worker processes."""
    threads: int = 4
    """`XRAY_THREADS`: threads per gunicorn worker (gthread)."""


_FIELDS = {
    "XRAY_DATABASE_URL": ("database_url", str),
    "XRAY_DATA_DIR": ("data_dir", Path),
    "XRAY_DB_POOL_MIN": ("pool_min_size", int),
    "XRAY_DB_POOL_MAX": ("pool_max_size", int),
    "XRAY_DB_POOL_TIMEOUT": ("pool_timeout", float),
    "XRAY_DB_CONNECT_TIMEOUT": ("connect_timeout", int),
    "XRAY_DB_RECONNECT_TIMEOUT": ("reconnect_timeout", float),
    "XRAY_DB_PREPARED_STATEMENTS": ("prepared_statements", bool),
    "XRAY_MIGRATE_ON_START": ("migrate_on_start", bool),
    "XRAY_RETRY_AFTER": ("retry_after_seconds", int),
    "XRAY_ARTIFACTS_DIR": ("artifacts_dir", Path),
    "XRAY_S3_ENDPOINT": ("s3_endpoint", str),
    "XRAY_S3_ACCESS_KEY": ("s3_access_key", str),
    "XRAY_S3_SECRET_KEY": ("s3_secret_key", str),
    "XRAY_S3_BUCKET": ("s3_bucket", str),
    "XRAY_S3_SECURE": ("s3_secure", bool),
    "XRAY_ARTIFACT_TIMEOUT": ("artifact_timeout", float),
    "XRAY_ARTIFACT_BUDGET_MS": ("artifact_budget_ms", int),
    "XRAY_ARTIFACT_BUDGET_BYTES": ("artifact_budget_bytes", int),
    "XRAY_ARTIFACT_CONCURRENCY": ("artifact_concurrency", int),
    "XRAY_ARTIFACT_SWEEP_SECONDS": ("artifact_sweep_seconds", float),
    "XRAY_LEDGER_HOURS": ("ledger_hours", float),
    "XRAY_LEDGER_PRUNE_SECONDS": ("ledger_prune_seconds", float),
    "XRAY_PARTITION_DAYS": ("partition_days", int),
    "XRAY_RETENTION_DAYS": ("retention_days", float),
    "XRAY_JUDGED_RETENTION_DAYS": ("judged_retention_days", float),
    "XRAY_PARTITION_UPKEEP_SECONDS": ("partition_upkeep_seconds", float),
    "XRAY_MAX_CAPTURE": ("max_capture", str),
    "XRAY_HOST": ("host", str),
    "XRAY_PORT": ("port", int),
    "XRAY_WORKERS": ("workers", int),
    "XRAY_THREADS": ("threads", int),
}

ENVIRONMENT_VARIABLES: tuple[str, ...] = tuple(_FIELDS)


def _parse(name: str, raw: str, kind: type) -> object:
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}={raw!r}: use one of 1/0, true/false, yes/no, on/off")
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a value of type {kind.__name__}") from None


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build `Settings` from `environ` (default: the process environment), then `overrides`."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name, (attr, kind) in _FIELDS.items():
        raw = environ.get(name)
        if raw is not None and raw != "":
            values[attr] = _parse(name, raw, kind)
    values.update(overrides)
    settings = Settings(**values)  # type: ignore[arg-type]
    if settings.max_capture not in ("summary", "sample", "full"):
        raise ConfigError(f"XRAY_MAX_CAPTURE={settings.max_capture!r}: use summary, sample or full")
    if settings.pool_min_size < 0 or settings.pool_max_size < max(1, settings.pool_min_size):
        raise ConfigError("XRAY_DB_POOL_MAX must be at least 1 and at least XRAY_DB_POOL_MIN")
    return settings
