// flush() waits for exactly what was queued before it, whatever order the delivery settles items
// in. A unit test of the delivery alone, over a transport the test answers by hand.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Item } from "../dist/esm/delivery/item.js";
import { Delivery } from "../dist/esm/delivery/worker.js";

/** A transport whose every request waits until the test answers it. */
class HandAnswered {
  constructor() {
    this.requests = [];
  }
  post(path, body) {
    return new Promise((resolve) => this.requests.push({ path, body, answer: (status) => resolve({ status, body: null, retryAfter: null }) }));
  }
  close() {}
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

test("a flush is not ended by later items settled before earlier ones (a create goes before older events)", async (t) => {
  const transport = new HandAnswered();
  // A request per run and kind (as for a server without /api/v1/batch): units settle out of order.
  const delivery = new Delivery(transport, { flushIntervalMs: 60_000, backoffBaseMs: 1, backoffMaxMs: 1, breakerThreshold: 100, multiRunBatch: false });
  t.after(() => delivery.close(0));
  delivery.submit(new Item("run-a", "event", { n: 1 }));
  void delivery.flush(60_000); // starts the pump: the first event's request is held
  await turn();
  assert.equal(transport.requests.length, 1);
  delivery.submit(new Item("run-b", "event", { n: 2 }));
  let flushed = null;
  delivery.flush(60_000).then((ok) => (flushed = ok)); // waits for run-a's and run-b's events
  delivery.submit(new Item("run-c", "run", { run_id: "run-c" })); // queued after the flush
  transport.requests[0].answer(200);
  await turn();
  // The next batch sends run-c's create first, then run-b's event.
  assert.deepEqual(transport.requests.slice(1).map((r) => r.path), ["/api/v1/runs"]);
  transport.requests[1].answer(201);
  await turn();
  assert.equal(transport.requests[2].path, "/api/v1/runs/run-b/events");
  transport.requests[2].answer(503); // run-b's event must be tried again
  await turn();
  assert.equal(flushed, null, "the flush ended while an event queued before it was still pending");
  await new Promise((resolve) => setTimeout(resolve, 20));
  transport.requests.at(-1).answer(200);
  await turn();
  assert.equal(flushed, true);
  assert.equal(delivery.stats().sent, 3);
});
