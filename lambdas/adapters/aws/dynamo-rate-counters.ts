import { BatchGetItemCommand, UpdateItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LedgerThrottledError } from '../../ports/ledger';
import type { CounterKey, RateCounterStore, TakeResult } from '../../ports/rate-counters';
import { guard, isConditionFailure, N, S, type Item } from './dynamo-support';

/**
 * Rate-limit window counters in the ledger table (ledger.md: `RATE#…`). One item per policy,
 * subject, window and shard, each its own partition so a sharded counter spreads over
 * partitions. A take is one `UpdateItem`: `ADD used :n` under the condition that the count
 * stays within the shard's limit, so concurrent takes can never together pass it.
 */

/** BatchGetItem's per-request key limit. */
const BATCH_KEYS = 100;

/** `RATE#<policy>#<subject>#<window start>#<shard>`: every part built by the limiter, none sent by a client. */
export const counterPk = (key: CounterKey) => `RATE#${key.policy}#${key.subject}#${key.window}#${key.shard}`;
const itemKey = (key: CounterKey): Item => ({ pk: S(counterPk(key)), sk: S('RATE') });

export class DynamoRateCounters implements RateCounterStore {
  private readonly client: DynamoDBClient;
  private readonly table: string;

  constructor(options: { client: DynamoDBClient; tableName: string }) {
    this.client = options.client;
    this.table = options.tableName;
  }

  async take(key: CounterKey, n: number, max: number, expiresAt: number): Promise<TakeResult> {
    // A take larger than the limit would pass the condition on a fresh item (no `used` yet).
    if (!Number.isInteger(n) || n < 1 || n > max) throw new RangeError(`take ${n} of at most ${max}`);
    try {
      const out = await guard(() =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: itemKey(key),
            UpdateExpression: 'ADD #used :n SET #exp = if_not_exists(#exp, :exp)',
            ConditionExpression: 'attribute_not_exists(#used) OR #used <= :room',
            ExpressionAttributeNames: { '#used': 'used', '#exp': 'expiresAt' },
            ExpressionAttributeValues: { ':n': N(n), ':room': N(max - n), ':exp': N(expiresAt) },
            ReturnValues: 'UPDATED_NEW',
          }),
        ),
      );
      return { taken: true, used: Number(out.Attributes?.used?.N ?? n) };
    } catch (error) {
      if (isConditionFailure(error)) return { taken: false };
      throw error;
    }
  }

  async read(keys: readonly CounterKey[]): Promise<number[]> {
    const used = new Map<string, number>();
    for (let i = 0; i < keys.length; i += BATCH_KEYS) {
      let pending: Item[] | undefined = keys.slice(i, i + BATCH_KEYS).map(itemKey);
      // Unprocessed keys (throttling inside the batch) are asked again until none are left.
      for (let round = 0; pending && pending.length > 0 && round < 8; round++) {
        const request: Item[] = pending;
        const out = await guard(() =>
          this.client.send(
            new BatchGetItemCommand({
              RequestItems: { [this.table]: { Keys: request, ConsistentRead: true, ProjectionExpression: 'pk, #used', ExpressionAttributeNames: { '#used': 'used' } } },
            }),
          ),
        );
        for (const item of out.Responses?.[this.table] ?? []) used.set(item.pk?.S ?? '', Number(item.used?.N ?? 0));
        pending = out.UnprocessedKeys?.[this.table]?.Keys as Item[] | undefined;
      }
      // A count left unread would read as 0 (room that may not exist): say the ledger is busy instead.
      if (pending && pending.length > 0) throw new LedgerThrottledError();
    }
    return keys.map((key) => used.get(counterPk(key)) ?? 0);
  }
}
