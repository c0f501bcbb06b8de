// Process life (as tests/test_sdk_process.py): a process that exits without finish() delivers its
// steps; one whose collector never answers, or is down, exits promptly anyway.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { scriptedServer } from "./support/scripted_server.mjs";

const HERE = fileURLToPath(new URL(".", import.meta.url));
// Liveness bound, not a performance figure: the exit must come from the SDK's 1 s shutdown
// deadline, not from the 60 s a blackholed server would hold a request (BENCHMARKS.md has the figure).
const EXIT_BOUND_MS = 15_000;

function runScript(script, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(HERE, "support", script)], { env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const killer = setTimeout(() => child.kill("SIGKILL"), EXIT_BOUND_MS);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

for (const script of ["exit_without_finish.mjs", "exit_without_finish.cjs"]) {
  test(`a process that exits without finish delivers its steps (${script})`, async (t) => {
    const server = await scriptedServer(t);
    const result = await runScript(script, { URL: server.url });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /pipeline done/);
    assert.equal(server.runs.length, 1);
    assert.equal(server.events.length, 5);
  });
}

test("a process exits promptly when the collector never answers", async (t) => {
  const server = await scriptedServer(t, "blackhole");
  const result = await runScript("exit_without_finish.mjs", { URL: server.url });
  assert.equal(result.signal, null, "killed at the liveness bound: the process did not exit by itself");
  assert.equal(result.code, 0, result.stderr);
  assert.ok(server.requests >= 1, "the process never tried to deliver");
});

test("a process exits promptly when the collector is down", async () => {
  const result = await runScript("exit_without_finish.mjs", { URL: "http://127.0.0.1:9" });
  assert.equal(result.signal, null, "killed at the liveness bound: the process did not exit by itself");
  assert.equal(result.code, 0, result.stderr);
});
