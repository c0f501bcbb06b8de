"""The PostgreSQL connection pool, and the one place that turns its failures into 503s."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from weakref import WeakKeyDictionary

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import set_json_dumps
from psycopg.types.string import TextLoader
from psycopg_pool import ConnectionPool, PoolTimeout

from xray_server import jsonio
from xray_server.errors import DatabaseUnavailable
from xray_server.runtime.config import ConfigError, Settings

log = logging.getLogger(__name__)

# A connection returned this recently is lent without a check: it worked a moment ago, and a
# check is a round trip, as long as a small query. Under load every connection is this fresh.
TRUSTED_FOR_SECONDS = 1.0


class Database:
    """A pool of connections to the hot tier.

    Connections idle for more than a second are checked before they are lent, so a
    PostgreSQL that restarted while we were idle costs no request an error; one that
    restarts under load costs each busy connection one 503 with Retry-After (the SDK
    retries it) and the broken connection is replaced. When PostgreSQL is unreachable,
    `connection()` raises `DatabaseUnavailable` within `pool_timeout` seconds instead of
    hanging, and the pool reconnects by itself.
    """

    def __init__(self, url: str, settings: Settings, *, open_wait: bool = False) -> None:
        self.url = url
        self.settings = settings
        self._returned: WeakKeyDictionary[psycopg.Connection, float] = WeakKeyDictionary()
        self.pool = ConnectionPool(
            url,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            timeout=settings.pool_timeout,
            reconnect_timeout=settings.reconnect_timeout,
            kwargs=connection_kwargs(settings),
            check=self._check,
            reset=self._stamp,
            configure=_configure,
            open=False,
            name="xray",
        )
        self.pool.open(wait=open_wait)

    def _check(self, conn: psycopg.Connection) -> None:
        returned = self._returned.get(conn)
        if returned is None or time.monotonic() - returned > TRUSTED_FOR_SECONDS:
            ConnectionPool.check_connection(conn)

    def _stamp(self, conn: psycopg.Connection) -> None:
        self._returned[conn] = time.monotonic()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """Lend a connection. It is in autocommit mode: each statement is its own transaction
        (one round trip, no BEGIN and COMMIT); group statements with `conn.transaction()`."""
        try:
            with self.pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise DatabaseUnavailable("no PostgreSQL connection became available in time") from exc
        except psycopg.errors.TransactionRollback as exc:
            # A deadlock or serialization failure between concurrent batches: safe to retry.
            raise DatabaseUnavailable(f"a concurrent write conflicted; retry ({type(exc).__name__})") from exc
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(_describe(exc)) from exc

    def ping(self) -> None:
        """Raise `DatabaseUnavailable` unless PostgreSQL answers a trivial query."""
        with self.connection() as conn:
            conn.execute("SELECT 1")

    def close(self) -> None:
        """Close every pooled connection."""
        self.pool.close()


def _configure(conn: psycopg.Connection) -> None:
    # jsonb parameters (the batch rows) are encoded by orjson: a tenth of json.dumps's time.
    set_json_dumps(jsonio.dumps, conn)
    # uuid columns arrive as their text, the form every view shows: no UUID object to build
    # and format again (about 2 µs an id, several ids a row).
    conn.adapters.register_loader("uuid", TextLoader)


def connection_kwargs(settings: Settings) -> dict:
    """Options for every connection: rows as dicts, bounded connects, pooler-safe statements."""
    return {
        "row_factory": dict_row,
        # Reads and single-statement writes need no BEGIN/COMMIT round trips around them.
        "autocommit": True,
        "connect_timeout": settings.connect_timeout,
        # Server-side prepared statements break behind transaction poolers (Supabase, pgbouncer).
        "prepare_threshold": 5 if settings.prepared_statements else None,
        "application_name": "xray-server",
    }


def _describe(exc: psycopg.OperationalError) -> str:
    # The first line names the cause (refused, timed out, shutting down) without the DSN.
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"PostgreSQL is unreachable: {first_line[:200]}"


def open_database(settings: Settings) -> Database:
    """Migrate the schema if configured to, then open the connection pool."""
    from xray_server.storage.migrations import migrate

    if not settings.database_url:
        raise ConfigError(
            "XRAY_DATABASE_URL is not set: run `xray serve`, which starts an embedded PostgreSQL, "
            "or point XRAY_DATABASE_URL at your PostgreSQL"
        )
    if settings.migrate_on_start:
        with psycopg.connect(settings.database_url, **connection_kwargs(settings)) as conn:
            version = migrate(conn, partition_days=settings.partition_days)
        log.info("schema at version %d", version)
    return Database(settings.database_url, settings)
