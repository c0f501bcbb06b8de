/** Formatting values for events: labels, bounded summaries and errors, never throwing
 * (as xray_sdk/values.py). */
import { cleanText, firstChars, truncateText } from "./contract/bounds.js";
import { dumps, RawJson, toJsonSafe } from "./serialize.js";
import type { Limits } from "./vocabulary.generated.js";

// Step and pipeline names recur: clean each once (uncut).
const LABELS = new Map<string, string>();

/** A short printable name for anything, never throwing. `remember: false` for values that
 * seldom recur (ids), which would otherwise fill the cache meant for names. */
export function label(value: unknown, maxChars: number, remember = true): string {
  let cleaned: string;
  if (typeof value === "string") {
    let known = LABELS.get(value);
    if (known === undefined) {
      known = cleanText(value);
      if (remember && LABELS.size < 4096) LABELS.set(value, known);
    }
    cleaned = known;
  } else {
    const safe = toJsonSafe(value);
    cleaned = cleanText(typeof safe === "string" ? safe : dumps(safe));
  }
  return firstChars(cleaned, maxChars) || "unnamed";
}

/** `value` if its JSON fits `limit` bytes, else a marked preview (as the server would). A
 * pipeline's object is returned encoded (`RawJson`), so that its later changes cannot reach the
 * event queued for it. */
export function boundedSummary(value: unknown, limit: number): unknown {
  if (value === null || value === undefined || typeof value === "boolean") return value;
  if (typeof value === "number") return Number.isFinite(value) ? value : JSON.parse(dumps(value));
  if (typeof value === "string" && value.length * 4 <= limit) return value; // as Python: 4 bytes a unit at most (escapes aside)
  const text = dumps(value);
  const data = Buffer.from(text, "utf8");
  if (data.length <= limit) return new RawJson(text);
  return { _truncated: true, _original_bytes: data.length, preview: utf8Prefix(data, Math.floor(limit / 4)) + "…" };
}

/** The longest whole-character prefix of `data` within `bytes` (Python's `errors="ignore"`). */
function utf8Prefix(data: Buffer, bytes: number): string {
  let end = Math.min(bytes, data.length);
  while (end > 0 && end < data.length && (data[end]! & 0xc0) === 0x80) end--;
  return data.subarray(0, end).toString("utf8");
}

export interface ErrorInfo {
  type: string;
  message: string;
  stack?: string | null;
}

/** An error (or anything else thrown or given as an error) as {type, message, stack}. */
export function errorInfo(error: unknown, limits: Limits): ErrorInfo {
  if (!(error instanceof Error)) {
    return { type: "Error", message: truncateText(label(error, 1e9), limits.maxErrorMessageChars)[0] };
  }
  let type = "Error";
  let message = "";
  let stack = "";
  try {
    type = String(error.name || error.constructor?.name || "Error");
    message = String(error.message);
    stack = typeof error.stack === "string" ? error.stack : "";
  } catch {
    message = `<unprintable ${type}>`;
  }
  return {
    type: firstChars(cleanText(type), 200),
    message: truncateText(cleanText(message), limits.maxErrorMessageChars)[0],
    stack: stack ? truncateText(cleanText(stack), limits.maxErrorStackChars)[0] : null,
  };
}
