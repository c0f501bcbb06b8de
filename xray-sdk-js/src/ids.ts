/**
 * Cheap unique ids that are version-4 UUIDs and differ where a person looks (as the Python
 * SDK's ids.py): the process draws its randomness once and counts. The first group is the count
 * times an odd constant (the golden ratio's 32 bits, a Weyl sequence that spreads consecutive
 * counts over the whole range and repeats none of 2**32) mixed with a random key; the second
 * carries the count's higher bits mixed with 16 random ones; the rest is fixed for the process.
 * `crypto.randomUUID()` would cost a read of the random pool per id, and a step makes two.
 *
 * A run's id also carries the day the run started (`newRunId`): a version-8 UUID whose second
 * group is that day (xray_sdk/contract/run_ids.py), so that the server finds the partition of
 * every event of the run from its id alone. The count's higher bits move to the third group.
 */
import { randomBytes } from "node:crypto";
import { RUN_ID_MAX_DAY_NUMBER, RUN_ID_VERSION } from "./vocabulary.generated.js";

// Odd, so that multiplying by it permutes the integers modulo 2**32.
const STEP = 0x9e3779b1;

const seed = randomBytes(18);
const key = seed.readUInt32BE(0);
const key2 = seed.readUInt16BE(4);
const key3 = seed.readUInt16BE(16) & 0xfff;
const hex = seed.toString("hex");
// The version digit and 12 random bits, then the variant digit (8 to b) and 60 random bits.
const rest = `-4${hex.slice(13, 16)}-${((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
// A run id's last two groups: the variant digit (8 to b) and 60 random bits.
const runRest = rest.slice(5);
let counter = 0;
// Two hex digits a byte, looked up: a quarter of the cost of toString(16) and padStart.
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** A new id: a version-4 UUID, unique within the process, unlike its neighbours in its first digits. */
export function newId(): string {
  const k = counter++;
  const first = (Math.imul(k, STEP) ^ key) >>> 0;
  const second = (Math.floor(k / 0x100000000) ^ key2) & 0xffff;
  return (
    HEX[first >>> 24]! + HEX[(first >>> 16) & 0xff]! + HEX[(first >>> 8) & 0xff]! + HEX[first & 0xff]! +
    "-" + HEX[second >>> 8]! + HEX[second & 0xff]! + rest
  );
}

const DAY_MS = 86_400_000;

/** A new run id: a version-8 UUID whose second group is the UTC day of `startedMs` (milliseconds
 * since the epoch, default now), unique within the process, unlike its neighbours in its first digits. */
export function newRunId(startedMs: number = Date.now()): string {
  const k = counter++;
  const first = (Math.imul(k, STEP) ^ key) >>> 0;
  const day = Math.min(Math.max(Math.floor(startedMs / DAY_MS), 0), RUN_ID_MAX_DAY_NUMBER);
  const third = (RUN_ID_VERSION << 12) | ((Math.floor(k / 0x100000000) ^ key3) & 0xfff);
  return (
    HEX[first >>> 24]! + HEX[(first >>> 16) & 0xff]! + HEX[(first >>> 8) & 0xff]! + HEX[first & 0xff]! +
    "-" + HEX[day >>> 8]! + HEX[day & 0xff]! + "-" + HEX[third >>> 8]! + HEX[third & 0xff]! + runRest
  );
}
