import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localFunctionArn, type LocalFunction } from '../../local/saga-runner';
import { approvalIdFor } from '../../lambdas/shared/ids';
import { CircuitOpenError } from '../../lambdas/guardrails/errors';
import { bigTrip, startTestControlPlane, travelPlan, type TestControlPlane } from '../helpers/control-plane';
import { isoDay } from '../helpers/dates';
import type { Logger } from '../../lambdas/shared/logger';

/**
 * Issue 21 (chaos storm under load): a saga task that fails outside every step (PrepareCompensation,
 * or the run-time EvaluatePolicy of an action already running) sent the run to MarkFailed, which
 * settled the action `failed` at once: a seat hold completed before the failure stayed in place,
 * a side effect without its compensation. Now MarkFailed first compensates the completed commit
 * steps (once more through PrepareCompensation); only what cannot be undone leaves an action failed.
 *
 * The faults are injected where Lambda would fail: the saga (or approvals) function the runner
 * invokes throws for one named task. A plain `Error` is what no Retry names; a `TimeoutError`
 * (the function's own timeout, what the storm met under load) is retried, since every task is idempotent.
 */

let cp: TestControlPlane;
let alice: string;
/** One injected failure: the saga function throws `error` for `task` (matching `index`/`kind` when given) after letting `skip` such calls pass. */
const faults: { task: string; index?: number; kind?: string; skip?: number; error: string; left: number; then?: () => void }[] = [];

/** Wraps the saga and approvals functions of a control plane's runner so they throw the queued `faults`. */
function injectFaults(cp: TestControlPlane) {
  // The runner's function table (what Step Functions would invoke): the test wraps the saga function.
  const functions = (cp.cp.runner as unknown as { options: { functions: Map<string, LocalFunction> } }).options.functions;
  for (const name of ['saga', 'approvals']) {
    const original = functions.get(localFunctionArn(name))!;
    functions.set(localFunctionArn(name), async (event, context) => {
    const e = event as { task?: string; index?: number; kind?: string };
    const fault = faults.find((f) => f.left > 0 && f.task === e.task && (f.index === undefined || f.index === e.index) && (f.kind === undefined || f.kind === e.kind));
    if (fault && (fault.skip ?? 0) > 0) fault.skip!--;
    else if (fault) {
      fault.left--;
      fault.then?.();
      const error = new Error(`injected ${fault.error} in ${fault.task}`);
      error.name = fault.error;
      throw error;
    }
    return original(event, context);
    });
  }
}

beforeAll(async () => {
  cp = await startTestControlPlane();
  alice = await cp.token('alice', { roles: ['employee'], manager: 'bob' });
  injectFaults(cp);
});
afterAll(async () => cp?.close());

async function ended(id: string, on = cp) {
  await expect.poll(async () => (await on.cp.ledger.getAction(id))?.receiptKey, { timeout: 30_000, interval: 20 }).toBeDefined();
  await on.cp.runner.idle();
  return (await on.cp.ledger.getAction(id))!;
}

/** The travel vendor's holds this action placed, and what became of them. */
function holdsOf(id: string, on = cp) {
  const effects = on.cp.vendors.admin.effects('travel').filter((e) => e.idempotencyKey?.startsWith(id));
  return { held: effects.filter((e) => e.operation === 'hold_seat').length, released: effects.filter((e) => e.operation === 'release_hold').length };
}

const holdThenDeclinedPay = (date: string) => {
  const plan = travelPlan({ date }).plan;
  return {
    ...travelPlan({ date }),
    plan: [plan[1]!, { ...plan[2]!, arguments: { ...(plan[2]!.arguments as object), paymentMethod: 'pm_card_declined' } }],
  };
};

describe('a saga failure outside a step after a commit step completed', () => {
  it('PrepareCompensation failing once: the hold is still released and the action ends compensated, not failed', async () => {
    faults.push({ task: 'PrepareCompensation', error: 'Error', left: 1 });
    const res = await cp.post(alice, holdThenDeclinedPay(isoDay(41)), { prefer: 'respond-async' });
    expect(res.status).toBe(202);
    const id = res.body.id as string;
    const action = await ended(id);
    expect(faults.at(-1)!.left).toBe(0);
    expect(holdsOf(id)).toEqual({ held: 1, released: 1 });
    expect(action.status).toBe('compensated');
    const steps = await cp.cp.store.listSteps(id);
    expect(steps.find((s) => s.kind === 'compensate' && s.stepId === 'hold')?.status).toBe('complete');
  }, 60_000);

  it('the run-time decision failing for a running action (a resumed saga): the hold is released, not left', async () => {
    // The pay step's grant reports a pause, so the Express run hands the action (running, hold
    // done) to the Standard saga, whose EvaluatePolicy (the action's second) then fails once:
    // PassFailure, and the run it starts goes to MarkFailed.
    faults.push({ task: 'IssueGrant', index: 1, kind: 'forward', error: 'ActionPausedError', left: 1 });
    faults.push({ task: 'EvaluatePolicy', skip: 1, error: 'Error', left: 1 });
    const res = await cp.post(alice, holdThenDeclinedPay(isoDay(42)), { prefer: 'respond-async' });
    expect(res.status).toBe(202);
    const id = res.body.id as string;
    const action = await ended(id);
    expect(faults.every((f) => f.left === 0)).toBe(true);
    expect(cp.cp.runner.reportOf(id)?.standardExecutions).toBe(1);
    expect(holdsOf(id)).toEqual({ held: 1, released: 1 });
    expect(action.status).toBe('compensated');
    // The pay step never ran: nothing was charged, so nothing was undone there.
    expect(cp.cp.vendors.admin.effects('payments').filter((e) => e.idempotencyKey?.startsWith(id))).toEqual([]);
  }, 60_000);
  it('an action no step ran for still ends failed (nothing to undo), with the reason it always had', async () => {
    faults.push({ task: 'EvaluatePolicy', error: 'Error', left: 1 });
    const res = await cp.post(alice, holdThenDeclinedPay(isoDay(43)), { prefer: 'respond-async' });
    expect(res.status).toBe(202);
    const id = res.body.id as string;
    const action = await ended(id);
    expect(faults.every((f) => f.left === 0)).toBe(true);
    expect(action.status).toBe('failed');
    expect(action.statusReason).toBe('the saga failed outside a step');
    expect(holdsOf(id)).toEqual({ held: 0, released: 0 });
  }, 60_000);
  it('PrepareCompensation failing twice: the run gives the action back unfinished (hold still held), and the resumed saga undoes it', async () => {
    faults.push({ task: 'PrepareCompensation', error: 'Error', left: 2 });
    const res = await cp.post(alice, holdThenDeclinedPay(isoDay(44)), { prefer: 'respond-async' });
    expect(res.status).toBe(202);
    const id = res.body.id as string;
    await expect.poll(() => cp.cp.runner.reportOf(id)?.failure?.error, { timeout: 30_000, interval: 20 }).toBe('CompensationOwed');
    await cp.cp.runner.idle();
    // Not settled failed with the hold in place: left running, with no receipt, for whoever resumes it.
    const left = (await cp.cp.ledger.getAction(id))!;
    expect(left.status).toBe('running');
    expect(left.receiptKey).toBeUndefined();
    expect(holdsOf(id)).toEqual({ held: 1, released: 0 });

    // What the reconciler does with an action left unfinished (saga/resume.ts).
    await cp.cp.runner.start(id, { actionId: id }, 'resumed');
    const action = await ended(id);
    expect(action.status).toBe('compensated');
    expect(holdsOf(id)).toEqual({ held: 1, released: 1 });
  }, 60_000);
  it('a bookkeeping task past its function timeout (TimeoutError) is retried: RequestApproval timing out still lets the rejection decide', async () => {
    faults.push({ task: 'RequestApproval', error: 'TimeoutError', left: 1 });
    const bob = await cp.token('bob', { roles: ['employee', 'manager'] });
    const asked = await cp.post(alice, bigTrip(isoDay(45)), { prefer: 'respond-async' });
    expect(asked.status).toBe(202);
    const id = asked.body.id as string;
    const approvalId = approvalIdFor(id);
    const get = async () => fetch(`${cp.url}/v1/approvals/${approvalId}`, { headers: { authorization: `Bearer ${bob}` } });
    await expect.poll(async () => (await get()).status, { timeout: 20_000 }).toBe(200);
    const { planHash } = (await (await get()).json()) as { planHash: string };
    const voted = await fetch(`${cp.url}/v1/approvals/${approvalId}/decision`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' },
      body: JSON.stringify({ decision: 'reject', planHash }),
    });
    expect(voted.status).toBe(200);
    const action = await ended(id);
    expect(faults.find((f) => f.task === 'RequestApproval')?.left).toBe(0);
    expect(action.status).toBe('rejected');
  }, 60_000);
});

describe('a resumed run replays completed steps', () => {
  // Found by the chaos storm (seed 23, 100 actions, under load): after a restart the resumed run
  // started again at the plan's first step, whose grant checked the travel breaker (open by
  // then) although the step was complete and would not call the vendor; the run compensated
  // before it reached the next step, which was in doubt (its hold committed at the vendor, its
  // answer lost), so that hold was left in effect. A completed step meets no guardrail now.
  it('a breaker open on a completed step\'s connector does not stop the run before the step it stopped at', async () => {
    const g = cp.cp.composition.saga.guardrails!;
    const breakers = g.breakers;
    let travelOpen = false;
    g.breakers = Object.assign(Object.create(breakers) as typeof breakers, {
      check: async (connector: string) => {
        if (travelOpen && connector === 'travel') throw new CircuitOpenError('travel', 30);
        return breakers.check(connector);
      },
    });
    try {
      // The pay step's grant reports a pause (the Express run hands the action to the Standard
      // saga, which runs it again from the first step), and from then on travel's breaker is open.
      faults.push({ task: 'IssueGrant', index: 1, kind: 'forward', error: 'ActionPausedError', left: 1, then: () => (travelOpen = true) });
      const res = await cp.post(alice, holdThenDeclinedPay(isoDay(46)), { prefer: 'respond-async' });
      expect(res.status).toBe(202);
      const id = res.body.id as string;
      const action = await ended(id);
      expect(travelOpen).toBe(true);
      expect(cp.cp.runner.reportOf(id)?.standardExecutions).toBe(1);
      // The resumed run went past the completed hold to the pay step, which the vendor declined.
      const pay = (await cp.cp.store.listSteps(id)).find((r) => r.kind === 'forward' && r.stepId === 'pay');
      expect(pay?.error?.name).toBe('VendorRejectedError');
      const events = await cp.cp.store.list(id);
      expect(events.filter((e) => e.type === 'breaker.rejected')).toEqual([]);
      expect(action.status).toBe('compensated');
      expect(holdsOf(id)).toEqual({ held: 1, released: 1 });
    } finally {
      g.breakers = breakers;
    }
  }, 60_000);
});

describe('the local resume timer (resumeIntervalMs)', () => {
  it('resumes a run that stopped at CompensationOwed without a restart, and leaves a live run alone', async () => {
    // Prepare: a control plane whose own timer resumes actions still after 300 ms, every 100 ms.
    const resumedIds: string[] = [];
    const quiet = () => undefined;
    const recorder: Logger = {
      debug: quiet,
      info: quiet,
      warn: (message, fields) => {
        if (message === 'resumed stalled actions') resumedIds.push(...((fields?.actionIds as string[] | undefined) ?? []));
      },
      error: quiet,
      child: () => recorder,
    };
    const own = await startTestControlPlane({ logger: recorder, controlPlane: { resumeIntervalMs: 100, resumeStalledAfterMs: 300 } });
    try {
      injectFaults(own);
      // Every resumed start the runner is asked for, and whether a run of that action was live then.
      const starts: { id: string; live: boolean }[] = [];
      const start = own.cp.runner.start.bind(own.cp.runner);
      own.cp.runner.start = async (actionId, input, kind) => {
        if (kind === 'resumed') starts.push({ id: actionId, live: own.cp.runner.isRunning(actionId) });
        return start(actionId, input, kind);
      };
      const carol = await own.token('carol', { roles: ['employee'], manager: 'bob' });
      faults.push({ task: 'PrepareCompensation', error: 'Error', left: 2 });
      // Act: the run fails twice to prepare the compensation and stops, the hold in place.
      const res = await own.post(carol, holdThenDeclinedPay(isoDay(46)), { prefer: 'respond-async' });
      expect(res.status).toBe(202);
      const id = res.body.id as string;
      // Assess: nobody starts the saga by hand, and the hold is released all the same.
      const action = await ended(id, own);
      expect(faults.every((f) => f.left === 0)).toBe(true);
      expect(action.status).toBe('compensated');
      expect(holdsOf(id, own)).toEqual({ held: 1, released: 1 });
      // Handed over by the timer, and never while a run of it was live (under load a resumed run
      // may itself stop short and be handed over again: that is the design, not a double run).
      expect(resumedIds).toContain(id);
      expect(starts.filter((x) => x.id === id).length).toBeGreaterThan(0);
      expect(starts.filter((x) => x.live)).toEqual([]);
    } finally {
      await own.close();
    }
  }, 60_000);
});
