/**
 * Window counters of the rate limits: one item per policy, subject, window and shard, only
 * ever grown by a conditional add, so no read-modify-write and no limit exceeded under any
 * concurrency. DynamoDB in AWS and locally (adapters/aws/dynamo-rate-counters.ts).
 */

/** One counter item. Every part is built by the limiter, never taken from a request as sent. */
export interface CounterKey {
  /** The policy id from the limits file (`[a-z][a-z0-9-]*`). */
  policy: string;
  /** The hashed subject (rate-limits.ts `subjectKey`). */
  subject: string;
  /** The window's start, epoch seconds. */
  window: number;
  shard: number;
}

/** What a take did: `taken` with the count after it, or nothing because it would pass `max`. */
export type TakeResult = { taken: true; used: number } | { taken: false };

export interface RateCounterStore {
  /**
   * Adds `n` to the counter if it stays at most `max` afterwards (`n ≤ max`), in one
   * conditional write; `expiresAt` (epoch seconds) lets the item be deleted after its window.
   */
  take(key: CounterKey, n: number, max: number, expiresAt: number): Promise<TakeResult>;
  /** The counts of several counters (0 for one never written), in order; strongly consistent. */
  read(keys: readonly CounterKey[]): Promise<number[]>;
}
