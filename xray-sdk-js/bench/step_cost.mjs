// What instrumenting a step costs a Node.js pipeline, against baselines in the same run (the
// TypeScript twin of bench/sdk_overhead.py; `python -m bench sdk_js` runs it and keeps its JSON).
//
// 1. Per-step cost in the caller's thread: an X-Ray step with three metrics and a `why`, against
//    an OpenTelemetry span with three attributes ended into a BatchSpanProcessor whose exporter
//    discards, made current through AsyncLocalStorage as X-Ray's step is (`startActiveSpan`),
//    and without (`startSpan`), against the bare step body. Rounds are interleaved; each step is
//    timed alone. Node runs delivery on the same thread, so the table also gives each scenario's
//    wall time and the process's CPU time per step, including the flush (X-Ray: encoding, gzip,
//    HTTP to a collector on the same machine) or the export (OpenTelemetry: discarded) that
//    follows each round.
// 2. The collector unreachable (blackholed, down): p99 of a whole step.
// 3. Memory over N steps with the collector blackholed, and down: resident set size at each tenth.
// 4. Exit: time from a process's last step to its exit, collector blackholed or down.
//
// Usage: node --expose-gc bench/step_cost.mjs [--steps 100000] [--memory-steps 1000000] [--json]
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { trace, context } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { Client } from "../dist/esm/index.js";

const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const STEPS = option("--steps", 20_000);
const MEMORY_STEPS = option("--memory-steps", 200_000);
const ROUNDS = 10;
const HERE = fileURLToPath(new URL(".", import.meta.url));
const tick = () => new Promise((resolve) => setImmediate(resolve));

function percentile(values, q) {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
const round2 = (x) => Math.round(x * 100) / 100;

async function sink(mode) {
  const child = spawn(process.execPath, [HERE + "sink.mjs", mode], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise((resolve) => child.stdout.once("data", (d) => resolve(Number(String(d).trim()))));
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill() };
}

function openTelemetry() {
  const manager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(manager);
  const exporter = { export: (spans, done) => done({ code: 0 }), shutdown: () => Promise.resolve() };
  const provider = new BasicTracerProvider();
  provider.addSpanProcessor(new BatchSpanProcessor(exporter));
  trace.setGlobalTracerProvider(provider);
  return { provider, tracer: provider.getTracer("bench") };
}

const candidates = Array.from({ length: 30 }, (_, i) => i);
const body = (list) => Math.floor(list.length / 3);

async function perStep() {
  const collector = await sink("ok");
  const { provider, tracer } = openTelemetry();
  const xray = new Client(collector.url);
  const run = xray.startRun("bench", "B0BENCH");
  const scenarios = {
    bare: () => body(candidates),
    opentelemetry_active: () =>
      tracer.startActiveSpan("compat_filter", (span) => {
        const kept = body(candidates);
        span.setAttribute("candidates_in", 30);
        span.setAttribute("candidates_out", kept);
        span.setAttribute("drop_ratio", 1 - kept / 30);
        span.end();
      }),
    opentelemetry_plain: () => {
      const span = tracer.startSpan("compat_filter");
      const kept = body(candidates);
      span.setAttribute("candidates_in", 30);
      span.setAttribute("candidates_out", kept);
      span.setAttribute("drop_ratio", 1 - kept / 30);
      span.end();
    },
    xray: () =>
      run.step("compat_filter", "filter", (step) => {
        const kept = body(candidates);
        step.metrics({ candidates_in: 30, candidates_out: kept, drop_ratio: 1 - kept / 30 });
        step.why("kept candidates of the same category");
      }),
  };
  const settle = { bare: async () => {}, xray: () => xray.flush(30_000), opentelemetry_active: () => provider.forceFlush(), opentelemetry_plain: () => provider.forceFlush() };
  const samples = Object.fromEntries(Object.keys(scenarios).map((k) => [k, []]));
  const wall = Object.fromEntries(Object.keys(scenarios).map((k) => [k, 0]));
  const cpu = Object.fromEntries(Object.keys(scenarios).map((k) => [k, 0]));
  for (const [name, fn] of Object.entries(scenarios)) {
    for (let i = 0; i < 2000; i++) fn(); // warm up (and let V8 optimise)
    await settle[name]();
  }
  // The OpenTelemetry processor's queue holds 2,048 spans and X-Ray's 20,000 events: a round is
  // cut into chunks with a turn of the event loop between them, so neither drops what it records.
  const perRound = Math.max(1, Math.floor(STEPS / ROUNDS));
  const chunk = 1000;
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, fn] of Object.entries(scenarios)) {
      const out = samples[name];
      const started = performance.now();
      const cpuStarted = process.cpuUsage();
      for (let done = 0; done < perRound; done += chunk) {
        for (let i = 0; i < Math.min(chunk, perRound - done); i++) {
          const t = performance.now();
          fn();
          out.push((performance.now() - t) * 1000);
        }
        await tick();
      }
      await settle[name]();
      wall[name] += performance.now() - started;
      const used = process.cpuUsage(cpuStarted);
      cpu[name] += (used.user + used.system) / 1000;
    }
  }
  const delivered = xray.stats();
  await xray.close(5000);
  await provider.shutdown();
  collector.stop();
  const table = {};
  for (const [name, values] of Object.entries(samples)) {
    table[name] = {
      median_us: round2(percentile(values, 0.5)),
      p99_us: round2(percentile(values, 0.99)),
      wall_us_per_step: round2((wall[name] * 1000) / values.length),
      cpu_us_per_step: round2((cpu[name] * 1000) / values.length),
    };
  }
  const ratio = (a, b, key) => round2(table[a][key] / table[b][key]);
  table.ratio_xray_to_opentelemetry = {
    median: ratio("xray", "opentelemetry_active", "median_us"),
    p99: ratio("xray", "opentelemetry_active", "p99_us"),
    wall: ratio("xray", "opentelemetry_active", "wall_us_per_step"),
    cpu: ratio("xray", "opentelemetry_active", "cpu_us_per_step"),
    median_vs_plain_span: ratio("xray", "opentelemetry_plain", "median_us"),
  };
  table.xray_delivery = { enqueued: delivered.enqueued, sent: delivered.sent, droppedTotal: delivered.droppedTotal, pending: delivered.pending };
  return table;
}

async function unreachable() {
  const out = {};
  for (const mode of ["blackholed", "down"]) {
    const collector = mode === "blackholed" ? await sink("blackhole") : { url: "http://127.0.0.1:9", stop: () => {} };
    const xray = new Client(collector.url, { logger: () => {} });
    const run = xray.startRun("bench", "B0BENCH");
    const values = [];
    for (let i = 0; i < STEPS; i++) {
      const t = performance.now();
      run.step("compat_filter", "filter", (step) => step.metrics({ candidates_in: 30, candidates_out: 10 }).why("kept ten"));
      values.push((performance.now() - t) * 1000);
      if (i % 1000 === 999) await tick();
    }
    out[mode] = { median_us: round2(percentile(values, 0.5)), p99_us: round2(percentile(values, 0.99)) };
    await xray.close(0);
    collector.stop();
  }
  return out;
}

async function memory() {
  return { blackholed: await memoryWith(await sink("blackhole")), down: await memoryWith({ url: "http://127.0.0.1:9", stop: () => {} }) };
}

async function memoryWith(collector) {
  const xray = new Client(collector.url, { logger: () => {} });
  const run = xray.startRun("bench", "B0BENCH");
  const rss = [];
  const heap = [];
  let worst = 0;
  const tenth = Math.floor(MEMORY_STEPS / 10);
  for (let i = 0; i < MEMORY_STEPS; i++) {
    const t = performance.now();
    run.step("compat_filter", "filter", (step) => step.metrics({ candidates_in: 30, candidates_out: 10 }).why("kept ten"));
    worst = Math.max(worst, performance.now() - t);
    if (i % 1000 === 999) await tick();
    if (i % tenth === tenth - 1) {
      // What stays alive, not when V8 last collected: a full collection first (with --expose-gc).
      globalThis.gc?.();
      const usage = process.memoryUsage();
      rss.push(Math.round(usage.rss / 1e5) / 10);
      heap.push(Math.round(usage.heapUsed / 1e5) / 10);
    }
  }
  const stats = xray.stats();
  await xray.close(0);
  collector.stop();
  return { steps: MEMORY_STEPS, rss_mb: rss, heap_mb: heap, worst_step_us: round2(worst * 1000), pending: stats.pending, dropped: stats.dropped };
}

async function exitTimes() {
  const out = {};
  for (const mode of ["blackholed", "down"]) {
    const collector = mode === "blackholed" ? await sink("blackhole") : { url: "http://127.0.0.1:9", stop: () => {} };
    const child = spawn(process.execPath, ["--input-type=module", "-e", EXIT_CHILD], {
      cwd: HERE,
      env: { ...process.env, URL: collector.url },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let lastStep = 0;
    child.stdout.on("data", (d) => (lastStep = Number(String(d).trim())));
    await new Promise((resolve) => child.on("exit", resolve));
    out[mode] = { seconds_after_last_step: Math.round(Date.now() - lastStep) / 1000 };
    collector.stop();
  }
  return out;
}

// A pipeline of 5 steps with the default client, that neither finishes, flushes nor closes.
const EXIT_CHILD = `
import { Client } from "../dist/esm/index.js";
const xray = new Client(process.env.URL, { logger: () => {} });
const run = xray.startRun("exit", "B0X");
for (let i = 0; i < 5; i++) run.step("s" + i, "search", (s) => s.metrics({ results: i }));
console.log(Date.now());
`;

const result = {
  node: process.version,
  per_step: await perStep(),
  unreachable_collector: await unreachable(),
  memory: await memory(),
  exit: await exitTimes(),
};
console.log(args.includes("--json") ? JSON.stringify(result) : JSON.stringify(result, null, 2));
