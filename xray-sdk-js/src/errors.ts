/** Errors the SDK throws, in strict mode only: best_effort mode never throws into the pipeline. */

/** Base class of X-Ray SDK errors. */
export class XRayError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** An instrumentation mistake: an unknown step type, a missing or ill-typed required metric, a
 * drop_ratio that disagrees with the counts. Thrown in strict mode only, at the step. */
export class XRayContractError extends XRayError {}

/** `flush()` in strict mode: some events were lost; the message says how many and why. */
export class XRayDeliveryError extends XRayError {}
