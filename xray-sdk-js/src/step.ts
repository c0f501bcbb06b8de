/**
 * A step: what it records (metrics, why, input, output, artifacts, decisions) and the events it
 * sends (as xray_sdk/steps.py). A short step sends one event, its `step_end`, which carries
 * everything including when it started; a step still open after the client's `startDelayMs`
 * also sends a `step_start` (from the delivery timer), so that it shows as running.
 */
import { truncateText } from "./contract/bounds.js";
import { evaluateMetrics } from "./contract/metrics.js";
import { Decisions } from "./decisions.js";
import { currentStep } from "./context.js";
import type { Run } from "./run.js";
import { dumps, RawJson } from "./serialize.js";
import { stamps, type Timestamp } from "./stamps.js";
import { boundedSummary, errorInfo, label } from "./values.js";
import {
  CAPTURE_LEVELS,
  CAPTURE_RANK,
  CaptureLevel as Level,
  DropReason,
  REQUIRED_METRICS,
  STEP_TYPES,
  StepStatus,
  StepType as Types,
  type CaptureLevel,
  type StepType,
} from "./vocabulary.generated.js";

// Keep artifact payloads only while the queue is under this share of its bound, so that
// metrics, which are never dropped by choice, always have room.
const PAYLOAD_PRESSURE = 0.5;

// A step's metrics until it records one: shared, never written (the first write copies).
const EMPTY: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;

/** A step's own options (never passed to its function). */
export interface StepOptions {
  /** Recorded as the step's input. */
  input?: unknown;
  /** The step's capture level (default: its run's). */
  capture?: CaptureLevel;
  /** The key that identifies a candidate in the evidence of keep, reject and decide. */
  idField?: string;
}

export interface ArtifactOptions {
  capture?: CaptureLevel;
  contentType?: string;
}

interface Artifact {
  name: unknown;
  capture: unknown;
  contentType: unknown;
  payload: unknown;
}

type Event = Record<string, unknown>;

/** One business decision of a run. Its recording methods return the step and never throw in
 * best_effort mode. */
export class Step {
  readonly stepId: string;
  readonly seq: number;
  readonly name: string;
  readonly stepType: StepType;
  readonly capture: CaptureLevel;
  readonly parentStepId: string | null;
  readonly startedAt: Timestamp;
  private startSent = false;
  private closed = false;
  private metricValues: Record<string, unknown> = EMPTY;
  private whyText: string | null = null;
  private inputValue: unknown;
  private outputValue: unknown = undefined;
  private artifacts: Artifact[] | null = null;
  private decisions: Decisions | null = null;
  private idField: string | null;
  private declaredType: string | null = null;

  constructor(
    readonly run: Run,
    name: string,
    stepType: string,
    options: StepOptions = {},
  ) {
    const recorder = run.recorder;
    this.stepId = stamps.newId();
    this.seq = run.nextSeq();
    this.name = label(name, recorder.limits.maxNameChars);
    this.capture = options.capture !== undefined && CAPTURE_LEVELS.includes(options.capture) ? options.capture : run.capture;
    const parent = currentStep();
    this.parentStepId = parent !== null && parent.run === run ? parent.stepId : null;
    this.startedAt = stamps.now();
    this.inputValue = options.input;
    this.idField = options.idField ?? null;
    if (STEP_TYPES.includes(stepType as StepType)) {
      this.stepType = stepType as StepType;
    } else {
      this.stepType = Types.CUSTOM;
      // Sent with the step: the server records it as the violation `unknown_step_type:<given>`.
      this.declaredType = label(stepType, recorder.limits.maxDeclaredTypeChars);
      recorder.contractError(
        `step ${JSON.stringify(this.name)}: step type ${JSON.stringify(this.declaredType)} is not one of ` +
          `${STEP_TYPES.join(", ")}; it is recorded as 'custom' with the violation unknown_step_type`,
        { once: `step_type:${this.declaredType}` },
      );
    }
    if (options.idField !== undefined && typeof options.idField !== "string") {
      this.idField = null;
      recorder.contractError(`step ${JSON.stringify(this.name)}: idField ${label(options.idField, 64)} is not a string`);
    }
  }

  // ---------------------------------------------------------------- recording

  /** Record metrics (merged with earlier ones). */
  metrics(values: Record<string, unknown>): this {
    try {
      // The first call copies (a spread is the cheapest copy of a plain object); later ones merge.
      if (this.metricValues === EMPTY) this.metricValues = { ...values };
      else Object.assign(this.metricValues, values);
    } catch (error) {
      this.run.recorder.internalError(error);
    }
    return this;
  }

  /** Record `candidates_in` / `candidates_out` from counts or collections; `drop_ratio` is
   * derived from them. */
  candidates(before: unknown, after: unknown): this {
    if (this.metricValues === EMPTY) this.metricValues = {};
    this.metricValues["candidates_in"] = count(before);
    this.metricValues["candidates_out"] = count(after);
    delete this.metricValues["drop_ratio"];
    return this;
  }

  /** Record that `candidate` passed this step. `id`: its id in the evidence (else the step's
   * `idField` of the candidate, if any). */
  keep(candidate: unknown, id?: unknown): this {
    (this.decisions ?? this.record()).keep(candidate, id);
    return this;
  }

  /** Record that `candidate` was dropped, and why (a short, stable reason code such as
   * `category_mismatch`: reasons are counted and compared across runs). */
  reject(candidate: unknown, reason: string, id?: unknown): this {
    (this.decisions ?? this.record()).reject(candidate, reason, id);
    return this;
  }

  /** Record many decisions at once: `kept` candidates and `rejected` [candidate, reason]
   * pairs, identified by the step's `idField`. */
  decide(kept: Iterable<unknown>, rejected: Iterable<readonly [unknown, string]>): this {
    try {
      this.record().extend(kept, rejected);
    } catch (error) {
      this.run.recorder.internalError(error);
    }
    return this;
  }

  private record(): Decisions {
    this.decisions ??= new Decisions(this.run.recorder.limits, this.capture === Level.FULL, this.idField);
    return this.decisions;
  }

  /** Record the LLM's `model` and `temperature`. */
  model(name: string, temperature?: number | null): this {
    if (this.metricValues === EMPTY) this.metricValues = {};
    this.metricValues["model"] = name;
    if (temperature !== undefined && temperature !== null) this.metricValues["temperature"] = temperature;
    return this;
  }

  /** Say in a sentence why the step behaved as it did. */
  why(text: string): this {
    this.whyText = typeof text === "string" ? text : label(text, 1e9);
    return this;
  }

  /** A summary of what the step was given. */
  input(value: unknown): this {
    this.inputValue = value;
    return this;
  }

  /** A summary of what the step produced. */
  output(value: unknown): this {
    this.outputValue = value;
    return this;
  }

  /** Attach bulky evidence. Kept only if `capture` (default `sample`) is within the step's
   * capture level, the payload within the size limit and the queue not under pressure;
   * otherwise the step records that it was dropped and why. */
  artifact(name: string, payload: unknown, options: ArtifactOptions = {}): this {
    (this.artifacts ??= []).push({
      name,
      capture: options.capture ?? Level.SAMPLE,
      contentType: options.contentType ?? "application/json",
      payload,
    });
    return this;
  }

  // ---------------------------------------------------------------- life

  /** Called when the step begins: it may now send a step_start if it runs long. */
  open(): void {
    const recorder = this.run.recorder;
    if (!recorder.disabled) recorder.openStep(this);
  }

  /** End the step (once), with the error that escaped it if any. In strict mode a contract
   * mistake throws here, unless the pipeline's own error is on its way. */
  end(error?: unknown): void {
    if (this.closed) return;
    this.closed = true;
    const recorder = this.run.recorder;
    recorder.closeStep(this);
    if (recorder.disabled) return;
    const failed = error !== undefined;
    const problems: string[] = [];
    try {
      const event = this.endEvent(failed, error, problems);
      recorder.submit(this.run.runId, "event", event);
    } catch (bug) {
      recorder.internalError(bug);
    }
    if (problems.length) {
      recorder.contractError(`step ${JSON.stringify(this.name)} (${this.stepType}): ${problems.join("; ")}`, { raising: !failed });
    }
  }

  /** True from `open()` until `end()`. */
  get isOpen(): boolean {
    return !this.closed;
  }

  /** The step_start event, once, if the step is still open and began before `threshold` (a
   * time in microseconds on the SDK's clock, `stamps`); else null. The delivery timer asks. */
  startEventIfDue(threshold: number): Event | null {
    if (this.startSent || this.closed || this.startedAt.micros > threshold) return null;
    this.startSent = true;
    const event = this.identity("step_start", this.startedAt);
    if (this.inputValue !== undefined && this.inputValue !== null) event["input"] = this.bounded(this.inputValue);
    return event;
  }

  private endEvent(failed: boolean, error: unknown, problems: string[]): Event {
    const limits = this.run.recorder.limits;
    const event = this.identity("step_end", stamps.now());
    event["status"] = failed ? StepStatus.ERROR : StepStatus.OK;
    event["started_at"] = this.startedAt;
    if (this.decisions !== null) this.applyDecisions(event);
    const metrics = this.metricValues;
    let any = false;
    for (const _ in metrics) {
      any = true;
      break;
    }
    if (any || this.stepType in REQUIRED_METRICS) {
      const verdict = evaluateMetrics(this.stepType, metrics, limits);
      for (const [name, problem] of Object.entries(verdict.errors)) problems.push(`metric ${name} ${problem}`);
      problems.push(...verdict.violations);
      event["metrics"] = verdict.metrics; // unusable values left out, so the step still lands
    }
    // Not cleaned here: replacing NUL or an unpaired surrogate keeps the length, and the encoding
    // of the event (delivery/item.ts) cleans whatever text it finds unstorable.
    if (this.whyText !== null) event["why"] = truncateText(this.whyText, limits.maxWhyChars)[0];
    if (this.inputValue !== undefined && this.inputValue !== null) event["input"] = this.bounded(this.inputValue);
    if (this.outputValue !== undefined && this.outputValue !== null) event["output"] = this.bounded(this.outputValue);
    if (failed) event["error"] = errorInfo(error, limits);
    if (this.artifacts) event["artifacts"] = this.artifactRefs();
    return event;
  }

  /** Counts become metrics (exact, over every candidate); samples become artifacts. */
  private applyDecisions(event: Event): void {
    const d = this.decisions!;
    if (this.metricValues === EMPTY) this.metricValues = {};
    const m = this.metricValues;
    if (!("candidates_in" in m)) m["candidates_in"] = d.kept + d.rejected;
    if (!("candidates_out" in m)) m["candidates_out"] = d.kept;
    if (d.counts.size) event["rejections"] = d.reasonCounts();
    // Below `sample` (the default `summary`), a sample whose every candidate has an id is kept as
    // those ids alone: short strings, bounded per reason, enough for `why-dropped` to answer.
    const idsOnly = CAPTURE_RANK[this.capture] < CAPTURE_RANK[Level.SAMPLE];
    if (d.keptSample.length) this.evidence("kept_sample", idsOnly ? d.keptIds() : null, () => d.keptEvidence());
    if (d.samples.size) this.evidence("rejected_sample", idsOnly ? d.rejectedIds() : null, () => d.rejectedSample());
    if (d.rejectedAll?.length) this.artifact("rejected_all", d.rejectedAllEvidence(), { capture: Level.FULL });
  }

  private evidence(name: string, ids: unknown[] | null, sample: () => unknown[]): void {
    if (ids !== null) this.artifact(name, ids, { capture: Level.SUMMARY });
    else this.artifact(name, sample(), { capture: Level.SAMPLE });
  }

  private identity(type: string, ts: Timestamp): Event {
    const event: Event = {
      event_id: stamps.newId(),
      type,
      ts,
      step_id: this.stepId,
      seq: this.seq,
      name: this.name,
      step_type: this.stepType,
    };
    if (this.parentStepId) event["parent_step_id"] = this.parentStepId;
    if (this.declaredType !== null) event["declared_type"] = this.declaredType;
    return event;
  }

  private bounded(value: unknown): unknown {
    return boundedSummary(value, this.run.recorder.limits.maxSummaryBytes);
  }

  private artifactRefs(): Event[] {
    const recorder = this.run.recorder;
    const limits = recorder.limits;
    const refs: Event[] = [];
    const seen = new Set<string>();
    const shed = recorder.pressure() >= PAYLOAD_PRESSURE;
    // One event must fit the server's body limit with room to spare, whatever it carries.
    let budget = Math.floor(limits.maxBodyBytes / 2);
    for (const artifact of (this.artifacts ?? []).slice(0, limits.maxArtifactsPerStep)) {
      const name = label(artifact.name, limits.maxNameChars);
      if (seen.has(name)) continue;
      seen.add(name);
      const capture = CAPTURE_LEVELS.includes(artifact.capture as CaptureLevel) ? (artifact.capture as CaptureLevel) : Level.FULL;
      const ref: Event = { name, capture, content_type: label(artifact.contentType, limits.maxNameChars) };
      // Decide before encoding: a payload that will not be sent is never serialised.
      if (CAPTURE_RANK[capture] > CAPTURE_RANK[this.capture]) {
        ref["dropped"] = DropReason.CAPTURE_POLICY;
      } else if (shed) {
        ref["dropped"] = DropReason.LOAD_SHED;
      } else {
        const data = dumps(artifact.payload);
        const size = Buffer.byteLength(data, "utf8");
        if (size > Math.min(limits.maxArtifactPayloadBytes, budget)) {
          ref["dropped"] = DropReason.TOO_LARGE;
        } else {
          ref["payload"] = new RawJson(data);
          budget -= size;
        }
      }
      if ("dropped" in ref) recorder.artifactDropped(ref["dropped"] as string);
      else recorder.artifactKept();
      refs.push(ref);
    }
    return refs;
  }
}

/** A count, or the size of a collection; anything else is left for the contract check to report. */
function count(value: unknown): unknown {
  if (typeof value === "number") return value;
  if (typeof value === "string") return value.length;
  try {
    if (Array.isArray(value)) return value.length; // a Proxy of an array may throw here
    if (value instanceof Map || value instanceof Set) return value.size;
    if (value !== null && typeof value === "object") {
      const length = (value as { length?: unknown }).length; // a typed array, an array-like
      if (typeof length === "number") return length;
    }
  } catch {
    // a getter or a Proxy that throws: no count, which the contract check reports
  }
  return typeof value === "object" || typeof value === "function" ? null : value;
}
