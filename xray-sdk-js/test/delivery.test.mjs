// Delivery against real HTTP servers that misbehave (as tests/test_sdk_delivery.py): the
// pipeline never waits, memory stays bounded, stats reconcile, and what was still queued
// arrives once a healthy server is back.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Client } from "../dist/esm/index.js";
import { fast, reconciles, scriptedServer, sleep, waitUntil } from "./support/scripted_server.mjs";

// Retries never run out here: what a misbehaving server costs must show as pending, not dropped.
const PATIENT = { maxAttempts: 1000 };

function client(t, url, delivery = {}, options = {}) {
  const made = new Client(url, fast(delivery, options));
  t.after(() => made.close(0));
  return made;
}

/** A run of `steps` filter steps; returns whether every step returned before the SDK's first
 * request could have been answered (the scripted server holds a blackholed request until the
 * test ends): the steps never wait on the network. */
function runPipeline(xray, steps = 200) {
  const run = xray.startRun("delivery_test", "B0X");
  for (let i = 0; i < steps; i++) {
    run.step(`filter_${i}`, "filter", (step) => step.candidates(100, 10).why("kept ten"));
  }
  run.finish();
  return run;
}

for (const mode of ["blackhole", "error500", "throttle429", "close", "slow"]) {
  test(`a misbehaving server (${mode}) never blocks the pipeline, and delivery resumes when it heals`, async (t) => {
    const server = await scriptedServer(t, mode);
    const xray = client(t, server.url, PATIENT);
    runPipeline(xray); // synchronous: had a step waited on the network, nothing would be pending below
    const stats = xray.stats();
    assert.ok(reconciles(stats), JSON.stringify(stats));
    assert.equal(stats.sent, 0);
    assert.equal(stats.pending, 202); // the create, 200 step_end events and the run_finish
    await waitUntil(() => server.requests > 0, "the SDK never tried to send");
    server.mode = "ok";
    assert.equal(await xray.flush(15_000), true);
    const after = xray.stats();
    assert.ok(reconciles(after));
    assert.equal(after.pending, 0);
    assert.equal(after.droppedTotal, 0);
    assert.equal(server.runs.length, 1);
    assert.equal(new Set(server.eventIds()).size, 201);
  });
}

test("a closed port (nothing listens) is retried, counted as pending, never thrown", async (t) => {
  const xray = client(t, "http://127.0.0.1:9", PATIENT);
  runPipeline(xray, 5);
  await waitUntil(() => xray.stats().requests > 1, "the SDK never retried");
  const stats = xray.stats();
  assert.ok(reconciles(stats));
  assert.equal(stats.sent, 0);
  assert.ok(stats.retries >= 1);
  assert.equal(await xray.flush(100), false);
});

test("memory is bounded by items and losses are counted with their reason", async (t) => {
  const server = await scriptedServer(t, "blackhole");
  const xray = client(t, server.url, { ...PATIENT, maxQueueItems: 500, batchMaxItems: 100 });
  runPipeline(xray, 2000);
  const stats = xray.stats();
  assert.ok(stats.pending <= 500 + 100, JSON.stringify(stats));
  assert.ok(stats.dropped.queue_full > 0);
  assert.ok(reconciles(stats));
  await xray.close(100);
  const closed = xray.stats();
  assert.ok(reconciles(closed));
  assert.ok(closed.dropped.shutdown > 0);
});

test("the queue is bounded by bytes too", async (t) => {
  const server = await scriptedServer(t, "blackhole");
  const xray = client(t, server.url, { ...PATIENT, maxQueueBytes: 20_000 });
  runPipeline(xray, 500);
  const stats = xray.stats();
  assert.ok(stats.queueBytes <= 20_000);
  assert.ok(stats.dropped.queue_full > 0);
  assert.ok(reconciles(stats));
});

test("4xx answers are not retried and are counted as rejected", async (t) => {
  const server = await scriptedServer(t, "reject400");
  const xray = client(t, server.url);
  runPipeline(xray, 3);
  assert.equal(await xray.flush(5000), true);
  const stats = xray.stats();
  assert.equal(stats.dropped.rejected_by_server, 5);
  assert.equal(stats.retries, 0);
  assert.equal(server.requests, 1); // one batch (the create and the events), tried once
});

test("a 207 counts the rejected events and the rest as sent", async (t) => {
  const server = await scriptedServer(t, "weird207");
  const xray = client(t, server.url);
  runPipeline(xray, 3);
  assert.equal(await xray.flush(5000), true);
  const stats = xray.stats();
  assert.equal(stats.dropped.rejected_by_server, 1);
  assert.equal(stats.sent, 4);
});

test("everything a batch holds, of many runs, goes in one POST /api/v1/batch", async (t) => {
  const server = await scriptedServer(t);
  const xray = client(t, server.url);
  const runs = [runPipeline(xray, 2), runPipeline(xray, 3)];
  xray.label(runs[0].runId, "bad", { source: "review" });
  assert.equal(await xray.flush(5000), true);
  assert.deepEqual(server.paths, ["/api/v1/batch"]);
  assert.deepEqual(server.runs.map((r) => r.run_id), runs.map((r) => r.runId));
  assert.equal(server.events.length, xray.stats().sent - 3); // two creates and a label besides
  assert.equal(server.labels[0].label, "bad");
  assert.equal(server.labels[0].run_id, runs[0].runId);
});

test("a batch never holds more items than the server takes, whatever the setting", async (t) => {
  const server = await scriptedServer(t);
  const xray = client(t, server.url, { batchMaxItems: 5000, maxQueueItems: 5000, flushIntervalMs: 60_000 });
  runPipeline(xray, 1499); // a create, 1,499 steps and a finish: 1,501 items
  assert.equal(await xray.flush(10_000), true);
  assert.deepEqual(server.paths, ["/api/v1/batch", "/api/v1/batch"]);
  assert.equal(xray.stats().sent, 1501);
});

test("a server without /api/v1/batch gets the contract's endpoints: the create, its events, then labels", async (t) => {
  const server = await scriptedServer(t, "nobatch");
  const xray = client(t, server.url);
  const run = runPipeline(xray, 2);
  xray.label(run.runId, "bad", { source: "review" });
  assert.equal(await xray.flush(5000), true);
  const after = ["/api/v1/runs", `/api/v1/runs/${run.runId}/events`, `/api/v1/runs/${run.runId}/labels`];
  assert.deepEqual(server.paths, ["/api/v1/batch", ...after]);
  assert.equal(server.labels[0].label, "bad");
  const stats = xray.stats();
  assert.equal(stats.droppedTotal, 0);
  assert.equal(stats.retries, 0); // a 404 to the batch is no failure of the items
  // Later batches go straight to the old endpoints.
  const again = runPipeline(xray, 1);
  assert.equal(await xray.flush(5000), true);
  assert.deepEqual(server.paths.slice(4), ["/api/v1/runs", `/api/v1/runs/${again.runId}/events`]);
});

test("a long step is visible as running before it ends", async (t) => {
  const server = await scriptedServer(t);
  const xray = client(t, server.url, {}, { startDelayMs: 50 });
  const run = xray.startRun("slow", "B0X");
  await run.step("slow_search", "search", async (step) => {
    step.input({ q: "case" });
    await waitUntil(() => server.events.length > 0, "no step_start arrived while the step ran");
  });
  assert.equal(await xray.flush(5000), true);
  assert.deepEqual(
    server.events.map((e) => [e.name, e.type]),
    [
      ["slow_search", "step_start"],
      ["slow_search", "step_end"],
    ],
  );
  assert.deepEqual(server.events[0].input, { q: "case" });
});

test("Retry-After is honoured", async (t) => {
  const server = await scriptedServer(t, "throttle429"); // answers Retry-After: 1
  const xray = client(t, server.url, PATIENT);
  runPipeline(xray, 5);
  await waitUntil(() => server.requests >= 1, "never tried");
  await sleep(700);
  // Our own backoff would have retried every 50-200 ms; Retry-After allows one try in a second.
  assert.equal(server.requests, 1);
  server.mode = "ok";
  assert.equal(await xray.flush(10_000), true);
});

test("repeated failures open the circuit, and it closes when the server is back", async (t) => {
  const server = await scriptedServer(t, "error500");
  const xray = client(t, server.url, {
    backoffBaseMs: 5,
    backoffMaxMs: 10,
    breakerThreshold: 3,
    breakerCooldownMs: 1000,
    breakerCooldownMaxMs: 1000,
    maxAttempts: 1000,
  });
  runPipeline(xray, 5);
  await waitUntil(() => xray.stats().circuit === "open", "the circuit never opened");
  const tried = server.requests;
  await sleep(300); // within the cool-down nothing is sent
  assert.equal(server.requests, tried);
  server.mode = "ok";
  assert.equal(await xray.flush(10_000), true);
  assert.equal(xray.stats().circuit, "closed");
  assert.equal(server.runs.length, 1);
});

test("retries run out after maxAttempts and are counted as retries_exhausted", async (t) => {
  const server = await scriptedServer(t, "error500");
  const xray = client(t, server.url, { maxAttempts: 2, backoffBaseMs: 1, backoffMaxMs: 2, breakerThreshold: 100 });
  runPipeline(xray, 2);
  assert.equal(await xray.flush(5000), true);
  const stats = xray.stats();
  assert.equal(stats.dropped.retries_exhausted, 4);
  assert.ok(reconciles(stats));
});

test("flush waits only for what was queued before it, not for a steady stream after it", async (t) => {
  const server = await scriptedServer(t);
  const xray = client(t, server.url);
  const busy = xray.startRun("busy", "B0");
  const stream = setInterval(() => busy.step("s", "custom", () => null), 1);
  t.after(() => clearInterval(stream));
  await sleep(100);
  const mine = xray.startRun("mine", "B0");
  mine.step("s", "search", () => null);
  mine.finish();
  assert.equal(await xray.flush(10_000), true);
  clearInterval(stream);
  assert.ok(server.runs.some((r) => r.pipeline === "mine"));
});

test("batches are gzipped when large, and a large burst is delivered in several batches", async (t) => {
  const server = await scriptedServer(t);
  const xray = client(t, server.url, { batchMaxItems: 100 });
  runPipeline(xray, 1000);
  assert.equal(await xray.flush(15_000), true);
  assert.equal(server.events.length, 1001);
  assert.ok(server.requests >= 11);
  assert.ok(reconciles(xray.stats()));
});
