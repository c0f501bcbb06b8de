"""PostgreSQL goes away: the API says 503 with Retry-After, quickly; it comes back: the API
heals with no restart. The database is real; a proxy in front of it is what we cut."""

import dataclasses
import time

import pytest
from psycopg import conninfo

from tests.support.events import competitor_run
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_until
from tests.test_api_runs import post_json
from xray_server.errors import DatabaseUnavailable
from xray_server.storage.pool import TRUSTED_FOR_SECONDS, Database
from xray_server.web.app import create_app

# A liveness bound, not a performance figure: far above the configured 1 s pool timeout,
# far below "hangs until the client gives up".
NO_HANG_SECONDS = 15


@pytest.fixture()
def proxy(pg_url):
    params = conninfo.conninfo_to_dict(pg_url)
    host, port = params.get("host") or "localhost", int(params.get("port") or 5432)
    target = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port)
    proxy = TcpProxy(target).start()
    yield proxy
    proxy.cut()


@pytest.fixture()
def outage_client(settings, pg_url, proxy):
    url = conninfo.make_conninfo(pg_url, host="127.0.0.1", port=str(proxy.port))
    app = create_app(
        dataclasses.replace(
            settings,
            database_url=url,
            pool_timeout=1.0,
            connect_timeout=1,
            reconnect_timeout=2.0,
            retry_after_seconds=3,
        )
    )
    yield app.test_client()
    app.extensions["xray.db"].close()


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_outage_is_a_fast_503_then_heals_without_restart(outage_client, proxy, pipeline):
    client = outage_client
    run = {"pipeline": pipeline, "entity": "B0CASE"}
    assert post_json(client, "/api/v1/runs", run).status_code == 201

    proxy.cut()
    for call in (
        lambda: post_json(client, "/api/v1/runs", run),
        lambda: post_json(
            client, f"/api/v1/runs/{'0' * 8}-0000-4000-8000-{'0' * 12}/events", {"events": competitor_run()}
        ),
        lambda: client.get("/api/v1/steps?since=1h"),
        lambda: client.get("/readyz"),
    ):
        response, elapsed = timed(call)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "3"
        assert response.get_json()["error"]["code"] == "database_unavailable"
        assert elapsed < NO_HANG_SECONDS
    assert client.get("/healthz").status_code == 200  # the process itself is fine

    proxy.restore()
    wait_until(
        lambda: client.get("/readyz").status_code == 200,
        timeout=60,
        interval=0.2,
        message="/readyz never healed after the database came back",
    )
    assert client.get("/readyz").status_code == 200
    assert post_json(client, "/api/v1/runs", run).status_code == 201


@pytest.fixture()
def single_connection(settings, pg_url, proxy):
    """A pool of one connection, through the proxy, so that each request gets the same one."""
    url = conninfo.make_conninfo(pg_url, host="127.0.0.1", port=str(proxy.port))
    database = Database(
        url,
        dataclasses.replace(
            settings, database_url=url, pool_min_size=1, pool_max_size=1, pool_timeout=5.0, connect_timeout=2
        ),
        open_wait=True,
    )
    yield database
    database.close()


def ask(database):
    with database.connection() as conn:
        return conn.execute("SELECT 1 AS one").fetchone()["one"]


def restart(proxy):
    """Break every open connection and accept new ones: what clients see of a restart."""
    proxy.cut()
    proxy.restore()


def test_a_connection_broken_while_idle_is_replaced_before_it_is_lent(single_connection, proxy):
    assert ask(single_connection) == 1
    restart(proxy)
    time.sleep(TRUSTED_FOR_SECONDS + 0.3)
    assert ask(single_connection) == 1  # checked, found broken, replaced: no request saw an error


def test_a_connection_used_a_moment_ago_is_lent_unchecked_and_a_break_costs_one_503(single_connection, proxy):
    # The price of saving a round trip per request under load, as RELIABILITY.md says.
    assert ask(single_connection) == 1
    restart(proxy)
    with pytest.raises(DatabaseUnavailable):
        ask(single_connection)
    assert ask(single_connection) == 1  # the broken connection was discarded, a new one lent
