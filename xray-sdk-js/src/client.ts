/**
 * `Client`: configuration, the delivery it owns, and the counters a pipeline can read (as
 * xray_sdk/client.py). Nothing here waits on the network: what the pipeline hands over is
 * encoded when recorded (so later changes to its objects do not leak in), and events go to the
 * delivery, which never blocks. In `best_effort` mode nothing throws into the pipeline; in
 * `strict` mode instrumentation mistakes throw `XRayContractError` at the step.
 */
import { createHash } from "node:crypto";
import { DEFAULT_DELIVERY, type DeliveryConfig } from "./delivery/config.js";
import { HttpTransport } from "./delivery/transport.js";
import { Delivery, type DeliveryStats } from "./delivery/worker.js";
import { XRayContractError, XRayDeliveryError } from "./errors.js";
import { defaultLogger, RateLimitedLog, type Logger } from "./ratelog.js";
import { Recorder } from "./recorder.js";
import { Run } from "./run.js";
import { dumps, RawJson } from "./serialize.js";
import { stamps } from "./stamps.js";
import { label as bounded } from "./values.js";
import { CAPTURE_LEVELS, CaptureLevel as Level, DEFAULT_LIMITS, type CaptureLevel, type Limits } from "./vocabulary.generated.js";

export const BEST_EFFORT = "best_effort";
export const STRICT = "strict";
export const DEFAULT_ENDPOINT = "http://127.0.0.1:8000";

export type Mode = typeof BEST_EFFORT | typeof STRICT;

export interface ClientOptions {
  /** `best_effort` (default, or `XRAY_MODE`): never throw; `strict`: throw contract mistakes. */
  mode?: Mode;
  /** Default capture level of runs (or `XRAY_CAPTURE`): `summary`, `sample`, `full`. */
  capture?: CaptureLevel;
  /** Send nothing (or `XRAY_DISABLED=1`). */
  disabled?: boolean;
  /** Transport timeout of one request. */
  timeoutMs?: number;
  /** At exit (and by `close()` without an argument), queued events get this long to leave (1500). */
  shutdownTimeoutMs?: number;
  /** A step that ends within this sends one event; a longer one also sends a `step_start`. */
  startDelayMs?: number;
  delivery?: Partial<DeliveryConfig>;
  limits?: Limits;
  /** Where the SDK's rate-limited warnings go (default: `console.warn`). */
  logger?: Logger;
}

export interface RunOptions {
  tags?: Record<string, string>;
  metadata?: unknown;
  runId?: string;
  capture?: CaptureLevel;
}

export interface LabelOptions {
  source?: string;
  comment?: string;
  value?: number;
}

export interface ClientStats extends DeliveryStats {
  contractErrors: number;
  internalErrors: number;
  artifacts: { kept: number; dropped: Record<string, number> };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function envFlag(name: string): boolean {
  return ["1", "true", "yes", "on"].includes((process.env[name] ?? "").trim().toLowerCase());
}

/** Sends runs and steps to an X-Ray server in the background. A bad setting never throws: it
 * is logged and the safe default is used. */
export class Client {
  readonly endpoint: string;
  readonly mode: Mode;
  readonly capture: CaptureLevel;
  readonly shutdownTimeoutMs: number;
  readonly startDelayMs: number;
  readonly recorder: Recorder;
  private readonly delivery: Delivery;
  private readonly log: RateLimitedLog;
  private reportedLost = 0;

  constructor(endpoint?: string, options: ClientOptions = {}) {
    this.log = new RateLimitedLog(options.logger ?? defaultLogger);
    this.mode = this.choose(options.mode ?? process.env["XRAY_MODE"], [BEST_EFFORT, STRICT], BEST_EFFORT, "XRAY_MODE") as Mode;
    this.capture = this.choose(options.capture ?? process.env["XRAY_CAPTURE"], CAPTURE_LEVELS, Level.SUMMARY, "XRAY_CAPTURE") as CaptureLevel;
    let off = options.disabled ?? envFlag("XRAY_DISABLED");
    this.endpoint = endpoint || process.env["XRAY_ENDPOINT"] || DEFAULT_ENDPOINT;
    // 1.5 s, not the Python SDK's 2: the goal is an exit within 2 s of the last step, and Node's own
    // teardown and the last request's settling come on top of this deadline.
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? 1500;
    // A step that ends within `startDelayMs` costs one event (its step_end carries everything);
    // only longer steps also send a step_start, so they show as running.
    this.startDelayMs = options.startDelayMs ?? 1000;
    let transport: HttpTransport;
    try {
      transport = new HttpTransport(this.endpoint, options.timeoutMs ?? 3000, options.delivery?.gzipMinBytes ?? null);
    } catch (error) {
      this.log.warning("endpoint", `X-Ray disabled: ${(error as Error).message}`);
      off = true;
      transport = new HttpTransport(DEFAULT_ENDPOINT, options.timeoutMs ?? 3000);
    }
    // The delivery's timer must not keep the client alive: it reaches it through a weak reference.
    // A client the pipeline let go of is collected; its delivery still sends what was queued, then
    // stops its timer (a process that makes clients as it goes keeps none of them).
    this.delivery = new Delivery(transport, { ...DEFAULT_DELIVERY, ...options.delivery }, weakTick(new WeakRef(this)), this.log);
    this.delivery.shutdownTimeoutMs = this.shutdownTimeoutMs;
    this.recorder = new Recorder({
      deliver: (item) => this.delivery.submit(item),
      pressure: () => this.delivery.pressure(),
      limits: options.limits ?? DEFAULT_LIMITS,
      strict: this.mode === STRICT,
      disabled: off,
      log: this.log,
    });
  }

  private choose(value: string | undefined, allowed: readonly string[], fallback: string, name: string): string {
    if (value === undefined || value === "" || allowed.includes(value)) return value || fallback;
    this.log.warning(name, `${name}=${JSON.stringify(value)} is not one of ${allowed.join(", ")}; using ${fallback}`);
    return fallback;
  }

  /** The bounds applied to everything this client sends. */
  get limits(): Limits {
    return this.recorder.limits;
  }

  /** True when nothing is sent (`XRAY_DISABLED`, or an endpoint that is not a URL). */
  get disabled(): boolean {
    return this.recorder.disabled;
  }

  set disabled(value: boolean) {
    this.recorder.disabled = value;
  }

  /** True in strict mode: contract mistakes throw, and flush() rejects on loss. */
  get strict(): boolean {
    return this.mode === STRICT;
  }

  /** Begin a run; returns at once (the id is made here, the create request is queued). */
  startRun(pipeline: string, entity: string, options: RunOptions = {}): Run {
    let capture = options.capture;
    if (capture !== undefined && !CAPTURE_LEVELS.includes(capture)) {
      this.recorder.contractError(`capture ${JSON.stringify(capture)} is not one of ${CAPTURE_LEVELS.join(", ")}`);
      capture = undefined;
    }
    const run = new Run(this.recorder, this.runId(options.runId), pipeline, entity, capture ?? this.capture);
    try {
      const limits = this.limits;
      const body: Record<string, unknown> = {
        run_id: run.runId,
        pipeline: bounded(pipeline, limits.maxNameChars),
        entity: bounded(entity, limits.maxNameChars),
        started_at: stamps.now(),
      };
      if (options.tags && Object.keys(options.tags).length) {
        const tags: Record<string, string> = {};
        for (const [k, v] of Object.entries(options.tags).slice(0, limits.maxTags)) {
          tags[bounded(k, limits.maxTagKeyChars)] = bounded(v, limits.maxTagValueChars);
        }
        body["tags"] = tags;
      }
      if (options.metadata !== undefined && options.metadata !== null) body["metadata"] = this.boundedMetadata(options.metadata);
      this.recorder.submit(run.runId, "run", body);
    } catch (error) {
      this.recorder.internalError(error);
    }
    return run;
  }

  /** `startRun(...)` then `run.within(fn)`: `fn(run)` runs with the run as the current run, and
   * the run is finished when it returns or settles (with the error, if one escaped). */
  withRun<T>(pipeline: string, entity: string, fn: (run: Run) => T, options: RunOptions = {}): T {
    return this.startRun(pipeline, entity, options).within(fn);
  }

  /** Record a judgement of a run that arrived after it (`bad`, `good`, ...), with a number if it
   * is one (`value`); queued and delivered like events. The latest judgement of each `source` wins. */
  label(runId: string, label: string, options: LabelOptions = {}): void {
    try {
      const limits = this.limits;
      const body: Record<string, unknown> = {
        label: bounded(label, limits.maxReasonChars),
        // No source is the empty one (as the API's default), not a name made up for it.
        source: options.source ? bounded(options.source, limits.maxNameChars) : "",
        at: stamps.now(),
      };
      if (options.comment !== undefined && options.comment !== null) body["comment"] = bounded(options.comment, limits.maxWhyChars);
      const value = options.value;
      if (value !== undefined && value !== null) {
        if (typeof value === "number" && Number.isFinite(value)) body["value"] = value;
        else this.recorder.contractError(`label value ${bounded(value, 64)} is not a finite number`);
      }
      this.recorder.submit(this.runId(runId), "label", body);
    } catch (error) {
      if (error instanceof XRayContractError) throw error;
      this.recorder.internalError(error);
    }
  }

  /** The id to send: a UUID, as the server requires. Any other id is a contract error, and is
   * mapped to a UUID derived from it (version 5, as the Python SDK), so the same id always gives
   * the same run. */
  private runId(runId: unknown): string {
    if (runId === undefined || runId === null) return stamps.newRunId();
    const text = String(runId);
    if (UUID.test(text)) return text.toLowerCase();
    this.recorder.contractError(`run_id ${JSON.stringify(bounded(runId, 64))} is not a UUID`);
    return uuid5Url(`xray-run:${bounded(runId, 1e6)}`);
  }

  private boundedMetadata(metadata: unknown): unknown {
    const data = dumps(metadata);
    const size = Buffer.byteLength(data, "utf8");
    if (size <= this.limits.maxMetadataBytes) return new RawJson(data);
    return { _truncated: true, _original_bytes: size };
  }

  /** Wait up to `timeoutMs` for queued events to be delivered; false if some are still pending.
   * In strict mode, reject with `XRayDeliveryError` if any were lost since the last flush or
   * are still pending. */
  async flush(timeoutMs = 5000): Promise<boolean> {
    const done = await this.delivery.flush(timeoutMs);
    if (this.strict) {
      const stats = this.delivery.stats();
      const lost = stats.droppedTotal - this.reportedLost;
      this.reportedLost = stats.droppedTotal;
      if (lost || !done) {
        throw new XRayDeliveryError(
          `${lost} events lost since the last flush (by reason: ${JSON.stringify(stats.dropped)}), ` +
            `${stats.pending} still pending after ${timeoutMs} ms; is ${this.endpoint} reachable?`,
        );
      }
    }
    return done;
  }

  /** Deliver what is queued within `timeoutMs` (default `shutdownTimeoutMs`), then stop. */
  close(timeoutMs?: number): Promise<boolean> {
    return this.delivery.close(timeoutMs ?? this.shutdownTimeoutMs);
  }

  /** Delivery counters (`enqueued == sent + droppedTotal + pending`) and SDK counters. */
  stats(): ClientStats {
    const recorder = this.recorder;
    return {
      ...this.delivery.stats(),
      contractErrors: recorder.contractErrors,
      internalErrors: recorder.internalErrors,
      artifacts: { kept: recorder.artifactsKept, dropped: { ...recorder.artifactsDropped } },
    };
  }

  /** Called by the delivery timer: send step_start for steps running past startDelayMs. */
  sendOverdueStarts(): void {
    this.recorder.sendOverdueStarts(stamps.now().micros - this.startDelayMs * 1000);
  }
}

/** The delivery timer's call into `client`, holding it weakly. Made here, not in the constructor:
 * V8 gives all closures of one function a shared context, and one that captures `this` (the
 * recorder's) would make this one hold the client too. */
function weakTick(client: WeakRef<Client>): () => boolean {
  return () => {
    const alive = client.deref();
    alive?.sendOverdueStarts();
    return alive !== undefined;
  };
}

/** Python's `uuid.uuid5(uuid.NAMESPACE_URL, name)`. */
function uuid5Url(name: string): string {
  const namespace = Buffer.from("6ba7b8119dad11d180b400c04fd430c8", "hex");
  const hash = createHash("sha1").update(namespace).update(name, "utf8").digest().subarray(0, 16);
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

