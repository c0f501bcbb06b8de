// The transport compresses what it sends to another machine and not what it sends to this one
// (as tests/test_sdk_gzip.py): gzip pays on a link slower than about 140 MB/s and costs four
// times the CPU of the plain body on loopback (`python -m bench sdk_delivery`).
import assert from "node:assert/strict";
import { test } from "node:test";
import { GZIP_MIN_BYTES, HttpTransport, isLoopback } from "../dist/esm/delivery/transport.js";
import { scriptedServer } from "./support/scripted_server.mjs";

const CASES = [
  ["http://127.0.0.1:8000", true],
  ["http://127.8.9.10:8000", true],
  ["http://localhost:8000", true],
  ["http://LOCALHOST", true],
  ["http://[::1]:8000", true],
  ["http://10.0.0.7:8000", false],
  ["https://xray.example.com", false],
  ["http://[2001:db8::1]:8000", false],
  ["http://localhost.example.com", false],
];

for (const [endpoint, loopback] of CASES) {
  test(`${endpoint} is ${loopback ? "" : "not "}this machine: bodies ${loopback ? "plain" : "compressed"}`, () => {
    assert.equal(isLoopback(new URL(endpoint).hostname), loopback);
    assert.equal(new HttpTransport(endpoint).gzipMinBytes, loopback ? null : GZIP_MIN_BYTES);
    assert.equal(new HttpTransport(endpoint, 3000, 10).gzipMinBytes, 10); // a setting of one's own wins
  });
}

test("a body goes plain to a loopback server by default, compressed when asked, and arrives the same", async (t) => {
  const server = await scriptedServer(t);
  const body = JSON.stringify({ runs: [], events: [{ run_id: "r", event_id: "e", why: "x".repeat(2 * GZIP_MIN_BYTES) }], labels: [] });
  for (const [transport, encoding] of [
    [new HttpTransport(server.url), "identity"],
    [new HttpTransport(server.url, 3000, GZIP_MIN_BYTES), "gzip"],
  ]) {
    const response = await transport.post("/api/v1/batch", body);
    assert.equal(response.status, 200);
    assert.equal(server.encodings.at(-1), encoding);
    assert.equal(server.events.at(-1).why, "x".repeat(2 * GZIP_MIN_BYTES));
  }
});

test("a client's delivery.gzipMinBytes wins over the endpoint's choice (a loopback tunnel)", async (t) => {
  const { Client } = await import("../dist/esm/index.js");
  const { fast } = await import("./support/scripted_server.mjs");
  const server = await scriptedServer(t);
  for (const [gzipMinBytes, encoding] of [[null, "identity"], [1, "gzip"]]) {
    const xray = new Client(server.url, fast({ gzipMinBytes }));
    const run = xray.startRun("gzip_test", "B0X");
    run.step("keep_ten", "filter", (step) => step.candidates(100, 10).why("kept ten"));
    run.finish();
    assert.equal(await xray.flush(5000), true);
    await xray.close(0);
    assert.equal(server.encodings.at(-1), encoding);
  }
});
