import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localFunctionArn, type LocalFunction } from '../../local/saga-runner';
import { startTestControlPlane, travelPlan, type TestControlPlane } from '../helpers/control-plane';
import { isoDay } from '../helpers/dates';

/**
 * Issue 21 (CI's chaos storm, seed 21): a compensated action left a procurement order in force.
 * Its only step's first attempt committed at the vendor and lost the answer (commit-then-drop,
 * and the lookup that would have told failed too: in doubt); the retries then met 5xx answers,
 * and a 5xx to a retry was taken to say the step did nothing, so the step was no longer in
 * doubt and compensation, which undid only completed steps, had nothing to undo.
 *
 * Now a step stays in doubt until the vendor tells its outcome (the store keeps the earliest
 * attempt not yet told across attempts), and compensation first retries each step in doubt to
 * its end with the same idempotency key (the vendor answers with what the lost attempt did),
 * then undoes it with the rest, last first. One the vendor never tells ends the action failed,
 * never compensated.
 *
 * Faults are set per call, where the connector function is invoked, so the schedule is exact
 * whatever the retry timing: the step's first call commits and loses its answer, later calls
 * while the action runs get 503, calls once it compensates get `whenCompensating`.
 */

let cp: TestControlPlane;
let alice: string;

interface Script {
  connector: string;
  operation: string;
  lookup: string;
  /** Faults for calls while the action compensates: none, or 503 forever (the vendor never tells). */
  whenCompensating: 'answer' | 'fail';
  calls: { kind: string; status: string }[];
}
const scripts = new Map<string, Script>();

beforeAll(async () => {
  cp = await startTestControlPlane();
  alice = await cp.token('alice', { roles: ['employee'], manager: 'bob' });
  const functions = (cp.cp.runner as unknown as { options: { functions: Map<string, LocalFunction> } }).options.functions;
  for (const connector of ['travel', 'payments']) {
    const arn = localFunctionArn(`connector-${connector}`);
    const original = functions.get(arn)!;
    functions.set(arn, async (event, context) => {
      const e = event as { actionId?: string; kind?: string; tool?: string };
      const script = e.actionId ? scripts.get(e.actionId) : undefined;
      if (script && script.connector === connector && e.tool === `${connector}.${script.operation}`) {
        const status = (await cp.cp.ledger.getAction(e.actionId!))!.status;
        const first = script.calls.length === 0;
        script.calls.push({ kind: e.kind ?? '', status });
        if (first) {
          cp.cp.vendors.admin.setFaults(connector, {
            commitThenDrop: [{ operation: script.operation, count: 1, mode: 'destroy' }],
            failNext: [{ operation: script.lookup, count: 1 }],
          });
        } else if (status === 'running' || script.whenCompensating === 'fail') {
          cp.cp.vendors.admin.setFaults(connector, { failNext: [{ operation: script.operation, count: 1 }] });
        } else {
          cp.cp.vendors.admin.setFaults(connector, {});
        }
      }
      return original(event, context);
    });
  }
});
afterAll(async () => cp?.close());

async function ended(id: string) {
  await expect.poll(async () => (await cp.cp.ledger.getAction(id))?.receiptKey, { timeout: 60_000, interval: 20 }).toBeDefined();
  await cp.cp.runner.idle();
  return (await cp.cp.ledger.getAction(id))!;
}

function effectsOf(connector: string, id: string) {
  return cp.cp.vendors.admin.effects(connector).filter((e) => e.idempotencyKey?.startsWith(id));
}

async function start(plan: object, script: Omit<Script, 'calls'>) {
  const res = await cp.post(alice, plan, { prefer: 'respond-async' });
  expect(res.status).toBe(202);
  const id = res.body.id as string;
  scripts.set(id, { ...script, calls: [] });
  return id;
}

const holdOnly = (date: string) => ({ ...travelPlan({ date }), plan: [travelPlan({ date }).plan[1]!] });
const holdThenPay = (date: string) => ({ ...travelPlan({ date }), plan: travelPlan({ date }).plan.slice(1, 3) });

describe('a forward step in doubt when its run compensates', () => {
  it('a lost answer, then 5xx to every retry: compensation retries the step, learns it committed, and undoes it', async () => {
    const id = await start(holdOnly(isoDay(51)), { connector: 'travel', operation: 'hold_seat', lookup: 'list_holds', whenCompensating: 'answer' });
    const action = await ended(id);
    const calls = scripts.get(id)!.calls;
    // The run gave up on the step (its retries met 5xx), then compensation retried it once more.
    expect(calls.filter((c) => c.status === 'running').length).toBeGreaterThan(1);
    expect(calls.filter((c) => c.status === 'compensating')).toEqual([{ kind: 'forward', status: 'compensating' }]);
    const ops = effectsOf('travel', id).map((e) => e.operation);
    expect(ops).toEqual(['hold_seat', 'release_hold']);
    expect(action.status).toBe('compensated');
    const steps = await cp.cp.store.listSteps(id);
    expect(steps.find((s) => s.kind === 'forward' && s.stepId === 'hold')).toMatchObject({ status: 'complete' });
    expect(steps.find((s) => s.kind === 'compensate' && s.stepId === 'hold')).toMatchObject({ status: 'complete' });
  }, 90_000);

  it('the second of two steps in doubt: it is resolved, then both are undone, last first', async () => {
    const id = await start(holdThenPay(isoDay(52)), { connector: 'payments', operation: 'authorize', lookup: 'list_authorizations', whenCompensating: 'answer' });
    const action = await ended(id);
    expect(action.status).toBe('compensated');
    expect(effectsOf('payments', id).map((e) => e.operation)).toEqual(['authorize', 'void_authorization']);
    expect(effectsOf('travel', id).map((e) => e.operation)).toEqual(['hold_seat', 'release_hold']);
    // Reverse order: the payment is voided before the hold is released.
    const voided = effectsOf('payments', id).find((e) => e.operation === 'void_authorization')!;
    const released = effectsOf('travel', id).find((e) => e.operation === 'release_hold')!;
    expect(voided.seq).toBeLessThan(released.seq);
  }, 90_000);

  it('a vendor that never tells: the action ends failed with the step named, never compensated', async () => {
    const id = await start(holdOnly(isoDay(53)), { connector: 'travel', operation: 'hold_seat', lookup: 'list_holds', whenCompensating: 'fail' });
    const action = await ended(id);
    expect(scripts.get(id)!.calls.filter((c) => c.status === 'compensating').length).toBeGreaterThan(1);
    expect(action.status).toBe('failed');
    expect(action.statusReason).toContain('outcome unknown at the vendor for hold (travel.hold_seat)');
    // The hold is in force at the vendor: reconciliation is what finds and undoes it.
    expect(effectsOf('travel', id).map((e) => e.operation)).toEqual(['hold_seat']);
    const hold = (await cp.cp.store.listSteps(id)).find((s) => s.kind === 'forward' && s.stepId === 'hold');
    expect(hold).toMatchObject({ status: 'in_progress', inDoubt: true });
  }, 120_000);
});
