import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoLedger, tablesWithoutDayIndex } from '../../lambdas/adapters/aws/dynamo-ledger';
import type { ActionRecord, ActionStatus } from '../../lambdas/actions/action';
import { ActionListForbiddenError, ActionListRangeError, listAllActions, listedActionView, type ListAllActionsRequest } from '../../lambdas/actions/list-all';
import { PII_MASK } from '../../lambdas/approvals/preview';
import { silentLogger } from '../../lambdas/middleware/powertools';
import type { Principal } from '../../lambdas/shared/principal';
import { actionIdTime, newActionId } from '../../lambdas/shared/ids';
import { toolRegistry } from '../../lambdas/tools/registry';
import { startTestDynamo, type TestDynamo } from '../helpers/dynamo';

/** Every principal's actions for auditors, over the day index, on dynalite / DynamoDB Local through the real SDK. */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Times of this file: two days back from midnight UTC of the clock's day, so actions span three days. */
const midnight = Math.floor(Date.now() / DAY) * DAY;
const t0 = midnight - 2 * DAY;
const now = () => new Date(t0 + 3 * DAY - 1000);

const auditor: Principal = { sub: 'audrey', roles: ['Auditor'] };
const employee: Principal = { sub: 'alice', roles: ['Employee'] };

let db: TestDynamo;
let ledger: DynamoLedger;
/** Every action written, oldest first. */
const written: ActionRecord[] = [];

const echo = (m: string) => ({ tool: 'echo.say', arguments: { message: m }, agent: { name: 'a' } });
const pay = () => ({
  tool: 'payments.authorize',
  arguments: { amount: 10, currency: 'USD', payee: 'sandbox-air', paymentMethod: 'pm_card_visa', customerEmail: 'ada@example.com' },
  agent: { name: 'a' },
});
const plan = () => ({
  plan: [
    { id: 'search', tool: 'travel.search_flights', arguments: { origin: 'SFO', destination: 'JFK', date: '2030-01-01' } },
    { id: 'pay', tool: 'payments.authorize', arguments: { amount: 10, currency: 'USD', payee: 'x', paymentMethod: 'pm_card_visa', customerEmail: 'ada@example.com' } },
  ],
  agent: { name: 'a' },
});

function record(at: number, sub: string, envelope: Record<string, unknown>, status: ActionStatus, result?: unknown): ActionRecord {
  const iso = new Date(at).toISOString();
  return {
    id: newActionId(at),
    principal: { sub, roles: ['Employee'] },
    actor: { name: 'a' },
    envelope,
    kind: 'plan' in envelope ? 'plan' : 'single',
    mode: 'execute',
    planHash: 'h'.repeat(64),
    status,
    ...(result !== undefined ? { result } : {}),
    createdAt: iso,
    updatedAt: iso,
    version: 1,
  };
}

/** The same table read with a budget of 3 index entries per page, so filtered pages end early. */
let stingy: DynamoLedger;
let reader: () => DynamoLedger = () => ledger;
const deps = () => ({ actions: reader(), accessLog: ledger, tools: toolRegistry, now, logger: silentLogger });

/** Every page of a listing, following its cursor (as the API does with the sealed id). */
async function all(request: Omit<ListAllActionsRequest, 'cursor'>): Promise<string[]> {
  const ids: string[] = [];
  let after: string | undefined;
  for (let pages = 0; pages < 200; pages++) {
    const page = await listAllActions(deps(), auditor, { ...request, ...(after !== undefined ? { cursor: () => after! } : {}) });
    ids.push(...page.items.map((a) => a.id));
    if (!page.lastEvaluated) return ids;
    after = page.lastEvaluated;
  }
  throw new Error('the listing did not end');
}

beforeAll(async () => {
  db = await startTestDynamo();
  ledger = new DynamoLedger({ client: db.client, tableName: db.tableName });
  stingy = new DynamoLedger({ client: db.client, tableName: db.tableName, maxExaminedPerPage: 3 });
  // 30 actions every 2 hours and 20 minutes over the three days (ids are minted in time order, as intake does).
  const subs = ['alice', 'bob', 'carol'];
  const statuses: ActionStatus[] = ['completed', 'denied', 'awaiting_approval', 'failed', 'completed'];
  for (let i = 0; i < 30; i++) {
    const at = t0 + i * (2 * HOUR + 20 * 60_000);
    const envelope = i % 3 === 0 ? pay() : i % 3 === 1 ? echo(`m${i}`) : plan();
    const result =
      i % 3 === 0
        ? { authorizationId: `auth_${i}`, customerEmail: 'ada@example.com', status: 'authorized' }
        : i % 3 === 1
          ? { message: `m${i}`, length: 2 }
          : { search: { flights: [] }, pay: { authorizationId: `auth_${i}`, customerEmail: 'ada@example.com' } };
    const a = record(at, subs[i % subs.length]!, envelope, statuses[i % statuses.length]!, result);
    // Every other action as deployed tables hold those made before the day index was on the
    // action item (gsi2): a separate day-index entry in gsi1. The listing merges both.
    const legacy = i % 2 === 0;
    if (legacy) tablesWithoutDayIndex.add(db.tableName);
    try {
      expect(await ledger.createAction(a)).toBe('created');
    } finally {
      tablesWithoutDayIndex.delete(db.tableName);
    }
    if (i === 12) {
      // One carries both (taken over across a deployment): listed once.
      const day = new Date(actionIdTime(a.id)).toISOString().slice(0, 10);
      await db.client.send(
        new UpdateItemCommand({
          TableName: db.tableName,
          Key: { pk: { S: `ACTION#${a.id}` }, sk: { S: 'ACTION' } },
          UpdateExpression: 'SET gsi2pk = :p, gsi2sk = :id, principal = :who, tools = :tools',
          ExpressionAttributeValues: { ':p': { S: `ACTIONS#${day}` }, ':id': { S: a.id }, ':who': { S: a.principal.sub }, ':tools': { L: [{ S: 'payments.authorize' }] } },
        }),
      );
    }
    written.push(a);
  }
  // Both layouts are there: an old entry, and an action item with its own day keys and none.
  const item = async (pk: string, sk: string) => (await db.client.send(new GetItemCommand({ TableName: db.tableName, Key: { pk: { S: pk }, sk: { S: sk } } }))).Item;
  expect(await item(`ACTIONREF#${written[0]!.id}`, 'DAY')).toBeDefined();
  expect((await item(`ACTION#${written[0]!.id}`, 'ACTION'))?.gsi2pk).toBeUndefined();
  expect(await item(`ACTIONREF#${written[1]!.id}`, 'DAY')).toBeUndefined();
  expect((await item(`ACTION#${written[1]!.id}`, 'ACTION'))?.gsi2pk?.S).toMatch(/^ACTIONS#\d{4}-\d{2}-\d{2}$/);
});
afterAll(async () => {
  await db?.close();
});

const newestFirst = (xs: ActionRecord[]) => [...xs].sort((a, b) => (a.id < b.id ? 1 : -1)).map((a) => a.id);
const inRange = (a: ActionRecord, since: number, until: number) => actionIdTime(a.id) >= since && actionIdTime(a.id) <= until;

describe('listing every principal\'s actions (auditors)', () => {
  it('lists every action of the range newest first, across days, with one page or many', async () => {
    const since = new Date(t0).toISOString();
    expect(written.map((a) => a.createdAt.slice(0, 10)).filter((d, i, xs) => xs.indexOf(d) === i)).toHaveLength(3);
    const one = await listAllActions(deps(), auditor, { since, limit: 100 });
    expect(one.items.map((a) => a.id)).toEqual(newestFirst(written));
    expect(one.lastEvaluated).toBeUndefined();
    for (const limit of [1, 4, 7, 30]) expect(await all({ since, limit }), `limit ${limit}`).toEqual(newestFirst(written));
  });

  it('filters by status, tool, principal and time, alone and together, paging through filtered-out entries', async () => {
    const since = t0 + 5 * HOUR;
    const until = t0 + 2 * DAY + 3 * HOUR;
    const window = { since: new Date(since).toISOString(), until: new Date(until).toISOString() };
    const expectIds = (pred: (a: ActionRecord) => boolean) => newestFirst(written.filter((a) => inRange(a, since, until) && pred(a)));
    expect(await all({ ...window, limit: 3 })).toEqual(expectIds(() => true));
    expect(await all({ ...window, limit: 2, status: 'completed' })).toEqual(expectIds((a) => a.status === 'completed'));
    // A plan matches a tool any of its steps calls.
    expect(await all({ ...window, limit: 2, tool: 'payments.authorize' })).toEqual(expectIds((a) => JSON.stringify(a.envelope).includes('payments.authorize')));
    expect(await all({ ...window, limit: 2, principal: 'bob' })).toEqual(expectIds((a) => a.principal.sub === 'bob'));
    expect(await all({ ...window, limit: 5, principal: 'carol', tool: 'echo.say', status: 'completed' })).toEqual(
      expectIds((a) => a.principal.sub === 'carol' && JSON.stringify(a.envelope).includes('echo.say') && a.status === 'completed'),
    );
    expect(await all({ ...window, limit: 5, principal: 'nobody' })).toEqual([]);
    // A filter matching nothing ends a page at the examine budget, empty, with a way on.
    reader = () => stingy;
    const first = await listAllActions(deps(), auditor, { ...window, limit: 5, principal: 'nobody' });
    reader = () => ledger;
    expect(first.items).toEqual([]);
    expect(first.lastEvaluated).toMatch(/^act_/);
  });

  it('defaults to the week before now, refuses a reversed range or one over 31 days', async () => {
    expect((await listAllActions(deps(), auditor, { limit: 100 })).items.map((a) => a.id)).toEqual(newestFirst(written));
    await expect(listAllActions(deps(), auditor, { limit: 5, since: new Date(t0 + DAY).toISOString(), until: new Date(t0).toISOString() })).rejects.toBeInstanceOf(ActionListRangeError);
    await expect(listAllActions(deps(), auditor, { limit: 5, since: new Date(t0 - 32 * DAY).toISOString(), until: new Date(t0).toISOString() })).rejects.toBeInstanceOf(ActionListRangeError);
  });

  it('refuses anyone but an auditor, records the refusal on the access trail, and never opens their cursor', async () => {
    let opened = false;
    await expect(
      listAllActions(deps(), employee, {
        limit: 5,
        cursor: () => {
          opened = true;
          return written[0]!.id;
        },
      }),
    ).rejects.toBeInstanceOf(ActionListForbiddenError);
    expect(opened).toBe(false);
    const trail = await ledger.listAccessRefusals(now().toISOString().slice(0, 10));
    expect(trail).toEqual([{ at: now().toISOString(), actor: 'alice', attempted: 'list_all_actions', requiredRole: 'Auditor', roles: ['Employee'] }]);
  });

  it('masks others\' outputs at the tools\' declared PII paths, as previews do, and not the viewer\'s own', async () => {
    const single = written.find((a) => (a.envelope as { tool?: string }).tool === 'payments.authorize')!;
    expect(listedActionView(single, auditor, toolRegistry).result).toEqual({ authorizationId: expect.any(String), customerEmail: PII_MASK, status: 'authorized' });
    expect(listedActionView(single, single.principal, toolRegistry).result).toMatchObject({ customerEmail: 'ada@example.com' });
    const planned = written.find((a) => a.kind === 'plan')!;
    expect(listedActionView(planned, auditor, toolRegistry).result).toEqual({ search: { flights: [] }, pay: { authorizationId: expect.any(String), customerEmail: PII_MASK } });
    const echoed = written.find((a) => (a.envelope as { tool?: string }).tool === 'echo.say')!;
    expect(listedActionView(echoed, auditor, toolRegistry).result).toEqual(echoed.result);
    // A tool the registry does not know: its whole output is hidden.
    const unknown = { ...single, envelope: { ...(single.envelope as object), tool: 'gone.tool' } };
    expect(listedActionView(unknown, auditor, toolRegistry).result).toBe(PII_MASK);
  });

  it('pages to exactly the filtered list for any window, filters and page size, with any examine budget (fast-check)', async () => {
    const statuses: ActionStatus[] = ['completed', 'denied', 'awaiting_approval', 'failed'];
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 3 * DAY }),
        fc.integer({ min: 0, max: 3 * DAY }),
        fc.integer({ min: 1, max: 12 }),
        fc.option(fc.constantFrom(...statuses), { nil: undefined }),
        fc.option(fc.constantFrom('echo.say', 'payments.authorize', 'travel.search_flights', 'iam.grant_role'), { nil: undefined }),
        fc.option(fc.constantFrom('alice', 'bob', 'carol', 'dave'), { nil: undefined }),
        fc.boolean(),
        async (a, b, limit, status, tool, principal, small) => {
          reader = () => (small ? stingy : ledger);
          const since = t0 + Math.min(a, b);
          const until = t0 + Math.max(a, b);
          const got = await all({
            since: new Date(since).toISOString(),
            until: new Date(until).toISOString(),
            limit,
            ...(status ? { status } : {}),
            ...(tool ? { tool } : {}),
            ...(principal ? { principal } : {}),
          });
          const want = newestFirst(
            written.filter(
              (x) =>
                inRange(x, since, until) &&
                (status === undefined || x.status === status) &&
                (tool === undefined || JSON.stringify(x.envelope).includes(`"${tool}"`)) &&
                (principal === undefined || x.principal.sub === principal),
            ),
          );
          expect(got).toEqual(want);
        },
      ),
      { numRuns: 40 },
    );
    reader = () => ledger;
  });
});
