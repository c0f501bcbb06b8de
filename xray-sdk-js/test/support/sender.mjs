// Sends runs of 25 filter steps to XRAY_ENDPOINT, pacing itself, until a line arrives on stdin;
// then flushes (up to 60 s) and prints its runs and the client's stats as one JSON line. Driven
// by tests/test_sdk_js_faults.py while it takes PostgreSQL away from the server.
import { Client } from "../../dist/esm/index.js";

const xray = new Client(process.env.XRAY_ENDPOINT, {
  timeoutMs: 3000,
  logger: () => {},
  delivery: { flushIntervalMs: 50, maxAttempts: 1000, backoffMaxMs: 500, breakerCooldownMs: 500, breakerCooldownMaxMs: 1000 },
});
let stopping = false;
process.stdin.once("data", () => (stopping = true));
const pause = () => new Promise((resolve) => setTimeout(resolve, 20));

let runs = 0;
while (!stopping) {
  const run = xray.startRun(process.env.PIPELINE, `B${runs}`);
  for (let i = 0; i < 25; i++) run.step(`s${i}`, "filter", (step) => step.candidates(100, 10));
  run.finish();
  runs++;
  await pause();
}
process.stdin.destroy();
const flushed = await xray.flush(60_000);
console.log(JSON.stringify({ runs, flushed, stats: xray.stats() }));
await xray.close(1000);
