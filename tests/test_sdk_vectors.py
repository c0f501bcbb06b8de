"""The shared test vectors (tests/vectors/sdk/): the Python SDK sends exactly the events each case
says; the TypeScript SDK is held to the same files (tests/test_sdk_js.py runs its suite)."""

import json

import pytest

from tests.support.sdk_vectors import cases, events_of


@pytest.mark.parametrize("path", cases(), ids=lambda p: p.stem)
def test_the_python_sdk_sends_exactly_the_events_of_each_shared_vector(path):
    case = json.loads(path.read_text(encoding="utf-8"))
    assert events_of(case) == case["events"], case["description"]


def test_there_are_vectors_for_every_kind_of_call():
    calls = set()

    def walk(items):
        for call in items:
            calls.add(call["op"])
            walk(call.get("calls", []))

    for path in cases():
        walk(json.loads(path.read_text(encoding="utf-8"))["calls"])
    assert calls >= {
        "start_run", "step", "finish", "label", "metrics", "candidates", "keep", "reject", "decide",
        "model", "why", "input", "output", "artifact",
    }  # fmt: skip
