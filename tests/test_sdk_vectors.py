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


def test_the_test_hook_fixes_every_module_that_stamps_events():
    """`xray_sdk.testing` replaces the clock and id functions where they are imported by name: a
    module that starts to import one must be added to its list, or the vectors see real ones."""
    import ast
    from pathlib import Path

    from xray_sdk import testing

    stamping = set()
    for path in (Path(testing.__file__).parent).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and any(a.name in testing._NAMES for a in node.names):
                stamping.add(path.stem)
    assert {"client", "run", "steps"} <= stamping
    assert stamping - {"testing"} <= {m.__name__.rsplit(".", 1)[-1] for m in testing._STAMPED}
