/**
 * Background delivery: a bounded queue, and a pump driven by unref'd timers that batches, sends
 * and retries (as xray_sdk/delivery/worker.py, with the event loop in place of a thread).
 * - `submit()` never waits; it returns whether the item was taken.
 * - Memory is bounded by item count and bytes; beyond the bound, items are dropped and counted.
 * - Batches go out by count, by bytes and by interval, everything a batch holds in one request
 *   (`POST /api/v1/batch`; a request per run on a server without it); a run's create goes first.
 * - Only what can succeed later is retried (network errors, 408, 429, 5xx), a bounded number of
 *   times, with exponential backoff and jitter, honouring Retry-After; a 4xx never is.
 * - Repeated failures open a circuit breaker: nothing is sent during a cool-down.
 * - No timer or socket of ours keeps the process alive; `exit.ts` gives a bounded flush at exit.
 * - `stats()` reconciles exactly: enqueued == sent + droppedTotal + pending.
 */
import { RateLimitedLog } from "../ratelog.js";
import { DEFAULT_LIMITS } from "../vocabulary.generated.js";
import { CircuitBreaker } from "./breaker.js";
import { DEFAULT_DELIVERY, type DeliveryConfig } from "./config.js";
import { watchAtExit } from "./exit.js";
import type { Item, ItemKind } from "./item.js";
import { TransportError, type HttpTransport, type Response } from "./transport.js";

/** Delivery counters; `enqueued == sent + droppedTotal + pending` at every moment. */
export interface DeliveryStats {
  enqueued: number;
  sent: number;
  dropped: Record<string, number>;
  droppedTotal: number;
  pending: number;
  queueBytes: number;
  requests: number;
  retries: number;
  circuit: "open" | "closed";
}

interface Unit {
  path: string;
  items: Item[];
}

/** Where everything a take holds goes at once: the run creations, events and labels of many runs. */
export const BATCH_PATH = "/api/v1/batch";

interface Waiter {
  /** The last item (by `Item.order`) the flush waits for. */
  target: number;
  /** Items up to `target` not yet sent or dropped. */
  remaining: number;
  done: () => void;
}

/** Owns the queue and the pump of one client. */
export class Delivery {
  readonly config: DeliveryConfig;
  /** At exit, queued items get this long to leave (the largest among live deliveries). */
  shutdownTimeoutMs = 2000;
  private queue: Item[] = [];
  private head = 0; // queue[head:] is queued: a shift per item would be O(n)
  private queuedBytes = 0;
  private inflight = 0;
  private enqueued = 0;
  private sent = 0;
  private requests = 0;
  private retries = 0;
  private accepted = 0; // items that entered the queue; the last one's `order`
  private readonly dropped: Record<string, number> = {};
  private closed = false;
  private pumping = false;
  private retryAt = 0; // no request before this (performance.now()): backoff, Retry-After or the breaker
  private ticker: NodeJS.Timeout | null = null;
  private wake: NodeJS.Timeout | null = null;
  private waiters: Waiter[] = [];
  private readonly breaker: CircuitBreaker;
  // One request a take (`POST /api/v1/batch`) until a server answers 404 to it (an X-Ray older
  // than it): then a request per run and kind, the contract's own endpoints, for this delivery's life.
  private multiRun: boolean;

  constructor(
    readonly transport: HttpTransport,
    config: Partial<DeliveryConfig> = {},
    /** Called at each interval (overdue step_starts); false once its client is gone. */
    private readonly onTick: (() => boolean) | null = null,
    private readonly log = new RateLimitedLog(),
  ) {
    this.config = { ...DEFAULT_DELIVERY, ...config };
    const c = this.config;
    this.breaker = new CircuitBreaker(c.breakerThreshold, c.breakerCooldownMs, c.breakerCooldownMaxMs);
    this.multiRun = c.multiRunBatch;
    watchAtExit(this);
  }

  // ---------------------------------------------------------------- pipeline side

  /** Queue `item` for delivery; false (and counted) if it had to be dropped. */
  submit(item: Item): boolean {
    const c = this.config;
    this.enqueued++;
    if (this.closed) {
      this.count("closed", 1);
      return false;
    }
    if (this.queue.length - this.head >= c.maxQueueItems || this.queuedBytes + item.size > c.maxQueueBytes) {
      this.count("queue_full", 1);
      this.log.warning("queue_full", "X-Ray queue is full: dropping events (is the server reachable?)");
      return false;
    }
    this.queue.push(item);
    this.queuedBytes += item.size;
    item.order = ++this.accepted;
    if (this.ticker === null) this.startTicker();
    if (this.wake === null && (this.queue.length - this.head >= c.batchMaxItems || this.queuedBytes >= c.batchMaxBytes)) {
      this.wakeIn(0);
    }
    return true;
  }

  /** How full the queue is, 0 to 1, by bytes or count, whichever is higher. */
  pressure(): number {
    const c = this.config;
    return Math.max(this.queuedBytes / c.maxQueueBytes, (this.queue.length - this.head) / c.maxQueueItems);
  }

  /** Wait up to `timeoutMs` until everything queued before this call is delivered or dropped;
   * false on timeout. The wait's own timer keeps the process alive: the caller asked to wait. */
  flush(timeoutMs: number): Promise<boolean> {
    // Everything pending now was queued before the call; each is counted off as it is settled,
    // whatever the order (a batch sends a run's create before older events of another run).
    const remaining = this.queue.length - this.head + this.inflight;
    if (remaining === 0) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const waiter: Waiter = { target: this.accepted, remaining, done: () => finish(true) };
      const timer = setTimeout(() => finish(false), Math.max(0, timeoutMs));
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(ok);
      };
      this.waiters.push(waiter);
      void this.pump();
    });
  }

  /** Flush within `timeoutMs`, then stop; what is left is dropped as `shutdown`. */
  async close(timeoutMs: number): Promise<boolean> {
    if (this.closed) return this.queue.length - this.head === 0 && this.inflight === 0;
    const delivered = await this.flush(timeoutMs);
    this.closed = true;
    const leftItems = this.queue.slice(this.head);
    const left = leftItems.length;
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    if (left) this.count("shutdown", left);
    this.settle(leftItems);
    for (const timer of [this.ticker, this.wake]) if (timer !== null) clearTimeout(timer);
    this.ticker = this.wake = null;
    this.transport.close(); // a request still in flight fails now, and its items are settled as shutdown
    return delivered && left === 0;
  }

  /** True once `close()` has begun giving up on the queue. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Counters that reconcile: enqueued == sent + droppedTotal + pending. */
  stats(): DeliveryStats {
    const dropped = { ...this.dropped };
    return {
      enqueued: this.enqueued,
      sent: this.sent,
      dropped,
      droppedTotal: Object.values(dropped).reduce((a, b) => a + b, 0),
      pending: this.queue.length - this.head + this.inflight,
      queueBytes: this.queuedBytes,
      requests: this.requests,
      retries: this.retries,
      circuit: this.breaker.isOpen() ? "open" : "closed",
    };
  }

  // ---------------------------------------------------------------- pump side

  private startTicker(): void {
    this.ticker = setInterval(() => {
      let owned = true;
      try {
        owned = this.onTick?.() ?? true;
      } catch (error) {
        this.log.warning("tick", `X-Ray delivery error: ${(error as Error)?.name}`);
      }
      if (!owned && this.queue.length - this.head + this.inflight === 0 && this.ticker !== null) {
        // The client is gone and everything it queued has left: nothing will wake this timer's work.
        clearInterval(this.ticker);
        this.ticker = null;
        return;
      }
      void this.pump();
    }, this.config.flushIntervalMs);
    this.ticker.unref(); // telemetry never keeps a process alive
  }

  private wakeIn(delayMs: number): void {
    if (this.wake !== null) clearTimeout(this.wake);
    this.wake = setTimeout(() => {
      this.wake = null;
      void this.pump();
    }, delayMs);
    this.wake.unref();
  }

  /** Send batches until the queue is empty or a failure asks to wait; one pump at a time. */
  private async pump(): Promise<void> {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    try {
      while (!this.closed) {
        const delay = this.retryAt - performance.now();
        if (delay > 0) {
          this.wakeIn(delay);
          return;
        }
        const units = this.take();
        if (units.length === 0) return;
        await this.deliver(units);
      }
    } catch (error) {
      // the pump must outlive any bug
      this.log.warning("worker", `X-Ray delivery error: ${(error as Error)?.name}`);
    } finally {
      this.pumping = false;
    }
  }

  private take(): Unit[] {
    const c = this.config;
    const taken: Item[] = [];
    let size = 0;
    // Never more items than the server takes in one request, whatever the setting says.
    const most = Math.min(c.batchMaxItems, DEFAULT_LIMITS.maxEventsPerBatch);
    while (this.head < this.queue.length && taken.length < most && (taken.length === 0 || size < c.batchMaxBytes)) {
      const item = this.queue[this.head]!;
      this.queue[this.head++] = undefined as unknown as Item; // let it be collected once sent
      taken.push(item);
      size += item.size;
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.queuedBytes -= size;
    this.inflight += taken.length;
    return this.multiRun ? [{ path: BATCH_PATH, items: taken }] : perRun(taken);
  }

  /** Send units in order; on a retryable failure, put it and the rest back and back off. */
  private async deliver(units: Unit[]): Promise<void> {
    for (let index = 0; index < units.length; index++) {
      const unit = units[index]!;
      let failure: Response | TransportError | null;
      try {
        failure = await this.send(unit);
      } catch (error) {
        // a bug or a bizarre answer: never leave items in flight
        this.resolve(unit.items, 0, { internal_error: unit.items.length });
        this.log.warning("send", `X-Ray delivery error, ${unit.items.length} events dropped: ${(error as Error)?.name}`);
        continue;
      }
      if (failure !== null) {
        this.backOff(units.slice(index), failure);
        return;
      }
    }
  }

  /** Send one unit; resolve its items unless the failure is worth retrying (returned). */
  private async send(unit: Unit): Promise<Response | TransportError | null> {
    const batch = unit.path === BATCH_PATH;
    const first = unit.items[0]!;
    const body = batch ? batchBody(unit.items) : first.kind === "event" ? `{"events":[${unit.items.map((i) => i.data).join(",")}]}` : first.data;
    this.requests++;
    let response: Response;
    try {
      response = await this.transport.post(unit.path, body);
    } catch (error) {
      if (error instanceof TransportError) return error;
      throw error;
    }
    const status = response.status;
    if (status === 408 || status === 429 || status >= 500) return response;
    this.breaker.recordSuccess();
    if (batch && status === 404) {
      // An X-Ray without the multi-run batch: the same items go again, by the contract's endpoints
      // (not an attempt: nothing was refused).
      this.multiRun = false;
      this.log.warning("no_batch", "X-Ray has no /api/v1/batch (an older server): sending a request per run");
      this.putBack(unit.items);
      return null;
    }
    const n = unit.items.length;
    const rejected = status === 207 ? rejectedCount(response.body, batch) : null;
    if (status === 200 || status === 201) {
      this.resolve(unit.items, n, null);
    } else if (rejected !== null) {
      const refused = Math.min(n, rejected);
      this.resolve(unit.items, n - refused, { rejected_by_server: refused });
      this.log.warning("rejected", `X-Ray rejected ${refused} of ${n} items: ${firstError(response.body, batch)}`);
    } else {
      this.resolve(unit.items, 0, { rejected_by_server: n });
      this.log.warning(`http_${status}`, `X-Ray answered ${status} to ${unit.path.split("/").pop()}: ${errorCode(response.body)}`);
    }
    return null;
  }

  private backOff(units: Unit[], failure: Response | TransportError): void {
    const c = this.config;
    const [failed, ...rest] = units as [Unit, ...Unit[]];
    const cooldown = this.breaker.recordFailure();
    // The exponent is capped: a long outage must not grow the delay past what a number holds.
    const exponent = Math.min(this.breaker.failures - 1, 30);
    let delay = Math.min(c.backoffMaxMs, c.backoffBaseMs * 2 ** exponent) * (0.5 + Math.random() / 2);
    if (!(failure instanceof TransportError) && failure.retryAfter !== null) {
      delay = Math.max(delay, Math.min(failure.retryAfter * 1000, c.retryAfterMaxMs));
    }
    delay = Math.max(delay, cooldown);
    this.retryAt = performance.now() + delay;
    const reason = failure instanceof TransportError ? "network" : `http_${failure.status}`;
    this.log.warning(`retry_${reason}`, `X-Ray unreachable (${reason}); retrying in ${(delay / 1000).toFixed(1)}s`);
    const exhausted: Item[] = [];
    const retry: Item[] = [];
    for (const item of failed.items) {
      item.attempts++;
      (item.attempts >= c.maxAttempts ? exhausted : retry).push(item);
    }
    for (const unit of rest) retry.push(...unit.items);
    if (this.closed) {
      // close() already gave up on the queue: these go the same way
      this.resolve(retry, 0, { shutdown: retry.length });
    } else {
      this.retries++;
      this.putBack(retry);
    }
    if (exhausted.length) this.resolve(exhausted, 0, { retries_exhausted: exhausted.length });
  }

  /** Return `items` to the head of the queue, in their order. */
  private putBack(items: Item[]): void {
    if (items.length === 0) return;
    if (this.head >= items.length) {
      this.head -= items.length;
      for (let i = 0; i < items.length; i++) this.queue[this.head + i] = items[i]!;
    } else {
      this.queue = items.concat(this.queue.slice(this.head));
      this.head = 0;
    }
    for (const item of items) this.queuedBytes += item.size;
    this.inflight -= items.length;
  }

  /** Settle `items` in flight: `sent` of them delivered, the rest dropped by reason. */
  private resolve(items: Item[], sent: number, dropped: Record<string, number> | null): void {
    this.inflight -= items.length;
    this.sent += sent;
    for (const [reason, n] of Object.entries(dropped ?? {})) if (n) this.count(reason, n);
    this.settle(items);
  }

  /** Count `items` off the flushes waiting for them, and end those with none left. */
  private settle(items: Item[]): void {
    if (this.waiters.length === 0) return;
    for (const waiter of this.waiters) {
      for (const item of items) if (item.order <= waiter.target) waiter.remaining--;
    }
    for (const waiter of this.waiters.filter((w) => w.remaining <= 0)) waiter.done();
  }

  private count(reason: string, n: number): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + n;
  }
}

/** A request per kind and run, the contract's endpoints: each run's create, its events, its labels. */
function perRun(items: Item[]): Unit[] {
  const creates: Unit[] = [];
  const events = new Map<string, Unit>();
  const labels: Unit[] = [];
  for (const item of items) {
    if (item.kind === "run") creates.push({ path: "/api/v1/runs", items: [item] });
    else if (item.kind === "label") labels.push({ path: `/api/v1/runs/${item.runId}/labels`, items: [item] });
    else {
      let unit = events.get(item.runId);
      if (unit === undefined) events.set(item.runId, (unit = { path: `/api/v1/runs/${item.runId}/events`, items: [] }));
      unit.items.push(item);
    }
  }
  return [...creates, ...events.values(), ...labels];
}

/** The body of `POST /api/v1/batch`: each item as its own endpoint takes it, an event or a label
 * naming its run (a create already does). The items' JSON is spliced, never parsed again. */
function batchBody(items: Item[]): string {
  const lists: Record<ItemKind, string[]> = { run: [], event: [], label: [] };
  for (const item of items) {
    const data = item.data;
    if (item.kind === "run") lists.run.push(data);
    else lists[item.kind].push(`{"run_id":${JSON.stringify(item.runId)}${data === "{}" ? "}" : `,${data.slice(1)}`}`);
  }
  return `{"runs":[${lists.run.join(",")}],"events":[${lists.event.join(",")}],"labels":[${lists.label.join(",")}]}`;
}

/** How many items a 207 refused, or null for a 207 that says nothing usable. */
function rejectedCount(body: unknown, batch: boolean): number | null {
  const lists = batch ? ["runs", "events", "labels"].map((k) => (body as Record<string, { rejected?: unknown }> | null)?.[k]) : [body];
  let total = 0;
  for (const list of lists) {
    const rejected = (list as { rejected?: unknown } | null | undefined)?.rejected;
    if (rejected === undefined && batch) continue; // a list the request did not have
    if (!Array.isArray(rejected)) return null;
    total += rejected.length;
  }
  return total;
}

function errorCode(body: unknown): string {
  const code = (body as { error?: { code?: unknown } } | null)?.error?.code;
  return code === undefined ? "no error body" : String(code);
}

function firstError(body: unknown, batch: boolean): string {
  try {
    type Rejected = { rejected: Array<{ index: number; errors: Record<string, unknown> }> };
    const where = batch ? (["runs", "events", "labels"] as const).find((k) => (body as Record<string, Rejected>)[k]?.rejected?.length) : undefined;
    const first = (where ? (body as Record<string, Rejected>)[where]! : (body as Rejected)).rejected[0]!;
    return `${where ? `${where} item` : "event"} ${first.index}: fields ${JSON.stringify(Object.keys(first.errors).sort())}`;
  } catch {
    return "no details";
  }
}
