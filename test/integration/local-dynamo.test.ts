import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConditionalCheckFailedException,
  DescribeTableCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
} from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { startDynalite, type RunningDynalite } from '../../lambdas/adapters/local/dynalite';
import { DEFAULT_LEDGER_TABLE, ensureTables, ledgerTableDefinition } from '../../lambdas/adapters/local/dynamo-tables';

const running: RunningDynalite[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const d of running.splice(0)) await d.close();
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function start(path?: string) {
  const d = await startDynalite(path ? { path } : {});
  running.push(d);
  return d;
}

describe('ledger table on dynalite', () => {
  it('creates the table with pk/sk and gsi1 once', async () => {
    const { client } = await start();
    expect(await ensureTables(client)).toEqual({ created: true });
    expect(await ensureTables(client)).toEqual({ created: false });
    const { Table } = await client.send(new DescribeTableCommand({ TableName: DEFAULT_LEDGER_TABLE }));
    expect(Table?.TableStatus).toBe('ACTIVE');
    expect(Table?.KeySchema).toEqual(ledgerTableDefinition().KeySchema);
    expect(Table?.GlobalSecondaryIndexes?.[0]).toMatchObject({
      IndexName: 'gsi1',
      KeySchema: [
        { AttributeName: 'gsi1pk', KeyType: 'HASH' },
        { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'ALL' },
    });
  });

  it('survives concurrent ensureTables calls', async () => {
    const { client } = await start();
    const results = await Promise.all([ensureTables(client, 'ledger-race'), ensureTables(client, 'ledger-race')]);
    expect(results.filter((r) => r.created).length).toBeGreaterThanOrEqual(1);
  });

  it('evaluates conditional writes and serves the GSI', async () => {
    const { client } = await start();
    await ensureTables(client);
    const put = (v: string) =>
      client.send(
        new PutItemCommand({
          TableName: DEFAULT_LEDGER_TABLE,
          Item: { pk: { S: 'A#1' }, sk: { S: 'META' }, gsi1pk: { S: 'P#alice' }, gsi1sk: { S: v } },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    await put('first');
    await expect(put('second')).rejects.toBeInstanceOf(ConditionalCheckFailedException);
    const q = await client.send(
      new QueryCommand({
        TableName: DEFAULT_LEDGER_TABLE,
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :p',
        ExpressionAttributeValues: { ':p': { S: 'P#alice' } },
      }),
    );
    expect(q.Items?.map((i) => i.gsi1sk?.S)).toEqual(['first']);
  });

  it('persists data under its path across restarts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'airlock-dynalite-'));
    dirs.push(dir);
    const first = await start(join(dir, 'db'));
    await ensureTables(first.client);
    await first.client.send(new PutItemCommand({ TableName: DEFAULT_LEDGER_TABLE, Item: { pk: { S: 'k' }, sk: { S: 's' } } }));
    await first.close();

    const second = await start(join(dir, 'db'));
    expect(await ensureTables(second.client)).toEqual({ created: false });
    const got = await second.client.send(
      new GetItemCommand({ TableName: DEFAULT_LEDGER_TABLE, Key: { pk: { S: 'k' }, sk: { S: 's' } } }),
    );
    expect(got.Item?.pk?.S).toBe('k');
  });
});
