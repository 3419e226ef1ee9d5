import { CreateTableCommand, DeleteTableCommand, DescribeTableCommand, GetItemCommand, PutItemCommand, ResourceNotFoundException, UpdateTableCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { cacheTableDescriptions } from '../../lambdas/adapters/local/dynalite-table-cache';
import { startDynalite, type RunningDynalite } from '../../lambdas/adapters/local/dynalite';

const running: RunningDynalite[] = [];
afterEach(async () => {
  for (const d of running.splice(0)) await d.close();
});

const table = (name: string) =>
  new CreateTableCommand({
    TableName: name,
    AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
    KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    BillingMode: 'PAY_PER_REQUEST',
  });

describe('dynalite table descriptions, cached', () => {
  it('a deleted, recreated or updated table is seen at once by the next item request', async () => {
    // Prepare: a table whose description the item requests below have cached.
    const d = await startDynalite();
    running.push(d);
    await d.client.send(table('cached-one'));
    await d.client.send(new PutItemCommand({ TableName: 'cached-one', Item: { pk: { S: 'a' } } }));
    expect((await d.client.send(new GetItemCommand({ TableName: 'cached-one', Key: { pk: { S: 'a' } } }))).Item?.pk?.S).toBe('a');

    // Act + assess: deleted, the next request finds no table (not the cached one).
    await d.client.send(new DeleteTableCommand({ TableName: 'cached-one' }));
    await expect.poll(() => d.client.send(new GetItemCommand({ TableName: 'cached-one', Key: { pk: { S: 'a' } } })).catch((e: unknown) => e), { timeout: 5_000 }).toBeInstanceOf(ResourceNotFoundException);
    // Recreated with another key schema: requests are judged by the new one.
    await d.client.send(
      new CreateTableCommand({
        TableName: 'cached-one',
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    await expect.poll(() => d.client.send(new PutItemCommand({ TableName: 'cached-one', Item: { id: { S: 'b' } } })).then(() => 'ok', (e: unknown) => (e as Error).name), { timeout: 5_000 }).toBe('ok');
    const wrongKey = await d.client.send(new GetItemCommand({ TableName: 'cached-one', Key: { pk: { S: 'a' } } })).catch((e: unknown) => e);
    expect((wrongKey as Error).name).toBe('ValidationException');
    // Updated (provisioned now): the description says so.
    await d.client.send(new UpdateTableCommand({ TableName: 'cached-one', BillingMode: 'PROVISIONED', ProvisionedThroughput: { ReadCapacityUnits: 3, WriteCapacityUnits: 4 } }));
    await expect.poll(async () => (await d.client.send(new DescribeTableCommand({ TableName: 'cached-one' }))).Table?.ProvisionedThroughput?.ReadCapacityUnits, { timeout: 5_000 }).toBe(3);
  });

  it('reads the store once per table until a write, hands out copies, and never caches a read a write overtook', async () => {
    // Prepare: a stand-in store that counts its reads and answers when told.
    let reads = 0;
    const pending: (() => void)[] = [];
    const described = { TableName: 't1', TableStatus: 'ACTIVE', KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }] };
    const store = {
      tableDb: { put: (..._args: unknown[]) => undefined, del: (..._args: unknown[]) => undefined, batch: (..._args: unknown[]) => undefined } as Record<string, unknown>,
      getTable: (_name: string, checkStatus: boolean | ((e: unknown, t?: unknown) => void), cb?: (e: unknown, t?: unknown) => void) => {
        reads++;
        const done = typeof checkStatus === 'function' ? checkStatus : cb!;
        pending.push(() => done(null, structuredClone(described)));
      },
    };
    cacheTableDescriptions(store);
    const get = () => new Promise<Record<string, unknown>>((resolve) => store.getTable('t1', false, (_e, t) => resolve(t as Record<string, unknown>)));

    // Act + assess: a read a write overtook is not kept.
    const first = get();
    (store.tableDb.put as () => void)();
    pending.shift()!();
    await first;
    const second = get();
    expect(reads).toBe(2);
    pending.shift()!();
    const kept = await second;
    // From the cache now: no store read, and a copy each time.
    kept.TableStatus = 'MUTATED BY A CALLER';
    const third = await get();
    expect(reads).toBe(2);
    expect(third.TableStatus).toBe('ACTIVE');
    // Any write forgets it.
    (store.tableDb.del as () => void)();
    const fourth = get();
    expect(reads).toBe(3);
    pending.shift()!();
    expect((await fourth).TableStatus).toBe('ACTIVE');
  });

  it('hands item requests (no status flag) one frozen description, table requests a fresh copy each', async () => {
    // Prepare: a stand-in store with one ACTIVE table, its description cached by a first read.
    const described = { TableName: 't1', TableStatus: 'ACTIVE', KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }], ProvisionedThroughput: { ReadCapacityUnits: 0 } };
    const store = {
      tableDb: { put: (..._args: unknown[]) => undefined, del: (..._args: unknown[]) => undefined, batch: (..._args: unknown[]) => undefined } as Record<string, unknown>,
      getTable: (_name: string, checkStatus: boolean | ((e: unknown, t?: unknown) => void), cb?: (e: unknown, t?: unknown) => void) => {
        const done = typeof checkStatus === 'function' ? checkStatus : cb!;
        process.nextTick(done, null, structuredClone(described));
      },
    };
    cacheTableDescriptions(store);
    type Table = typeof described;
    const forItem = () => new Promise<Table>((resolve) => store.getTable('t1', (_e, t) => resolve(t as Table)));
    const forTable = () => new Promise<Table>((resolve) => store.getTable('t1', false, (_e, t) => resolve(t as Table)));
    await forItem();

    // Act: two item requests and two table requests from the cache.
    const [a, b, c, d] = [await forItem(), await forItem(), await forTable(), await forTable()];

    // Assess: item requests share one object, frozen all the way down, so none can change what
    // the next one reads; table requests (UpdateTable changes its copy) get their own copies.
    expect(a).toBe(b);
    expect(Object.isFrozen(a) && Object.isFrozen(a.KeySchema) && Object.isFrozen(a.KeySchema[0]) && Object.isFrozen(a.ProvisionedThroughput)).toBe(true);
    expect(a).toEqual(described);
    expect(c).not.toBe(d);
    expect(Object.isFrozen(c)).toBe(false);
    c.TableStatus = 'UPDATING';
    expect((await forTable()).TableStatus).toBe('ACTIVE');
    // A write forgets the frozen one too.
    (store.tableDb.put as () => void)();
    const after = await forItem();
    expect(after).not.toBe(a);
  });
});
