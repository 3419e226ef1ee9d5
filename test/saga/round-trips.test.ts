import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countDynamo, diffCounts, untimedCalls, type DynamoCounter, type DynamoCounts } from '../helpers/counting-dynamo';
import { startTestControlPlane, travelPlan, type TestControlPlane } from '../helpers/control-plane';

/**
 * DynamoDB round trips per read action and per saga step, counted on the real SDK client the
 * whole local control plane shares (intake, saga, connectors, receipts), with the shipped
 * limits on (rate limiting and spend caps count too). These are ceilings: a change that adds
 * ledger calls to the hot path fails here, and the issue-17 figures in bench/round-trips.ts
 * come from the same counter. Requests are sent `Prefer: respond-async` and the runner is
 * drained, so intake's polling for a synchronous answer (timing-dependent) is not counted.
 */

let cp: TestControlPlane;
let alice: string;
let counter: DynamoCounter;

beforeAll(async () => {
  cp = await startTestControlPlane();
  alice = await cp.token('alice', { roles: ['employee'], manager: 'bob', department: 'sales' });
  counter = countDynamo(cp.runtime.dynamo.client);
  // Warm: the rate limiter's first lease and the first spend-cap items are one-off costs.
  await run({ tool: 'echo.say', arguments: { message: 'warm' }, agent: { name: 'counting-bot' } });
});
afterAll(async () => {
  counter?.detach();
  await cp?.close();
});

let n = 0;
async function run(body: unknown): Promise<string> {
  const res = await cp.post(alice, body, { prefer: 'respond-async', key: `rt-${n++}` });
  expect([200, 202]).toContain(res.status);
  await cp.cp.runner.idle();
  const action = await cp.cp.ledger.getAction(res.body.id as string);
  expect(action?.status).toBe('completed');
  expect(action?.receiptKey).toBeDefined();
  return res.body.id as string;
}

/** Runs `times` actions built by `body(i)` and returns the DynamoDB calls they made, per action. */
async function perAction(times: number, body: (i: number) => unknown): Promise<{ calls: number; counts: DynamoCounts; ids: string[] }> {
  const before = counter.snapshot();
  const ids: string[] = [];
  for (let i = 0; i < times; i++) ids.push(await run(body(i)));
  const counts = diffCounts(counter.snapshot(), before);
  return { calls: untimedCalls(counts) / times, counts, ids };
}

describe('DynamoDB round trips', () => {
  it('a read action (echo.say, allowed) stays within its ledger budget, receipt included', async () => {
    const { calls, counts, ids } = await perAction(10, (i) => ({ tool: 'echo.say', arguments: { message: `m${i}` }, agent: { name: 'counting-bot' } }));
    // Before issue 17's fast path: ~36 calls and ~15 state transitions per read; ~25 since the
    // first audit event of a received action no longer reads the chain's head.
    expect(calls).toBeLessThanOrEqual(27);
    expect(counts.writeUnits / 10).toBeLessThanOrEqual(45);
    // Every read still leaves exactly one step record and one receipt.
    for (const id of ids) expect((await cp.cp.store.listSteps(id)).filter((s) => s.kind === 'forward')).toHaveLength(1);
  });

  it('each further step of an allowed plan costs a bounded number of calls', async () => {
    const one = await perAction(3, () => ({ ...travelPlan(), plan: travelPlan().plan.slice(0, 1) }));
    const four = await perAction(3, () => travelPlan());
    const perStep = (four.calls - one.calls) / 3;
    const bookkeeping = one.calls - perStep;
    expect(perStep).toBeGreaterThan(0);
    expect(perStep).toBeLessThanOrEqual(15);
    // Derived: a one-step plan less one step. With transactions (DynamoDB Local) the spend
    // reservation is one TransactWriteItems, so a step costs ~9 calls instead of ~14 and the
    // same one-step total (~27 on both engines) leaves ~18 to bookkeeping; dynalite, without
    // transactions, ~13.
    expect(bookkeeping).toBeLessThanOrEqual(18);
    expect(one.calls).toBeLessThanOrEqual(28);
  });

  it('the counter leaves responses as the callers asked for them', async () => {
    const id = await run({ tool: 'echo.say', arguments: { message: 'plain' }, agent: { name: 'counting-bot' } });
    const { GetItemCommand } = await import('@aws-sdk/client-dynamodb');
    const out = await cp.runtime.dynamo.client.send(
      new GetItemCommand({ TableName: cp.runtime.dynamo.tableName, Key: { pk: { S: `ACTION#${id}` }, sk: { S: 'ACTION' } } }),
    );
    expect(out.Item).toBeDefined();
    expect(out.ConsumedCapacity).toBeUndefined();
    expect(counter.snapshot().readUnits).toBeGreaterThan(0);
  });
});
