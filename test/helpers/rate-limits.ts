import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoRateCounters } from '../../lambdas/adapters/aws/dynamo-rate-counters';
import { parseLimits, readLimitsFile, type LoadedLimits, type RateLimit } from '../../lambdas/limits/config';
import { RateLimiter, type RateLimiterDeps } from '../../lambdas/limits/rate-limiter';
import type { CounterKey, RateCounterStore, TakeResult } from '../../lambdas/ports/rate-counters';

/** A rate limiter over a test's ledger table, with the shipped limits unless told otherwise. */
export function testRateLimiter(
  table: { client: DynamoDBClient; tableName: string },
  options: Partial<Omit<RateLimiterDeps, 'counters'>> = {},
): RateLimiter {
  return new RateLimiter({ policies: readLimitsFile().limits.rateLimits, now: () => new Date(), ...options, counters: new DynamoRateCounters(table) });
}

/** The shipped limits file with its rate limits replaced (a test's small limits). */
export function limitsWithRates(rateLimits: RateLimit[]): LoadedLimits {
  const shipped = readLimitsFile().limits;
  return parseLimits(JSON.stringify({ ...shipped, rateLimits }), 'test-limits.json');
}

/**
 * Window counters in memory with DynamoDB's semantics (one conditional add per take), counting
 * its writes: for limiter unit tests, and for handler tests whose DynamoDB is mocked.
 */
export class MemoryCounters implements RateCounterStore {
  readonly counts = new Map<string, number>();
  takes = 0;
  private id = (k: CounterKey) => `${k.policy}|${k.subject}|${k.window}|${k.shard}`;
  async take(key: CounterKey, n: number, max: number): Promise<TakeResult> {
    this.takes++;
    const used = this.counts.get(this.id(key)) ?? 0;
    if (used + n > max) return { taken: false };
    this.counts.set(this.id(key), used + n);
    return { taken: true, used: used + n };
  }
  async read(keys: readonly CounterKey[]): Promise<number[]> {
    return keys.map((k) => this.counts.get(this.id(k)) ?? 0);
  }
  /** Everything counted for one policy, over its subjects, windows and shards. */
  total(policy: string): number {
    return [...this.counts].filter(([k]) => k.startsWith(`${policy}|`)).reduce((s, [, v]) => s + v, 0);
  }
}
