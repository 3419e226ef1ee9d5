import { DeleteItemCommand, DynamoDBClient, PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoApprovalStore } from '../../lambdas/adapters/aws/dynamo-approvals';
import { DynamoDelegationStore } from '../../lambdas/adapters/aws/dynamo-delegations';
import { DynamoLedger } from '../../lambdas/adapters/aws/dynamo-ledger';
import { DynamoSagaStore } from '../../lambdas/adapters/aws/dynamo-saga-store';
import type { ActionRecord } from '../../lambdas/actions/action';
import { sweepExpiredDelegations, type ExpirySweepDeps } from '../../lambdas/delegations/expiry';
import { createDelegationExpiryHandler } from '../../lambdas/delegations/handler';
import { snapshotOf } from '../../lambdas/delegations/gate';
import type { Delegation } from '../../lambdas/ports/delegations';
import { checkDelegationReceipt, expiryReceiptKey, ExpiryReceiptSchema, isDelegationReceiptKey } from '../../lambdas/receipts/consent';
import { newActionId } from '../../lambdas/shared/ids';
import { silentLogger } from '../../lambdas/middleware/powertools';
import { MemoryAuditStore } from '../helpers/memory-audit-store';
import { startTestDynamo, type TestDynamo } from '../helpers/dynamo';

/**
 * The delegation expiry sweep on a real DynamoDB engine (dynalite here; DynamoDB Local in
 * `npm run test:dynamodb-local`): a delegation past its expiry is ended once — one
 * active→expired conditional write, one audit event, one expiry receipt — however many
 * sweepers race and wherever one crashes; its agent's unfinished actions are cancelled; a
 * revoked or never-stored delegation only leaves the queue.
 */

let db: TestDynamo;
let store: DynamoDelegationStore;
let ledger: DynamoLedger;
const T0 = Date.parse('2031-05-06T07:00:00Z');
const HOUR = 3_600_000;
const money = { baseCurrency: 'usd', rates: { usd: 1 }, minorUnits: { usd: 2 } } as never;
let n = 0;

beforeAll(async () => {
  db = await startTestDynamo();
  store = new DynamoDelegationStore({ client: db.client, tableName: db.tableName });
  ledger = new DynamoLedger({ client: db.client, tableName: db.tableName });
}, 60_000);
afterAll(async () => {
  await db?.close();
});

function delegation(principal: string, overrides: Partial<Delegation> = {}): Delegation {
  const id = `dlg_01JG${String(n++).padStart(22, '0')}`;
  const createdAt = new Date(T0).toISOString();
  return {
    id,
    principal,
    agent: 'trip-bot',
    tools: [],
    connectors: ['travel'],
    budget: null,
    rules: { askForCommit: false },
    purpose: null,
    createdAt,
    expiresAt: new Date(T0 + HOUR).toISOString(),
    status: 'active',
    policySetVersion: 'a'.repeat(64),
    limitsVersion: 'b'.repeat(64),
    consentReceiptKey: `receipts/dt=2031-05-06/${id}.consent.json`,
    ...overrides,
  };
}

/** An action of the delegation's agent under it, still `received`. */
async function actionUnder(d: Delegation): Promise<string> {
  const at = new Date(T0 + 60_000).toISOString();
  const record: ActionRecord = {
    id: newActionId(T0 + 60_000),
    principal: { sub: d.principal, roles: ['Employee'], agent: d.agent },
    actor: { name: d.agent },
    envelope: {},
    kind: 'single',
    mode: 'execute',
    planHash: 'c'.repeat(64),
    status: 'received',
    delegation: snapshotOf(d, money),
    createdAt: at,
    updatedAt: at,
    version: 1,
  };
  expect(await ledger.createAction(record)).toBe('created');
  return record.id;
}

function sweepDeps(clock: { t: number }, vault: MemoryAuditStore, overrides: Partial<ExpirySweepDeps> = {}): ExpirySweepDeps {
  const now = () => new Date(clock.t);
  return {
    store,
    actions: ledger,
    cancel: {
      actions: ledger,
      approvals: new DynamoApprovalStore({ client: db.client, tableName: db.tableName }),
      events: new DynamoSagaStore({ client: db.client, tableName: db.tableName }),
      callbacks: { sendTaskSuccess: async () => undefined, sendTaskFailure: async () => undefined },
      now,
      logger: silentLogger,
      adminRole: 'KillSwitch',
    },
    vault,
    now,
    logger: silentLogger,
    ...overrides,
  };
}

const due = async (principal: string, at: number) => (await store.listDueExpiries(new Date(at), 1000)).filter((e) => e.principal === principal);
const expiredEvents = async (principal: string) => (await store.listDelegationEvents(principal)).filter((e) => e.type === 'delegation.expired');

describe('the expiry queue', () => {
  it('holds each delegation until its expiry is reached (at the expiry instant it is due), every principal\'s in one query', async () => {
    const a = delegation('queue-a');
    const b = delegation('queue-b', { expiresAt: new Date(T0 + 2 * HOUR).toISOString() });
    await store.createDelegation(a);
    await store.createDelegation(b);
    expect(await due('queue-a', T0 + HOUR - 1)).toEqual([]);
    expect(await due('queue-a', T0 + HOUR)).toEqual([{ principal: 'queue-a', id: a.id, expiresAt: a.expiresAt }]);
    expect(await due('queue-b', T0 + HOUR)).toEqual([]);
    expect((await store.listDueExpiries(new Date(T0 + 2 * HOUR), 1000)).map((e) => e.id)).toEqual(expect.arrayContaining([a.id, b.id]));
    await store.clearDueExpiry({ principal: 'queue-a', id: a.id, expiresAt: a.expiresAt });
    await store.clearDueExpiry({ principal: 'queue-a', id: a.id, expiresAt: a.expiresAt });
    expect(await due('queue-a', T0 + 2 * HOUR)).toEqual([]);
  });
});

describe('sweepExpiredDelegations', () => {
  it('does nothing before the expiry; after it, ends the delegation, cancels its agent\'s unfinished work and writes one expiry receipt', async () => {
    const d = delegation('sweep-1');
    await store.createDelegation(d);
    const actionId = await actionUnder(d);
    const vault = new MemoryAuditStore(() => new Date());
    const clock = { t: T0 + HOUR - 1 };
    expect(await sweepExpiredDelegations(sweepDeps(clock, vault))).toMatchObject({ expired: [] });
    expect((await store.getDelegation('sweep-1', d.id))?.status).toBe('active');

    clock.t = T0 + HOUR + 5_000;
    const report = await sweepExpiredDelegations(sweepDeps(clock, vault));
    expect(report.expired).toContain(d.id);
    expect(report.stopped.cancelled).toEqual([actionId]);
    const ended = await store.getDelegation('sweep-1', d.id);
    expect(ended).toMatchObject({ status: 'expired', sweptAt: new Date(clock.t).toISOString(), expiryReceiptKey: expiryReceiptKey(d.id, d.expiresAt) });
    const action = await ledger.getAction(actionId);
    expect(action).toMatchObject({ status: 'cancelled', cancel: { by: 'airlock' } });
    expect(action?.statusReason).toContain(`delegation ${d.id} expired`);

    const key = expiryReceiptKey(d.id, d.expiresAt);
    expect(isDelegationReceiptKey(key)).toBe(true);
    const receipt = JSON.parse(Buffer.from((await vault.get(key))!).toString('utf8'));
    expect(ExpiryReceiptSchema.parse(receipt)).toEqual({
      schemaVersion: '1',
      kind: 'airlock.expiry',
      delegationId: d.id,
      principal: 'sweep-1',
      agent: 'trip-bot',
      expiredAt: d.expiresAt,
      sweptAt: new Date(clock.t).toISOString(),
      consentReceiptKey: d.consentReceiptKey,
    });
    expect(checkDelegationReceipt(key, receipt)).toBeUndefined();
    expect(checkDelegationReceipt(key.replace('2031-05-06', '2031-05-07'), receipt)).toMatch(/belongs at/);
    expect(await expiredEvents('sweep-1')).toEqual([expect.objectContaining({ actor: 'airlock', data: expect.objectContaining({ delegationId: d.id, receiptKey: key }) })]);
    expect(await due('sweep-1', clock.t)).toEqual([]);
  });

  it('ends a delegation exactly once with 20 concurrent sweepers: one conditional write wins, one event, one receipt (same bytes for all)', async () => {
    const d = delegation('sweep-race');
    await store.createDelegation(d);
    await actionUnder(d);
    const vault = new MemoryAuditStore(() => new Date());
    // Each sweeper on its own clock: only the winner's time may reach the receipt.
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => sweepExpiredDelegations(sweepDeps({ t: T0 + HOUR + 1_000 * (i + 1) }, vault))));
    expect(results.every((r) => r.expired.includes(d.id))).toBe(true);
    const ended = (await store.getDelegation('sweep-race', d.id))!;
    expect(ended.status).toBe('expired');
    expect(await expiredEvents('sweep-race')).toHaveLength(1);
    const keys = [...vault.objects.keys()].filter((k) => k.includes(d.id));
    expect(keys).toEqual([expiryReceiptKey(d.id, d.expiresAt)]);
    expect(JSON.parse(Buffer.from((await vault.get(keys[0]!))!).toString('utf8'))).toMatchObject({ sweptAt: ended.sweptAt });
    expect(await due('sweep-race', T0 + 2 * HOUR)).toEqual([]);
  });

  it('is finished by the next sweep when one crashes after the conditional write: the winner\'s record, not the retry\'s clock, makes the receipt', async () => {
    const d = delegation('sweep-crash');
    await store.createDelegation(d);
    const actionId = await actionUnder(d);
    const vault = new MemoryAuditStore(() => new Date());
    const crashing: MemoryAuditStore = Object.assign(Object.create(vault) as MemoryAuditStore, {
      putIfAbsent: async () => {
        throw new Error('crash before the receipt');
      },
    });
    const first = { t: T0 + HOUR + 1_000 };
    await expect(sweepExpiredDelegations(sweepDeps(first, crashing))).rejects.toThrow('crash before the receipt');
    expect((await store.getDelegation('sweep-crash', d.id))?.status).toBe('expired');
    expect(vault.objects.has(expiryReceiptKey(d.id, d.expiresAt))).toBe(false);
    // Still queued: nothing is let go of before its receipt is in the vault.
    expect(await due('sweep-crash', T0 + 2 * HOUR)).toHaveLength(1);

    await sweepExpiredDelegations(sweepDeps({ t: T0 + HOUR + 60_000 }, vault));
    const receipt = JSON.parse(Buffer.from((await vault.get(expiryReceiptKey(d.id, d.expiresAt)))!).toString('utf8'));
    expect(receipt.sweptAt).toBe(new Date(first.t).toISOString());
    expect(await expiredEvents('sweep-crash')).toHaveLength(1);
    expect((await ledger.getAction(actionId))?.status).toBe('cancelled');
    expect(await due('sweep-crash', T0 + 2 * HOUR)).toEqual([]);
  });

  it('lets go of a delegation revoked before its expiry (its revocation receipt says it all) and of a queue entry with no delegation behind it', async () => {
    const revoked = delegation('sweep-revoked');
    await store.createDelegation(revoked);
    await store.revokeDelegation('sweep-revoked', revoked.id, { revokedAt: new Date(T0 + 60_000).toISOString(), revokedBy: 'sweep-revoked', revokeReason: 'done', revocationReceiptKey: `receipts/dt=2031-05-06/${revoked.id}.revocation.json` });
    const vault = new MemoryAuditStore(() => new Date());
    await sweepExpiredDelegations(sweepDeps({ t: T0 + HOUR }, vault));
    expect((await store.getDelegation('sweep-revoked', revoked.id))?.status).toBe('revoked');
    expect([...vault.objects.keys()].filter((k) => k.includes(revoked.id))).toEqual([]);
    expect(await expiredEvents('sweep-revoked')).toEqual([]);
    expect(await due('sweep-revoked', T0 + 2 * HOUR)).toEqual([]);
    expect(await store.expireDelegation('sweep-revoked', revoked.id, { sweptAt: new Date(T0 + HOUR).toISOString(), expiryReceiptKey: 'k' })).toBeUndefined();

    // A grant cut short between its queue entry and its item: the entry alone.
    const ghost = delegation('sweep-ghost');
    await db.client.send(
      new PutItemCommand({
        TableName: db.tableName,
        Item: { pk: { S: 'DLGEXPIRY' }, sk: { S: `EXP#${ghost.expiresAt}#${ghost.id}` }, principal: { S: 'sweep-ghost' }, id: { S: ghost.id }, expiresAt: { S: ghost.expiresAt } },
      }),
    );
    expect(await due('sweep-ghost', T0 + HOUR)).toHaveLength(1);
    await sweepExpiredDelegations(sweepDeps({ t: T0 + HOUR }, vault));
    expect(await due('sweep-ghost', T0 + HOUR)).toEqual([]);
    expect(await store.expireDelegation('sweep-ghost', ghost.id, { sweptAt: new Date(T0 + HOUR).toISOString(), expiryReceiptKey: 'k' })).toBeUndefined();
  });

  it('takes at most `limit` due delegations per run, oldest expiry first; the next run takes the rest', async () => {
    const principal = 'sweep-batch';
    const ds = [3, 1, 2].map((m) => delegation(principal, { expiresAt: new Date(T0 + m * 60_000).toISOString() }));
    for (const d of ds) await store.createDelegation(d);
    const vault = new MemoryAuditStore(() => new Date());
    const clock = { t: T0 + 10 * 60_000 };
    // Other tests' entries may be due too: sweep until this principal's are all gone, counting runs.
    const order: string[] = [];
    for (let run = 0; run < 50 && (await due(principal, clock.t)).length > 0; run++) {
      const report = await sweepExpiredDelegations(sweepDeps(clock, vault), { limit: 1 });
      order.push(...report.expired.filter((id) => ds.some((d) => d.id === id)));
    }
    expect(order).toEqual([ds[1]!.id, ds[2]!.id, ds[0]!.id]);
  });
});

describe('the expiry queue\'s requests (aws-sdk-client-mock)', () => {
  it('puts the queue entry before the delegation, asks one consistent, bounded range of the queue, and deletes entries by key', async () => {
    const client = new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    const mock = mockClient(client);
    mock.on(PutItemCommand).resolves({});
    mock.on(QueryCommand).resolves({ Items: [{ pk: { S: 'DLGEXPIRY' }, sk: { S: 'EXP#x' }, principal: { S: 'alice' }, id: { S: 'dlg_1' }, expiresAt: { S: '2031-05-06T08:00:00.000Z' } }, { pk: { S: 'DLGEXPIRY' }, sk: { S: 'EXP#y' } }] });
    mock.on(DeleteItemCommand).resolves({});
    const mocked = new DynamoDelegationStore({ client, tableName: 't' });
    const d = delegation('mocked');
    await mocked.createDelegation(d);
    const puts = mock.commandCalls(PutItemCommand).map((c) => c.args[0].input);
    expect(puts).toHaveLength(2);
    expect(puts[0]).toMatchObject({ Item: { pk: { S: 'DLGEXPIRY' }, sk: { S: `EXP#${d.expiresAt}#${d.id}` }, principal: { S: 'mocked' }, id: { S: d.id } } });
    expect(puts[1]).toMatchObject({ Item: { pk: { S: 'DELEGATIONS#mocked' } }, ConditionExpression: 'attribute_not_exists(sk)' });

    const now = new Date('2031-05-06T09:00:00.000Z');
    // An entry without its attributes is skipped, never guessed at.
    expect(await mocked.listDueExpiries(now, 5_000)).toEqual([{ principal: 'alice', id: 'dlg_1', expiresAt: '2031-05-06T08:00:00.000Z' }]);
    expect(mock.commandCalls(QueryCommand).map((c) => c.args[0].input)).toEqual([{
      TableName: 't',
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
      ExpressionAttributeValues: { ':pk': { S: 'DLGEXPIRY' }, ':from': { S: 'EXP#' }, ':to': { S: `EXP#${now.toISOString()}$` } },
      Limit: 1000,
      ConsistentRead: true,
    }]);
    await mocked.clearDueExpiry({ principal: 'alice', id: 'dlg_1', expiresAt: '2031-05-06T08:00:00.000Z' });
    expect(mock.commandCalls(DeleteItemCommand).map((c) => c.args[0].input)).toEqual([{ TableName: 't', Key: { pk: { S: 'DLGEXPIRY' }, sk: { S: 'EXP#2031-05-06T08:00:00.000Z#dlg_1' } } }]);
    mock.restore();
  });
});

describe('the scheduled function', () => {
  it('parses its task and sweeps; anything else is refused before any read', async () => {
    const d = delegation('handler');
    await store.createDelegation(d);
    const vault = new MemoryAuditStore(() => new Date());
    let reads = 0;
    const deps = sweepDeps({ t: T0 + HOUR }, vault);
    const counted = { ...deps, store: { ...pick(store), listDueExpiries: (now: Date, limit: number) => (reads++, store.listDueExpiries(now, limit)) } };
    const handler = createDelegationExpiryHandler(async () => counted);
    const context = { functionName: 'DelegationExpiry', awsRequestId: 'r1' } as Context;
    await expect(handler({ task: 'Reconcile' }, context)).rejects.toThrow();
    await expect(handler({ task: 'SweepExpiredDelegations', extra: 1 }, context)).rejects.toThrow();
    expect(reads).toBe(0);
    const result = (await handler({ task: 'SweepExpiredDelegations' }, context)) as { expired: string[] };
    expect(result.expired).toContain(d.id);
    expect(reads).toBe(1);
  });
});

/** The store's methods bound to it (a spread of a class instance copies none). */
function pick(s: DynamoDelegationStore): ExpirySweepDeps['store'] {
  return {
    getDelegation: s.getDelegation.bind(s),
    expireDelegation: s.expireDelegation.bind(s),
    listDueExpiries: s.listDueExpiries.bind(s),
    clearDueExpiry: s.clearDueExpiry.bind(s),
    recordDelegationEvent: s.recordDelegationEvent.bind(s),
  };
}
