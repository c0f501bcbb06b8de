/**
 * Why each candidate was kept or dropped, as signal that stays queryable (as
 * xray_sdk/decisions.py). Counts are exact over every candidate and become metrics; samples are
 * bounded and stratified (every kept candidate up to a cap, and the first K rejected per reason,
 * so a rare reason is still represented) and become artifacts. Under `full` capture the complete
 * rejected list is kept too. A known id (given to keep/reject, else the step's `idField` of the
 * candidate) is carried as a string; ids are looked up only for the evidence, when the step ends.
 */
import { OTHER_REASON, type Limits } from "./vocabulary.generated.js";
import { label } from "./values.js";

/** A candidate in a sample with the id its caller gave (a private type: never a candidate). */
class Identified {
  constructor(
    readonly candidate: unknown,
    readonly id: unknown,
  ) {}
}

type Entry = unknown; // a candidate, or an Identified

export interface KeptEntry {
  id: string;
  candidate?: unknown;
}
export interface RejectedEntry {
  reason: string;
  id?: string;
  candidate?: unknown;
}

/** The keep/reject record of one step: a counter per candidate and, while the sample for that
 * reason is not full, an append. */
export class Decisions {
  kept = 0;
  readonly keptSample: Entry[] = [];
  readonly counts = new Map<string, number>();
  readonly samples = new Map<string, Entry[]>();
  readonly rejectedAll: Array<[string, Entry]> | null;

  constructor(
    private readonly limits: Limits,
    keepAll: boolean,
    private readonly idField: string | null = null,
  ) {
    this.rejectedAll = keepAll ? [] : null;
  }

  keep(candidate: unknown, id?: unknown): void {
    this.kept++;
    if (this.keptSample.length < this.limits.keptSampleSize) {
      this.keptSample.push(id === undefined || id === null ? candidate : new Identified(candidate, id));
    }
  }

  reject(candidate: unknown, reason: unknown, id?: unknown): void {
    const why =
      typeof reason === "string" && reason && reason.length <= this.limits.maxReasonChars
        ? reason
        : reason === null || reason === undefined || reason === ""
          ? "unspecified"
          : label(reason, this.limits.maxReasonChars);
    const count = this.counts.get(why) ?? 0;
    this.counts.set(why, count + 1);
    const entry = id === undefined || id === null ? candidate : new Identified(candidate, id);
    if (count < this.limits.rejectedSamplePerReason) {
      const sample = this.samples.get(why);
      if (sample) sample.push(entry);
      else this.samples.set(why, [entry]);
    }
    this.rejectedAll?.push([why, entry]);
  }

  extend(kept: Iterable<unknown>, rejected: Iterable<readonly [unknown, string]>): void {
    for (const candidate of kept) this.keep(candidate);
    for (const [candidate, reason] of rejected) this.reject(candidate, reason);
  }

  get rejected(): number {
    let total = 0;
    for (const n of this.counts.values()) total += n;
    return total;
  }

  /** The most frequent reasons, the rest folded into `other`: bounded whatever the step did. */
  reasonCounts(): Record<string, number> {
    const ranked = this.ranked();
    const top: Record<string, number> = {};
    for (const [reason, n] of ranked.slice(0, this.limits.maxReasons)) top[reason] = n;
    const rest = ranked.slice(this.limits.maxReasons).reduce((sum, [, n]) => sum + n, 0);
    if (rest) top[OTHER_REASON] = (top[OTHER_REASON] ?? 0) + rest;
    return top;
  }

  /** The kept sample: each candidate, or `{id, candidate}` when its id is known. */
  keptEvidence(): unknown[] {
    return this.keptSample.map((item) => {
      const [candidate, known] = this.identify(item);
      return known === null ? candidate : { id: known, candidate };
    });
  }

  /** Up to K candidates per reason, reasons in order of frequency. */
  rejectedSample(): RejectedEntry[] {
    return this.sampleOrder().flatMap((reason) => this.samples.get(reason)!.map((item) => this.rejectedEntry(reason, item)));
  }

  /** The kept sample as ids only (`{id}`), or null when a candidate in it has no id. */
  keptIds(): KeptEntry[] | null {
    const ids = this.keptSample.map((item) => this.identify(item)[1]);
    return ids.includes(null) ? null : ids.map((id) => ({ id: id! }));
  }

  /** The rejected sample as ids only (`{reason, id}`), or null when one has no id. */
  rejectedIds(): RejectedEntry[] | null {
    const entries = this.sampleOrder().flatMap((reason) =>
      this.samples.get(reason)!.map((item) => ({ reason, id: this.identify(item)[1] })),
    );
    return entries.some((e) => e.id === null) ? null : (entries as RejectedEntry[]);
  }

  /** Every rejected candidate, in the order decided (kept only under `full` capture). */
  rejectedAllEvidence(): RejectedEntry[] {
    return (this.rejectedAll ?? []).map(([reason, item]) => this.rejectedEntry(reason, item));
  }

  private ranked(): Array<[string, number]> {
    // By count, most first, then by reason as Python orders strings (by code point).
    return Array.from(this.counts).sort((a, b) => b[1] - a[1] || byCodePoint(a[0], b[0]));
  }

  private sampleOrder(): string[] {
    return Array.from(this.samples.keys()).sort((a, b) => this.counts.get(b)! - this.counts.get(a)! || byCodePoint(a, b));
  }

  private rejectedEntry(reason: string, item: Entry): RejectedEntry {
    const [candidate, known] = this.identify(item);
    return known === null ? { reason, candidate } : { reason, id: known, candidate };
  }

  /** The candidate and its id as text, if known: the caller's `id` wins over `idField`. */
  private identify(item: Entry): [unknown, string | null] {
    if (item instanceof Identified) return [item.candidate, idText(item.id, this.limits)];
    if (this.idField === null) return [item, null];
    return [item, idText(field(item, this.idField), this.limits)];
  }
}

function byCodePoint(a: string, b: string): number {
  if (a === b) return 0;
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
  }
  return x.length - y.length;
}

/** `candidate[name]` for an object or a Map; null when it has none. */
function field(candidate: unknown, name: string): unknown {
  try {
    if (candidate instanceof Map) return candidate.get(name) ?? null;
    if (candidate !== null && typeof candidate === "object") return (candidate as Record<string, unknown>)[name] ?? null;
  } catch {
    // a getter or Proxy may throw anything
  }
  return null;
}

function idText(value: unknown, limits: Limits): string | null {
  if (value === null || value === undefined) return null;
  let text: string;
  try {
    text = typeof value === "string" ? value : String(value);
  } catch {
    return null; // an id whose toString throws is no id
  }
  // Not remembered: ids are many and each seen once, and would crowd names out of the cache.
  return text ? label(text, limits.maxNameChars, false) : null;
}
