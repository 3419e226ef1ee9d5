import {
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  ProvisionedThroughputExceededException,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { DynamoLedger } from '../../lambdas/adapters/aws/dynamo-ledger';
import { postAction } from '../../lambdas/intake/http';
import { ProblemError } from '../../lambdas/shared/problem';
import { alice, echoCall, intakeDeps } from '../helpers/intake';

const ddb = mockClient(DynamoDBClient);
const ledger = () => new DynamoLedger({ client: new DynamoDBClient({ region: 'us-east-1' }), tableName: 'ledger' });

afterEach(() => ddb.reset());

function throttle(name = 'ProvisionedThroughputExceededException') {
  return name === 'ProvisionedThroughputExceededException'
    ? new ProvisionedThroughputExceededException({ message: 'slow down', $metadata: {} })
    : Object.assign(new Error('Rate exceeded'), { name });
}

describe('DynamoLedger commands', () => {
  it('every write it sends carries a ConditionExpression', async () => {
    // Prepare: the key is new, the action is new.
    ddb.on(PutItemCommand).resolves({});
    ddb.on(GetItemCommand).resolves({});
    ddb.on(UpdateItemCommand).resolves({});
    // Act
    const res = await postAction({ principal: alice, idempotencyKey: 'k', body: echoCall() }, intakeDeps(ledger()));
    // Assess
    expect(res.status).toBe(202);
    const writes = [
      ...ddb.commandCalls(PutItemCommand),
      ...ddb.commandCalls(UpdateItemCommand),
      ...ddb.commandCalls(DeleteItemCommand),
    ];
    expect(writes.length).toBeGreaterThanOrEqual(3);
    for (const call of writes) expect(call.args[0].input.ConditionExpression).toMatch(/\S/);
    const puts = ddb.commandCalls(PutItemCommand);
    const [claim] = puts;
    // The action itself (it carries its day-index keys: no separate entry).
    const create = puts.find((c) => c.args[0].input.Item?.pk?.S?.startsWith('ACTION#'));
    expect(claim!.args[0].input.ConditionExpression).toContain('attribute_not_exists(pk)');
    expect(create!.args[0].input.ConditionExpression).toBe('attribute_not_exists(pk)');
    // The raw Idempotency-Key never becomes a key: it is hashed.
    expect(JSON.stringify(claim!.args[0].input.Item)).not.toContain('"k"');
  });

  it.each(['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded'])(
    'a %s while claiming answers 503 with Retry-After and writes nothing',
    async (name) => {
      ddb.on(PutItemCommand).rejects(throttle(name));
      const error = await postAction({ principal: alice, idempotencyKey: 'k', body: echoCall() }, intakeDeps(ledger())).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProblemError);
      const p = (error as ProblemError).problem;
      expect(p.status).toBe(503);
      expect(p.type).toBe('urn:airlock:problem:unavailable');
      expect((error as ProblemError).headers['retry-after']).toBe('1');
      expect(ddb.commandCalls(UpdateItemCommand)).toHaveLength(0);
    },
  );

  it('throttling after the claim releases the claim so nothing is half-written', async () => {
    // Prepare: claim succeeds, the action write is throttled.
    ddb.on(PutItemCommand).resolvesOnce({}).rejects(throttle());
    ddb.on(GetItemCommand).resolves({});
    ddb.on(DeleteItemCommand).resolves({});
    // Act
    const error = await postAction({ principal: alice, idempotencyKey: 'k', body: echoCall() }, intakeDeps(ledger())).catch((e: unknown) => e);
    // Assess
    expect((error as ProblemError).problem.status).toBe(503);
    const releases = ddb.commandCalls(DeleteItemCommand);
    expect(releases).toHaveLength(1);
    expect(releases[0]!.args[0].input.ConditionExpression).toContain('#owner = :owner');
  });

  it('other DynamoDB failures are not dressed up as throttling', async () => {
    ddb.on(PutItemCommand).rejects(Object.assign(new Error('boom'), { name: 'InternalServerError' }));
    await expect(
      postAction({ principal: alice, idempotencyKey: 'k', body: echoCall() }, intakeDeps(ledger())),
    ).rejects.toThrow('boom');
  });
});
