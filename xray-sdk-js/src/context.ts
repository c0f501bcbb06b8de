/** Which run and step the current async context is inside (Python's contextvars), through one
 * AsyncLocalStorage: a frame holds both, so entering a step is one `run()` call. */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Run } from "./run.js";
import type { Step } from "./step.js";

export interface Frame {
  readonly run: Run | null;
  readonly step: Step | null;
}

export const frames = new AsyncLocalStorage<Frame>();

/** The run of the innermost `withRun`/`run.within` callback or step in this context, if any. */
export function currentRun(): Run | null {
  return frames.getStore()?.run ?? null;
}

/** The innermost step in progress in this context, if any. */
export function currentStep(): Step | null {
  return frames.getStore()?.step ?? null;
}
