import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoRateCounters } from '../../lambdas/adapters/aws/dynamo-rate-counters';
import { parseLimits, readLimitsFile, type LoadedLimits, type RateLimit } from '../../lambdas/limits/config';
import { RateLimiter, type RateLimiterDeps } from '../../lambdas/limits/rate-limiter';

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
