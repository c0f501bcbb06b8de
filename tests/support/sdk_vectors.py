"""The shared SDK test vectors (`tests/vectors/sdk/*.json`): calls on a client, a run and its
steps, and the exact events they must produce with the clock and ids fixed. This module drives
the Python SDK through a case; `xray-sdk-js/test/vectors.test.mjs` drives the TypeScript SDK
through the same files, so the two SDKs cannot drift.

A case: `{"description", "client": {"mode", "capture"}, "calls": [...], "events": [...]}`.
Calls: `start_run` (pipeline, entity, tags, metadata, run_id, capture), `step` (name, type, input,
capture, id_field, `calls` made inside it, then `raise`: {type, message}), the step's recording
calls (`metrics` values, `candidates` before/after, `keep` candidate/id, `reject`
candidate/reason/id, `decide` kept/rejected, `model` name/temperature, `why` text, `input` value,
`output` value, `artifact` name/payload/capture), `finish` (outcome, status, error) and `label`
(run_id, label, source, comment, value). Any call may say `"expect_error": "XRayContractError"`.
Events: `{"kind": "run" | "event" | "label", "run_id", "body"}`; an error's `stack` is compared
as "<stack>" (each language writes its own).

`python -m tests.support.sdk_vectors --write` fills each case's `events` from the Python SDK,
for a new case or a deliberate change of the contract: review the diff, then make the
TypeScript SDK pass it too.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import xray_sdk
from xray_sdk.testing import capture_items, decoded, fixed_clock_and_ids

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "sdk"
START = "2026-01-01T00:00:00"
TICK_MICROS = 1000


def cases() -> list[Path]:
    """Every vector file, in name order."""
    return sorted(VECTORS.glob("*.json"))


def events_of(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The events the Python SDK sends for `case`'s calls, stacks normalised."""
    options = case.get("client", {})
    client = xray_sdk.Client("http://127.0.0.1:9", mode=options.get("mode"), capture=options.get("capture"))
    try:
        items = capture_items(client)
        with fixed_clock_and_ids(START, TICK_MICROS), warnings.catch_warnings():
            warnings.simplefilter("ignore", xray_sdk.XRayContractWarning)
            state: dict[str, Any] = {"client": client, "run": None}
            for call in case["calls"]:
                _expecting(call, lambda call=call: _top(state, call))
        return normalised(decoded(items))
    finally:
        client.close(0)


def normalised(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`events` with every error stack replaced by "<stack>"."""
    for event in events:
        error = event["body"].get("error")
        if isinstance(error, dict) and error.get("stack"):
            error["stack"] = "<stack>"
    return events


class VectorError(Exception):
    """Raised by a step whose case says `raise`; its class name is the case's `type`."""


def _expecting(call: dict[str, Any], action: Any) -> None:
    expected = call.get("expect_error")
    try:
        action()
    except xray_sdk.XRayError as exc:
        if type(exc).__name__ != expected:
            raise
        return
    except VectorError:
        return  # the step recorded it; the pipeline's own error is not the SDK's business
    if expected:
        raise AssertionError(f"{call['op']} should have raised {expected}")


def _top(state: dict[str, Any], call: dict[str, Any]) -> None:
    op = call["op"]
    client = state["client"]
    if op == "start_run":
        args = {k: call[k] for k in ("tags", "metadata", "run_id", "capture") if k in call}
        state["run"] = client.start_run(call["pipeline"], call["entity"], **args)
    elif op == "step":
        _step(state["run"], call)
    elif op == "finish":
        error = _error(call["error"]) if "error" in call else None
        state["run"].finish(call.get("outcome"), status=call.get("status"), error=error)
    elif op == "label":
        args = {k: call[k] for k in ("source", "comment", "value") if k in call}
        client.label(call["run_id"], call["label"], **args)
    else:
        raise ValueError(f"unknown call {op!r}")


def _step(run: xray_sdk.Run, call: dict[str, Any]) -> None:
    args = {k: call[k] for k in ("input", "capture", "id_field") if k in call}
    with run.step(call["name"], call["type"], **args) as step:
        for inner in call.get("calls", []):
            if inner["op"] == "step":
                _expecting(inner, lambda inner=inner: _step(run, inner))
            else:
                _expecting(inner, lambda inner=inner: _record(step, inner))
        if "raise" in call:
            raise _error(call["raise"])


def _record(step: xray_sdk.Step, call: dict[str, Any]) -> None:
    op = call["op"]
    if op == "metrics":
        step.metrics(call["values"])
    elif op == "candidates":
        step.candidates(call["before"], call["after"])
    elif op == "keep":
        step.keep(call["candidate"], call.get("id"))
    elif op == "reject":
        step.reject(call["candidate"], call["reason"], call.get("id"))
    elif op == "decide":
        step.decide(call["kept"], [tuple(pair) for pair in call["rejected"]])
    elif op == "model":
        step.model(call["name"], call.get("temperature"))
    elif op in ("why", "input", "output"):
        getattr(step, op)(call["text" if op == "why" else "value"])
    elif op == "artifact":
        step.artifact(call["name"], call["payload"], **({"capture": call["capture"]} if "capture" in call else {}))
    else:
        raise ValueError(f"unknown step call {op!r}")


def _error(spec: dict[str, str]) -> VectorError:
    kind = type(spec["type"], (VectorError,), {})
    return kind(spec["message"])


def main(argv: list[str]) -> int:
    """`--write`: fill each case's `events` from the Python SDK."""
    if argv != ["--write"]:
        print(__doc__)
        return 2
    for path in cases():
        case = json.loads(path.read_text(encoding="utf-8"))
        case["events"] = events_of(case)
        # ASCII with escapes: a case may hold text no encoding can write (an unpaired surrogate).
        path.write_text(json.dumps(case, indent=2, ensure_ascii=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
