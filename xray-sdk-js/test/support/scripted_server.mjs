// A small real HTTP server whose behaviour a test scripts (as tests/support/scripted_server.py):
// answer like X-Ray, fail with 500, throttle with 429 and Retry-After, refuse with 400, answer
// a 207 that rejects one event, close connections mid-request, hold them forever, or answer slowly.
import { createServer } from "node:http";
import { gunzipSync } from "node:zlib";

export const MODES = ["ok", "error500", "throttle429", "reject400", "weird207", "close", "blackhole", "slow", "nobatch"];

export class ScriptedServer {
  constructor(mode = "ok") {
    this.mode = mode;
    this.slowMs = 400;
    this.runs = [];
    this.events = [];
    this.labels = [];
    this.paths = [];
    this.requests = 0;
    this.encodings = []; // each request's Content-Encoding, "identity" without one
    this.held = new Set();
    this.server = createServer((request, response) => this.handle(request, response));
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  async stop() {
    for (const response of this.held) response.destroy();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  eventIds() {
    return this.events.map((e) => e.event_id);
  }

  handle(request, response) {
    this.requests++;
    this.encodings.push(request.headers["content-encoding"] ?? "identity");
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      const mode = this.mode;
      if (mode === "blackhole") {
        this.held.add(response); // held until the test stops the server
        return;
      }
      if (mode === "close") return request.socket.destroy();
      if (mode === "error500") return this.answer(response, 500, { error: { code: "internal_error" } });
      if (mode === "throttle429") return this.answer(response, 429, { error: { code: "throttled" } }, { "Retry-After": "1" });
      if (mode === "reject400") return this.answer(response, 400, { error: { code: "validation_error" } });
      let raw = Buffer.concat(chunks);
      if (request.headers["content-encoding"] === "gzip") raw = gunzipSync(raw);
      const body = JSON.parse(raw.toString("utf8"));
      const reply = () => this.record(request.url, body, response, mode);
      if (mode === "slow") setTimeout(reply, this.slowMs);
      else reply();
    });
  }

  record(path, body, response, mode) {
    this.paths.push(path);
    if (path === "/api/v1/batch") {
      // An X-Ray older than the multi-run batch answers 404, as Flask does for an unknown path.
      if (mode === "nobatch") return this.answer(response, 404, { error: { code: "not_found" } });
      return this.recordBatch(body, response, mode);
    }
    if (path.endsWith("/events")) {
      if (mode === "weird207") {
        this.events.push(...body.events.slice(1));
        const rejected = [{ index: 0, event_id: body.events[0].event_id, errors: { ts: ["bad"] } }];
        return this.answer(response, 207, { accepted: body.events.length - 1, rejected });
      }
      this.events.push(...body.events);
      return this.answer(response, 200, { accepted: body.events.length, duplicates: 0, rejected: [] });
    }
    if (path.endsWith("/labels")) {
      this.labels.push({ path, ...body });
      return this.answer(response, 200, body);
    }
    this.runs.push(body);
    return this.answer(response, 201, { run_id: body.run_id });
  }

  recordBatch(body, response, mode) {
    const events = body.events.map(({ run_id, ...event }) => event); // as a run's own batch holds them
    const refused = mode === "weird207" && events.length ? 1 : 0;
    this.runs.push(...body.runs);
    this.events.push(...events.slice(refused));
    this.labels.push(...body.labels.map((label) => ({ path: `/api/v1/runs/${label.run_id}/labels`, ...label })));
    const rejected = refused ? [{ index: 0, run_id: body.events[0].run_id, code: "validation_error", errors: { ts: ["bad"] } }] : [];
    const answer = {
      runs: { created: body.runs.length, existing: 0, rejected: [] },
      events: { accepted: events.length - refused, duplicates: 0, rejected },
      labels: { recorded: body.labels.length, rejected: [] },
    };
    return this.answer(response, refused ? 207 : 200, answer);
  }

  answer(response, status, body, headers = {}) {
    const text = JSON.stringify(body);
    response.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text), ...headers });
    response.end(text);
  }
}

/** A started scripted server, stopped when the test ends. */
export async function scriptedServer(t, mode = "ok") {
  const server = await new ScriptedServer(mode).start();
  t.after(() => server.stop());
  return server;
}

/** Fast delivery settings for tests (as tests/support/clients.py): what a test waits for happens
 * in tens of milliseconds instead of seconds. */
export const FAST = {
  timeoutMs: 500,
  shutdownTimeoutMs: 500,
  logger: () => {},
  delivery: { flushIntervalMs: 50, backoffBaseMs: 50, backoffMaxMs: 200, breakerCooldownMs: 200, breakerCooldownMaxMs: 500 },
};

/** Client options: FAST with `delivery` fields overridden. */
export function fast(delivery = {}, options = {}) {
  return { ...FAST, ...options, delivery: { ...FAST.delivery, ...delivery } };
}

export function reconciles(stats) {
  return stats.enqueued === stats.sent + stats.droppedTotal + stats.pending;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wait until `check()` is true, polling; fail with `message` after `timeoutMs` (a liveness bound). */
export async function waitUntil(check, message, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(message);
    await sleep(10);
  }
}
