// The TypeScript SDK against the real X-Ray under gunicorn (XRAY_TEST_ENDPOINT, set by
// tests/test_sdk_js.py from the pytest fixture that starts it): every step form arrives complete,
// in order, and is queryable; labels, rejections and contract violations are stored as the
// Python SDK's are.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { Client, step, currentStep } from "../dist/esm/index.js";

const endpoint = process.env.XRAY_TEST_ENDPOINT;
const skip = endpoint ? false : "XRAY_TEST_ENDPOINT is not set (tests/test_sdk_js.py sets it to a real X-Ray)";

async function get(path) {
  const response = await fetch(endpoint + path);
  assert.equal(response.status, 200, `${path}: ${response.status}`);
  return response.json();
}

function client(t, options = {}) {
  // The SDK's default transport timeout: on a busy two-core machine a large batch can take longer.
  const xray = new Client(endpoint, { mode: "strict", timeoutMs: 3000, logger: () => {}, delivery: { flushIntervalMs: 50 }, ...options });
  t.after(() => xray.close(0));
  return xray;
}

const decidedRank = step("decorated_rank", "rank", (candidates) => {
  currentStep().candidates(candidates, candidates.slice(0, 2)).why("top two by score");
  return candidates.slice(0, 2);
});

test("every step form arrives complete, in order, and queryable", { skip }, async (t) => {
  const xray = client(t);
  const pipeline = `pipeline-js-${randomUUID().slice(0, 10)}`;
  const run = xray.startRun(pipeline, "B0PHONECASE1", { tags: { category: "phone_case" }, metadata: { version: "v3" } });
  await run.within(async () => {
    const keywords = run.step("generate_keywords", "llm", (s) => {
      s.model("fake-llm-1", 0.2).output(["slim", "phone", "case"]);
      return ["slim", "phone", "case"];
    });
    const found = await run.step(
      "search_catalogue",
      "search",
      async (s) => {
        const hits = Array.from({ length: 50 }, (_, i) => ({ sku: `B${String(i).padStart(4, "0")}`, ok: i < 10 }));
        s.metrics({ results: hits.length }).why("50 hits");
        run.step("dedupe", "custom", (inner) => inner.metrics({ duplicates: 0 }));
        return hits;
      },
      { input: { keywords } },
    );
    const kept = run.step(
      "compat_filter",
      "filter",
      (s) => {
        const kept = [];
        for (const c of found) c.ok ? (kept.push(c), s.keep(c)) : s.reject(c, c.sku < "B0030" ? "category_mismatch" : "too_expensive");
        s.why("same category");
        return kept;
      },
      { idField: "sku" },
    );
    const ranked = decidedRank(kept);
    run.finish({ competitor: ranked[0].sku });
  });
  assert.equal(await xray.flush(15_000), true);
  const stats = xray.stats();
  assert.equal(stats.droppedTotal, 0);
  assert.equal(stats.sent, stats.enqueued);

  const view = await get(`/api/v1/runs/${run.runId}`);
  assert.equal(view.pipeline ?? view.run?.pipeline, pipeline);
  assert.deepEqual(
    view.steps.map((s) => [s.seq, s.name]),
    [
      [0, "generate_keywords"],
      [1, "search_catalogue"],
      [2, "dedupe"],
      [3, "compat_filter"],
      [4, "decorated_rank"],
    ],
  );
  const steps = Object.fromEntries(view.steps.map((s) => [s.name, s]));
  assert.equal(steps.dedupe.parent_step_id, steps.search_catalogue.step_id);
  assert.deepEqual(steps.generate_keywords.metrics, { model: "fake-llm-1", temperature: 0.2 });
  assert.deepEqual(steps.compat_filter.metrics, { candidates_in: 50, candidates_out: 10, drop_ratio: 0.8 });
  assert.deepEqual(steps.compat_filter.rejections, { category_mismatch: 20, too_expensive: 20 });
  assert.deepEqual(steps.search_catalogue.input, { keywords: ["slim", "phone", "case"] });
  for (const s of view.steps) assert.deepEqual(s.contract_violations ?? [], [], s.name);

  const across = await get(`/api/v1/steps?pipeline=${pipeline}&step_type=filter&min_drop_ratio=0.5`);
  assert.deepEqual(across.steps.map((s) => s.name), ["compat_filter"]);

  // At the default capture, the first 5 rejected of each reason are kept as ids: enough to answer.
  const why = JSON.stringify(await get(`/api/v1/runs/${run.runId}/why-dropped?candidate=B0011`));
  assert.match(why, /compat_filter/);
  assert.match(why, /category_mismatch/);
});

test("an unknown step type is stored as custom with the violation, and a label is stored", { skip }, async (t) => {
  const xray = client(t, { mode: "best_effort" });
  const pipeline = `pipeline-js-${randomUUID().slice(0, 10)}`;
  const run = xray.startRun(pipeline, "ticket-1");
  run.step("skills", "fitler", (s) => s.candidates(10, 4));
  run.step("llm_without_model", "llm", () => null);
  run.finish();
  xray.label(run.runId, "bad", { source: "review", comment: "wrong match", value: 0.2 });
  assert.equal(await xray.flush(15_000), true);
  const view = await get(`/api/v1/runs/${run.runId}`);
  assert.equal(view.steps[0].step_type, "custom");
  assert.deepEqual(view.steps[0].contract_violations, ["unknown_step_type:fitler"]);
  assert.deepEqual(view.steps[1].contract_violations, ["missing_metric:model"]);
  assert.deepEqual(
    view.labels.map((l) => [l.source, l.label, l.comment, l.value]),
    [["review", "bad", "wrong match", 0.2]],
  );
  const flagged = await get(`/api/v1/steps?pipeline=${pipeline}&violation=unknown_step_type`);
  assert.deepEqual(flagged.steps.map((s) => s.name), ["skills"]);
});

test("a burst of 5,000 steps across 50 runs is delivered and accounted for", { skip }, async (t) => {
  const xray = client(t, { mode: "best_effort" });
  const pipeline = `pipeline-js-${randomUUID().slice(0, 10)}`;
  for (let r = 0; r < 50; r++) {
    const run = xray.startRun(pipeline, `e${r}`);
    for (let i = 0; i < 100; i++) run.step(`s${i}`, "filter", (s) => s.candidates(100, i));
    run.finish();
  }
  assert.equal(await xray.flush(60_000), true);
  const stats = xray.stats();
  assert.equal(stats.enqueued, 50 * 102);
  assert.equal(stats.sent, stats.enqueued);
  const runs = await get(`/api/v1/runs?pipeline=${pipeline}&limit=100`);
  assert.equal(runs.runs.length, 50);
});
