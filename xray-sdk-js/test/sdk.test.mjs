// The SDK's behaviour as a pipeline sees it (as tests/test_sdk_modes.py, test_sdk_edges.py and
// test_candidate_ids.py): step forms, nesting through AsyncLocalStorage, the two modes, and
// values that must never make the SDK throw.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Client, XRayContractError, XRayDeliveryError, currentRun, currentStep, step, summarize, sample } from "../dist/esm/index.js";
import { captureItems } from "../dist/esm/testing.js";
import { fast, scriptedServer, waitUntil } from "./support/scripted_server.mjs";

function capturing(t, options = {}) {
  const xray = new Client("http://127.0.0.1:9", fast({}, options));
  t.after(() => xray.close(0));
  const items = captureItems(xray);
  const events = () => items.filter((i) => i.kind === "event").map((i) => i.body);
  return { xray, items, events };
}

test("async steps record their parent, also when siblings run concurrently", async (t) => {
  const { xray, events } = capturing(t);
  await xray.withRun("p", "e", async (run) => {
    await run.step("outer", "custom", async (outer) => {
      assert.equal(currentStep(), outer);
      assert.equal(currentRun(), run);
      await Promise.all(
        [1, 2, 3].map((i) =>
          run.step(`inner_${i}`, "search", async (inner) => {
            await new Promise((r) => setTimeout(r, 5 * (4 - i)));
            assert.equal(currentStep(), inner);
            inner.metrics({ i });
          }),
        ),
      );
    });
  });
  const byName = Object.fromEntries(events().filter((e) => e.type === "step_end").map((e) => [e.name, e]));
  for (const i of [1, 2, 3]) assert.equal(byName[`inner_${i}`].parent_step_id, byName.outer.step_id);
  assert.equal(byName.outer.parent_step_id, undefined);
  assert.equal(events().at(-1).type, "run_finish");
});

test("step() wraps a function so each call inside a run is a step, and outside a run it simply runs", async (t) => {
  const { xray, events } = capturing(t);
  const rank = step("rank_candidates", "rank", (candidates) => {
    currentStep()?.candidates(candidates, candidates.slice(0, 2)).why("top two"); // null outside a run
    return candidates.slice(0, 2);
  });
  assert.deepEqual(rank([1, 2, 3]), [1, 2]); // no run: no step, same result
  const result = xray.withRun("p", "e", () => rank([3, 2, 1]));
  assert.deepEqual(result, [3, 2]);
  const end = events().find((e) => e.name === "rank_candidates");
  assert.deepEqual(end.metrics, { candidates_in: 3, candidates_out: 2, drop_ratio: 1 - 2 / 3 });
});

test("an error escaping a step or a run is recorded and rethrown unchanged", async (t) => {
  const { xray, events } = capturing(t);
  const boom = new RangeError("out of range");
  await assert.rejects(
    xray.withRun("p", "e", async (run) => {
      await run.step("s", "custom", async () => {
        throw boom;
      });
    }),
    (error) => error === boom,
  );
  const [end, finish] = events();
  assert.equal(end.status, "error");
  assert.equal(end.error.type, "RangeError");
  assert.equal(finish.status, "error");
  assert.equal(finish.error.message, "out of range");
  // Anything thrown, not only an Error, is rethrown as it was.
  assert.throws(() => xray.startRun("p", "e").step("s", "custom", () => { throw "a string"; }), (e) => e === "a string");
});

test("strict mode throws a contract mistake at the step, after recording it", (t) => {
  const { xray, events } = capturing(t, { mode: "strict" });
  const run = xray.startRun("p", "e");
  assert.throws(() => run.step("typo", "fitler", () => null), XRayContractError);
  assert.throws(() => run.step("f", "filter", (s) => s.metrics({ candidates_in: 10, candidates_out: 5, drop_ratio: 0.9 })), /drop_ratio/);
  assert.deepEqual(events().at(-1).metrics, { candidates_in: 10, candidates_out: 5, drop_ratio: 0.5 });
  assert.throws(() => run.step("l", "llm", () => null), /missing_metric:model/);
});

test("strict mode never replaces the pipeline's own error", (t) => {
  const { xray } = capturing(t, { mode: "strict" });
  const mine = new Error("mine");
  assert.throws(() => xray.startRun("p", "e").step("l", "llm", () => { throw mine; }), (e) => e === mine);
});

test("strict flush rejects when events were lost", async (t) => {
  const server = await scriptedServer(t, "reject400");
  const xray = new Client(server.url, fast({}, { mode: "strict" }));
  t.after(() => xray.close(0));
  xray.startRun("p", "e").finish();
  await assert.rejects(xray.flush(5000), XRayDeliveryError);
});

test("best_effort keeps the step, counts the mistake, and warns once a process for an unknown type", (t) => {
  const { xray, events } = capturing(t);
  const warnings = [];
  const listen = (w) => warnings.push(w);
  process.on("warning", listen);
  t.after(() => process.off("warning", listen));
  const run = xray.startRun("p", "e");
  run.step("f", "filter", (s) => s.metrics({ candidates_in: 1, candidates_out: 5, bad: { nested: true } }));
  run.step("t1", "rnak", () => null);
  run.step("t2", "rnak", () => null);
  const [f, t1] = events();
  assert.deepEqual(f.metrics, { candidates_in: 1 });
  assert.equal(t1.step_type, "custom");
  assert.equal(t1.declared_type, "rnak");
  assert.ok(xray.stats().contractErrors >= 3);
  return new Promise((resolve) =>
    setImmediate(() => {
      assert.equal(warnings.filter((w) => w.name === "XRayContractWarning" && /rnak/.test(w.message)).length, 1);
      resolve();
    }),
  );
});

test("best_effort survives hostile values", (t) => {
  const { xray, events } = capturing(t);
  const cyclic = { a: 1 };
  cyclic.self = cyclic;
  const hostile = {
    get boom() {
      throw new Error("getter");
    },
  };
  const run = xray.startRun("p", "e", { metadata: cyclic, tags: { k: "v\u0000" } });
  run.step("s", "custom", (s) => {
    s.input(cyclic).output({ big: 10n ** 30n, nan: NaN, inf: -Infinity, fn() {}, map: new Map([["a", 1]]), set: new Set([1]) });
    s.artifact("bytes", Buffer.from([0xff, 0xfe]), { capture: "summary" });
    s.artifact("hostile", hostile, { capture: "summary" });
    s.why({ not: "a string" });
    s.metrics(null);
    s.keep(hostile);
    s.reject(cyclic, null);
    s.candidates(new Proxy([], { get: () => { throw new Error("length"); } }), 0); // a count that cannot be read
  });
  const [end] = events();
  assert.equal(end.input.self, "<cycle>");
  assert.deepEqual(end.output, { big: "1000000000000000000000000000000", nan: "NaN", inf: "-Infinity", fn: "<function fn>", map: { a: 1 }, set: [1] });
  assert.equal(end.artifacts[0].payload, "base64://4=");
  assert.equal(end.rejections.unspecified, 1);
  assert.equal(xray.stats().internalErrors, 0);
});

test("a disabled client runs the pipeline and sends nothing", (t) => {
  const { xray, items } = capturing(t, { disabled: true });
  const result = xray.withRun("p", "e", (run) => run.step("s", "search", () => 42));
  assert.equal(result, 42);
  assert.equal(items.length, 0);
});

test("bad settings fall back to safe defaults, and a bad endpoint disables the client", (t) => {
  const logged = [];
  const xray = new Client("not a url", { mode: "loose", capture: "everything", logger: (m) => logged.push(m) });
  t.after(() => xray.close(0));
  assert.equal(xray.mode, "best_effort");
  assert.equal(xray.capture, "summary");
  assert.equal(xray.disabled, true);
  assert.equal(logged.length, 3);
});

test("an artifact too large, or above the step's capture, is not sent; the step keeps its metrics", (t) => {
  const { xray, events } = capturing(t);
  xray.startRun("p", "e").step("f", "filter", (s) => {
    s.candidates(10, 1);
    s.artifact("huge", "x".repeat(2 * 1024 * 1024), { capture: "summary" });
    s.artifact("rejected", [1, 2], { capture: "full" });
  });
  const [end] = events();
  assert.deepEqual(end.artifacts.map((a) => a.dropped), ["too_large", "capture_policy"]);
  assert.equal(end.metrics.candidates_out, 1);
  assert.deepEqual(xray.stats().artifacts, { kept: 0, dropped: { too_large: 1, capture_policy: 1 } });
});

test("a startStep step ends by hand and records its parent", (t) => {
  const { xray, events } = capturing(t);
  const run = xray.startRun("p", "e");
  run.step("outer", "custom", () => {
    const manual = run.startStep("manual", "search", { input: { q: 1 } });
    manual.metrics({ results: 3 }).end();
    manual.end(); // a second end changes nothing
  });
  const [manual, outer] = events();
  assert.equal(manual.parent_step_id, outer.step_id);
  assert.equal(events().length, 2);
});

test("summarize and sample make the summary and sample captures", () => {
  const items = [{ c: "a" }, { c: "b" }, { c: "a" }];
  assert.deepEqual(summarize(items, { fields: ["c"], examples: 1 }), { count: 3, examples: [{ c: "a" }], distributions: { c: { a: 2, b: 1 } } });
  const picked = sample([...Array(100).keys()], 5, 7);
  assert.deepEqual(picked, sample([...Array(100).keys()], 5, 7));
  assert.equal(picked.length, 5);
  assert.deepEqual([...picked].sort((a, b) => a - b), picked);
});

test("the CommonJS build exports the same API", async () => {
  const { createRequire } = await import("node:module");
  const cjs = createRequire(import.meta.url)("../dist/cjs/index.js");
  assert.equal(typeof cjs.Client, "function");
  assert.deepEqual(Object.keys(cjs).sort(), Object.keys(await import("../dist/esm/index.js")).sort());
});

test("the default client is made from the environment and replaced by configure()", async (t) => {
  const { configure, getClient, startRun, stats } = await import("../dist/esm/index.js");
  const server = await scriptedServer(t);
  const first = configure(server.url, fast());
  t.after(() => first.close(0));
  assert.equal(getClient(), first);
  startRun("one_line", "B0X").finish();
  assert.equal(stats().enqueued, 2);
  assert.equal(await first.flush(5000), true);
  assert.deepEqual(server.runs.map((r) => r.pipeline), ["one_line"]);
});

test("a client that is dropped is freed (its delivery's timer does not hold it) and what it queued still leaves", async (t) => {
  const { setFlagsFromString } = await import("node:v8");
  const { runInNewContext } = await import("node:vm");
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc");
  const server = await scriptedServer(t);
  let xray = new Client(server.url, fast());
  xray.startRun("p", "e").finish();
  const ref = new WeakRef(xray);
  xray = null;
  await new Promise((resolve) => setImmediate(resolve)); // a WeakRef is cleared only after the current job
  gc();
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  assert.equal(ref.deref(), undefined);
  await waitUntil(() => server.events.length === 1, "the dropped client's queued events never arrived");
  assert.equal(server.runs.length, 1);
});

test("a run id is a version-8 UUID that carries the day the run started, as the Python SDK's", (t) => {
  const { xray } = capturing(t);
  const ids = [xray.startRun("p", "e").runId, xray.startRun("p", "e").runId];
  const today = Math.floor(Date.now() / 86_400_000);
  for (const id of ids) {
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.ok([today - 1, today].includes(parseInt(id.slice(9, 13), 16)), id); // the day may turn between the two reads
  }
  assert.notEqual(ids[0].slice(0, 8), ids[1].slice(0, 8)); // neighbours differ from their first digits
});

test("too many metrics keep the standard ones first, and say how many there were", async () => {
  const { evaluateMetrics, DEFAULT_LIMITS } = await import("../dist/esm/index.js");
  const many = Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`m${i}`, i]));
  const verdict = evaluateMetrics("filter", { ...many, candidates_in: 10, candidates_out: 1 }, DEFAULT_LIMITS);
  assert.equal(Object.keys(verdict.metrics).length, 65); // 64 kept, and the derived drop_ratio
  assert.equal(verdict.metrics.candidates_in, 10);
  assert.equal(verdict.metrics.drop_ratio, 0.9);
  assert.match(verdict.errors.metrics, /has 72 entries; only the first 64/);
});
