/** Logging that cannot flood: one line per kind of problem per interval, never a payload. */

export type Logger = (message: string) => void;

/** Where warnings go unless the client is given its own `logger` (a library does not choose
 * the application's logging: stderr, through `console.warn`, is Node's convention). */
export const defaultLogger: Logger = (message) => console.warn(message);

/** Log each `key` at most once per `intervalMs`, saying how many were suppressed. */
export class RateLimitedLog {
  private readonly last = new Map<string, number>();
  private readonly suppressed = new Map<string, number>();

  constructor(
    private readonly logger: Logger = defaultLogger,
    private readonly intervalMs = 30_000,
  ) {}

  /** Log `message` unless `key` was logged within the interval. Never throws. */
  warning(key: string, message: string): void {
    try {
      const now = performance.now();
      const last = this.last.get(key);
      if (last !== undefined && now - last < this.intervalMs) {
        this.suppressed.set(key, (this.suppressed.get(key) ?? 0) + 1);
        return;
      }
      this.last.set(key, now);
      const count = this.suppressed.get(key) ?? 0;
      this.suppressed.delete(key);
      this.logger(count ? `${message} (${count} similar messages suppressed)` : message);
    } catch {
      // a logger that throws must not reach the pipeline
    }
  }
}
