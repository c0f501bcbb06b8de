/**
 * `CircuitBreaker`: stop calling something that keeps failing, and try again after a while (as
 * xray_sdk/delivery/breaker.py). It only decides open or closed and for how long; what to do
 * meanwhile (back off with jitter, honour Retry-After) is the caller's.
 */
export class CircuitBreaker {
  private failureCount = 0;
  private current = 0; // the last cool-down (ms); 0 until the breaker trips
  private openUntil = 0;

  /** Open after `threshold` consecutive failures, for a cool-down that starts at `cooldownMs`
   * and doubles with each failure while tripped, up to `ceilingMs`; a success closes it. */
  constructor(
    readonly threshold = 3,
    readonly cooldownMs = 2000,
    readonly ceilingMs = 30_000,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** Consecutive failures since the last success. */
  get failures(): number {
    return this.failureCount;
  }

  /** True unless within a cool-down: a call may be tried. */
  allows(): boolean {
    return this.clock() >= this.openUntil;
  }

  isOpen(): boolean {
    return !this.allows();
  }

  /** Milliseconds left in the cool-down, 0 when closed. */
  remaining(): number {
    return Math.max(0, this.openUntil - this.clock());
  }

  /** A call succeeded: close, and start the next trip from `cooldownMs` again. */
  recordSuccess(): void {
    this.failureCount = 0;
    this.current = 0;
    this.openUntil = 0;
  }

  /** A call failed; returns the cool-down it opened (0 if the breaker stays closed). */
  recordFailure(): number {
    this.failureCount++;
    if (this.failureCount < this.threshold) return 0;
    this.current = Math.min(this.ceilingMs, this.current ? this.current * 2 : this.cooldownMs);
    this.openUntil = this.clock() + this.current;
    return this.current;
  }
}
