/**
 * For tests only (`xray-decisions-sdk/testing`): fix the clock and the ids every event carries,
 * so that a test can compare events exactly (the shared test vectors in tests/vectors/sdk/ do),
 * and capture what a client would send instead of sending it.
 */
import type { Client } from "./client.js";
import type { Item } from "./delivery/item.js";
import { stamps, Timestamp, type Stamps } from "./stamps.js";

export interface FixedStamps {
  /** The first timestamp, RFC 3339 to the second in UTC without zone ("2026-01-01T00:00:00"). */
  start: string;
  /** Microseconds between consecutive timestamps. */
  tickMicros: number;
}

/** From now on, timestamps are `start`, `start + tick`, ...; ids are
 * 00000000-0000-4000-8000-000000000001, ...002, ... in the order asked, and a run's id is
 * 00000000-DDDD-8000-8000-00000000000N, DDDD the day it carries (that of the next timestamp), as
 * the Python SDK's `xray_sdk.testing.fixed_clock_and_ids` makes them. Returns the function that
 * restores the real ones. */
export function fixClockAndIds(fixed: FixedStamps): () => void {
  const saved: Stamps = { ...stamps };
  const base = Date.parse(fixed.start + "Z") * 1000; // microseconds
  let ticks = 0;
  let ids = 0;
  stamps.now = () => new Timestamp(base + ticks++ * fixed.tickMicros);
  stamps.newId = () => `00000000-0000-4000-8000-${String(++ids).padStart(12, "0")}`;
  stamps.newRunId = () => {
    const day = Math.floor((base + ticks * fixed.tickMicros) / 86_400_000_000);
    return `00000000-${day.toString(16).padStart(4, "0")}-8000-8000-${String(++ids).padStart(12, "0")}`;
  };
  return () => Object.assign(stamps, saved);
}

/** What `client` would send, as [kind, runId, parsed body], captured instead of queued. */
export function captureItems(client: Client): Array<{ kind: string; runId: string; body: unknown }> {
  const captured: Array<{ kind: string; runId: string; body: unknown }> = [];
  client.recorder.deliver = (item: Item) => {
    captured.push({ kind: item.kind, runId: item.runId, body: JSON.parse(item.data) });
    return true;
  };
  return captured;
}
