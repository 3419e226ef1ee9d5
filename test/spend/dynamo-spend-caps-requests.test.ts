import { DynamoDBClient, TransactionCanceledException, TransactWriteItemsCommand, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { DynamoSpendCapStore } from '../../lambdas/adapters/aws/dynamo-spend-caps';
import { LedgerThrottledError } from '../../lambdas/ports/ledger';
import type { CapCharge } from '../../lambdas/ports/spend-caps';

/**
 * What the spend-cap store sends DynamoDB when it has transactions (AWS): one
 * TransactWriteItems per reservation — the reservation put plus a conditional ADD per cap — and
 * how it reads a cancelled transaction (which cap refused, a replay, a conflict to retry).
 */

const ddb = mockClient(DynamoDBClient);
afterEach(() => ddb.reset());

const NOW = new Date('2031-05-06T07:08:09Z');
const charges: CapCharge[] = [
  { key: 'principal-daily#2031-05-06#alice', capId: 'principal-daily', limit: 5_000_000, expiresAt: 2_000_000_000 },
  { key: 'procurement-buyer-daily#2031-05-06#alice', capId: 'procurement-buyer-daily', limit: 100_000, expiresAt: 2_000_000_000 },
];
const request = { actionId: 'act_1', stepId: 'order', connector: 'procurement', amount: 19_999, caps: charges };

function cancelled(codes: string[]) {
  return new TransactionCanceledException({ message: 'cancelled', $metadata: {}, CancellationReasons: codes.map((Code) => ({ Code })) });
}

describe('DynamoSpendCapStore requests (transactions)', () => {
  it('reserves with one TransactWriteItems: the reservation (new only) and a guarded ADD on every cap', async () => {
    // Prepare
    ddb.on(TransactWriteItemsCommand).resolves({});
    const store = new DynamoSpendCapStore({ client: new DynamoDBClient({}), tableName: 'ledger', transactions: true });
    // Act
    expect(await store.reserve(request, NOW)).toEqual({ outcome: 'reserved' });
    // Assess
    const calls = ddb.commandCalls(TransactWriteItemsCommand);
    expect(calls).toHaveLength(1);
    const items = calls[0]!.args[0].input.TransactItems!;
    expect(items).toHaveLength(3);
    expect(items[0]!.Put).toMatchObject({
      TableName: 'ledger',
      ConditionExpression: 'attribute_not_exists(pk)',
      Item: { pk: { S: 'RESERVE#act_1' }, sk: { S: 'order' }, amount: { N: '19999' }, state: { S: 'held' } },
    });
    expect(items[2]!.Update).toMatchObject({
      Key: { pk: { S: 'SPENDCAP#procurement-buyer-daily#2031-05-06#alice' }, sk: { S: 'SPENDCAP' } },
      UpdateExpression: expect.stringMatching(/^ADD used :amt, reserved :amt, committed :zero/),
      ConditionExpression: 'attribute_not_exists(used) OR used <= :room',
      ExpressionAttributeValues: expect.objectContaining({ ':amt': { N: '19999' }, ':room': { N: String(100_000 - 19_999) } }),
    });
    // No read-modify-write: nothing is read before the write.
    expect(ddb.commandCalls(GetItemCommand)).toHaveLength(0);
  });

  it('names the cap whose condition failed, and reads a failed reservation put as a replay', async () => {
    const store = new DynamoSpendCapStore({ client: new DynamoDBClient({}), tableName: 'ledger', transactions: true });
    ddb.on(TransactWriteItemsCommand).rejectsOnce(cancelled(['None', 'None', 'ConditionalCheckFailed']));
    expect(await store.reserve(request, NOW)).toEqual({ outcome: 'refused', capId: 'procurement-buyer-daily' });
    ddb.reset();
    ddb.on(TransactWriteItemsCommand).rejectsOnce(cancelled(['ConditionalCheckFailed', 'ConditionalCheckFailed', 'None']));
    expect(await store.reserve(request, NOW)).toEqual({ outcome: 'replayed' });
  });

  it('retries a transaction that lost to a concurrent one, and gives up as throttled after a bound', async () => {
    const store = new DynamoSpendCapStore({ client: new DynamoDBClient({}), tableName: 'ledger', transactions: true });
    ddb.on(TransactWriteItemsCommand).rejectsOnce(cancelled(['None', 'TransactionConflict', 'None'])).resolvesOnce({});
    expect(await store.reserve(request, NOW)).toEqual({ outcome: 'reserved' });
    expect(ddb.commandCalls(TransactWriteItemsCommand)).toHaveLength(2);
    ddb.reset();
    ddb.on(TransactWriteItemsCommand).rejects(cancelled(['None', 'TransactionConflict', 'None']));
    await expect(store.reserve(request, NOW)).rejects.toBeInstanceOf(LedgerThrottledError);
  }, 30_000);

  it('settles in one transaction: the state flips only from held, the counters move with it', async () => {
    ddb.on(GetItemCommand).resolves({
      Item: {
        pk: { S: 'RESERVE#act_1' },
        sk: { S: 'order' },
        connector: { S: 'procurement' },
        amount: { N: '19999' },
        caps: { S: JSON.stringify(charges.map((c) => ({ key: c.key, capId: c.capId }))) },
        state: { S: 'held' },
      },
    });
    ddb.on(TransactWriteItemsCommand).resolves({});
    const store = new DynamoSpendCapStore({ client: new DynamoDBClient({}), tableName: 'ledger', transactions: true });
    expect(await store.settle('act_1', 'order', 'final', NOW)).toBe(true);
    const items = ddb.commandCalls(TransactWriteItemsCommand)[0]!.args[0].input.TransactItems!;
    expect(items[0]!.Update).toMatchObject({ ConditionExpression: '#state = :held', ExpressionAttributeValues: expect.objectContaining({ ':to': { S: 'final' } }) });
    expect(items.slice(1).map((i) => i.Update?.UpdateExpression)).toEqual(['ADD reserved :neg, committed :amt', 'ADD reserved :neg, committed :amt']);
    ddb.on(TransactWriteItemsCommand).rejects(cancelled(['ConditionalCheckFailed', 'None', 'None']));
    expect(await store.settle('act_1', 'order', 'released', NOW)).toBe(false);
  });
});
