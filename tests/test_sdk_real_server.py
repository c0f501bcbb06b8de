"""The SDK against the real X-Ray server under gunicorn: every step form arrives complete."""

import asyncio
import threading

import pytest

import xray_sdk
from tests.support.clients import REAL_SERVER_TIMEOUT
from tests.support.http import call


@xray_sdk.step("decorated_rank", "rank")
def decorated_rank(candidates):
    xray_sdk.current_step().candidates(candidates, candidates[:2]).why("top two by score")
    return candidates[:2]


@xray_sdk.step("async_select", "select")
async def async_select(candidates):
    await asyncio.sleep(0)
    xray_sdk.current_step().output({"chosen": candidates[0]})
    return candidates[0]


def fetch_run(server, run_id):
    status, view = call(server.base_url, "GET", f"/api/v1/runs/{run_id}")
    assert status == 200, view
    return view


def test_every_step_form_arrives_complete_and_in_order(xray_server, pipeline, sdk_client):
    client = sdk_client(xray_server.base_url, mode="strict", timeout=REAL_SERVER_TIMEOUT)
    with client.start_run(pipeline, "B0PHONECASE1", tags={"category": "phone_case"}) as run:
        keywords = run.step(
            "generate_keywords",
            "llm",
            lambda step, title: step.model("fake-llm-1", 0.2).output(title.split()) and title.split(),
            "slim phone case",
        )
        with run.step("search_catalogue", "search", input={"keywords": keywords}) as step:
            found = [f"B{i:04d}" for i in range(50)]
            step.metrics(results=len(found)).why("50 hits")
            with run.step("dedupe", "custom") as inner:  # nested: parentage recorded
                inner.metrics(duplicates=0)
        with run.step("compat_filter", "filter") as step:
            kept = found[:10]
            step.candidates(found, kept).why("same category").artifact("rejected", found[10:], capture="summary")
        ranked = decorated_rank(kept)
        chosen = asyncio.run(async_select(ranked))
        threads = [
            threading.Thread(target=lambda i=i: run.step(f"audit_{i}", "custom", lambda s: s.metrics(i=i)))
            for i in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        run.finish(outcome={"competitor": chosen})
    assert client.flush(10)
    stats = client.stats()
    assert stats["dropped_total"] == 0 and stats["sent"] == stats["enqueued"]

    view = fetch_run(xray_server, run.run_id)
    names = [s["name"] for s in view["steps"]]
    assert names[:6] == [
        "generate_keywords",
        "search_catalogue",
        "dedupe",
        "compat_filter",
        "decorated_rank",
        "async_select",
    ]
    assert sorted(names[6:]) == ["audit_0", "audit_1", "audit_2"]
    assert [s["seq"] for s in view["steps"]] == list(range(9))
    steps = {s["name"]: s for s in view["steps"]}
    assert steps["dedupe"]["parent_step_id"] == steps["search_catalogue"]["step_id"]
    assert steps["compat_filter"]["metrics"] == {"candidates_in": 50, "candidates_out": 10, "drop_ratio": 0.8}
    assert steps["compat_filter"]["artifacts"][0]["name"] == "rejected"
    assert steps["generate_keywords"]["metrics"] == {"model": "fake-llm-1", "temperature": 0.2}
    assert steps["search_catalogue"]["input"] == {"keywords": ["slim", "phone", "case"]}
    assert steps["async_select"]["output"] == {"chosen": "B0000"}
    assert view["status"] == "ok" and view["outcome"] == {"competitor": "B0000"}
    assert view["pipeline"] == pipeline and view["tags"] == {"category": "phone_case"}
    assert view["summary"]["contract_violations"] == 0


def test_an_exception_is_recorded_on_the_step_and_the_run_and_reraised_unchanged(xray_server, pipeline, sdk_client):
    client = sdk_client(xray_server.base_url, timeout=REAL_SERVER_TIMEOUT)

    class CatalogueDown(RuntimeError):
        pass

    original = CatalogueDown("catalogue timed out")
    with pytest.raises(CatalogueDown) as info, client.start_run(pipeline, "B0X") as run:
        run.step("search_catalogue", "search", lambda step: (_ for _ in ()).throw(original))
    assert info.value is original
    assert client.flush(10)
    view = fetch_run(xray_server, run.run_id)
    step = view["steps"][0]
    assert step["status"] == "error"
    assert step["error"]["type"].endswith("CatalogueDown")
    assert step["error"]["message"] == "catalogue timed out"
    assert "Traceback" in step["error"]["stack"]
    assert view["status"] == "error" and view["error"]["message"] == "catalogue timed out"
