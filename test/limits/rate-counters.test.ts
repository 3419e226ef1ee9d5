import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { counterPk, DynamoRateCounters } from '../../lambdas/adapters/aws/dynamo-rate-counters';
import { RateLimitSchema, type RateLimit } from '../../lambdas/limits/config';
import { RateLimiter } from '../../lambdas/limits/rate-limiter';
import { RateLimitExceededError, shardLimit, subjectKey, windowOf } from '../../lambdas/limits/rate-limits';
import { startTestDynamo, type TestDynamo } from '../helpers/dynamo';

/**
 * The window counters against DynamoDB semantics (dynalite here, DynamoDB Local in
 * `npm run test:dynamodb-local`): concurrent takes never pass a limit, whether each request
 * writes, instances lease blocks, or a counter is sharded.
 */
let db: TestDynamo;
let counters: DynamoRateCounters;
beforeAll(async () => {
  db = await startTestDynamo();
  counters = new DynamoRateCounters({ client: db.client, tableName: db.tableName });
});
afterAll(async () => {
  await db?.close();
});

const policy = (p: Partial<RateLimit> & Pick<RateLimit, 'id' | 'scope'>): RateLimit => RateLimitSchema.parse({ limit: 10, windowSeconds: 3_600, ...p });
const NOW = () => new Date(Date.UTC(2030, 0, 1, 0, 30));
const WINDOW = windowOf(NOW(), 3_600).start;

/** Fires `requests` admits at once over `instances` limiters sharing the table; how many got in. */
async function race(p: RateLimit, instances: number, requests: number, principal: string): Promise<number> {
  const limiters = Array.from({ length: instances }, (_, i) => new RateLimiter({ policies: [p], counters, now: NOW, random: () => (i % 7) / 7 }));
  const outcomes = await Promise.all(
    Array.from({ length: requests }, async (_, i) => {
      try {
        await limiters[i % instances]!.admit({ principal, tools: [] });
        return 1;
      } catch (error) {
        if (error instanceof RateLimitExceededError) return 0;
        throw error;
      }
    }),
  );
  return outcomes.reduce<number>((a, b) => a + b, 0);
}

const used = async (p: RateLimit, subject: string, shard = 0) => (await counters.read([{ policy: p.id, subject, window: WINDOW, shard }]))[0]!;

describe('rate-limit window counters on DynamoDB', () => {
  it('take adds under the condition and refuses what would pass the limit', async () => {
    const key = { policy: 'unit', subject: 's', window: WINDOW, shard: 0 };
    expect(await counters.take(key, 3, 5, WINDOW + 7_200)).toEqual({ taken: true, used: 3 });
    expect(await counters.take(key, 3, 5, WINDOW + 7_200)).toEqual({ taken: false });
    expect(await counters.take(key, 2, 5, WINDOW + 7_200)).toEqual({ taken: true, used: 5 });
    expect(await counters.take(key, 1, 5, WINDOW + 7_200)).toEqual({ taken: false });
    await expect(counters.take(key, 6, 5, WINDOW + 7_200)).rejects.toBeInstanceOf(RangeError);
    expect(await counters.read([key, { ...key, shard: 1 }])).toEqual([5, 0]);
    const item = await db.client.send(new GetItemCommand({ TableName: db.tableName, Key: { pk: { S: counterPk(key) }, sk: { S: 'RATE' } }, ConsistentRead: true }));
    expect(item.Item?.expiresAt).toEqual({ N: String(WINDOW + 7_200) });
  });

  it('16-way concurrency, a write per request: admits exactly the limit', async () => {
    const p = policy({ id: 'exact', scope: 'principal', limit: 50, lease: 1 });
    expect(await race(p, 16, 200, 'p-exact')).toBe(50);
    expect(await used(p, subjectKey('principal', 'p-exact'))).toBe(50);
  });

  it('16 instances leasing blocks: never admits more than the limit, loses at most a block per instance', async () => {
    const p = policy({ id: 'leased', scope: 'principal', limit: 100, lease: 8 });
    const admitted = await race(p, 16, 400, 'p-leased');
    expect(admitted).toBeLessThanOrEqual(100);
    expect(admitted).toBeGreaterThanOrEqual(100 - 16 * 7);
    expect(await used(p, subjectKey('principal', 'p-leased'))).toBeLessThanOrEqual(100);
  });

  it('a sharded counter under 16-way concurrency: each shard within its share, exactly the limit in all', async () => {
    const p = policy({ id: 'sharded', scope: 'global', limit: 61, shards: 4, lease: 1 });
    expect(await race(p, 16, 200, 'anyone')).toBe(61);
    const subject = subjectKey('global', '');
    for (let shard = 0; shard < 4; shard++) expect(await used(p, subject, shard)).toBe(shardLimit(p, shard));
  });
});
