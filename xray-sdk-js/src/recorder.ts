/**
 * `Recorder`: everything a run and its steps may ask of their client, and nothing more (as
 * xray_sdk/recorder.py). It is given functions, not the delivery, so a run or a step cannot
 * reach the queue, the transport or the client's settings, and the counters live in one place.
 */
import { XRayContractError } from "./errors.js";
import { Item, type ItemKind } from "./delivery/item.js";
import type { RateLimitedLog } from "./ratelog.js";
import type { Step } from "./step.js";
import type { Limits } from "./vocabulary.generated.js";

// Steps begun since the timer last looked, kept in a list before being settled: a bound on the
// memory that list holds when steps are many and the timer slow.
const RECENT_STEPS = 4096;

// The `once` keys already warned in this process (every client shares them: one warning a mistake).
const warned = new Set<string>();

export interface RecorderOptions {
  deliver: (item: Item) => boolean;
  pressure: () => number;
  limits: Limits;
  strict: boolean;
  disabled: boolean;
  log: RateLimitedLog;
}

/** Submits events, counts what went wrong, and tracks the steps still open. */
export class Recorder {
  readonly limits: Limits;
  disabled: boolean;
  readonly strict: boolean;
  contractErrors = 0;
  internalErrors = 0;
  artifactsKept = 0;
  readonly artifactsDropped: Record<string, number> = {};
  /** Where queued items go: the client's delivery (a test may swap it to capture them). */
  deliver: (item: Item) => boolean;
  readonly pressure: () => number;
  private readonly log: RateLimitedLog;
  // Open steps in two tiers, because nearly every step ends long before the timer looks: those
  // begun since the last look are only appended (`recent`, bounded); at each look the ones still
  // open move to `open`, and the ended ones are forgotten without ever having been hashed.
  private readonly open = new Set<Step>();
  private recent: Step[] = [];

  constructor(options: RecorderOptions) {
    this.deliver = options.deliver;
    this.pressure = options.pressure;
    this.limits = options.limits;
    this.strict = options.strict;
    this.disabled = options.disabled;
    this.log = options.log;
  }

  /** Queue `body`, which holds only the SDK's own values: whatever the pipeline handed over was
   * encoded when recorded (`RawJson`, see delivery/item.ts), so the envelope is encoded later. */
  submit(runId: string, kind: ItemKind, body: object): void {
    if (this.disabled) return;
    try {
      this.deliver(new Item(runId, kind, body));
    } catch (error) {
      this.internalError(error);
    }
  }

  /** Count an instrumentation mistake; throw it in strict mode, else log it. With
   * `raising: false` (the pipeline's own error is on its way) it is only counted. A mistake with
   * a `once` key is also emitted as a process warning the first time: a typo that quietly
   * changes what is stored must be seen even where nobody reads the SDK's log. */
  contractError(message: string, options: { raising?: boolean; once?: string } = {}): void {
    this.contractErrors++;
    if (options.raising === false) return;
    if (this.strict) throw new XRayContractError(message);
    const once = options.once;
    if (once !== undefined && !warned.has(once)) {
      warned.add(once);
      process.emitWarning(`X-Ray instrumentation problem: ${message}`, { type: "XRayContractWarning" });
    }
    this.log.warning("contract", `X-Ray instrumentation problem: ${message}`);
  }

  /** Count a bug of the SDK's own; the pipeline carries on. */
  internalError(error: unknown): void {
    this.internalErrors++;
    const name = error instanceof Error ? error.name : typeof error;
    this.log.warning("internal", `X-Ray SDK error (the pipeline is unaffected): ${name}`);
  }

  artifactKept(): void {
    this.artifactsKept++;
  }

  artifactDropped(reason: string): void {
    this.artifactsDropped[reason] = (this.artifactsDropped[reason] ?? 0) + 1;
  }

  /** Track `step` as open, so that it sends a step_start if it runs long. */
  openStep(step: Step): void {
    if (this.recent.push(step) >= RECENT_STEPS) this.settleRecent();
  }

  /** `step` has ended (it knows it too: `recent` is settled by asking it). */
  closeStep(step: Step): void {
    if (this.open.size !== 0) this.open.delete(step);
  }

  /** Send a step_start for each open step that started before `threshold` (microseconds on the
   * SDK's clock) and has not sent one; the step decides, so it sends at most one. */
  sendOverdueStarts(threshold: number): void {
    this.settleRecent();
    for (const step of Array.from(this.open)) {
      const event = step.startEventIfDue(threshold);
      if (event !== null) this.submit(step.run.runId, "event", event);
    }
  }

  /** Move the steps of `recent` still open into `open`; forget the others. */
  private settleRecent(): void {
    for (const step of this.recent) if (step.isOpen) this.open.add(step);
    this.recent = [];
  }
}
