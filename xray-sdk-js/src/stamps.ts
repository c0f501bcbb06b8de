/**
 * Where the SDK's timestamps and ids come from. Every event reads them through `stamps`, so
 * that the testing entry point (`xray-decisions-sdk/testing`) can fix both and the shared test
 * vectors can compare events exactly; nothing else replaces them.
 */
import { newId, newRunId } from "./ids.js";

let second = -1;
let secondText = "";

/**
 * A moment, kept as microseconds since the epoch and written as RFC 3339 in UTC with
 * microseconds, the Python SDK's format (`2026-12-02T07:05:53.123456+00:00`), only when the
 * event is encoded: a step reads the clock twice, and formatting is most of the cost of a read.
 */
export class Timestamp {
  constructor(readonly micros: number) {}

  toJSON(): string {
    const whole = Math.floor(this.micros / 1_000_000);
    if (whole !== second) {
      // One format a second: the date and time to the second recur for every event in it.
      second = whole;
      secondText = new Date(whole * 1000).toISOString().slice(0, 19);
    }
    return secondText + "." + (1_000_000 + (this.micros - whole * 1_000_000)).toString().slice(1) + "+00:00";
  }

  toString(): string {
    return this.toJSON();
  }
}

// Read once: `performance.timeOrigin` is a getter that validates its receiver on every read.
const ORIGIN = performance.timeOrigin;

/** Now, to the microsecond (the monotonic clock from the process's start, on the wall clock). */
export function now(): Timestamp {
  return new Timestamp(Math.floor((ORIGIN + performance.now()) * 1000));
}

export interface Stamps {
  now: () => Timestamp;
  newId: () => string;
  /** A run's id, carrying the day the run starts (ids.ts). */
  newRunId: () => string;
}

/** The sources in use; `testing.fixClockAndIds()` swaps them. */
export const stamps: Stamps = { now, newId, newRunId: () => newRunId() };
