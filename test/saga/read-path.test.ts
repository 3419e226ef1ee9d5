import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { STEP_RETRIED_ERRORS } from '../../lambdas/saga/read-path';
import { countDynamo, diffCounts, untimedCalls, type DynamoCounter } from '../helpers/counting-dynamo';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';
import { isoDay } from '../helpers/dates';

/**
 * Issue 17's read fast path: an allowed single read call answered synchronously runs without
 * a Step Functions execution, and leaves what the saga leaves — the same statuses, audit
 * events, one exactly-once step record, a grant issued for it, a receipt in the vault, the
 * same action view. `Prefer: respond-async` keeps the saga, which is the reference here.
 */

let cp: TestControlPlane;
let alice: string;
let counter: DynamoCounter;

beforeAll(async () => {
  cp = await startTestControlPlane();
  alice = await cp.token('alice', { roles: ['employee'], manager: 'bob', department: 'sales' });
  counter = countDynamo(cp.runtime.dynamo.client);
});
afterAll(async () => {
  counter?.detach();
  await cp?.close();
});
beforeEach(() => cp.cp.vendors.admin.reset());

const search = (date = isoDay(9)) => ({ tool: 'travel.search_flights', arguments: { origin: 'SFO', destination: 'JFK', date }, agent: { name: 'reader' } });

const vendorRequests = () => Object.values(cp.cp.vendors.admin.stats('travel').requests).reduce((a, b) => a + b, 0);

async function recordOf(id: string) {
  const action = await cp.cp.ledger.getAction(id);
  const steps = await cp.cp.store.listSteps(id);
  const events = await cp.cp.store.list(id);
  return { action: action!, steps, events };
}

/** What must match between the two paths: event types and actors, step shape, statuses. */
const shape = (r: Awaited<ReturnType<typeof recordOf>>) => ({
  status: r.action.status,
  statusReason: r.action.statusReason,
  hasReceipt: typeof r.action.receiptKey === 'string',
  events: r.events.map((e) => `${e.actor}:${e.type}${e.type === 'action.status' ? `:${String(e.data.from)}>${String(e.data.to)}` : ''}`),
  steps: r.steps.map((s) => ({ kind: s.kind, stepId: s.stepId, status: s.status, tool: s.tool })),
});

describe('the read fast path', () => {
  it('answers a read synchronously without a saga execution, leaving what the saga leaves', async () => {
    const fast = await cp.post(alice, search(), { key: 'fast-1' });
    expect(fast.status).toBe(200);
    expect(fast.body.status).toBe('completed');
    const id = fast.body.id as string;
    // No execution was started for it.
    expect(cp.cp.runner.reportOf(id)).toBeUndefined();
    expect(cp.cp.runner.isRunning(id)).toBe(false);

    const slow = await cp.post(alice, search(), { key: 'saga-1', prefer: 'respond-async' });
    expect(slow.status).toBe(202);
    await cp.cp.runner.idle();
    expect(cp.cp.runner.reportOf(slow.body.id as string)?.transitions).toBeGreaterThan(0);

    const a = await recordOf(id);
    const b = await recordOf(slow.body.id as string);
    expect(shape(a)).toEqual(shape(b));
    expect(a.events.map((e) => e.type)).toEqual(expect.arrayContaining(['grant.issued', 'policy.evaluated']));
    expect(a.steps.filter((s) => s.kind === 'forward')).toHaveLength(1);
    // One vendor request each: nothing ran twice.
    expect(vendorRequests()).toBe(2);

    // The same view and the receipt, through the API.
    const viewFast = await cp.get(alice, `/v1/actions/${id}`);
    const viewSlow = await cp.get(alice, `/v1/actions/${slow.body.id as string}`);
    expect(viewFast.status).toBe(200);
    expect(Object.keys(viewFast.body).sort()).toEqual(Object.keys(viewSlow.body).sort());
    expect(viewFast.body.result).toEqual(viewSlow.body.result);
    const receipt = await cp.get(alice, `/v1/actions/${id}/receipt`);
    expect(receipt.status).toBe(200);
    expect(receipt.body.action?.id ?? receipt.body.actionId ?? receipt.body.id).toBe(id);
  });

  it('builds the receipt from the records it wrote, without reading them back: byte for byte the receipt a saga resuming it builds from the ledger', async () => {
    const before = counter.snapshot();
    const fast = await cp.post(alice, search(isoDay(14)), { key: 'held-receipt' });
    expect(fast.body.status).toBe('completed');
    const d = diffCounts(counter.snapshot(), before);
    // Intake's record handed to RunRead, the step record from the connector, the events as
    // appended: no read of the action, its steps or its events (cached guardrail reads apart).
    const reads = (d.calls.GetItemCommand ?? 0) + (d.calls.QueryCommand ?? 0) + (d.calls.BatchGetItemCommand ?? 0);
    expect(reads).toBeLessThanOrEqual((d.byKind.BREAKER ?? 0) + (d.byKind.HALTS ?? 0));

    // RunRead dies after its receipt landed, before recording its key (a crash, a timeout):
    // the Standard saga takes the action over and writes the receipt again, from the ledger.
    // The vault takes only identical bytes; anything else is an alarm and a failed receipt.
    const ledger = cp.cp.composition.saga.actions;
    const setReceiptKey = ledger.setReceiptKey.bind(ledger);
    let cut = 0;
    ledger.setReceiptKey = async (...args) => {
      if (cut++ === 0) throw new Error('RunRead died here');
      return setReceiptKey(...args);
    };
    try {
      const res = await cp.post(alice, search(isoDay(15)), { key: 'held-receipt-resumed' });
      await cp.cp.runner.idle();
      const id = res.body.id as string;
      expect(cp.cp.runner.reportOf(id)).toBeDefined();
      const { action, events } = await recordOf(id);
      expect(action.status).toBe('completed');
      expect(action.receiptKey).toBeDefined();
      expect(cut).toBeGreaterThanOrEqual(2);
      const stored = JSON.parse(Buffer.from((await cp.cp.receipts.store.get(action.receiptKey!))!).toString('utf8')) as {
        events: { count: number; intact: boolean; head: string };
      };
      expect(stored.events).toMatchObject({ count: events.length, intact: true, head: events.at(-1)!.hash });
    } finally {
      ledger.setReceiptKey = setReceiptKey;
    }
  });

  it('replays a duplicate without running the read again, byte for byte, from the answer recorded with the receipt key', async () => {
    const first = await cp.post(alice, search(isoDay(10)), { key: 'dup-read', prefer: 'wait=7' });
    // The answer is recorded on the action, not under the key (ReadAnswer): the claim is in progress.
    expect((await cp.cp.ledger.read('alice', 'dup-read'))?.state).toBe('in_progress');
    const again = await cp.post(alice, search(isoDay(10)), { key: 'dup-read' });
    expect(first.status).toBe(200);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('preference-applied')).toBe('wait=7');
    expect(again.headers.get('location')).toBe(first.headers.get('location'));
    expect(JSON.stringify(again.body)).toBe(JSON.stringify(first.body));
    expect(vendorRequests()).toBe(1);
    // Rebuilt once, then stored under the key like any other answer.
    const stored = await cp.cp.ledger.read('alice', 'dup-read');
    expect(stored?.state === 'complete' && stored.response.body).toEqual(first.body);
    // Same key, another body: refused as ever.
    const other = await cp.post(alice, search(isoDay(11)), { key: 'dup-read' });
    expect(other.status).toBe(422);
    const { steps } = await recordOf(first.body.id as string);
    expect(steps.filter((s) => s.kind === 'forward').map((s) => s.status)).toEqual(['complete']);
  });

  it('hands a read the vendor fails to the saga, which ends it as it ends any such read', async () => {
    const fail = (n: number) => cp.cp.vendors.admin.setFaults('travel', { failNext: [{ operation: 'search_flights', count: n, status: 400 }] });
    fail(1);
    const fast = await cp.post(alice, search(isoDay(11)), { key: 'fail-fast' });
    await cp.cp.runner.idle();
    fail(1);
    const slow = await cp.post(alice, search(isoDay(11)), { key: 'fail-saga', prefer: 'respond-async' });
    await cp.cp.runner.idle();
    const a = await recordOf(fast.body.id as string);
    const b = await recordOf(slow.body.id as string);
    expect(a.action.status).not.toBe('completed');
    expect(shape(a)).toEqual(shape(b));
    expect(a.action.receiptKey).toBeDefined();
    // The vendor saw each read once: the failure was not retried behind the saga's back.
    expect(vendorRequests()).toBe(2);
    expect(cp.cp.runner.reportOf(fast.body.id as string)).toBeDefined();
    // One step record, whatever path it took.
    expect(a.steps.filter((s) => s.kind === 'forward')).toHaveLength(1);
  });

  it('hands off without compensating exactly the errors the ASL retries on IssueGrant, RunStep and ExecuteStep, or waits out', () => {
    type Retrying = { Retry?: { ErrorEquals: string[] }[]; Catch?: { ErrorEquals: string[]; Next: string }[] };
    const asl = JSON.parse(readFileSync(join(import.meta.dirname, '../../statemachines/action-run.asl.json'), 'utf8')) as {
      States: { ExecuteStep: Retrying & { Branches: { States: Record<string, Retrying> }[] } };
    };
    const branch = asl.States.ExecuteStep.Branches[0]!.States;
    const states = [branch.IssueGrant, branch.RunStep, asl.States.ExecuteStep];
    const retried = new Set(states.flatMap((s) => (s?.Retry ?? []).flatMap((r) => r.ErrorEquals)));
    // A paused halt is waited out (by the Standard saga), not compensated.
    for (const c of asl.States.ExecuteStep.Catch ?? []) if (c.Next === 'WhilePaused') c.ErrorEquals.forEach((e) => retried.add(e));
    expect([...STEP_RETRIED_ERRORS].sort()).toEqual([...retried].sort());
  });

  it('meets the kill switch: a halted connector refuses reads, and a halt that lands after intake stops the read before its vendor call', async () => {
    const operator = await cp.token('olivia', { roles: ['KillSwitch'] });
    const send = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${cp.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as any };
    };
    // Halted before the request: intake refuses it, nothing is called.
    const halt = await send('POST', '/v1/halts', { scope: 'connector', target: 'travel', reason: 'vendor incident', mode: 'stop' });
    expect(halt.status).toBe(201);
    const refused = await cp.post(alice, search(isoDay(15)), { key: 'halted-read' });
    expect(refused.status).toBeGreaterThanOrEqual(400);
    expect(refused.body.type).toMatch(/halt/i);
    expect(vendorRequests()).toBe(0);
    expect((await send('DELETE', `/v1/halts/${halt.body.id}`, { reason: 'over' })).status).toBe(200);

    // Halted between intake's check and the grant: IssueGrant's guard stops the fast path too.
    const readPath = cp.cp.composition.intake.readPath!;
    let late: string | undefined;
    cp.cp.composition.intake.readPath = {
      run: async (actionId, fresh) => {
        const h = await send('POST', '/v1/halts', { scope: 'connector', target: 'travel', reason: 'late incident', mode: 'stop' });
        late = h.body.id as string;
        // Every function caches halts briefly; the saga's copy is refreshed as its next read would be.
        cp.cp.composition.saga.guardrails?.halts.invalidate();
        return readPath.run(actionId, fresh);
      },
    };
    try {
      const res = await cp.post(alice, search(isoDay(16)), { key: 'late-halt-read' });
      await cp.cp.runner.idle();
      const { action, events } = await recordOf(res.body.id as string);
      expect(action.status).toBe('compensated');
      expect(action.statusReason).toMatch(/^ActionHaltedError/);
      expect(events.map((e) => e.type)).toContain('action.stopped');
      expect(action.receiptKey).toBeDefined();
      expect(vendorRequests()).toBe(0);
    } finally {
      cp.cp.composition.intake.readPath = readPath;
      if (late) await send('DELETE', `/v1/halts/${late}`, { reason: 'over' });
    }
  });

  it('keeps plans, dry runs and commit calls on the saga', async () => {
    const plan = await cp.post(alice, { agent: { name: 'reader' }, plan: [{ id: 's', tool: 'travel.search_flights', arguments: search().arguments }] });
    const dry = await cp.post(alice, { ...search(), mode: 'dry_run' });
    await cp.cp.runner.idle();
    expect(cp.cp.runner.reportOf(plan.body.id as string)).toBeDefined();
    expect(cp.cp.runner.reportOf(dry.body.id as string)).toBeDefined();
  });

  it("costs no more DynamoDB calls than the saga path beyond the synchronous answer's two reads, and no Step Functions", async () => {
    // Warm both paths first (rate-limit leases, first event sequence reads).
    await cp.post(alice, search(isoDay(12)), { key: 'warm-fast' });
    await cp.post(alice, search(isoDay(12)), { key: 'warm-slow', prefer: 'respond-async' });
    await cp.cp.runner.idle();
    let before = counter.snapshot();
    for (let i = 0; i < 5; i++) await cp.post(alice, search(isoDay(13)), { key: `count-fast-${i}` });
    const fast = untimedCalls(diffCounts(counter.snapshot(), before)) / 5;
    before = counter.snapshot();
    for (let i = 0; i < 5; i++) {
      await cp.post(alice, search(isoDay(13)), { key: `count-slow-${i}`, prefer: 'respond-async' });
      await cp.cp.runner.idle();
    }
    const slow = untimedCalls(diffCounts(counter.snapshot(), before)) / 5;
    // The fast path reads nothing: it takes intake's record and intake's allow of a moment ago
    // (the saga reads the action and decides again), mints the grant with no read (the saga's
    // IssueGrant reads the action and its step records in one request), settles from the
    // connector's step record and has the receipt built from the records it wrote (the saga
    // reads them back): at least two calls fewer, and no Step Functions at all. Rate-limit
    // leases renew on their own schedule: slack.
    expect(fast).toBeLessThanOrEqual(slow - 2);
    // Issue 17's figure (bench/round-trips.ts prints it): ~36 per read before the fast path,
    // 26 with the in-process one, ~20 with RunRead carrying the action, 18 since a step's
    // begin consumes its grant and the receipt reads the action with its events, 13 (writes
    // only) since reads are decided without the spend counters, RunRead takes intake's record,
    // settles from the connector's step record and builds the receipt from what it wrote.
    expect(fast).toBeLessThanOrEqual(13);
    expect(slow).toBeLessThanOrEqual(20);
  });
});
