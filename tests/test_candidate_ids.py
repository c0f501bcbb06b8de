"""Candidates in the evidence carry their id when one is known (`id=` on keep/reject, else the
step's `id_field`), so `why-dropped` can find any candidate; without an id the evidence keeps
its plain shape."""

from dataclasses import dataclass

import pytest

import xray_sdk
from tests.support.scripted_server import ScriptedServer
from xray_sdk.contract.limits import DEFAULT_LIMITS
from xray_sdk.decisions import Decisions


@dataclass
class Rec:
    rec_id: int
    title: str


@pytest.fixture()
def server():
    running = ScriptedServer().start()
    yield running
    running.stop()


def evidence(server, client, name):
    assert client.flush(5)
    end = next(e for e in server.events if e["type"] == "step_end" and e["name"] == name)
    return {a["name"]: a["payload"] for a in end.get("artifacts", []) if "payload" in a}


def test_without_ids_the_evidence_keeps_its_plain_shape():
    d = Decisions(DEFAULT_LIMITS, keep_all=True)
    d.keep({"sku": "A"})
    d.reject({"sku": "B"}, "too_far")
    assert d.kept_evidence() == [{"sku": "A"}]
    assert d.rejected_sample() == [{"reason": "too_far", "candidate": {"sku": "B"}}]
    assert d.rejected_all_evidence() == [{"reason": "too_far", "candidate": {"sku": "B"}}]


def test_id_field_is_read_as_a_mapping_key():
    d = Decisions(DEFAULT_LIMITS, keep_all=True, id_field="sku")
    d.keep({"sku": "A"})
    d.reject({"sku": "B"}, "too_far")
    assert d.kept_evidence() == [{"id": "A", "candidate": {"sku": "A"}}]
    assert d.rejected_sample() == [{"reason": "too_far", "id": "B", "candidate": {"sku": "B"}}]
    assert d.rejected_all_evidence() == [{"reason": "too_far", "id": "B", "candidate": {"sku": "B"}}]


def test_id_field_is_read_as_an_attribute_and_made_a_string():
    d = Decisions(DEFAULT_LIMITS, keep_all=False, id_field="rec_id")
    kept, dropped = Rec(7, "kept"), Rec(8, "dropped")
    d.keep(kept)
    d.reject(dropped, "stale")
    assert d.kept_evidence() == [{"id": "7", "candidate": kept}]
    assert d.rejected_sample() == [{"reason": "stale", "id": "8", "candidate": dropped}]


def test_an_explicit_id_wins_over_the_id_field():
    d = Decisions(DEFAULT_LIMITS, keep_all=False, id_field="sku")
    d.keep({"sku": "A"}, id="mine-1")
    d.reject({"sku": "B"}, "too_far", id=42)
    assert d.kept_evidence() == [{"id": "mine-1", "candidate": {"sku": "A"}}]
    assert d.rejected_sample() == [{"reason": "too_far", "id": "42", "candidate": {"sku": "B"}}]


def test_a_candidate_without_the_field_keeps_the_plain_shape():
    d = Decisions(DEFAULT_LIMITS, keep_all=False, id_field="sku")
    d.keep({"other": 1})
    d.keep("just text")
    d.reject({"sku": None}, "no_sku")
    assert d.kept_evidence() == [{"other": 1}, "just text"]
    assert d.rejected_sample() == [{"reason": "no_sku", "candidate": {"sku": None}}]


def test_ids_are_bounded_like_names():
    d = Decisions(DEFAULT_LIMITS, keep_all=False)
    d.keep("c", id="x" * 1000)
    assert d.kept_evidence()[0]["id"] == "x" * DEFAULT_LIMITS.max_name_chars


def test_a_steps_id_field_reaches_the_evidence_it_sends(server):
    client = xray_sdk.Client(server.url, capture="full")
    recs = [Rec(i, f"t{i}") for i in range(4)]
    with client.start_run("p", "e") as run, run.step("dedupe", "filter", id_field="rec_id") as step:
        step.decide(recs[:1], [(r, "duplicate") for r in recs[1:3]])
        step.reject(recs[3], "stale", id="R-3")
    payloads = evidence(server, client, "dedupe")
    assert payloads["kept_sample"] == [{"id": "0", "candidate": {"rec_id": 0, "title": "t0"}}]
    assert payloads["rejected_sample"] == [
        {"reason": "duplicate", "id": "1", "candidate": {"rec_id": 1, "title": "t1"}},
        {"reason": "duplicate", "id": "2", "candidate": {"rec_id": 2, "title": "t2"}},
        {"reason": "stale", "id": "R-3", "candidate": {"rec_id": 3, "title": "t3"}},
    ]
    assert [e["id"] for e in payloads["rejected_all"]] == ["1", "2", "R-3"]
    client.close()


def test_the_decorator_takes_an_id_field(server):
    client = xray_sdk.Client(server.url, capture="sample")

    @xray_sdk.step("pick", "select", id_field="sku")
    def pick(candidates):
        step = xray_sdk.current_step()
        for c in candidates:
            step.keep(c) if c["sku"] == "A" else step.reject(c, "not_a")

    with client.start_run("p", "e"):
        pick([{"sku": "A"}, {"sku": "B"}])
    payloads = evidence(server, client, "pick")
    assert payloads["kept_sample"] == [{"id": "A", "candidate": {"sku": "A"}}]
    assert payloads["rejected_sample"] == [{"reason": "not_a", "id": "B", "candidate": {"sku": "B"}}]
    client.close()


def test_an_id_field_that_is_not_a_string_is_a_contract_error(server):
    client = xray_sdk.Client(server.url, capture="sample")
    with client.start_run("p", "e") as run, run.step("f", "select", id_field=3) as step:
        step.keep({"sku": "A"})
    assert evidence(server, client, "f")["kept_sample"] == [{"sku": "A"}]
    assert client.stats()["contract_errors"] == 1
    client.close()
