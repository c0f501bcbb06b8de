/** Summaries and samples of candidate lists: what the contract's capture levels keep (as
 * xray_sdk/summaries.py). */
import { toJsonSafe } from "./serialize.js";

/** `item[name]` for an object or a Map, null when absent. */
export function fieldValue(item: unknown, name: string): unknown {
  if (item instanceof Map) return item.get(name) ?? null;
  if (item !== null && typeof item === "object") return (item as Record<string, unknown>)[name] ?? null;
  return null;
}

export interface SummarizeOptions {
  fields?: readonly string[];
  examples?: number;
  top?: number;
}

/** The `summary` capture of a candidate list: its count, a few examples, and for each of
 * `fields` the `top` most frequent values with their counts (the rest as `_other`). */
export function summarize(items: Iterable<unknown>, options: SummarizeOptions = {}): Record<string, unknown> {
  const list = Array.from(items);
  const { fields = [], examples = 3, top = 5 } = options;
  const summary: Record<string, unknown> = { count: list.length };
  if (examples) summary["examples"] = list.slice(0, examples).map((item) => toJsonSafe(item));
  if (fields.length) {
    summary["distributions"] = Object.fromEntries(fields.map((name) => [name, distribution(list, name, top)]));
  }
  return summary;
}

function distribution(items: unknown[], name: string, top: number): Record<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) {
    const safe = toJsonSafe(fieldValue(item, name));
    const key = safe === null ? "None" : typeof safe === "string" ? safe : JSON.stringify(safe);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const ranked = Array.from(counts).sort((a, b) => b[1] - a[1]); // stable: ties in first-seen order, as Counter
  const common = Object.fromEntries(ranked.slice(0, top));
  const other = ranked.slice(top).reduce((sum, [, n]) => sum + n, 0);
  if (other) common["_other"] = other;
  return common;
}

/** A reproducible sample of at most `k` items, in their original order (the `sample` capture).
 * Reproducible for a given seed within this SDK; it does not pick what Python's would. */
export function sample<T>(items: Iterable<T>, k: number, seed: number | string = 0): T[] {
  const list = Array.from(items);
  if (list.length <= k) return list;
  const random = mulberry32(typeof seed === "number" ? seed : hashText(seed));
  const indexes = list.map((_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(random() * (indexes.length - i));
    [indexes[i], indexes[j]] = [indexes[j]!, indexes[i]!];
  }
  return indexes
    .slice(0, k)
    .sort((a, b) => a - b)
    .map((i) => list[i]!);
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hashText(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}
