/**
 * What the queue holds: one request body fragment. Its body is built by the SDK alone: every
 * value a pipeline handed over (an input, an output, an outcome, metadata, an artifact's
 * payload) was encoded as JSON when it was recorded (`RawJson`), so that later changes to the
 * pipeline's objects cannot leak in. What is left (ids, names, numbers, metric values, short
 * text) is the SDK's own and never changes, so the envelope is encoded later, by the delivery,
 * off the step's path: as OpenTelemetry's BatchSpanProcessor queues spans, not their export.
 */
import { encode, RawJson } from "../serialize.js";

/** A run create (`POST /api/v1/runs`), an event of a run, or a judgement of a run. */
export type ItemKind = "run" | "event" | "label";

// Bytes a body's punctuation, keys and fixed fields take beyond its values, and a value that is
// not text: generous, so that the estimate does not undercount an ordinary event.
const ENVELOPE_BYTES = 256;
const VALUE_BYTES = 24;

export class Item {
  attempts = 0;
  /** Its place among the items its queue accepted (1, 2, ...): what a flush waits up to. */
  order = 0;
  /** About the bytes of the encoded body (text counted as one byte a character): what the
   * queue's byte bound counts, without encoding on the step's path. */
  readonly size: number;
  private body: object | null;
  private json: string | null = null;

  constructor(
    readonly runId: string,
    readonly kind: ItemKind,
    body: object,
  ) {
    this.body = body;
    this.size = ENVELOPE_BYTES + estimate(body, 3);
  }

  /** The body as JSON, encoded once (on first use, by the delivery). */
  get data(): string {
    if (this.json === null) {
      this.json = encode(this.body, 3, true);
      this.body = null;
    }
    return this.json;
  }
}

function estimate(value: unknown, depth: number): number {
  if (typeof value === "string") return value.length + 2;
  if (value instanceof RawJson) return value.json.length;
  if (value === null || typeof value !== "object" || depth === 0) return VALUE_BYTES;
  let total = 0;
  if (Array.isArray(value)) {
    for (const item of value) total += estimate(item, depth - 1) + 1;
    return total;
  }
  for (const key in value) total += key.length + 4 + estimate((value as Record<string, unknown>)[key], depth - 1);
  return total;
}
