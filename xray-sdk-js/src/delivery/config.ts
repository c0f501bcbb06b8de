/** Bounds and timings of delivery (xray_sdk/delivery/worker.py's DeliveryConfig, in ms). */
export interface DeliveryConfig {
  maxQueueItems: number;
  maxQueueBytes: number;
  batchMaxItems: number;
  batchMaxBytes: number;
  flushIntervalMs: number;
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  retryAfterMaxMs: number;
  breakerThreshold: number;
  breakerCooldownMs: number;
  breakerCooldownMaxMs: number;
  /** Everything a batch holds in one `POST /api/v1/batch` (true), or a request per run and kind,
   * the contract's endpoints (false; also what a server answering 404 to the batch gets). */
  multiRunBatch: boolean;
  /** gzip a body of at least this many bytes. null: 1 KiB to another machine, never to this one
   * (on loopback gzip costs more CPU than it saves); set it for a loopback address that is a
   * tunnel to another machine, or to a very large number for never. */
  gzipMinBytes: number | null;
}

/** The defaults suit a pipeline on one machine. */
export const DEFAULT_DELIVERY: Readonly<DeliveryConfig> = Object.freeze({
  maxQueueItems: 20_000,
  maxQueueBytes: 32 * 1024 * 1024,
  batchMaxItems: 500,
  batchMaxBytes: 1024 * 1024,
  flushIntervalMs: 500,
  maxAttempts: 5,
  backoffBaseMs: 250,
  backoffMaxMs: 8000,
  retryAfterMaxMs: 60_000,
  breakerThreshold: 3,
  breakerCooldownMs: 2000,
  breakerCooldownMaxMs: 30_000,
  multiRunBatch: true,
  gzipMinBytes: null,
});
