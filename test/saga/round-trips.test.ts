import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countDynamo, diffCounts, untimedCalls, type DynamoCounter, type DynamoCounts } from '../helpers/counting-dynamo';
import { startTestControlPlane, travelPlan, type TestControlPlane } from '../helpers/control-plane';
import { isoDay } from '../helpers/dates';

/** The parts of an action, by the function that makes their calls (the innermost on the stack wins). */
const PHASES = {
  acceptAction: 'intake',
  evaluate: 'decide',
  issueGrant: 'step',
  runStep: 'step',
  runStepRecorded: 'step',
  settle: 'bookkeeping',
  storeReceipt: 'bookkeeping',
  recordReceipt: 'bookkeeping',
  runReadAction: 'read',
  // The test's own check of how each action ended.
  runCounted: 'test',
} as const;

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
  counter = countDynamo(cp.runtime.dynamo.client, { phases: PHASES });
  // Warm: the rate limiter's first lease and the first spend-cap items are one-off costs.
  await runCounted({ tool: 'echo.say', arguments: { message: 'warm' }, agent: { name: 'counting-bot' } });
});
afterAll(async () => {
  counter?.detach();
  await cp?.close();
});

let n = 0;
async function runCounted(body: unknown, prefer = 'respond-async'): Promise<string> {
  const res = await cp.post(alice, body, { prefer, key: `rt-${n++}` });
  expect([200, 202]).toContain(res.status);
  await cp.cp.runner.idle();
  const action = await cp.cp.ledger.getAction(res.body.id as string);
  expect(action?.status).toBe('completed');
  expect(action?.receiptKey).toBeDefined();
  return res.body.id as string;
}

/** Runs `times` actions built by `body(i)` and returns the DynamoDB calls they made, per action. */
async function perAction(
  times: number,
  body: (i: number) => unknown,
  prefer?: string,
): Promise<{ calls: number; counts: DynamoCounts; ids: string[]; phase: (name: string) => number }> {
  const before = counter.snapshot();
  const ids: string[] = [];
  for (let i = 0; i < times; i++) ids.push(await runCounted(body(i), prefer));
  const counts = diffCounts(counter.snapshot(), before);
  return { calls: (untimedCalls(counts) - (counts.byPhase.test ?? 0)) / times, counts, ids, phase: (name) => (counts.byPhase[name] ?? 0) / times };
}

/** A 4-step plan with no money at stake: two searches and two holds (nothing to reserve or settle). */
function plainPlan(i: number) {
  const [a, b] = [isoDay(3 + (i % 20)), isoDay(4 + (i % 20))];
  return {
    agent: { name: 'counting-bot' },
    plan: [
      { id: 'search1', tool: 'travel.search_flights', arguments: { origin: 'SFO', destination: 'JFK', date: a } },
      { id: 'hold1', tool: 'travel.hold_seat', arguments: { flightId: `SB102-${a}`, seats: 1 } },
      { id: 'search2', tool: 'travel.search_flights', arguments: { origin: 'JFK', destination: 'SFO', date: b } },
      { id: 'hold2', tool: 'travel.hold_seat', arguments: { flightId: `SB102-${b}`, seats: 1 } },
    ],
  };
}

describe('DynamoDB round trips', () => {
  it('a read action (echo.say, allowed) stays within its ledger budget, receipt included', async () => {
    const { calls, counts, ids } = await perAction(10, (i) => ({ tool: 'echo.say', arguments: { message: `m${i}` }, agent: { name: 'counting-bot' } }));
    // Before issue 17's fast path: ~36 calls and ~15 state transitions per read; ~25 since the
    // first audit event of a received action no longer reads the chain's head; 20 since a
    // step's begin consumes its grant and the saga's tasks read the action with the steps; 19
    // since a plan of reads is decided without the spend counters.
    expect(calls).toBeLessThanOrEqual(19);
    // ~14.3 on dynalite, ~21.7 as DynamoDB Local reports them (gsi1's copies of the action
    // item included); ~18 and ~29 while the action item was JSON over 1 KB (two units a write).
    expect(counts.writeUnits / 10).toBeLessThanOrEqual(23);
    // Every read still leaves exactly one step record and one receipt.
    for (const id of ids) expect((await cp.cp.store.listSteps(id)).filter((s) => s.kind === 'forward')).toHaveLength(1);
  });

  it('each further step of an allowed plan costs a bounded number of calls', async () => {
    const one = await perAction(3, () => ({ ...travelPlan(), plan: travelPlan().plan.slice(0, 1) }));
    const four = await perAction(3, () => travelPlan());
    const perStep = (four.calls - one.calls) / 3;
    const bookkeeping = one.calls - perStep;
    expect(perStep).toBeGreaterThan(0);
    // Derived, and so coarse: the spend the longer plan settles counts as its steps' here (the
    // per-phase tests below count each part by the code that makes it). ~11 on dynalite, less
    // with transactions (DynamoDB Local), where a reservation is one TransactWriteItems.
    expect(perStep).toBeLessThanOrEqual(12);
    // A one-step plan less one step: intake, the run-time decision, settling and the receipt
    // (~27 per one-step plan before issue 17's ledger cuts, 20 after): ~9 on dynalite, ~14 with
    // transactions, where the longer plan's steps cost less and so leave more to this.
    expect(bookkeeping).toBeLessThanOrEqual(15);
    expect(one.calls).toBeLessThanOrEqual(21);
  });

  // Issue 17's targets, per phase (the calls each part of an action makes, counted by the code
  // that makes them; cached or leased guardrail reads apart). Where a figure is above the
  // issue's target, the target and the gap are named; every figure is a ceiling.
  it('a read on the fast path: intake 2, the decision 3, its one step 3, settling 2, the receipt 0, its key 1: writes only', async () => {
    const read = await perAction(10, (i) => ({ tool: 'echo.say', arguments: { message: `fast ${i}` }, agent: { name: 'counting-bot' } }), 'wait=5');
    // Idempotency claim and the action, which carries its day-index keys (gsi2) (a plan of reads
    // is decided without the spend counters: no cap can count it, and no shipped policy reads
    // them for it). The answer is recorded with the receipt key, not under the Idempotency-Key
    // (ReadAnswer).
    expect(read.phase('intake')).toBeLessThanOrEqual(2);
    // The grant's audit event; the step's begin (which consumes the grant) and completion.
    expect(read.phase('step')).toBeLessThanOrEqual(3);
    // RunRead: the run-time decision's event and the move to running, taking intake's allow.
    expect(read.phase('decide')).toBeLessThanOrEqual(3);
    // SettleAction: the move and its event (the step record is the connector's answer); the
    // receipt is built from the records the path wrote: no read.
    expect(read.phase('bookkeeping')).toBeLessThanOrEqual(2);
    // The receipt key, with intake's answer; the action itself is intake's record, handed over, not read.
    expect(read.phase('read')).toBeLessThanOrEqual(1);
    // Every call is attributed on dynalite. Against DynamoDB Local (a socket away) V8's async
    // stack loses the caller of the two status moves' audit events, so they count as `other`
    // there: still in the total below, which is the ceiling that matters.
    expect(read.phase('other')).toBeLessThanOrEqual(process.env.AIRLOCK_DYNAMODB_ENDPOINT ? 2 : 0);
    // No reads at all: only the cached or leased guardrail items and this test's own check read.
    const reads = (read.counts.calls.GetItemCommand ?? 0) + (read.counts.calls.QueryCommand ?? 0) + (read.counts.calls.BatchGetItemCommand ?? 0);
    expect(reads).toBeLessThanOrEqual((read.counts.byPhase.test ?? 0) + (read.counts.byPhase.timed ?? 0));
    // Issue 17 asks ≤ 4 per read; 13 single-item conditional writes is what no transactions (on
    // dynalite) and a per-action hash chain of audit events (four events a read) leave: see README, cost.
    // 13 while intake stored its answer under the Idempotency-Key, 12 while the day index was a
    // separate entry.
    expect(read.calls).toBeLessThanOrEqual(11);
    // Write units: ~12.3 on dynalite, ~19.4 on DynamoDB Local (the indexes' copies included: the
    // action's creation writes one to gsi2, its later writes none, gsi2 projecting nothing they change);
    // 2 more while intake stored its answer under the key, 1 (2 with its gsi1 copy) more while the
    // day index was a separate entry.
    expect(read.counts.writeUnits / 10).toBeLessThanOrEqual(process.env.AIRLOCK_DYNAMODB_ENDPOINT ? 20 : 13);
  });

  it('a step of an allowed plan: at most 4 calls without money; with the travel plan’s two reservations 4.5 on average with transactions, 7 stepwise on dynalite', async () => {
    const plain = await perAction(3, plainPlan);
    // IssueGrant's one read (the action and the step records together), the grant's event, the
    // step's begin (consuming the grant) and completion.
    expect(plain.phase('step') / 4).toBeLessThanOrEqual(4);
    const travel = await perAction(3, () => travelPlan());
    // Two commit steps reserve spend before their vendor call: one TransactWriteItems each where
    // the engine has transactions (DynamoDB, DynamoDB Local: 16 + 2 calls, 4.5 a step), the
    // stepwise writes on dynalite (pay: the reservation and 3 caps, 7 calls; book: 2 caps, 5;
    // 16 + 12 calls, 7 a step).
    expect(travel.phase('step') / 4).toBeLessThanOrEqual(7);
  });

  it('settling a plan and recording its receipt: 6 calls without money; the reservations add their settlement', async () => {
    const plain = await perAction(3, plainPlan);
    // SettleAction: the action and every step record in one read, the move, its event; the
    // receipt: the action with its events, the steps; RecordReceipt: one write.
    expect(plain.phase('bookkeeping')).toBeLessThanOrEqual(6);
    const travel = await perAction(3, () => travelPlan());
    // Plus the reservations' query, each reservation made final and the spend.settled event:
    // with transactions one call per reservation (10 in all), on dynalite the flip and each of
    // its counters (book: 2 caps, pay: 3), 15.
    expect(travel.phase('bookkeeping')).toBeLessThanOrEqual(15);
  });

  it('the counter leaves responses as the callers asked for them', async () => {
    const id = await runCounted({ tool: 'echo.say', arguments: { message: 'plain' }, agent: { name: 'counting-bot' } });
    const { GetItemCommand } = await import('@aws-sdk/client-dynamodb');
    const out = await cp.runtime.dynamo.client.send(
      new GetItemCommand({ TableName: cp.runtime.dynamo.tableName, Key: { pk: { S: `ACTION#${id}` }, sk: { S: 'ACTION' } } }),
    );
    expect(out.Item).toBeDefined();
    expect(out.ConsumedCapacity).toBeUndefined();
    expect(counter.snapshot().readUnits).toBeGreaterThan(0);
  });
});
