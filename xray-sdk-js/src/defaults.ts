/** The module-level default client, for the one-line case (as `xray_sdk.configure`,
 * `get_client`, `start_run`, `flush` and `stats`): made from the environment on first use. */
import { Client, type ClientOptions, type ClientStats, type RunOptions } from "./client.js";
import type { Run } from "./run.js";

let fallback: Client | null = null;

/** Make the default client (replacing, and closing, any earlier one). */
export function configure(endpoint?: string, options?: ClientOptions): Client {
  const previous = fallback;
  fallback = new Client(endpoint, options);
  void previous?.close(500);
  return fallback;
}

/** The default client, made from the environment (`XRAY_ENDPOINT`, ...) on first use. */
export function getClient(): Client {
  fallback ??= new Client();
  return fallback;
}

/** `getClient().startRun(...)`. */
export function startRun(pipeline: string, entity: string, options?: RunOptions): Run {
  return getClient().startRun(pipeline, entity, options);
}

/** `getClient().flush(timeoutMs)`. */
export function flush(timeoutMs = 5000): Promise<boolean> {
  return getClient().flush(timeoutMs);
}

/** `getClient().stats()`. */
export function stats(): ClientStats {
  return getClient().stats();
}
