"""Time partitions of the hot tier: the upgrade of a populated database in place, where a run's
rows go (by the day its id carries, or anchored where first seen), the answer for a run dated
outside every partition, and the retention by whole partitions that keeps judged runs."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql
from psycopg.rows import dict_row

from tests.support.databases import throwaway_database
from tests.support.events import step_end, step_start
from xray_cli.commands import main
from xray_sdk.contract.run_ids import day_of_run_id, with_day
from xray_sdk.ids import new_run_id
from xray_server.artifacts.stores import LocalDirStore
from xray_server.errors import RunOutsidePartitions
from xray_server.ingest.batch import ingest_events
from xray_server.ingest.runs import create_run
from xray_server.query.baselines import EARLIER_STEPS_RECENT
from xray_server.query.runs import RUN_ON_DAYS, run_filters
from xray_server.query.steps import step_query_sql
from xray_server.runtime.config import load_settings
from xray_server.runtime.upkeep import partition_upkeep
from xray_server.schemas.queries import RunQuery, StepQuery
from xray_server.storage.compaction import CLAIM_HOURS, compact_closed
from xray_server.storage.migrations import LATEST_VERSION, migrate
from xray_server.storage.partitions import KEPT_DAY, carried_day, ensure_ahead, extend_back, partitions
from xray_server.storage.pool import Database
from xray_server.storage.retention import apply_retention

TODAY = datetime.now(UTC).date()


@pytest.fixture()
def fresh_url(pg_server_url):
    with throwaway_database(pg_server_url, "xray_part") as url:
        if url is None:
            pytest.skip("this PostgreSQL does not let the tests create a database")
        yield url


@pytest.fixture()
def fresh_db(fresh_url, tmp_path):
    with psycopg.connect(fresh_url, row_factory=dict_row) as conn:
        migrate(conn)
    database = Database(fresh_url, load_settings({}, database_url=fresh_url, pool_min_size=1, pool_max_size=2))
    yield database
    database.close()


def _run_at(day: date) -> str:
    return str(with_day(uuid.uuid4(), day))


def _events(at: datetime, steps: int = 2) -> dict:
    events = []
    for seq in range(steps):
        step_id = str(uuid.uuid4())
        start = (at + timedelta(seconds=seq)).isoformat()
        events.append(step_start(step_id, seq, f"s{seq}", "filter", at=start))
        events.append(step_end(step_id, seq, f"s{seq}", "filter", at=start))
    return {"events": events}


def _count(db: Database, sql: str, *args: object) -> int:
    with db.connection() as conn:
        return conn.execute(sql, args).fetchone()["n"]


def test_a_run_id_carries_its_day_and_the_sdk_makes_such_ids():
    started = datetime(2026, 3, 4, 23, 59, tzinfo=UTC)
    assert day_of_run_id(new_run_id(started.timestamp())) == date(2026, 3, 4)
    assert uuid.UUID(new_run_id()).version == 8
    assert day_of_run_id(_run_at(date(2031, 1, 2))) == date(2031, 1, 2)
    assert day_of_run_id(str(uuid.uuid4())) is None
    # A UUIDv7 carries its time by the standard.
    v7 = uuid.UUID(int=(1_700_000_000_000 << 80) | (7 << 76) | (2 << 62) | 1)
    assert day_of_run_id(v7) == date(2023, 11, 14)


def test_the_rows_of_a_run_go_to_the_partition_of_the_day_its_id_carries(fresh_db):
    tomorrow = TODAY + timedelta(days=1)
    run_id = _run_at(tomorrow)
    create_run(fresh_db, {"run_id": run_id, "pipeline": "p", "entity": "e"})
    ingest_events(fresh_db, run_id, _events(datetime.now(UTC)))
    with fresh_db.connection() as conn:
        where = conn.execute(
            "SELECT tableoid::regclass::text AS part FROM steps WHERE run_id = %s UNION "
            "SELECT tableoid::regclass::text FROM runs WHERE run_id = %s",
            (run_id, run_id),
        ).fetchall()
    assert {row["part"] for row in where} == {f"steps_p{tomorrow:%Y%m%d}", f"runs_p{tomorrow:%Y%m%d}"}


def test_a_run_whose_id_carries_no_day_stays_where_it_was_first_seen(fresh_db):
    run_id = str(uuid.uuid4())
    first = datetime.now(UTC) - timedelta(days=3)
    ingest_events(fresh_db, run_id, _events(first))  # implicit, anchored three days ago
    ingest_events(fresh_db, run_id, _events(datetime.now(UTC)))  # far from its anchor: found anyway
    create_run(fresh_db, {"run_id": run_id, "pipeline": "p", "entity": "e"})
    assert _count(fresh_db, "SELECT count(*) AS n FROM runs WHERE run_id = %s", run_id) == 1
    assert _count(fresh_db, "SELECT count(*) AS n FROM steps WHERE run_id = %s", run_id) == 4
    with fresh_db.connection() as conn:
        row = conn.execute("SELECT run_day, pipeline, implicit FROM runs WHERE run_id = %s", (run_id,)).fetchone()
    assert (row["run_day"], row["pipeline"], row["implicit"]) == (first.date(), "p", False)


def test_a_run_dated_past_the_partitions_gets_a_clear_4xx_and_nothing_is_written(fresh_db):
    run_id = _run_at(TODAY + timedelta(days=40))
    with pytest.raises(RunOutsidePartitions) as raised:
        ingest_events(fresh_db, run_id, _events(datetime.now(UTC)))
    assert raised.value.status == 422 and "clock" in raised.value.message
    with pytest.raises(RunOutsidePartitions):
        create_run(fresh_db, {"run_id": run_id, "pipeline": "p", "entity": "e"})
    assert _count(fresh_db, "SELECT count(*) AS n FROM ingested_events WHERE run_id = %s", run_id) == 0


def test_an_http_client_gets_the_422_with_its_reason(app):
    run_id = _run_at(TODAY + timedelta(days=40))
    answer = app.test_client().post(f"/api/v1/runs/{run_id}/events", json=_events(datetime.now(UTC)))
    assert answer.status_code == 422
    assert answer.get_json()["error"]["code"] == "run_outside_partitions"


def test_partitions_are_made_ahead_and_making_them_again_changes_nothing(fresh_url):
    with psycopg.connect(fresh_url, row_factory=dict_row) as conn:
        migrate(conn)
        before = partitions(conn, "steps")
        migrate(conn)
        again = partitions(conn, "steps")
        migrate(conn, partition_days=2)  # a new size applies to the partitions made from now on
        wider = partitions(conn, "steps")
    assert again == before
    assert before[-1].upper > TODAY + timedelta(days=3)
    assert wider[: len(before)] == before and {p.upper - p.lower for p in wider[len(before) :]} == {timedelta(days=2)}
    assert [p.lower for p in wider[1:]] == [p.upper for p in wider[:-1]]  # no gap, no overlap


def _populate_version_6(url: str, runs: int, steps_per_run: int) -> None:
    with psycopg.connect(url) as conn:
        assert migrate(conn, up_to=6) == 6
        conn.execute(
            "INSERT INTO runs (run_id, pipeline, entity, started_at, status, outcome) "
            "SELECT md5(i::text)::uuid, 'p', 'e' || i, now() - i * interval '1 minute', 'ok', "
            "jsonb_build_object('i', i) FROM generate_series(1, %s) i",
            (runs,),
        )
        conn.execute(
            "INSERT INTO steps (run_id, step_id, seq, name, step_type, status, started_at, candidates_in, "
            "candidates_out, drop_ratio, why) "
            "SELECT md5(i::text)::uuid, md5(i::text || '/' || j)::uuid, j, 's' || j, 'filter', 'ok', now(), 10, j, "
            "1 - j / 10.0, 'kept ' || j FROM generate_series(1, %s) i, generate_series(0, %s) j",
            (runs, steps_per_run - 1),
        )
        conn.execute(
            "INSERT INTO artifacts (run_id, artifact_id, step_id, name, capture, status, event_ts, event_id) "
            "SELECT md5(i::text)::uuid, md5('a' || i)::uuid, md5(i::text || '/0')::uuid, 'sample', 'sample', "
            "'dropped', now(), md5('e' || i)::uuid FROM generate_series(1, %s) i",
            (runs,),
        )
        conn.execute(
            "INSERT INTO ingested_events (run_id, event_id) "
            "SELECT md5(i::text)::uuid, md5(i::text || 'ev' || j)::uuid FROM generate_series(1, %s) i, "
            "generate_series(1, %s) j",
            (runs, steps_per_run),
        )


def _checksums(conn: psycopg.Connection) -> dict[str, tuple[int, str]]:
    sums = {}
    for table, columns in {
        "runs": "run_id, pipeline, entity, started_at, status, outcome",
        "steps": "run_id, step_id, seq, name, candidates_in, candidates_out, drop_ratio, why",
        "artifacts": "run_id, artifact_id, step_id, name, status",
        "ingested_events": "run_id, event_id, received_at",
    }.items():
        row = conn.execute(
            f"SELECT count(*) AS n, md5(string_agg(row({columns})::text, '|' ORDER BY row({columns})::text)) AS sum "
            f"FROM {table}"
        ).fetchone()
        sums[table] = (row["n"], row["sum"])
    return sums


def test_a_populated_database_is_partitioned_in_place_with_nothing_lost(fresh_url):
    _populate_version_6(fresh_url, runs=300, steps_per_run=5)
    with psycopg.connect(fresh_url, row_factory=dict_row) as conn:
        before = _checksums(conn)
        assert migrate(conn) == LATEST_VERSION
        after = _checksums(conn)
        kinds = conn.execute(
            "SELECT relname, relkind FROM pg_class"
            " WHERE relname IN ('runs', 'steps', 'artifacts', 'ingested_events', 'steps_before')"
        ).fetchall()
        old_days = conn.execute("SELECT DISTINCT run_day FROM steps").fetchall()
    assert after == before and before["steps"][0] == 1500
    assert {row["relname"]: row["relkind"] for row in kinds} == {
        "runs": "p",
        "steps": "p",
        "artifacts": "p",
        "ingested_events": "p",
        "steps_before": "r",
    }
    assert [row["run_day"] for row in old_days] == [TODAY]
    # A late event of an old run (an id that carries no day) joins its run, not a new one.
    database = Database(fresh_url, load_settings({}, database_url=fresh_url, pool_min_size=1, pool_max_size=2))
    try:
        old_run = str(uuid.UUID(bytes=bytes.fromhex("c4ca4238a0b923820dcc509a6f75849b")))  # md5('1')
        ingest_events(database, old_run, _events(datetime.now(UTC), steps=1))
        assert _count(database, "SELECT count(*) AS n FROM runs WHERE run_id = %s", old_run) == 1
        assert _count(database, "SELECT count(*) AS n FROM steps WHERE run_id = %s", old_run) == 6
    finally:
        database.close()


def _seed_day(db: Database, store: LocalDirStore, day: date, *, judged: bool) -> str:
    run_id = _run_at(day)
    create_run(db, {"run_id": run_id, "pipeline": "p", "entity": "e"})
    ingest_events(db, run_id, _events(datetime.now(UTC)))
    key = f"objects/{run_id}"
    store.put(key, b"evidence", "text/plain")
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO artifacts (run_id, run_day, artifact_id, step_id, name, capture, status, store_key, "
            "event_ts, event_id) VALUES (%s, %s, %s, %s, 'sample', 'sample', 'stored', %s, now(), %s)",
            (run_id, day, uuid.uuid4(), uuid.uuid4(), key, uuid.uuid4()),
        )
        if judged:
            conn.execute(
                "INSERT INTO run_labels (run_id, label, labeled_at) VALUES (%s, 'bad', now())",
                (run_id,),
            )
    return run_id


def test_retention_drops_whole_partitions_and_keeps_judged_runs(fresh_db, tmp_path):
    store = LocalDirStore(tmp_path / "store")
    day1, day2 = TODAY + timedelta(days=1), TODAY + timedelta(days=2)
    plain = _seed_day(fresh_db, store, day1, judged=False)
    judged = _seed_day(fresh_db, store, day1, judged=True)
    recent = _seed_day(fresh_db, store, day2, judged=False)

    report = apply_retention(
        fresh_db, today=day2 + timedelta(days=1), keep_days=1, judged_days=30, delete_object=store.delete
    )

    assert report.dropped == ["runs_before", f"runs_p{TODAY:%Y%m%d}", f"runs_p{day1:%Y%m%d}"]
    assert report.postponed == []
    assert report.runs_kept == 1
    assert _count(fresh_db, "SELECT count(*) AS n FROM run_labels WHERE run_id = %s", judged) == 1  # kept, labelled
    with fresh_db.connection() as conn:
        tables = {row["t"] for row in conn.execute("SELECT relname AS t FROM pg_class WHERE relkind = 'r'").fetchall()}
        kept = conn.execute("SELECT run_id, run_day FROM runs WHERE run_id = %s", (judged,)).fetchall()
    assert f"steps_p{day1:%Y%m%d}" not in tables and f"steps_p{day2:%Y%m%d}" in tables
    assert [(str(r["run_id"]), r["run_day"]) for r in kept] == [(judged, KEPT_DAY)]
    assert _count(fresh_db, "SELECT count(*) AS n FROM steps WHERE run_id = %s", judged) == 2
    assert _count(fresh_db, "SELECT count(*) AS n FROM runs WHERE run_id = %s", plain) == 0
    assert _count(fresh_db, "SELECT count(*) AS n FROM steps WHERE run_id = %s", recent) == 2
    assert not store.exists(f"objects/{plain}")
    assert store.exists(f"objects/{judged}") and store.exists(f"objects/{recent}")

    # A late event for the dropped day is refused with its reason, never a 5xx.
    with pytest.raises(RunOutsidePartitions) as raised:
        ingest_events(fresh_db, plain, _events(datetime.now(UTC)))
    assert "retention" in raised.value.message

    # Past the second window, the kept run goes too, with its evidence.
    later = apply_retention(
        fresh_db, today=day2 + timedelta(days=400), keep_days=1, judged_days=30, delete_object=store.delete
    )
    assert later.kept_runs_expired == 1
    assert _count(fresh_db, "SELECT count(*) AS n FROM runs WHERE run_id = %s", judged) == 0
    assert _count(fresh_db, "SELECT count(*) AS n FROM run_labels WHERE run_id = %s", judged) == 0  # no orphan
    assert not store.exists(f"objects/{judged}")


def test_retention_postpones_a_drop_when_the_store_cannot_delete(fresh_db, tmp_path):
    store = LocalDirStore(tmp_path / "store")
    day1 = TODAY + timedelta(days=1)
    run_id = _seed_day(fresh_db, store, day1, judged=False)

    def unavailable(key: str) -> None:
        raise OSError("store down")

    report = apply_retention(fresh_db, today=day1 + timedelta(days=2), keep_days=1, delete_object=unavailable)
    assert f"runs_p{day1:%Y%m%d}" in report.postponed
    assert _count(fresh_db, "SELECT count(*) AS n FROM runs WHERE run_id = %s", run_id) == 1
    assert store.exists(f"objects/{run_id}")


_PARTITION = re.compile(r" on ((?:runs|steps|artifacts)_\w+)")


def _scanned(conn: psycopg.Connection, statement, params: dict) -> set[str]:
    """The partitions a statement reads: by its custom plan (the first executions), and by its
    generic plan as it runs (a prepared statement's, once PostgreSQL settles on one), where pruning
    happens at execution and a pruned partition is either left out or never executed."""
    body = sql.SQL(statement) if isinstance(statement, str) else statement
    plan = conn.execute(sql.SQL("EXPLAIN (COSTS OFF) ") + body, params).fetchall()
    custom = set(_PARTITION.findall("\n".join(row["QUERY PLAN"] for row in plan)))
    return custom | _scanned_generic(conn, body.as_string(conn), params)


def _scanned_generic(conn: psycopg.Connection, text: str, params: dict) -> set[str]:
    names: list[str] = []

    def placeholder(match: re.Match) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    numbered = re.sub(r"%\((\w+)\)s", placeholder, text).replace("%%", "%")
    values = sql.SQL(", ").join(sql.Literal(params[n]) for n in names)
    with conn.transaction():
        conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        conn.execute(sql.SQL("PREPARE xray_generic AS ") + sql.SQL(numbered))  # type: ignore[arg-type]
        try:
            plan = conn.execute(
                sql.SQL("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE xray_generic ({})").format(
                    values
                )
            ).fetchall()
        finally:
            conn.execute("DEALLOCATE xray_generic")
    lines = [row["QUERY PLAN"] for row in plan]
    # Pruned as it ran, not when planned (a generic plan knows no values).
    assert any("Subplans Removed" in line or "never executed" in line for line in lines), lines
    return {name for line in lines if "never executed" not in line for name in _PARTITION.findall(line)}


def test_reads_touch_only_the_partitions_of_their_window_or_their_run(fresh_db):
    far = TODAY + timedelta(days=15)
    at = datetime.combine(far, datetime.min.time(), UTC)
    with fresh_db.connection() as conn:
        ensure_ahead(conn, TODAY + timedelta(days=20), 1)
        days = {f"p{far + timedelta(days=d):%Y%m%d}" for d in (-1, 0, 1)}

        def only(names: set[str], table: str, allowed: set[str]) -> None:
            mine = {n for n in names if n.startswith(table + "_")}
            assert mine and mine <= {f"{table}_{d}" for d in allowed} | {f"{table}_kept"}, mine

        window = {"step_type": ["filter"], "since": at, "until": at + timedelta(hours=1)}
        # The page's steps look up their runs one by one (pruned as each runs); joined, when a
        # filter is on the run, both sides are pruned when planned.
        page = _scanned(conn, *step_query_sql(StepQuery(**window)))
        only(page, "steps", days)
        only(page, "runs", days)  # inside the lateral lookup too: planned over the window's days only
        joined = _scanned(conn, *step_query_sql(StepQuery(**window, pipeline="p")))
        only(joined, "steps", days)
        only(joined, "runs", days)

        where, params = run_filters(RunQuery(since=at, until=at + timedelta(hours=1)))
        runs_sql = sql.SQL("SELECT * FROM runs r WHERE {}").format(sql.SQL(" AND ").join(where))
        only(_scanned(conn, runs_sql, params), "runs", days)

        run_id = _run_at(far)
        by_id = {"run_id": run_id, "day": carried_day(conn, run_id), "kept_day": KEPT_DAY}
        only(_scanned(conn, RUN_ON_DAYS, by_id), "runs", {f"p{far:%Y%m%d}"})

        earlier = {
            "pipeline": "p",
            "started_at": at,
            "run_id": run_id,
            "runs": 200,
            "bad": "bad",
            "day_from": far - timedelta(days=7),
            "day_to": far + timedelta(days=1),
            "kept_day": KEPT_DAY,
        }
        week = {f"p{far - timedelta(days=d):%Y%m%d}" for d in range(-1, 8)}
        baseline = _scanned(conn, EARLIER_STEPS_RECENT, earlier)
        only(baseline, "runs", week)
        only(baseline, "steps", week)


def test_xray_retention_apply_drops_past_days_and_its_dry_run_changes_nothing(fresh_url, fresh_db, tmp_path):
    with fresh_db.connection() as conn:
        extend_back(conn, TODAY - timedelta(days=5))
    old = _run_at(TODAY - timedelta(days=4))
    ingest_events(fresh_db, old, _events(datetime.now(UTC)))
    env = {"XRAY_DATABASE_URL": fresh_url, "XRAY_RETENTION_DAYS": "2", "XRAY_ARTIFACTS_DIR": str(tmp_path / "a")}
    dry = CliRunner().invoke(main, ["retention", "apply", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert f"would drop 4 partitions of days before {TODAY - timedelta(days=2)}" in dry.output
    assert _count(fresh_db, "SELECT count(*) AS n FROM runs WHERE run_id = %s", old) == 1
    done = CliRunner().invoke(main, ["retention", "apply"], env=env)
    assert done.exit_code == 0, done.output
    assert f"runs_p{TODAY - timedelta(days=4):%Y%m%d}" in done.output
    assert _count(fresh_db, "SELECT count(*) AS n FROM runs WHERE run_id = %s", old) == 0
    unset = CliRunner().invoke(main, ["retention", "apply"], env={**env, "XRAY_RETENTION_DAYS": "0"})
    assert unset.exit_code == 2 and "XRAY_RETENTION_DAYS is not set" in unset.output


def test_the_upkeep_job_makes_partitions_ahead_and_applies_the_retention(fresh_url, fresh_db, tmp_path):
    with fresh_db.connection() as conn:
        extend_back(conn, TODAY - timedelta(days=5))
        ahead = partitions(conn, "steps")[-1].upper
    old = _run_at(TODAY - timedelta(days=4))
    ingest_events(fresh_db, old, _events(datetime.now(UTC)))
    settings = load_settings({}, database_url=fresh_url, retention_days=2, partition_days=2)
    report = partition_upkeep(fresh_db, LocalDirStore(tmp_path / "a"), settings)
    assert report is not None and f"runs_p{TODAY - timedelta(days=4):%Y%m%d}" in report.dropped
    with fresh_db.connection() as conn:
        assert partitions(conn, "steps")[-1].upper > ahead  # two-day partitions now made ahead
    assert partition_upkeep(fresh_db, None, load_settings({}, database_url=fresh_url)) is None  # no retention


def test_new_partitions_index_time_ascending_so_that_ingest_appends(fresh_db):
    """Rows arrive in time order: an ascending index takes them at its right end and fills its
    pages, where a descending one splits its leftmost page and stays half empty."""
    tomorrow = TODAY + timedelta(days=1)
    with fresh_db.connection() as conn:
        definitions = [
            row["d"]
            for table in ("steps", "runs")
            for row in conn.execute(
                "SELECT pg_get_indexdef(indexrelid) AS d FROM pg_index WHERE indrelid = %s::regclass",
                (f"{table}_p{tomorrow:%Y%m%d}",),
            ).fetchall()
        ]
    timed = [d for d in definitions if "started_at" in d]
    assert len(timed) == 6 and not any("DESC" in d for d in timed), timed


def test_sparse_json_indexes_hold_only_rows_with_a_value_and_still_serve_their_tests(fresh_db):
    """A step without rejections, a run without an outcome or metadata costs those GIN indexes
    nothing, and `rejections ? reason` or `outcome @> {...}` still reads them (strict operators
    imply the NOT NULL)."""
    with fresh_db.connection() as conn:
        definitions = {
            row["name"]: row["d"]
            for row in conn.execute(
                "SELECT c.relname AS name, pg_get_indexdef(x.indexrelid) AS d FROM pg_index x"
                " JOIN pg_class c ON c.oid = x.indexrelid"
                " WHERE c.relname IN ('steps_rejections_idx', 'runs_outcome_idx', 'runs_metadata_idx')"
            ).fetchall()
        }
        conn.execute("SET enable_seqscan = off")
        plans = [
            "\n".join(r["QUERY PLAN"] for r in conn.execute("EXPLAIN (COSTS OFF) " + q, (v,)).fetchall())
            for q, v in (
                ("SELECT 1 FROM steps WHERE rejections ? %s", "category_mismatch"),
                ("SELECT 1 FROM runs WHERE outcome @> %s::jsonb", '{"correct": false}'),
            )
        ]
        conn.execute("RESET enable_seqscan")
    assert len(definitions) == 3 and all(d.endswith("IS NOT NULL)") for d in definitions.values()), definitions
    assert "rejections_idx" in plans[0] and "outcome_idx" in plans[1]


def test_closed_days_have_their_indexes_packed_once_and_still_attached(fresh_db):
    """A day over for longer than SETTLE gets its indexes rebuilt packed: the primary key, filled
    by random run ids, shrinks; the rows read the same; the rebuilt indexes are valid and still
    partitions of the parents' indexes; a second pass does nothing; the open days are left."""
    closed, open_day = TODAY - timedelta(days=3), TODAY - timedelta(days=1)
    with fresh_db.connection() as conn:
        extend_back(conn, TODAY - timedelta(days=4))
        for day in (closed, open_day):
            conn.execute(
                "INSERT INTO steps (run_id, run_day, step_id, seq, name, step_type, started_at)"
                " SELECT gen_random_uuid(), %s, gen_random_uuid(), 0, 'f', 'filter', %s + g * interval '1 s'"
                " FROM generate_series(1, 20000) g",
                (day, datetime.combine(day, datetime.min.time(), UTC)),
            )
    name = f"steps_p{closed:%Y%m%d}"

    def state(conn: psycopg.Connection) -> tuple[int, str, list]:
        size = conn.execute("SELECT pg_relation_size(%s) AS n", (f"{name}_pkey",)).fetchone()["n"]
        digest = conn.execute(f"SELECT md5(string_agg(step_id::text, ',' ORDER BY step_id)) AS d FROM {name}")
        indexes = conn.execute(
            "SELECT x.indisvalid AS valid, p.inhparent::regclass::text AS parent FROM pg_index x"
            " LEFT JOIN pg_inherits p ON p.inhrelid = x.indexrelid WHERE x.indrelid = %s::regclass ORDER BY 2",
            (name,),
        ).fetchall()
        return size, digest.fetchone()["d"], indexes

    with fresh_db.connection() as conn:
        size_before, digest_before, indexes_before = state(conn)
    compacted = compact_closed(fresh_db, TODAY)
    assert name in compacted and f"runs_p{closed:%Y%m%d}" in compacted
    assert not any(f"{open_day:%Y%m%d}" in n or f"{TODAY:%Y%m%d}" in n for n in compacted), compacted
    with fresh_db.connection() as conn:
        size_after, digest_after, indexes_after = state(conn)
    assert digest_after == digest_before and indexes_after == indexes_before, (indexes_before, indexes_after)
    assert all(i["valid"] and i["parent"] for i in indexes_after) and len(indexes_after) == 5
    assert size_after < 0.85 * size_before, (size_before, size_after)
    assert compact_closed(fresh_db, TODAY) == []


def test_a_compaction_claimed_by_another_worker_is_left_until_its_claim_is_stale(fresh_db):
    day = TODAY - timedelta(days=3)
    with fresh_db.connection() as conn:
        extend_back(conn, TODAY - timedelta(days=4))
    name = f"steps_p{day:%Y%m%d}"
    for age_hours, taken in ((1, False), (CLAIM_HOURS + 1, True)):
        since = datetime.now(UTC) - timedelta(hours=age_hours)
        with fresh_db.connection() as conn:
            conn.execute(
                sql.SQL("COMMENT ON TABLE {} IS {}").format(
                    sql.Identifier(name), sql.Literal(f"xray: compacting since {since.isoformat()}")
                )
            )
        assert (name in compact_closed(fresh_db, TODAY)) is taken


def test_labels_leave_with_their_runs_when_no_window_keeps_them(fresh_db, tmp_path):
    """`run_labels` is not partitioned: a dropped day takes the labels of its runs with it, unless
    the run was kept (there is no judged window here, so none is)."""
    store = LocalDirStore(tmp_path / "store")
    day1 = TODAY + timedelta(days=1)
    judged = _seed_day(fresh_db, store, day1, judged=True)
    other = _seed_day(fresh_db, store, day1 + timedelta(days=1), judged=True)
    report = apply_retention(fresh_db, today=day1 + timedelta(days=2), keep_days=1, delete_object=store.delete)
    assert f"runs_p{day1:%Y%m%d}" in report.dropped and report.runs_kept == 0
    assert _count(fresh_db, "SELECT count(*) AS n FROM run_labels WHERE run_id = %s", judged) == 0
    assert _count(fresh_db, "SELECT count(*) AS n FROM run_labels WHERE run_id = %s", other) == 1
