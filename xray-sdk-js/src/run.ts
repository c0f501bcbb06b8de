/** A run, and `step()`, which wraps a function so that each call is a step of the current run
 * (found through AsyncLocalStorage, as the Python SDK's decorator finds it through contextvars). */
import { currentRun, currentStep, frames } from "./context.js";
import { XRayContractError } from "./errors.js";
import type { Recorder } from "./recorder.js";
import { stamps } from "./stamps.js";
import { Step, type StepOptions } from "./step.js";
import { boundedSummary, errorInfo } from "./values.js";
import { RunStatus, StepType, type CaptureLevel } from "./vocabulary.generated.js";

export interface FinishOptions {
  status?: "ok" | "error";
  error?: unknown;
}

/** One execution of a pipeline on one entity. */
export class Run {
  finished = false;
  private seq = 0;

  constructor(
    readonly recorder: Recorder,
    readonly runId: string,
    readonly pipeline: string,
    readonly entity: string,
    readonly capture: CaptureLevel,
  ) {}

  /** The next step's order in this run. */
  nextSeq(): number {
    return this.seq++;
  }

  /**
   * Call `fn(step)` inside a step of this run and return its result: at once if `fn` returns a
   * value, as a promise if it returns one (the step ends when it settles). An error escaping
   * `fn` is recorded (type, message, stack, status `error`) and rethrown unchanged. Inside `fn`,
   * `currentStep()` is the step and steps it starts are its children.
   */
  step<T>(name: string, type: string, fn: (step: Step) => T, options?: StepOptions): T {
    const step = new Step(this, name, type, options);
    step.open();
    let result: T;
    try {
      result = frames.run({ run: this, step }, fn, step);
    } catch (error) {
      step.end(error);
      throw error;
    }
    if (isPromise(result)) {
      return result.then(
        (value) => {
          step.end();
          return value;
        },
        (error: unknown) => {
          step.end(error);
          throw error;
        },
      ) as T;
    }
    step.end();
    return result;
  }

  /** A step to end by hand (`step.end(error?)`), for code that cannot pass a callback. It does
   * not become the current step; its parent is the current step when it starts. */
  startStep(name: string, type: string, options?: StepOptions): Step {
    const step = new Step(this, name, type, options);
    step.open();
    return step;
  }

  /**
   * Call `fn(run)` with this run as the current run, then finish it: with the error if one
   * escaped (rethrown unchanged), else as `ok` (a `finish(outcome)` inside wins, being first).
   */
  within<T>(fn: (run: Run) => T): T {
    let result: T;
    try {
      result = frames.run({ run: this, step: null }, fn, this);
    } catch (error) {
      this.finish(undefined, { status: "error", error });
      throw error;
    }
    if (isPromise(result)) {
      return result.then(
        (value) => {
          this.finish();
          return value;
        },
        (error: unknown) => {
          this.finish(undefined, { status: "error", error });
          throw error;
        },
      ) as T;
    }
    this.finish();
    return result;
  }

  /** End the run with an outcome, or with an error; only the first call counts. */
  finish(outcome?: unknown, options: FinishOptions = {}): void {
    if (this.finished) return;
    this.finished = true;
    const recorder = this.recorder;
    let status = options.status;
    if (status !== undefined && status !== RunStatus.OK && status !== RunStatus.ERROR) {
      recorder.contractError(`run status ${JSON.stringify(status)} is not 'ok' or 'error'`);
      status = undefined;
    }
    const failed = options.error !== undefined && options.error !== null;
    try {
      const body: Record<string, unknown> = {
        event_id: stamps.newId(),
        type: "run_finish",
        ts: stamps.now(),
        status: status ?? (failed ? RunStatus.ERROR : RunStatus.OK),
      };
      if (outcome !== undefined && outcome !== null) body["outcome"] = boundedSummary(outcome, recorder.limits.maxSummaryBytes);
      if (failed) body["error"] = errorInfo(options.error, recorder.limits);
      recorder.submit(this.runId, "event", body);
    } catch (error) {
      if (error instanceof XRayContractError) throw error;
      recorder.internalError(error);
    }
  }
}

/**
 * Wrap `fn` so that each call is a step of the current run (outside a run it simply runs);
 * `currentStep()` inside is the step. The Python SDK's `@xray_sdk.step(name, type)`.
 */
export function step<A extends unknown[], R>(
  name: string,
  type: string,
  fn: (...args: A) => R,
  options?: Omit<StepOptions, "input">,
): (...args: A) => R {
  return function (this: unknown, ...args: A): R {
    const run = currentRun();
    if (run === null) return fn.apply(this, args);
    return run.step(name, type || StepType.CUSTOM, () => fn.apply(this, args), options);
  };
}

function isPromise<T>(value: T): value is T & Promise<Awaited<T>> {
  return value !== null && typeof value === "object" && typeof (value as { then?: unknown }).then === "function";
}

export { currentRun, currentStep };
