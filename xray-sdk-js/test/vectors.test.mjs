// The shared test vectors (tests/vectors/sdk/*.json): the TypeScript SDK must send exactly the
// events each case says, as the Python SDK must (tests/test_sdk_vectors.py). The case format is
// described in tests/support/sdk_vectors.py.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Client, XRayError } from "../dist/esm/index.js";
import { captureItems, fixClockAndIds } from "../dist/esm/testing.js";

const VECTORS = join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..", "..", "tests", "vectors", "sdk");

/** Raised by a step whose case says `raise`; its name is the case's `type`. */
class VectorError extends Error {}

function vectorError(spec) {
  const error = new VectorError(spec.message);
  error.name = spec.type;
  return error;
}

function expecting(call, action) {
  try {
    action();
  } catch (error) {
    if (error instanceof XRayError && error.name === call.expect_error) return;
    if (error instanceof VectorError && !(error instanceof XRayError)) return;
    throw error;
  }
  if (call.expect_error) assert.fail(`${call.op} should have thrown ${call.expect_error}`);
}

function top(state, call) {
  switch (call.op) {
    case "start_run":
      state.run = state.client.startRun(call.pipeline, call.entity, {
        tags: call.tags,
        metadata: call.metadata,
        runId: call.run_id,
        capture: call.capture,
      });
      return;
    case "step":
      return runStep(state.run, call);
    case "finish":
      return state.run.finish(call.outcome, { status: call.status, error: call.error ? vectorError(call.error) : undefined });
    case "label":
      return state.client.label(call.run_id, call.label, { source: call.source, comment: call.comment, value: call.value });
    default:
      throw new Error(`unknown call ${call.op}`);
  }
}

function runStep(run, call) {
  const options = { input: call.input, capture: call.capture, idField: call.id_field };
  run.step(
    call.name,
    call.type,
    (step) => {
      for (const inner of call.calls ?? []) {
        expecting(inner, () => (inner.op === "step" ? runStep(run, inner) : record(step, inner)));
      }
      if (call.raise) throw vectorError(call.raise);
    },
    options,
  );
}

function record(step, call) {
  switch (call.op) {
    case "metrics":
      return step.metrics(call.values);
    case "candidates":
      return step.candidates(call.before, call.after);
    case "keep":
      return step.keep(call.candidate, call.id);
    case "reject":
      return step.reject(call.candidate, call.reason, call.id);
    case "decide":
      return step.decide(call.kept, call.rejected);
    case "model":
      return step.model(call.name, call.temperature);
    case "why":
      return step.why(call.text);
    case "input":
      return step.input(call.value);
    case "output":
      return step.output(call.value);
    case "artifact":
      return step.artifact(call.name, call.payload, call.capture ? { capture: call.capture } : {});
    default:
      throw new Error(`unknown step call ${call.op}`);
  }
}

function eventsOf(testCase) {
  const options = testCase.client ?? {};
  const client = new Client("http://127.0.0.1:9", { mode: options.mode, capture: options.capture, logger: () => {} });
  const captured = captureItems(client);
  const restore = fixClockAndIds({ start: "2026-01-01T00:00:00", tickMicros: 1000 });
  try {
    const state = { client, run: null };
    for (const call of testCase.calls) expecting(call, () => top(state, call));
  } finally {
    restore();
    void client.close(0);
  }
  return captured.map(({ kind, runId, body }) => {
    if (body.error?.stack) body.error.stack = "<stack>";
    return { kind, run_id: runId, body };
  });
}

const files = readdirSync(VECTORS).filter((name) => name.endsWith(".json")).sort();

test("there are shared vectors to check", () => assert.ok(files.length >= 10, `only ${files.length} in ${VECTORS}`));

for (const name of files) {
  const testCase = JSON.parse(readFileSync(join(VECTORS, name), "utf8"));
  test(`vector ${name}: ${testCase.description}`, () => {
    assert.deepStrictEqual(eventsOf(testCase), testCase.events);
  });
}
