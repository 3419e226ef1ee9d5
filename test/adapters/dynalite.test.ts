import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  UpdateItemCommand,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { inProcessHandler, LOCAL_AWS_CREDENTIALS, LOCAL_AWS_REGION, localDynamoClient, startDynalite, type RunningDynalite } from '../../lambdas/adapters/local/dynalite';
import { DEFAULT_LEDGER_TABLE, ensureTables, ledgerTableDefinition } from '../../lambdas/adapters/local/dynamo-tables';
import { DynamoLedger, tablesWithoutDayIndex } from '../../lambdas/adapters/aws/dynamo-ledger';
import type { ActionRecord } from '../../lambdas/actions/action';
import { newActionId } from '../../lambdas/shared/ids';
import { silentLogger, startLocalRuntime } from '../../local/server';
import { deleteTestTable, testDynamoEndpoint, uniqueTableName } from '../helpers/dynamo';

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

/** The database under test: the external endpoint when one is set (tables deleted at the end), else dynalite. */
async function database(): Promise<{ client: RunningDynalite['client']; table: (name: string) => string }> {
  const endpoint = testDynamoEndpoint();
  if (!endpoint) return { client: (await start()).client, table: (name) => name };
  const client = localDynamoClient(endpoint);
  const names: string[] = [];
  running.push({
    endpoint,
    client,
    close: async () => {
      client.destroy();
      for (const name of names) await deleteTestTable(name, endpoint);
    },
  });
  const table = () => {
    const name = uniqueTableName();
    names.push(name);
    return name;
  };
  return { client, table };
}

describe('ledger table', () => {
  it('creates the table with pk/sk, gsi1 and the day index once', async () => {
    const { client, table } = await database();
    const name = table(DEFAULT_LEDGER_TABLE);
    expect(await ensureTables(client, name)).toEqual({ created: true });
    expect(await ensureTables(client, name)).toEqual({ created: false });
    const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
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
    expect(Table?.GlobalSecondaryIndexes?.find((i) => i.IndexName === 'gsi2')).toMatchObject({
      KeySchema: [
        { AttributeName: 'gsi2pk', KeyType: 'HASH' },
        { AttributeName: 'gsi2sk', KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['principal', 'tools'] },
    });
    expect(tablesWithoutDayIndex.has(name)).toBe(false);
  });

  it('keeps a table made before the day index GSI working: its actions get the separate day-index entries of before', async () => {
    const { client, table } = await database();
    const name = table('ledger-before-gsi2');
    // The table as ledgerTableDefinition made it before gsi2 (a persisted local table: dynalite cannot add a GSI).
    const definition = ledgerTableDefinition(name);
    await client.send(
      new CreateTableCommand({
        ...definition,
        AttributeDefinitions: definition.AttributeDefinitions!.filter((a) => !a.AttributeName!.startsWith('gsi2')),
        GlobalSecondaryIndexes: definition.GlobalSecondaryIndexes!.filter((i) => i.IndexName === 'gsi1'),
      }),
    );
    expect(await ensureTables(client, name, { timeoutMs: 60_000 })).toEqual({ created: false });
    expect(tablesWithoutDayIndex.has(name)).toBe(true);
    const ledger = new DynamoLedger({ client, tableName: name });
    const at = Date.now();
    const action = {
      id: newActionId(at),
      principal: { sub: 'old-table', roles: [] },
      actor: { name: 'a' },
      envelope: { tool: 'echo.say', arguments: { message: 'm' } },
      kind: 'single',
      mode: 'execute',
      planHash: 'h',
      status: 'received',
      createdAt: new Date(at).toISOString(),
      updatedAt: new Date(at).toISOString(),
      version: 1,
    } as unknown as ActionRecord;
    expect(await ledger.createAction(action)).toBe('created');
    const ref = await client.send(new GetItemCommand({ TableName: name, Key: { pk: { S: `ACTIONREF#${action.id}` }, sk: { S: 'DAY' } } }));
    expect(ref.Item?.gsi1pk?.S).toMatch(/^ACTIONS#/);
    const page = await ledger.listAllActions({ since: new Date(at - 60_000), until: new Date(at + 60_000), limit: 10, principalSub: 'old-table' });
    expect(page.items.map((a) => a.id)).toEqual([action.id]);
    tablesWithoutDayIndex.delete(name);
  });

  it('survives concurrent ensureTables calls', async () => {
    const { client, table } = await database();
    const name = table('ledger-race');
    const results = await Promise.all([ensureTables(client, name), ensureTables(client, name)]);
    expect(results.filter((r) => r.created).length).toBeGreaterThanOrEqual(1);
  });

  it('evaluates conditional writes and serves the GSI', async () => {
    const { client, table } = await database();
    const name = table(DEFAULT_LEDGER_TABLE);
    await ensureTables(client, name);
    const put = (v: string) =>
      client.send(
        new PutItemCommand({
          TableName: name,
          Item: { pk: { S: 'A#1' }, sk: { S: 'META' }, gsi1pk: { S: 'P#alice' }, gsi1sk: { S: v } },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    await put('first');
    await expect(put('second')).rejects.toBeInstanceOf(ConditionalCheckFailedException);
    const q = await client.send(
      new QueryCommand({
        TableName: name,
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :p',
        ExpressionAttributeValues: { ':p': { S: 'P#alice' } },
      }),
    );
    expect(q.Items?.map((i) => i.gsi1sk?.S)).toEqual(['first']);
  });

  it('persists data under its path across restarts (dynalite)', async () => {
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

describe('the embedded dynalite client (in process)', () => {
  it('shares one database with clients over the port, with the same answers and errors', async () => {
    // Prepare: the runtime's client (in process) and an ordinary one over HTTP.
    const d = await start();
    const overHttp = localDynamoClient(d.endpoint);
    try {
      await ensureTables(d.client, 'ledger-inproc');
      // Act: write in process, read over the port, and meet both kinds of refusal in process.
      await d.client.send(new PutItemCommand({ TableName: 'ledger-inproc', Item: { pk: { S: 'A#1' }, sk: { S: 'META' }, n: { N: '1' } }, ConditionExpression: 'attribute_not_exists(pk)' }));
      const seen = await overHttp.send(new GetItemCommand({ TableName: 'ledger-inproc', Key: { pk: { S: 'A#1' }, sk: { S: 'META' } } }));
      const again = await d.client.send(new PutItemCommand({ TableName: 'ledger-inproc', Item: { pk: { S: 'A#1' }, sk: { S: 'META' } }, ConditionExpression: 'attribute_not_exists(pk)' })).catch((e: unknown) => e);
      for (const sk of ['S#1', 'S#2', 'S#3']) await d.client.send(new PutItemCommand({ TableName: 'ledger-inproc', Item: { pk: { S: 'A#1' }, sk: { S: sk } } }));
      const page = (start?: Record<string, AttributeValue>) =>
        d.client.send(new QueryCommand({ TableName: 'ledger-inproc', KeyConditionExpression: 'pk = :p AND begins_with(sk, :s)', ExpressionAttributeValues: { ':p': { S: 'A#1' }, ':s': { S: 'S#' } }, Limit: 2, ...(start ? { ExclusiveStartKey: start } : {}) }));
      const first = await page();
      const second = await page(first.LastEvaluatedKey);
      // Assess
      expect(seen.Item?.n?.N).toBe('1');
      expect(again).toBeInstanceOf(ConditionalCheckFailedException);
      expect([...(first.Items ?? []), ...(second.Items ?? [])].map((i) => i.sk?.S)).toEqual(['S#1', 'S#2', 'S#3']);
      expect(second.LastEvaluatedKey).toBeUndefined();
    } finally {
      overHttp.destroy();
    }
  });

  it.each([
    ['as an HTTP request handed to its store', false],
    ['before the SDK serializes them (the runtime’s client)', true],
  ])('answers item operations straight from dynalite %s, as its listener answers them over the port', async (_how, bypassSdk) => {
    // Prepare: an in-process client (item operations go to dynalite's store directly) and one over HTTP.
    const d = await startDynalite({ bypassSdk });
    running.push(d);
    const overHttp = localDynamoClient(d.endpoint);
    try {
      await ensureTables(d.client, 'ledger-direct');
      // Item operations only from here: counted if the SDK serializes them.
      let serialized = 0;
      d.client.middlewareStack.add((next) => (args) => (serialized++, next(args)), { step: 'serialize', priority: 'high', name: 'countSerialized' });
      const key = { pk: { S: 'B#1' }, sk: { S: 'META' } };
      const blob = new Uint8Array([0, 1, 2, 250, 255]);
      // Act: the same requests through both clients, refusals included.
      const both = async <T extends object>(send: (c: RunningDynalite['client']) => Promise<T>) => {
        // Request ids and attempt counts ($metadata) are the transport's, not the answer's.
        const settle = (p: Promise<T>) => p.then(({ $metadata: _, ...value }: T & { $metadata?: unknown }) => ({ value }), (error: Error) => ({ error: { name: error.name, message: error.message, status: (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode } }));
        return [await settle(send(d.client)), await settle(send(overHttp))] as const;
      };
      await d.client.send(new PutItemCommand({ TableName: 'ledger-direct', Item: { ...key, blob: { B: blob }, tags: { SS: ['a', 'b'] }, n: { N: '1' } } }));
      const read = await both((c) => c.send(new GetItemCommand({ TableName: 'ledger-direct', Key: key })));
      const bumped = await d.client.send(new UpdateItemCommand({ TableName: 'ledger-direct', Key: key, UpdateExpression: 'ADD n :one', ExpressionAttributeValues: { ':one': { N: '1' } }, ReturnValues: 'ALL_NEW' }));
      const unusedValue = await both((c) => c.send(new UpdateItemCommand({ TableName: 'ledger-direct', Key: key, UpdateExpression: 'SET m = :m', ExpressionAttributeValues: { ':m': { S: 'x' }, ':unused': { S: 'y' } } })));
      const badKey = await both((c) => c.send(new GetItemCommand({ TableName: 'ledger-direct', Key: { pk: { S: 'B#1' } } })));
      const noTable = await both((c) => c.send(new GetItemCommand({ TableName: 'missing-table', Key: key })));
      const conditioned = await both((c) => c.send(new DeleteItemCommand({ TableName: 'ledger-direct', Key: key, ConditionExpression: 'n = :zero', ExpressionAttributeValues: { ':zero': { N: '0' } } })));
      await d.client.send(new BatchWriteItemCommand({ RequestItems: { 'ledger-direct': [{ PutRequest: { Item: { pk: { S: 'B#2' }, sk: { S: 'META' } } } }, { PutRequest: { Item: { pk: { S: 'B#3' }, sk: { S: 'META' } } } }] } }));
      const batch = await both((c) => c.send(new BatchGetItemCommand({ RequestItems: { 'ledger-direct': { Keys: [{ pk: { S: 'B#2' }, sk: { S: 'META' } }, { pk: { S: 'B#3' }, sk: { S: 'META' } }] } } })));
      // Assess: the same answers and the same refusals (name, message, status) either way.
      expect(read[0]).toEqual(read[1]);
      expect(read[0]).toMatchObject({ value: { Item: { blob: { B: blob }, tags: { SS: ['a', 'b'] }, n: { N: '1' } } } });
      expect(bumped.Attributes?.n?.N).toBe('2');
      for (const [direct, viaPort] of [unusedValue, badKey, noTable, conditioned]) {
        expect(direct).toHaveProperty('error');
        expect(direct).toEqual(viaPort);
      }
      expect(unusedValue[0]).toMatchObject({ error: { name: 'ValidationException', status: 400 } });
      expect(noTable[0]).toMatchObject({ error: { name: 'ResourceNotFoundException' } });
      expect(conditioned[0]).toMatchObject({ error: { name: 'ConditionalCheckFailedException' } });
      // BatchGetItem answers in no particular order (as DynamoDB).
      const got = (answer: (typeof batch)[number]) => ('value' in answer ? (answer.value.Responses?.['ledger-direct'] ?? []).map((i) => i.pk?.S).sort() : answer);
      expect(got(batch[0])).toEqual(['B#2', 'B#3']);
      expect(got(batch[1])).toEqual(['B#2', 'B#3']);
      expect(serialized === 0).toBe(bypassSdk);
    } finally {
      overHttp.destroy();
    }
  });

  it('hands the listener the request after it subscribes, with a signature shape and no socket', async () => {
    // Prepare: a listener standing in for dynalite's, recording what it is given.
    const got: { headers?: Record<string, string>; body?: string; url?: string } = {};
    const listener = (req: IncomingMessage, res: ServerResponse) => {
      got.headers = req.headers as Record<string, string>;
      got.url = req.url;
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        got.body = body;
        res.statusCode = 400;
        res.setHeader('Content-Type', 'application/x-amz-json-1.0');
        res.end(JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#ResourceNotFoundException', message: 'no such table' }));
      });
    };
    const client = new DynamoDBClient({ endpoint: 'http://127.0.0.1:9', region: LOCAL_AWS_REGION, credentials: LOCAL_AWS_CREDENTIALS, maxAttempts: 1, requestHandler: inProcessHandler(listener) });
    client.middlewareStack.remove('httpSigningMiddleware');
    // Act: port 9 (discard) would refuse a connection; only the listener can answer.
    const error = await client.send(new GetItemCommand({ TableName: 'missing', Key: { pk: { S: 'x' } } })).catch((e: unknown) => e);
    // Assess
    expect((error as Error).name).toBe('ResourceNotFoundException');
    expect(got.headers?.['x-amz-target']).toBe('DynamoDB_20120810.GetItem');
    expect(got.headers?.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=\S+, SignedHeaders=\S+, Signature=\S+$/);
    expect(got.headers?.['x-amz-date']).toMatch(/^\d{8}T\d{6}Z$/);
    expect(got.url).toBe('/');
    expect(JSON.parse(got.body ?? '')).toEqual({ TableName: 'missing', Key: { pk: { S: 'x' } } });
    client.destroy();
  });
});

describe('the local runtime on an external endpoint (AIRLOCK_DYNAMODB_ENDPOINT)', () => {
  it('uses the endpoint instead of starting dynalite, and its data outlives the runtime', async () => {
    // Prepare: the endpoint CI runs against (DynamoDB Local), else a dynalite standing in for one.
    const standIn = testDynamoEndpoint() ? undefined : await start();
    const endpoint = testDynamoEndpoint() ?? standIn!.endpoint;
    const tableName = uniqueTableName();
    const dir = await mkdtemp(join(tmpdir(), 'airlock-endpoint-'));
    dirs.push(dir);
    try {
      // Act
      const rt = await startLocalRuntime({ port: 0, stateDir: dir, logger: silentLogger, dynamoEndpoint: endpoint, tableName });
      expect(rt.dynamo).toMatchObject({ endpoint, tableName, external: true });
      expect(rt.env.AWS_ENDPOINT_URL_DYNAMODB).toBe(endpoint);
      await rt.dynamo.client.send(new PutItemCommand({ TableName: tableName, Item: { pk: { S: 'kept' }, sk: { S: '1' } } }));
      await rt.close();
      // Assess: nothing embedded was started, and the item is still on the endpoint.
      expect(existsSync(join(dir, 'dynamodb'))).toBe(false);
      const probe = localDynamoClient(endpoint);
      const got = await probe.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: 'kept' }, sk: { S: '1' } } }));
      probe.destroy();
      expect(got.Item?.pk?.S).toBe('kept');
    } finally {
      await deleteTestTable(tableName);
    }
  });
});
