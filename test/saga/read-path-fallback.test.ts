import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { InvokedFunctionError } from '../../lambdas/ports/functions';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';
import { isoDay } from '../helpers/dates';

/**
 * The read fast path's failure modes (issue 17): intake's synchronous call to the saga
 * function's RunRead errors before it ran, or stops waiting while RunRead runs on (Lambda's
 * invoke outlives its caller). Either way intake starts the Standard saga, and the action ends
 * once — one status path, one step record, one receipt — whichever of the two gets there first.
 */

let cp: TestControlPlane;
let alice: string;

beforeAll(async () => {
  // Vendor calls may take longer than intake's shortest wait (1 s): the read outlives it.
  cp = await startTestControlPlane({ controlPlane: { vendorTimeoutMs: 5_000 } });
  alice = await cp.token('alice', { roles: ['employee'], manager: 'bob', department: 'sales' });
});
afterAll(async () => {
  await cp?.close();
});
beforeEach(() => cp.cp.vendors.admin.reset());

const search = (date: string) => ({ tool: 'travel.search_flights', arguments: { origin: 'SFO', destination: 'JFK', date }, agent: { name: 'reader' } });
const vendorRequests = () => Object.values(cp.cp.vendors.admin.stats('travel').requests).reduce((a, b) => a + b, 0);

/** Waits until the action has ended with its receipt (both paths may be writing). */
async function ended(id: string) {
  await expect.poll(async () => (await cp.cp.ledger.getAction(id))?.receiptKey, { timeout: 15_000 }).toBeDefined();
  await cp.cp.runner.idle();
  const action = (await cp.cp.ledger.getAction(id))!;
  const steps = await cp.cp.store.listSteps(id);
  const events = await cp.cp.store.list(id);
  const receipts = (await cp.cp.receipts.store.list('receipts/')).filter((o) => o.key.endsWith(`/${id}.json`));
  return { action, steps, events, receipts };
}

/** One status path: each move recorded once, ending completed. */
const statusPath = (events: { type: string; data: Record<string, unknown> }[]) =>
  events.filter((e) => e.type === 'action.status').map((e) => `${String(e.data.from)}>${String(e.data.to)}`);

describe('the read fast path when RunRead cannot answer, and its run-time decision', () => {
  it('hands the read to the Standard saga when the invoke fails before RunRead ran (throttled), which completes it once', async () => {
    const readPath = cp.cp.composition.intake.readPath!;
    let calls = 0;
    cp.cp.composition.intake.readPath = {
      run: async () => {
        calls++;
        throw new InvokedFunctionError('Lambda.TooManyRequestsException', 'Rate exceeded');
      },
    };
    try {
      const res = await cp.post(alice, search(isoDay(20)), { key: 'throttled-read' });
      expect(calls).toBe(1);
      expect([200, 202]).toContain(res.status);
      const id = res.body.id as string;
      const { action, steps, events, receipts } = await ended(id);
      expect(action.status).toBe('completed');
      expect(cp.cp.runner.reportOf(id)).toBeDefined();
      expect(statusPath(events)).toEqual(['received>running', 'running>completed']);
      expect(steps.filter((s) => s.kind === 'forward').map((s) => s.status)).toEqual(['complete']);
      expect(receipts).toHaveLength(1);
      expect(vendorRequests()).toBe(1);
    } finally {
      cp.cp.composition.intake.readPath = readPath;
    }
  });

  it('starts the Standard saga when RunRead outlives the wait, and the two meet in the ledger: one end, one step record, one receipt', async () => {
    // The vendor answers after intake's 1 s wait: RunRead is still in its connector call.
    cp.cp.vendors.admin.setFaults('travel', { latencyMs: 1_500 });
    const res = await cp.post(alice, search(isoDay(21)), { key: 'slow-read', prefer: 'wait=1' });
    // Not an error: the client is told the action is under way, and can poll it.
    expect(res.status).toBe(202);
    const id = res.body.id as string;
    const { action, steps, events, receipts } = await ended(id);
    expect(action.status).toBe('completed');
    // The fallback ran: a Standard execution exists for it.
    expect(cp.cp.runner.reportOf(id)).toBeDefined();
    expect(statusPath(events)).toEqual(['received>running', 'running>completed']);
    const forward = steps.filter((s) => s.kind === 'forward');
    expect(forward).toHaveLength(1);
    expect(forward[0]!.status).toBe('complete');
    expect(receipts).toHaveLength(1);
    // At most the two attempts' calls, under the step's one idempotency key; a read changes nothing.
    expect(vendorRequests()).toBeLessThanOrEqual(2);
    expect(cp.cp.vendors.admin.effects('travel')).toEqual([]);
    // The view a client polls is the completed one.
    const view = await cp.get(alice, `/v1/actions/${id}`);
    expect(view.status).toBe(200);
    expect(view.body.status).toBe('completed');
    // A retry gets the 202 it was answered, not the answer RunRead recorded after it (ReadAnswer).
    const again = await cp.post(alice, search(isoDay(21)), { key: 'slow-read', prefer: 'wait=1' });
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(JSON.stringify(again.body)).toBe(JSON.stringify(res.body));
  });

  it('replays the first answer to a retry during the fallback, never a second action', async () => {
    cp.cp.vendors.admin.setFaults('travel', { latencyMs: 1_500 });
    const first = await cp.post(alice, search(isoDay(22)), { key: 'slow-retry', prefer: 'wait=1' });
    const again = await cp.post(alice, search(isoDay(22)), { key: 'slow-retry', prefer: 'wait=1' });
    expect(again.body.id).toBe(first.body.id);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const { steps, receipts } = await ended(first.body.id as string);
    expect(steps.filter((s) => s.kind === 'forward')).toHaveLength(1);
    expect(receipts).toHaveLength(1);
  });

  it("takes intake's allow of the same request as the run-time decision, and decides again once it is older than 2 s", async () => {
    const saga = cp.cp.composition.saga;
    const decide = saga.decider.decide.bind(saga.decider);
    const now = saga.now;
    let decided = 0;
    saga.decider = { decide: (...args) => (decided++, decide(...args)) };
    try {
      const fresh = await cp.post(alice, search(isoDay(23)), { key: 'fresh-decision' });
      expect(fresh.body.status).toBe('completed');
      expect(decided).toBe(0);
      // The saga function's clock says intake decided 3 s ago: RunRead asks policy again.
      saga.now = () => new Date(Date.now() + 3_000);
      const stale = await cp.post(alice, search(isoDay(24)), { key: 'stale-decision' });
      expect(stale.body.status).toBe('completed');
      expect(decided).toBe(1);
      expect(cp.cp.runner.reportOf(stale.body.id as string)).toBeUndefined();
    } finally {
      saga.decider = { decide };
      saga.now = now;
    }
  });
});
