"""Faults survived, against real processes: PostgreSQL vanishing under SDK load, a gunicorn
worker killed mid-batch, an exhausted connection pool. Each bounded in time."""

import dataclasses
import os
import signal
import threading
import time

import psutil
from psycopg import conninfo

from tests.support.clients import REAL_SERVER_TIMEOUT
from tests.support.tcp_proxy import TcpProxy
from tests.test_api_runs import post_json
from xray_server.runtime.local_server import LocalServer
from xray_server.web.app import create_app

# Liveness bound, not a performance figure (the pool waits 0.5 s).
FAST_503_SECONDS = 5


def stored_counts(db, pipeline):
    """Runs of `pipeline`, and the events the server applied to them."""
    with db.connection() as conn:
        row = conn.execute(
            "SELECT count(DISTINCT r.run_id) AS runs, count(e.event_id) AS events FROM runs r "
            "LEFT JOIN ingested_events e ON e.run_id = r.run_id WHERE r.pipeline = %s",
            (pipeline,),
        ).fetchone()
    return row["runs"], row["events"]


def proxied(pg_url):
    params = conninfo.conninfo_to_dict(pg_url)
    host, port = params.get("host") or "localhost", int(params.get("port") or 5432)
    proxy = TcpProxy(f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port)).start()
    return proxy, conninfo.make_conninfo(pg_url, host="127.0.0.1", port=str(proxy.port))


def send_steps(client, pipeline, runs, steps, stop=None, pause=0.0):
    """Send `runs` runs of `steps` steps, or fewer if `stop` is set first; return how many."""
    for r in range(runs):
        with client.start_run(pipeline, f"B{r}") as run:
            for i in range(steps):
                with run.step(f"s{i}", "filter") as step:
                    step.candidates(100, 10)
        if stop is not None and stop.is_set():
            return r + 1
        time.sleep(pause)
    return runs


class Sender(threading.Thread):
    """Sends runs until stopped, pacing itself so that it is still sending during a fault."""

    def __init__(self, client, pipeline, steps):
        super().__init__()
        self.args = (client, pipeline, 100_000, steps)
        self.stop = threading.Event()
        self.runs = 0

    def run(self):
        self.runs = send_steps(*self.args, stop=self.stop, pause=0.02)


def test_postgres_vanishing_under_sdk_load_loses_nothing_acknowledged(db, pg_url, pipeline, tmp_path, sdk_client):
    proxy, url = proxied(pg_url)
    env = {
        "XRAY_DATABASE_URL": url,
        "XRAY_WORKERS": "1",
        "XRAY_DB_POOL_TIMEOUT": "0.5",
        "XRAY_DB_RECONNECT_TIMEOUT": "1",
        "XRAY_ARTIFACTS_DIR": str(tmp_path),
    }
    with LocalServer(env, log_path=tmp_path / "server.log") as server:
        client = sdk_client(
            server.base_url,
            timeout=REAL_SERVER_TIMEOUT,
            flush_interval=0.05,
            max_attempts=1000,
            backoff_max=0.5,
            breaker_cooldown=0.5,
            breaker_cooldown_max=1.0,
        )
        sender = Sender(client, pipeline, 25)
        sender.start()
        time.sleep(0.3)
        proxy.cut()  # PostgreSQL gone: the server answers 503, the SDK backs off and keeps what fits
        time.sleep(2.0)
        proxy.restore()
        time.sleep(0.5)
        sender.stop.set()
        sender.join()
        assert client.flush(60)
        stats = client.stats()
    proxy.cut()
    assert stats["dropped_total"] == 0 and stats["retries"] > 0
    runs, events = stored_counts(db, pipeline)
    # Exactly what the SDK reports as sent: a create, 25 steps and a finish per run.
    assert runs + events == stats["sent"] == sender.runs * 27


def test_a_worker_killed_mid_batch_leaves_no_half_batch_and_retries_are_harmless(
    db, pg_url, pipeline, tmp_path, sdk_client
):
    env = {"XRAY_DATABASE_URL": pg_url, "XRAY_WORKERS": "2", "XRAY_ARTIFACTS_DIR": str(tmp_path)}
    with LocalServer(env, log_path=tmp_path / "server.log") as server:
        client = sdk_client(
            server.base_url,
            timeout=REAL_SERVER_TIMEOUT,
            flush_interval=0.01,
            batch_max_items=50,
            max_attempts=1000,
            backoff_max=0.3,
            breaker_cooldown=0.3,
        )
        stop = threading.Event()
        sender = threading.Thread(target=send_steps, args=(client, pipeline, 60, 30, stop))
        sender.start()
        time.sleep(0.5)
        workers = psutil.Process(server.process.pid).children()
        assert workers
        os.kill(workers[0].pid, signal.SIGKILL)  # gunicorn starts a new one
        sender.join(timeout=120)
        assert client.flush(60)
        stats = client.stats()
    assert stats["dropped_total"] == 0
    runs, events = stored_counts(db, pipeline)
    assert runs + events == stats["sent"] == 60 + 60 * 30 + 60
    with db.connection() as conn:
        # Every applied event left its mark: no batch is half applied.
        orphans = conn.execute(
            "SELECT count(*) AS n FROM runs r JOIN steps s ON s.run_id = r.run_id "
            "WHERE r.pipeline = %s AND s.status <> 'ok'",
            (pipeline,),
        ).fetchone()["n"]
        per_run = conn.execute(
            "SELECT count(*) AS n FROM runs r JOIN steps s ON s.run_id = r.run_id WHERE r.pipeline = %s "
            "GROUP BY r.run_id HAVING count(*) <> 30",
            (pipeline,),
        ).fetchall()
    assert orphans == 0 and per_run == []


def test_an_exhausted_pool_answers_503_fast_and_recovers(settings, db):
    app = create_app(dataclasses.replace(settings, pool_min_size=1, pool_max_size=1, pool_timeout=0.5), database=None)
    client = app.test_client()
    pool_db = app.extensions["xray.db"]
    try:
        with pool_db.pool.connection():  # a slow request holding the only connection
            started = time.monotonic()
            response = post_json(client, "/api/v1/runs", {"pipeline": "p", "entity": "e"})
            assert response.status_code == 503 and response.headers["Retry-After"]
            assert time.monotonic() - started < FAST_503_SECONDS
        assert post_json(client, "/api/v1/runs", {"pipeline": "p", "entity": "e"}).status_code == 201
    finally:
        pool_db.close()


def test_a_real_postgres_restart_under_sdk_load_loses_nothing_acknowledged(tmp_path, pipeline, sdk_client):
    """PostgreSQL itself stopped (fast shutdown) and started again: not a proxy, a restart."""
    from xray_server.storage.embedded_pg import EmbeddedPostgres

    embedded = EmbeddedPostgres(tmp_path / "pg" / "data", ephemeral=True)
    url = embedded.start()
    try:
        env = {
            "XRAY_DATABASE_URL": url,
            "XRAY_WORKERS": "1",
            "XRAY_DB_POOL_TIMEOUT": "0.5",
            "XRAY_DB_RECONNECT_TIMEOUT": "1",
            "XRAY_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        }
        with LocalServer(env, log_path=tmp_path / "server.log") as server:
            client = sdk_client(
                server.base_url,
                timeout=REAL_SERVER_TIMEOUT,
                flush_interval=0.05,
                max_attempts=1000,
                backoff_max=0.5,
                breaker_cooldown=0.5,
                breaker_cooldown_max=1.0,
            )
            sender = Sender(client, pipeline, 20)
            sender.start()
            time.sleep(0.3)
            embedded.pause()
            time.sleep(2.0)
            embedded.resume()
            time.sleep(0.5)
            sender.stop.set()
            sender.join()
            assert client.flush(60)
            stats = client.stats()
        assert stats["dropped_total"] == 0 and stats["retries"] > 0
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(url, row_factory=dict_row) as conn:
            row = conn.execute(
                "SELECT count(DISTINCT r.run_id) AS runs, count(e.event_id) AS events FROM runs r "
                "LEFT JOIN ingested_events e ON e.run_id = r.run_id WHERE r.pipeline = %s",
                (pipeline,),
            ).fetchone()
        assert row["runs"] + row["events"] == stats["sent"] == sender.runs * 22
    finally:
        embedded.stop()
