/**
 * X-Ray SDK for Node.js: no runtime dependency, the same contract as the Python SDK.
 *
 *     import { Client } from "xray-decisions-sdk";
 *     const xray = new Client("http://127.0.0.1:8000");
 *     await xray.withRun("competitor_selection", "B0PHONECASE1", async (run) => {
 *       run.step("compat_filter", "filter", (step) => {
 *         const kept = candidates.filter(compatible);
 *         step.candidates(candidates, kept).why("kept candidates of the same category");
 *       });
 *     });
 */
export { Client, BEST_EFFORT, STRICT, DEFAULT_ENDPOINT } from "./client.js";
export type { ClientOptions, ClientStats, LabelOptions, Mode, RunOptions } from "./client.js";
export { Run, step, currentRun, currentStep } from "./run.js";
export { configure, getClient, startRun, flush, stats } from "./defaults.js";
export type { FinishOptions } from "./run.js";
export { Step } from "./step.js";
export type { ArtifactOptions, StepOptions } from "./step.js";
export { XRayContractError, XRayDeliveryError, XRayError } from "./errors.js";
export { evaluateMetrics, deriveDropRatio } from "./contract/metrics.js";
export type { MetricsVerdict } from "./contract/metrics.js";
export { summarize, sample } from "./summarize.js";
export { DEFAULT_DELIVERY } from "./delivery/config.js";
export type { DeliveryConfig } from "./delivery/config.js";
export type { DeliveryStats } from "./delivery/worker.js";
export type { Logger } from "./ratelog.js";
export {
  CAPTURE_LEVELS,
  DEFAULT_LIMITS,
  EVENT_TYPES,
  REQUIRED_METRICS,
  STANDARD_METRICS,
  STEP_TYPES,
  CaptureLevel,
  DropReason,
  EventType,
  RunStatus,
  StepStatus,
  StepType,
} from "./vocabulary.generated.js";
export type { Limits } from "./vocabulary.generated.js";
