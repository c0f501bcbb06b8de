/**
 * Turn anything a pipeline hands us into JSON, without ever throwing (as xray_sdk/serialize.py).
 *
 * The fast path is `JSON.stringify` with a replacer for what it would lose or refuse (NaN and
 * infinities become "NaN"/"Infinity" as in Python, bigints numbers or text, Maps objects, Sets
 * lists, bytes text). Anything it still refuses (cycles, a hostile `toJSON`) or that PostgreSQL
 * cannot store (NUL, unpaired surrogates) goes through `toJsonSafe`, which builds a clean copy.
 */
import { cleanText } from "./contract/bounds.js";

export const MAX_DEPTH = 32;
const MAX_REPR_CHARS = 200;
const MAX_ITEMS = 10_000; // of an iterable that is not a list: more is not a summary

/** JSON encoded once already (to measure it against a limit); `encode` splices it in. */
export class RawJson {
  constructor(readonly json: string) {}
}

function replacer(this: unknown, key: string, value: unknown): unknown {
  switch (typeof value) {
    case "number":
      return Number.isFinite(value) ? value : Number.isNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity";
    case "bigint":
      return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
    case "function":
    case "symbol":
      return repr(value);
    case "object": {
      if (value === null || Array.isArray(value)) return value;
      // A Buffer's own toJSON ran first ({type, data}); convert what the holder really has.
      const raw = (this as Record<string, unknown>)[key];
      return convert(ArrayBuffer.isView(raw) ? raw : value) ?? value;
    }
    default:
      return value;
  }
}

/** One step of conversion for an object JSON would mangle; undefined when it needs none. */
function convert(value: object): unknown {
  if (value instanceof Map) return Object.fromEntries(Array.from(value, ([k, v]) => [keyText(k), v]));
  if (value instanceof Set) return Array.from(value);
  if (ArrayBuffer.isView(value)) {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    const text = bytes.toString("utf8");
    return Buffer.from(text, "utf8").equals(bytes) ? text : "base64:" + bytes.subarray(0, 4096).toString("base64");
  }
  if (value instanceof Error) return { name: value.name, message: value.message };
  return undefined;
}

function keyText(key: unknown): string {
  return typeof key === "string" ? key : typeof key === "object" ? JSON.stringify(toJsonSafe(key)) : String(key);
}

// JSON.stringify escapes NUL and unpaired surrogates: their escapes in its output mean the value
// needs cleaning (a false alarm on a literal backslash-u in the text only costs the slow path).
const UNSTORABLE_ESCAPE = /\\u(?:0000|d[89a-f])/i;

/** Compact JSON for `value`; never throws. Values JSON has no text for (`undefined`) are `null`. */
export function dumps(value: unknown): string {
  try {
    const text = JSON.stringify(value, replacer);
    if (text === undefined) return "null";
    if (!UNSTORABLE_ESCAPE.test(text)) return text;
  } catch {
    // a cycle, or a hostile toJSON/getter: the safe path
  }
  try {
    return JSON.stringify(toJsonSafe(value)) ?? "null";
  } catch {
    return JSON.stringify(repr(value));
  }
}

/** A copy of `value` that JSON.stringify accepts and PostgreSQL can store; never throws. */
export function toJsonSafe(value: unknown, maxDepth = MAX_DEPTH): unknown {
  try {
    return safe(value, maxDepth, new Set());
  } catch {
    return repr(value);
  }
}

function safe(value: unknown, depth: number, path: Set<object>): unknown {
  if (value === null || value === undefined || typeof value === "boolean") return value ?? null;
  if (typeof value === "string") return cleanText(value);
  if (typeof value !== "object") return replacer.call({ "": value }, "", value);
  if (depth <= 0) return "<max depth>";
  if (path.has(value)) return "<cycle>";
  path.add(value);
  try {
    const converted = convert(value);
    if (converted !== undefined) return safe(converted, depth - 1, path);
    if (Array.isArray(value)) return value.map((v) => safe(v, depth - 1, path));
    if (typeof (value as { toJSON?: unknown }).toJSON === "function") {
      return safe((value as { toJSON: () => unknown }).toJSON(), depth - 1, path);
    }
    if (Symbol.iterator in value && !(Symbol.iterator in Object.prototype)) {
      const items: unknown[] = [];
      for (const item of value as Iterable<unknown>) {
        if (items.length >= MAX_ITEMS) break;
        items.push(safe(item, depth - 1, path));
      }
      return items;
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined && typeof v !== "function") out[cleanText(k)] = safe(v, depth - 1, path);
    }
    return out;
  } finally {
    path.delete(value);
  }
}

/** A short printable description of anything (Python's truncated `repr`). */
export function repr(value: unknown): string {
  let text: string;
  try {
    text = typeof value === "function" ? `<function ${value.name || "anonymous"}>` : String(value);
  } catch {
    text = `<unrepresentable ${typeof value}>`;
  }
  text = cleanText(text);
  return text.length <= MAX_REPR_CHARS ? text : text.slice(0, MAX_REPR_CHARS - 1) + "…";
}

/** Like `dumps`, but `RawJson` fragments within `depth` levels of objects and lists are used
 * as they are (an event's artifact payloads sit at depth 3: event, list, artifact). `owned`:
 * the value holds only plain data the SDK built (text, finite numbers, booleans, plain objects
 * and lists), so JSON.stringify needs no replacer, only the check for unstorable text. */
export function encode(value: unknown, depth = 3, owned = false): string {
  if (value instanceof RawJson) return value.json;
  if (depth > 0 && value !== null && typeof value === "object" && hasRaw(value, depth)) {
    if (Array.isArray(value)) return "[" + value.map((v) => encode(v, depth - 1, owned)).join(",") + "]";
    const parts: string[] = [];
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined) parts.push(JSON.stringify(cleanText(k)) + ":" + encode(v, depth - 1, owned));
    }
    return "{" + parts.join(",") + "}";
  }
  return owned ? dumpsOwned(value) : dumps(value);
}

function dumpsOwned(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) return "null";
  return UNSTORABLE_ESCAPE.test(text) ? dumps(toJsonSafe(value)) : text;
}

function hasRaw(value: object, depth: number): boolean {
  for (const v of Array.isArray(value) ? value : Object.values(value)) {
    if (v instanceof RawJson) return true;
    if (depth > 1 && v !== null && typeof v === "object" && hasRaw(v, depth - 1)) return true;
  }
  return false;
}
