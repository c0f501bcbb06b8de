/**
 * Step conventions: what a step's metrics must look like for cross-run queries to work. A port
 * of xray_sdk/contract/metrics.py, the rule the server applies again: `evaluateMetrics` keeps
 * the usable metrics, says why the others are unusable, and lists the contract violations.
 * JavaScript has one number type, so a whole number is an int and any finite number a float.
 */
import {
  DROP_RATIO_TOLERANCE,
  METRIC_KEY_PATTERN,
  NOT_APPLICABLE_DROP_RATIO,
  REDUCING_STEP_TYPES,
  REQUIRED_METRICS,
  STANDARD_METRICS,
  UNKNOWN_STEP_TYPE,
  UNSTORABLE_TEXT,
  type Limits,
  type StepType,
} from "../vocabulary.generated.js";
import { charCount } from "./bounds.js";

export type MetricValue = number | string | boolean;

/** The outcome of checking one step's metrics against the contract. */
export interface MetricsVerdict {
  /** The usable metrics, with `drop_ratio` derived when only the counts were given. */
  metrics: Record<string, MetricValue>;
  /** Metric name -> why its value is unusable (a step with errors must be fixed). */
  errors: Record<string, string>;
  /** `missing_metric:<name>` per required metric absent; `not_applicable:drop_ratio`. */
  violations: string[];
}

/** The share of candidates a step removed; null when it had none to remove (an empty step
 * dropped nothing, and "dropped 0%" would hide that it saw nothing). */
export function deriveDropRatio(candidatesIn: number, candidatesOut: number): number | null {
  return candidatesIn <= 0 ? null : 1.0 - candidatesOut / candidatesIn;
}

/** The violation code recorded when a required metric is absent. */
export const missingMetric = (name: string): string => `missing_metric:${name}`;

/** The violation code of a step whose type was none of the fixed ones. */
export const unknownStepType = (given: string): string => `${UNKNOWN_STEP_TYPE}:${given}`;

const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/** Check `metrics` for a step of `stepType`: types, bounds, consistency, required names. */
export function evaluateMetrics(stepType: string, metrics: Record<string, unknown> | null | undefined, limits: Limits): MetricsVerdict {
  const verdict: MetricsVerdict = { metrics: {}, errors: {}, violations: [] };
  if (metrics === null || metrics === undefined) metrics = {};
  if (typeof metrics !== "object" || Array.isArray(metrics)) {
    verdict.errors["metrics"] = "must be an object of metric name to number, string or boolean";
    return verdict;
  }
  let count = 0;
  // The common case, in one pass: each metric read in place, its name and value checked in one
  // look. Past the bound, the pass is abandoned and the metrics are taken again, ranked.
  for (const name in metrics) {
    if (!hasOwn(metrics, name)) continue;
    if (++count > limits.maxMetrics) break;
    const value = (metrics as Record<string, unknown>)[name];
    if (plainlyValid(name, value, limits)) verdict.metrics[name] = value as MetricValue;
    else keep(verdict, name, value, limits);
  }
  if (count > limits.maxMetrics) {
    verdict.metrics = {};
    verdict.errors = {};
    let items = Object.entries(metrics);
    // Keep the standard metrics and the first others: they are what cross-run queries use.
    items.sort((a, b) => Number(!hasOwn(STANDARD_METRICS, a[0])) - Number(!hasOwn(STANDARD_METRICS, b[0])));
    verdict.errors["metrics"] = `has ${items.length} entries; only the first ${limits.maxMetrics} (standard metrics first) are kept`;
    items = items.slice(0, limits.maxMetrics);
    for (const [name, value] of items) keep(verdict, name, value, limits);
  }
  checkCounts(verdict, stepType);
  const empty = verdict.metrics["candidates_in"] === 0;
  for (const name of REQUIRED_METRICS[stepType as StepType] ?? []) {
    if (name === "drop_ratio" && empty) continue; // an empty step has no drop ratio to give
    if (!hasOwn(verdict.metrics, name) && !hasOwn(verdict.errors, name)) verdict.violations.push(missingMetric(name));
  }
  return verdict;
}

/** Add `value` to the usable metrics, or its problem to the errors. */
function keep(verdict: MetricsVerdict, name: string, value: unknown, limits: Limits): void {
  if (value === undefined) return; // JSON has no undefined: as if never set
  const problem = checkMetric(name, value, limits);
  if (problem) verdict.errors[name.slice(0, limits.maxMetricKeyChars)] = problem;
  else if (value !== null) verdict.metrics[name] = value as MetricValue;
}

// Names already found valid: the same few metric names recur on every step of a pipeline.
const VALID_NAMES = new Set<string>(Object.keys(STANDARD_METRICS));

/** The common case, decided without the full check: a known name and an ordinary value.
 * False means "look closer", not "invalid". */
function plainlyValid(name: string, value: unknown, limits: Limits): boolean {
  if (!VALID_NAMES.has(name) || name.length > limits.maxMetricKeyChars) return false;
  const expected = STANDARD_METRICS[name];
  if (typeof value === "number") {
    if (expected === undefined) return Number.isFinite(value) && Math.abs(value) <= limits.maxCount;
    if (expected === "int") return Number.isInteger(value) && value >= 0 && value <= limits.maxCount;
    return expected === "float" && value >= 0 && value <= 1;
  }
  if (typeof value === "boolean") return expected === undefined;
  // Short text without anything PostgreSQL refuses: a string metric or the model's name.
  return typeof value === "string" && value.length <= 64 && (expected === undefined || (expected === "str" && value.trim() !== "")) && !UNSTORABLE_TEXT.test(value);
}

function checkMetric(name: string, value: unknown, limits: Limits): string | null {
  if (!METRIC_KEY_PATTERN.test(name)) return "metric names are letters, digits, '_', '.', '-', starting with a letter or '_'";
  if (name.length > limits.maxMetricKeyChars) return `metric names are at most ${limits.maxMetricKeyChars} characters`;
  if (VALID_NAMES.size < 4096) VALID_NAMES.add(name);
  if (value === null) return null;
  const expected = hasOwn(STANDARD_METRICS, name) ? STANDARD_METRICS[name] : undefined;
  if (expected === "int") {
    if (typeof value !== "number" || !Number.isInteger(value)) return "must be a whole number of candidates";
    if (value < 0 || value > limits.maxCount) return `must be between 0 and ${limits.maxCount}`;
    return null;
  }
  if (expected === "float") {
    if (typeof value !== "number" || !Number.isFinite(value)) return "must be a finite number";
    if (name === "drop_ratio" && !(value >= 0 && value <= 1)) return "must be between 0 and 1 (the share of candidates removed)";
    if (name === "temperature" && value < 0) return "must not be negative";
    return null;
  }
  if (expected === "str") {
    if (typeof value !== "string" || !value.trim()) return "must be a non-empty string (the model's name)";
    if (charCount(value) > limits.maxMetricTextChars) return `must be at most ${limits.maxMetricTextChars} characters`;
    return textProblem(value);
  }
  return checkCustomMetric(value, limits);
}

function textProblem(text: string): string | null {
  return UNSTORABLE_TEXT.test(text) ? "must not contain NUL characters or unpaired surrogates" : null;
}

function checkCustomMetric(value: unknown, limits: Limits): string | null {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return "must be a finite number (NaN and infinities cannot be compared across runs)";
    if (Number.isInteger(value) && Math.abs(value) > limits.maxCount) return `must be between -${limits.maxCount} and ${limits.maxCount}`;
    return null;
  }
  if (typeof value === "string") {
    if (charCount(value) > limits.maxMetricTextChars) {
      return `must be at most ${limits.maxMetricTextChars} characters; put long text in \`why\` or an artifact`;
    }
    return textProblem(value);
  }
  if (typeof value === "boolean") return null;
  return "must be a number, a string or a boolean; flatten structures into several metrics";
}

/** Make candidates_in / candidates_out / drop_ratio agree, deriving the ratio if absent; only
 * steps that reduce their candidates have a ratio. */
function checkCounts(verdict: MetricsVerdict, stepType: string): void {
  const m = verdict.metrics;
  if (!REDUCING_STEP_TYPES.includes(stepType as StepType)) {
    if (hasOwn(m, "drop_ratio")) {
      delete m["drop_ratio"];
      verdict.violations.push(NOT_APPLICABLE_DROP_RATIO);
    }
    return;
  }
  const cin = m["candidates_in"] as number | undefined;
  const cout = m["candidates_out"] as number | undefined;
  if (cin === undefined || cout === undefined) return;
  if (cout > cin) {
    verdict.errors["candidates_out"] = `is ${cout} but candidates_in is ${cin}: a step cannot output more candidates than it received`;
    delete m["candidates_out"]; // `metrics` holds only usable values
    return;
  }
  const expected = deriveDropRatio(cin, cout);
  const given = m["drop_ratio"] as number | undefined;
  if (expected === null) {
    if (given !== undefined) delete m["drop_ratio"]; // 0 in, 0 out: nothing was dropped, and no ratio says so
    return;
  }
  if (given !== undefined && Math.abs(given - expected) > DROP_RATIO_TOLERANCE) {
    verdict.errors["drop_ratio"] =
      `is ${given} but candidates_in=${cin} and candidates_out=${cout} give ${expected.toFixed(4)}; ` +
      "send the counts and let X-Ray derive the ratio";
  }
  if (given === undefined || hasOwn(verdict.errors, "drop_ratio")) m["drop_ratio"] = expected;
}
