/**
 * A bounded flush at exit. Nothing of the SDK keeps the process alive (its timers and sockets
 * are unref'd), so when the pipeline's work is done Node emits `beforeExit`; each delivery with
 * events still queued is then closed against one shared deadline, the largest
 * `shutdownTimeoutMs` among them, whose timer keeps the process up that long and no longer. A
 * collector that is down or never answers therefore delays the exit by at most that deadline.
 * `process.exit()` skips `beforeExit`: call `await client.close()` before it.
 */
interface Closable {
  readonly shutdownTimeoutMs: number;
  readonly isClosed: boolean;
  stats(): { pending: number };
  close(timeoutMs: number): Promise<boolean>;
}

const live = new Set<WeakRef<Closable>>();
let listening = false;

/** Give `delivery` its bounded flush when the process is about to exit. */
export function watchAtExit(delivery: Closable): void {
  live.add(new WeakRef(delivery));
  if (!listening) {
    listening = true;
    process.on("beforeExit", closeAllAtExit);
  }
}

function closeAllAtExit(): void {
  const due: Closable[] = [];
  for (const ref of live) {
    const delivery = ref.deref();
    if (delivery === undefined || delivery.isClosed) live.delete(ref);
    else if (delivery.stats().pending > 0) due.push(delivery);
  }
  if (due.length === 0) return;
  const deadline = performance.now() + Math.max(...due.map((d) => d.shutdownTimeoutMs));
  for (const delivery of due) {
    // Each close waits on its own (ref'd) deadline timer; once all settle, the loop empties again.
    void delivery.close(Math.max(0, deadline - performance.now())).catch(() => undefined);
  }
}
