"""`GET /api/v1/patterns` on windows with known answers: one noisy attribute among decoys, two
attributes that matter only together, random failures (nothing to report), labels as the
predicate, and a failure that starts mid-window."""

from __future__ import annotations

import json
import random
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from math import comb

import pytest
from click.testing import CliRunner
from psycopg import sql
from psycopg.pq import TransactionStatus

from tests.support.events import new_id, step_end
from tests.support.openapi import conforms
from xray_cli import main
from xray_server import ingest
from xray_server.analysis.patterns import scored
from xray_server.analysis.significance import fisher_greater
from xray_server.query.patterns import Counts

NOW = datetime.now(UTC).replace(microsecond=0)


def record(db, pipeline, *, bad, tags, model="gpt-large", metadata=None, at=None):
    """One run: an llm step with its model, then a filter that drops 95% when the run is bad."""
    run_id = new_id()
    at = at or NOW - timedelta(minutes=30)
    ingest.create_run(
        db,
        {
            "run_id": run_id,
            "pipeline": pipeline,
            "entity": run_id[:8],
            "tags": tags,
            "metadata": metadata or {"title": f"product {run_id[:8]}"},
            "started_at": at.isoformat(),
        },
    )
    kept = 5 if bad else 60
    ingest.ingest_events(
        db,
        run_id,
        {
            "events": [
                step_end(
                    new_id(),
                    0,
                    "generate_keywords",
                    "llm",
                    at=(at + timedelta(seconds=1)).isoformat(),
                    metrics={"model": model},
                ),
                step_end(
                    new_id(),
                    1,
                    "compat_filter",
                    "filter",
                    at=(at + timedelta(seconds=2)).isoformat(),
                    metrics={"candidates_in": 100, "candidates_out": kept},
                ),
                {
                    "event_id": new_id(),
                    "type": "run_finish",
                    "ts": (at + timedelta(seconds=3)).isoformat(),
                    "status": "ok",
                    "outcome": {"correct": not bad},
                },
            ]
        },
    )
    return run_id


def decoys(rng):
    return {"shard": rng.choice("abcd"), "market": rng.choice(["au", "nz", "uk"])}


def patterns(client, pipeline, query="step_type=filter&min_drop_ratio=0.9", since="2d"):
    answer = client.get(f"/api/v1/patterns?pipeline={pipeline}&since={since}&{query}")
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def test_one_noisy_attribute_is_found_among_decoys(db, client, pipeline):
    rng = random.Random(1)
    for _ in range(300):
        version = rng.choice(["4.1", "4.2", "4.3"])
        bad = rng.random() < (0.6 if version == "4.2" else 0.02)
        record(db, pipeline, bad=bad, tags={"app_version": version, **decoys(rng)})
    answer = patterns(client, pipeline)
    top = answer["patterns"][0]
    assert top["attributes"] == {"tags.app_version": "4.2"}
    assert 0.8 <= top["support"] < 1 and top["other"] > 0  # noisy: not every bad run, not only bad runs
    assert top["p_value"] < 0.001 and top["risk_ratio"] > 5
    listed = {name for p in answer["patterns"] for name in p["attributes"]}
    assert not listed & {"tags.shard", "tags.market", "metadata.title"}
    components = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    assert answer["timeline"]["pattern"] is not None
    assert conforms(answer, components["Patterns"], components), answer


def test_two_attributes_that_matter_only_together_are_reported_as_a_pair(db, client, pipeline):
    rng = random.Random(2)
    for _ in range(400):
        version, market = rng.choice(["4.1", "4.2"]), rng.choice(["au", "nz", "uk"])
        bad = (version == "4.2" and market == "au") if rng.random() > 0.03 else version != "4.2"
        record(db, pipeline, bad=bad, tags={"app_version": version, "market": market, "shard": rng.choice("ab")})
    top = patterns(client, pipeline)["patterns"][0]
    assert top["attributes"] == {"tags.app_version": "4.2", "tags.market": "au"}
    assert top["precision"] > 0.9


def test_a_window_of_random_failures_reports_nothing(db, client, pipeline):
    rng = random.Random(3)
    for _ in range(300):
        record(
            db,
            pipeline,
            bad=rng.random() < 0.15,
            tags={"app_version": rng.choice(["4.1", "4.2", "4.3"]), **decoys(rng)},
            model=rng.choice(["gpt-large", "gpt-small"]),
            metadata={"region": rng.choice(["eu", "us"])},
        )
    answer = patterns(client, pipeline)
    assert answer["bad_runs"] > 20
    assert answer["patterns"] == []
    text = CliRunner().invoke(main, ["patterns", "--help"]).output
    assert "--label" in text


def test_labels_are_a_predicate_and_step_models_are_attributes(db, client, pipeline):
    rng = random.Random(4)
    for _ in range(200):
        model = rng.choice(["gpt-large", "gpt-small"])
        run_id = record(db, pipeline, bad=False, tags=decoys(rng), model=model)
        # The judgement arrives later: a reviewer found the small model's matches wrong.
        if model == "gpt-small" and rng.random() < 0.7:
            client.post(f"/api/v1/runs/{run_id}/labels", json={"label": "bad", "source": "review"})
    answer = patterns(client, pipeline, "label=bad")
    assert answer["patterns"][0]["attributes"] == {"steps.generate_keywords.model": "gpt-small"}
    assert answer["patterns"][0]["other"] > 0


def test_the_timeline_says_when_runs_with_the_pattern_started_to_go_bad(db, client, pipeline):
    rng = random.Random(5)
    start = NOW - timedelta(hours=40)
    for i in range(240):
        at = start + timedelta(minutes=10 * i)
        version = rng.choice(["4.1", "4.2"])
        broken = version == "4.2" and at >= start + timedelta(hours=20)  # a bad release, half-way
        record(db, pipeline, bad=broken, tags={"app_version": version, **decoys(rng)}, at=at)
    answer = patterns(client, pipeline, since="41h")
    timeline = answer["timeline"]
    assert answer["patterns"][0]["attributes"] == {"tags.app_version": "4.2"}
    pattern = timeline["pattern"]
    turned = start + timedelta(hours=20)
    first_bad = datetime.fromisoformat(pattern["first_bad"].replace("Z", "+00:00"))
    last_good = datetime.fromisoformat(pattern["last_good_before"].replace("Z", "+00:00"))
    assert last_good < turned <= first_bad <= turned + timedelta(hours=1)
    assert timeline["bucket_seconds"] == 3600
    early = [b for b in timeline["buckets"] if b["start"] < (start + timedelta(hours=19)).isoformat()]
    late = [b for b in timeline["buckets"] if b["start"] >= (start + timedelta(hours=21)).isoformat()]
    assert all(b["bad"] == 0 for b in early) and sum(b["bad"] for b in late) > 0


def test_a_predicate_is_required_and_named(client, pipeline):
    answer = client.get(f"/api/v1/patterns?pipeline={pipeline}")
    assert answer.status_code == 400
    assert "predicate" in answer.get_json()["error"]["details"]["fields"]


def test_the_counts_of_one_request_come_from_one_snapshot(db, client, pipeline, monkeypatch):
    """Bad runs committed between the statements of one request (the window ends at now, so runs
    keep arriving) are seen by neither: statement 2 never counts more bad runs than statement 1."""
    for i in range(30):
        record(db, pipeline, bad=i < 10, tags={"app_version": "4.2" if i < 10 else "4.1"})
    arrived = []
    lend = db.connection

    def arrive_late():
        arrived.append(True)  # first: the runs below borrow connections through `spied` too
        for _ in range(15):
            record(db, pipeline, bad=True, tags={"app_version": "4.2"})

    @contextmanager
    def spied():
        with lend() as conn:
            execute = conn.execute

            def between_the_statements(query, *args, **kwargs):
                text = query.as_string(conn) if isinstance(query, sql.Composable) else str(query)
                if "step_masks" in text and not arrived:  # statement 2 is next: runs arrive first
                    arrive_late()
                return execute(query, *args, **kwargs)

            conn.execute = between_the_statements
            try:
                yield conn
            finally:
                del conn.execute
            # The snapshot's isolation level was its transaction's: the connection goes back as it came.
            assert conn.info.transaction_status == TransactionStatus.IDLE and conn.isolation_level is None
            assert conn.execute("SHOW transaction_isolation").fetchone()["transaction_isolation"] == "read committed"

    monkeypatch.setattr(db, "connection", spied)
    answer = patterns(client, pipeline)
    assert arrived, "statement 2 never ran"
    assert (answer["runs"], answer["bad_runs"]) == (30, 10)
    buckets = answer["timeline"]["buckets"]  # counted by statement 2
    assert (sum(b["runs"] for b in buckets), sum(b["bad"] for b in buckets)) == (30, 10)
    assert all(p["bad"] <= answer["bad_runs"] for p in answer["patterns"])
    top = answer["patterns"][0]
    assert top["attributes"] == {"tags.app_version": "4.2"} and (top["bad"], top["other"]) == (10, 0)
    monkeypatch.undo()
    later = patterns(client, pipeline)  # the next request sees the runs that arrived
    assert (later["runs"], later["bad_runs"], later["patterns"][0]["bad"]) == (45, 25, 25)


@pytest.mark.parametrize("table", [(3, 1, 1, 3), (10, 2, 3, 15), (0, 5, 5, 0), (7, 0, 0, 9), (1, 9, 9, 1)])
def test_the_fisher_tail_matches_exact_arithmetic(table):
    a, b, c, d = table
    with_value, bad, total = a + b, a + c, a + b + c + d
    exact = sum(
        Fraction(comb(bad, x) * comb(total - bad, with_value - x), comb(total, with_value))
        for x in range(a, min(with_value, bad) + 1)
    )
    assert fisher_greater(a, b, c, d) == pytest.approx(float(exact), rel=1e-9)


@pytest.mark.parametrize("table", [(25, 0, -15, 20), (-1, 3, 2, 4), (3, -1, 2, 4), (3, 1, 2, -4)])
def test_the_fisher_tail_refuses_an_impossible_table(table):
    with pytest.raises(ValueError, match="negative cell"):
        fisher_greater(*table)


def test_the_cli_prints_the_pattern(db, xray_server, pipeline):
    rng = random.Random(6)
    for _ in range(120):
        feed = rng.choice("AB")
        record(db, pipeline, bad=feed == "B", tags={"feed": feed, **decoys(rng)})
    out = CliRunner().invoke(
        main,
        [
            "patterns",
            "--url",
            xray_server.base_url,
            "--pipeline",
            pipeline,
            "--type",
            "filter",
            "--min-drop-ratio",
            "0.9",
            "--since",
            "2d",
        ],
    )
    assert out.exit_code == 0, out.output
    assert "tags.feed=B" in out.output
    assert "Bad runs per " in out.output and "▕" in out.output, out.output
    data = json.loads(
        CliRunner()
        .invoke(
            main,
            [
                "patterns",
                "--url",
                xray_server.base_url,
                "--pipeline",
                pipeline,
                "--type",
                "filter",
                "--min-drop-ratio",
                "0.9",
                "--since",
                "2d",
                "--json",
            ],
        )
        .output
    )
    assert data["patterns"][0]["attributes"] == {"tags.feed": "B"} and data["patterns"][0]["other"] == 0
    # A good predicate leaves out every run it does not cover (none is labelled here), and says so.
    judged = CliRunner().invoke(
        main,
        ["patterns", "--url", xray_server.base_url, "--pipeline", pipeline, "--since", "2d"]
        + ["--type", "filter", "--min-drop-ratio", "0.9", "--good-label", "ok"],
    )
    assert judged.exit_code == 0, judged.output
    bad = data["bad_runs"]
    assert f"good runs are labelled ok, and {120 - bad} runs neither bad nor good were left out" in judged.output


def test_a_pattern_is_scored_from_its_table_without_a_database():
    attribute = ("tags", "", "app_version", "4.2")
    pattern = scored(Counts([attribute], bad=18, other=2), runs=100, bad_runs=20, tested=4)
    assert (pattern.support, pattern.precision) == (0.9, 0.9)
    assert pattern.risk_ratio == 0.9 / (2 / 80) and pattern.score == 0.9
    assert pattern.significant(min_support=0.2) and pattern.public()["risk_ratio"] == 36.0
    with pytest.raises(RuntimeError, match="inconsistent pattern counts"):
        scored(Counts([attribute], bad=25, other=0), runs=100, bad_runs=20, tested=4)


def test_unjudged_runs_are_left_out_when_good_runs_are_defined(db, client, pipeline):
    """20 bad runs with feed=B, 15 of them labelled bad and 5 not yet judged; 20 good runs with
    feed=A, labelled ok. Without a good predicate the 5 unjudged bad runs count as good (and lower
    the pattern's precision); with one they are left out, and said to be."""
    judged = []
    for i in range(40):
        bad = i < 20
        run_id = record(db, pipeline, bad=bad, tags={"feed": "B" if bad else "A"})
        if i < 15 or i >= 20:
            judged.append((run_id, "bad" if bad else "ok"))
    for run_id, verdict in judged:
        client.post(f"/api/v1/runs/{run_id}/labels", json={"label": verdict, "source": "review"})

    loose = patterns(client, pipeline, "label=bad")
    assert (loose["runs"], loose["bad_runs"], loose["unjudged"]) == (40, 15, 0)
    assert loose["good_runs_are"] == "every run that is not bad"
    assert loose["patterns"][0]["attributes"] == {"tags.feed": "B"} and loose["patterns"][0]["other"] == 5

    strict = patterns(client, pipeline, "label=bad&good_label=ok")
    assert (strict["runs"], strict["bad_runs"], strict["unjudged"]) == (35, 15, 5)
    top = strict["patterns"][0]
    assert top["attributes"] == {"tags.feed": "B"} and (top["bad"], top["other"], top["precision"]) == (15, 0, 1.0)
    components = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    assert conforms(strict, components["Patterns"], components), strict


def test_a_numeric_judgement_defines_bad_and_good_runs(db, client, pipeline):
    for i in range(30):
        bad = i < 12
        run_id = record(db, pipeline, bad=bad, tags={"feed": "B" if bad else "A"})
        if i % 10 != 9:  # one run in ten is not judged yet
            client.post(f"/api/v1/runs/{run_id}/labels", json={"label": "judge", "value": 0.2 if bad else 0.9})
    answer = patterns(client, pipeline, "value_below=0.5")
    assert (answer["bad_runs"], answer["unjudged"]) == (11, 3), answer
    assert answer["good_runs_are"] == "judged 0.5 or more"
    assert answer["patterns"][0]["attributes"] == {"tags.feed": "B"} and answer["patterns"][0]["other"] == 0


def test_a_wrong_outcome_defines_the_bad_runs(db, client, pipeline):
    rng = random.Random(9)
    feeds = [rng.choice("AB") for _ in range(60)]
    for feed in feeds:
        record(db, pipeline, bad=feed == "B", tags={"feed": feed})
    answer = patterns(client, pipeline, "outcome=correct:false")
    assert (answer["runs"], answer["bad_runs"]) == (60, feeds.count("B"))
    assert answer["patterns"][0]["attributes"] == {"tags.feed": "B"} and answer["patterns"][0]["other"] == 0
