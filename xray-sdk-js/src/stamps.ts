/**
 * Where the SDK's timestamps and ids come from. Every event reads them through `stamps`, so
 * that the testing entry point (`xray-decisions-sdk/testing`) can fix both and the shared test
 * vectors can compare events exactly; nothing else replaces them.
 */
import { newId } from "./ids.js";

let second = -1;
let secondText = "";

/** The current time as RFC 3339 in UTC with microseconds, the Python SDK's format
 * (`2026-12-02T07:05:53.123456+00:00`); the date and time to the second are formatted once per second. */
export function nowIso(): string {
  const now = performance.timeOrigin + performance.now(); // milliseconds, with a fraction
  const whole = Math.floor(now / 1000);
  if (whole !== second) {
    second = whole;
    secondText = new Date(whole * 1000).toISOString().slice(0, 19);
  }
  const micros = Math.min(999_999, Math.floor((now - whole * 1000) * 1000));
  return `${secondText}.${String(micros).padStart(6, "0")}+00:00`;
}

export interface Stamps {
  now: () => string;
  newId: () => string;
}

/** The sources in use; `testing.fixClockAndIds()` swaps them. */
export const stamps: Stamps = { now: nowIso, newId };
