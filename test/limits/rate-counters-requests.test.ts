import { BatchGetItemCommand, DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { DynamoRateCounters } from '../../lambdas/adapters/aws/dynamo-rate-counters';
import { LedgerThrottledError } from '../../lambdas/ports/ledger';

/** The requests the rate-limit counters send to DynamoDB (their semantics: rate-counters.test.ts). */
const ddb = mockClient(DynamoDBClient);
afterEach(() => ddb.reset());

describe('DynamoRateCounters requests (aws-sdk-client-mock)', () => {
  it('sends one conditional ADD with the room left as the condition, and maps throttling', async () => {
    ddb.on(UpdateItemCommand).resolvesOnce({ Attributes: { used: { N: '7' } } }).rejects(Object.assign(new Error('slow down'), { name: 'ThrottlingException' }));
    const mocked = new DynamoRateCounters({ client: new DynamoDBClient({ region: 'us-east-1' }), tableName: 'ledger' });
    const key = { policy: 'agent-burst', subject: 'AAAAAAAAAAAAAAAAAAAAAA', window: 1_893_457_800, shard: 2 };
    expect(await mocked.take(key, 3, 10, 1_893_465_000)).toEqual({ taken: true, used: 7 });
    expect(ddb.commandCalls(UpdateItemCommand)[0]!.args[0].input).toEqual({
      TableName: 'ledger',
      Key: { pk: { S: 'RATE#agent-burst#AAAAAAAAAAAAAAAAAAAAAA#1893457800#2' }, sk: { S: 'RATE' } },
      UpdateExpression: 'ADD #used :n SET #exp = if_not_exists(#exp, :exp)',
      ConditionExpression: 'attribute_not_exists(#used) OR #used <= :room',
      ExpressionAttributeNames: { '#used': 'used', '#exp': 'expiresAt' },
      ExpressionAttributeValues: { ':n': { N: '3' }, ':room': { N: '7' }, ':exp': { N: '1893465000' } },
      ReturnValues: 'UPDATED_NEW',
    });
    await expect(mocked.take(key, 1, 10, 1_893_465_000)).rejects.toBeInstanceOf(LedgerThrottledError);
  });

  it('reads counts with one consistent batch, 0 for items never written, and refuses to guess when keys stay unprocessed', async () => {
    const mocked = new DynamoRateCounters({ client: new DynamoDBClient({ region: 'us-east-1' }), tableName: 'ledger' });
    const a = { policy: 'p', subject: 's', window: 60, shard: 0 };
    const b = { ...a, shard: 1 };
    ddb.on(BatchGetItemCommand).resolvesOnce({ Responses: { ledger: [{ pk: { S: 'RATE#p#s#60#0' }, used: { N: '4' } }] } });
    expect(await mocked.read([a, b])).toEqual([4, 0]);
    expect(ddb.commandCalls(BatchGetItemCommand)[0]!.args[0].input.RequestItems!.ledger).toMatchObject({ ConsistentRead: true, Keys: [{ pk: { S: 'RATE#p#s#60#0' }, sk: { S: 'RATE' } }, { pk: { S: 'RATE#p#s#60#1' }, sk: { S: 'RATE' } }] });
    ddb.on(BatchGetItemCommand).resolves({ Responses: { ledger: [] }, UnprocessedKeys: { ledger: { Keys: [{ pk: { S: 'RATE#p#s#60#0' }, sk: { S: 'RATE' } }] } } });
    await expect(mocked.read([a])).rejects.toBeInstanceOf(LedgerThrottledError);
  });
});
