/** What the queue holds: one request body fragment, encoded when recorded. */

/** A run create (`POST /api/v1/runs`), an event of a run, or a judgement of a run. */
export type ItemKind = "run" | "event" | "label";

export class Item {
  attempts = 0;
  /** Bytes of `data` as UTF-8: what the queue's byte bound counts. */
  readonly size: number;

  constructor(
    readonly runId: string,
    readonly kind: ItemKind,
    readonly data: string,
  ) {
    this.size = Buffer.byteLength(data, "utf8");
  }
}
