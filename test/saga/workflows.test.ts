import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ulid } from 'ulid';
import { approvalIdFor } from '../../lambdas/shared/ids';
import { isStalled, resumeStalledActions, STALLED_AFTER_MS } from '../../lambdas/saga/resume';
import type { ActionRecord } from '../../lambdas/actions/action';
import type { WorkflowKind } from '../../lambdas/ports/workflow';
import { bigTrip, startTestControlPlane, travelPlan, type TestControlPlane } from '../helpers/control-plane';
import { isoDay } from '../helpers/dates';

/**
 * Which workflow runs an action (issue 17): an allowed plan runs in the Express run alone, an
 * approval in the Standard saga, which runs the same Express run once approved; and an action
 * whose workflow died is found by the sweeper and finished by the saga, once.
 */

let cp: TestControlPlane;
let alice: string;
let bob: string;

beforeAll(async () => {
  cp = await startTestControlPlane();
  alice = await cp.token('alice', { roles: ['employee'], manager: 'bob' });
  bob = await cp.token('bob', { roles: ['employee', 'manager'] });
});
afterAll(async () => cp?.close());

async function ended(id: string): Promise<ActionRecord> {
  await expect.poll(async () => (await cp.cp.ledger.getAction(id))?.receiptKey, { timeout: 20_000, interval: 20 }).toBeDefined();
  await cp.cp.runner.idle();
  return (await cp.cp.ledger.getAction(id))!;
}

const steps = (n: number, date: string) => ({ ...travelPlan({ date }), plan: travelPlan({ date }).plan.slice(0, n) });

describe('an allowed plan runs in the Express run alone', () => {
  it('no Standard execution, one Express run, and at most 3 states per step beyond its two Tasks', async () => {
    const reports = [];
    for (const n of [1, 4]) {
      const res = await cp.post(alice, steps(n, isoDay(9)), { prefer: 'respond-async' });
      expect(res.status).toBe(202);
      const action = await ended(res.body.id as string);
      expect(action.status).toBe('completed');
      reports.push(cp.cp.runner.reportOf(action.id)!);
    }
    for (const r of reports) {
      expect(r.standardExecutions).toBe(0);
      expect(r.standardTransitions).toBe(0);
      expect(r.express.executions).toBe(1);
    }
    // Each step: IssueGrant and RunStep (its Tasks), plus HasNextStep and ExecuteStep.
    const perStep = (reports[1]!.transitions - reports[0]!.transitions) / 3;
    expect(perStep - 2).toBeLessThanOrEqual(3);
    expect(perStep).toBe(4);
  });

  it('a denial at intake writes its receipt in the Express run too', async () => {
    const res = await cp.post(alice, {
      tool: 'procurement.place_order',
      arguments: {
        supplierId: 'shady-supplies',
        lines: [{ sku: 'SHD-001', quantity: 1 }],
        shipTo: { name: 'Ada Lovelace', street: '1 Analytical Way', city: 'London', postalCode: 'N1 9GU', country: 'GB' },
        maxTotal: { amount: 50, currency: 'USD' },
      },
      agent: { name: 'bot' },
    });
    expect(res.status).toBe(403);
    const action = await ended(res.body.actionId as string);
    expect(action.status).toBe('denied');
    expect(cp.cp.runner.reportOf(action.id)).toMatchObject({ standardExecutions: 0, express: { executions: 1 } });
  });
});

describe('an approval waits in the Standard saga, which runs the same Express run once approved', () => {
  it('pays the same few Standard transitions whatever the plan length', async () => {
    const asked = await cp.post(alice, bigTrip(isoDay(11)), { prefer: 'respond-async' });
    expect(asked.status).toBe(202);
    const approvalId = approvalIdFor(asked.body.id as string);
    const get = async () => fetch(`${cp.url}/v1/approvals/${approvalId}`, { headers: { authorization: `Bearer ${bob}` } });
    await expect.poll(async () => (await get()).status, { timeout: 10_000 }).toBe(200);
    const { planHash } = (await (await get()).json()) as { planHash: string };
    const voted = await fetch(`${cp.url}/v1/approvals/${approvalId}/decision`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' },
      body: JSON.stringify({ decision: 'approve', planHash }),
    });
    expect(voted.status).toBe(200);
    const action = await ended(asked.body.id as string);
    expect(action.status).toBe('completed');
    const report = cp.cp.runner.reportOf(action.id)!;
    expect(report.standardExecutions).toBe(1);
    expect(report.express.executions).toBe(1);
    // EvaluatePolicy, RouteDecision, WaitForApproval, BeginExecution, RunAction, AfterRun, SagaComplete.
    expect(report.standardTransitions).toBe(7);
  });
});

describe('who restarts an action whose workflow died', () => {
  const record = (over: Partial<ActionRecord>): ActionRecord =>
    ({ id: 'act_x', status: 'running', createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', version: 2, ...over }) as ActionRecord;
  const at = new Date('2026-01-01T00:30:00.000Z');

  it('counts as stalled exactly an unfinished action (or one with no receipt) that has not moved for the window, never one awaiting approval', () => {
    for (const status of ['received', 'running', 'compensating'] as const) expect(isStalled(record({ status }), at)).toBe(true);
    expect(isStalled(record({ status: 'completed' }), at)).toBe(true);
    expect(isStalled(record({ status: 'completed', receiptKey: 'receipts/x.json' }), at)).toBe(false);
    expect(isStalled(record({ status: 'awaiting_approval' }), at)).toBe(false);
    const recent = new Date(at.getTime() - STALLED_AFTER_MS + 1).toISOString();
    expect(isStalled(record({ updatedAt: recent }), at)).toBe(false);
  });

  it('hands each stalled action to the saga under the resumed kind, over every page', async () => {
    const items = Array.from({ length: 5 }, (_, i) => record({ id: `act_${i}`, status: i % 2 ? 'running' : 'completed', ...(i === 4 ? { receiptKey: 'k' } : {}) }));
    const started: [string, WorkflowKind | undefined][] = [];
    const queries: unknown[] = [];
    const { resumed } = await resumeStalledActions({
      actions: {
        listAllActions: async (q) => {
          queries.push(q);
          const from = q.startAfter ? items.findIndex((a) => a.id === q.startAfter) + 1 : 0;
          const page = items.slice(from, from + 2);
          return { items: page, ...(from + 2 < items.length ? { lastEvaluated: page.at(-1)!.id } : {}) };
        },
      },
      workflow: { start: async (id, _input, kind) => void started.push([id, kind]) },
      now: () => at,
      logger: { debug() {}, info() {}, warn() {}, error() {}, child() { return this; } } as never,
    });
    expect(resumed).toEqual(['act_0', 'act_1', 'act_2', 'act_3']);
    expect(started.every(([, kind]) => kind === 'resumed')).toBe(true);
    expect(queries).toHaveLength(3);
  });

  it('finishes an action an Express run left running, once: every step once, a receipt, and a second sweep does nothing', async () => {
    // Prepare: a completed plan's record, copied under an id from 20 minutes ago and put back
    // to running with no workflow behind it: what an Express run that died leaves.
    const done = await cp.post(alice, steps(2, isoDay(12)), { prefer: 'respond-async' });
    const template = await ended(done.body.id as string);
    const past = Date.now() - 20 * 60_000;
    // Not newActionId: its factory is monotonic and would not go back 20 minutes.
    const id = `act_${ulid(past)}`;
    const { receiptKey: _r, result: _res, statusReason: _s, ...rest } = template;
    const stalled = { ...rest, id, status: 'running', createdAt: new Date(past).toISOString(), updatedAt: new Date(past).toISOString() } as ActionRecord;
    expect(await cp.cp.ledger.createAction(stalled)).toBe('created');
    const vendorBefore = cp.cp.vendors.admin.stats('travel').sideEffects;

    // Act: the schedule's sweep (the same deps the reconcile function gets).
    const resume = cp.cp.composition.reconciler.resume!;
    const first = await resumeStalledActions(resume);
    expect(first.resumed).toContain(id);
    const action = await ended(id);

    // Assess: finished by the saga, each step recorded once, the vendor asked once more for the hold.
    expect(action.status).toBe('completed');
    expect(cp.cp.runner.reportOf(id)?.standardExecutions).toBe(1);
    const records = (await cp.cp.store.listSteps(id)).filter((r) => r.kind === 'forward');
    expect(records.map((r) => r.stepId).sort()).toEqual(['hold', 'search']);
    expect(cp.cp.vendors.admin.stats('travel').sideEffects.hold_seat ?? 0).toBe((vendorBefore.hold_seat ?? 0) + 1);
    const second = await resumeStalledActions(resume);
    expect(second.resumed).not.toContain(id);
  });
});
