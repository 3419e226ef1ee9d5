import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MAX_PLAN_STEPS } from '../../lambdas/intake/envelope';
import {
  ACTION_RESULT_MAX_BYTES,
  jsonBytes,
  STATE_PAYLOAD_MAX_BYTES,
  STEP_OUTPUT_MAX_BYTES,
  worstCaseStateBytes,
} from '../../lambdas/saga/limits';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';

/**
 * Step Functions fails an execution whose state passes 256 KiB (States.DataLimitExceeded, not
 * caught by States.ALL): the action would stay `running` with no receipt. The local runner
 * enforces the same cap, so these runs would stop half-way if anything large rode in the state.
 */

let cp: TestControlPlane;
let alice: string;

beforeAll(async () => {
  // Reading and parsing a megabyte takes a while on a busy machine: more than the 1 s
  // vendor budget the test control plane uses by default.
  cp = await startTestControlPlane({ controlPlane: { vendorTimeoutMs: 15_000 } });
  alice = await cp.token('alice', { roles: ['employee'], manager: 'bob', department: 'sales' });
});
afterAll(async () => {
  await cp?.close();
});
beforeEach(() => cp.cp.vendors.admin.reset());

/** A departure date a month from now, so no test depends on today's date. */
const date = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
const search = (id: string) => ({ id, tool: 'travel.search_flights', arguments: { origin: 'SFO', destination: 'JFK', date } });
const bound = worstCaseStateBytes({ maxSteps: MAX_PLAN_STEPS, maxIdChars: 64, maxToolChars: 128 });

async function run(plan: unknown[]) {
  const res = await cp.post(alice, { agent: { name: 'trip-bot' }, reason: 'payload limits', plan }, { prefer: 'respond-async' });
  expect([200, 202], JSON.stringify(res.body)).toContain(res.status);
  const id = res.body.id as string;
  await cp.cp.runner.idle();
  return {
    id,
    action: (await cp.cp.ledger.getAction(id))!,
    steps: await cp.cp.store.listSteps(id),
    report: cp.cp.runner.reportOf(id)!,
  };
}

function receiptOf(key: string) {
  return JSON.parse(readFileSync(join(cp.stateDir, 'audit', key), 'utf8')) as {
    outcome: { status: string; reason?: string; result?: Record<string, unknown> };
    steps: { id: string; output?: unknown }[];
  };
}

describe('payload limits: nothing that grows rides in the saga state', () => {
  it('fails a step whose vendor answers with ~1 MB cleanly: compensated, receipt written, state under 256 KiB', async () => {
    // Prepare: the search answers with a megabyte of flights, after a seat was held.
    cp.cp.vendors.admin.setFaults('travel', { oversizeNext: [{ operation: 'search_flights', count: 1, bytes: 1_000_000 }] });
    // Act
    const { action, steps, report } = await run([
      { id: 'hold', tool: 'travel.hold_seat', arguments: { flightId: `SB102-${date}`, seats: 1 } },
      search('search'),
    ]);
    // Assess: the execution was never stopped; the step failed by name and the hold was undone.
    expect(report.failure).toBeUndefined();
    expect(action.status).toBe('compensated');
    expect(action.statusReason).toMatch(/StepOutputTooLargeError/);
    const searchStep = steps.find((s) => s.stepId === 'search' && s.kind === 'forward')!;
    expect(searchStep).toMatchObject({ status: 'failed', error: { name: 'StepOutputTooLargeError' } });
    expect(searchStep.output).toBeUndefined();
    // Not retried: the same request would answer the same way.
    expect(cp.cp.vendors.admin.stats('travel').requests.search_flights).toBe(1);
    expect(cp.cp.vendors.admin.stats('travel').sideEffects).toEqual({ hold_seat: 1, release_hold: 1 });
    expect(action.receiptKey).toMatch(/^receipts\/dt=/);
    expect(receiptOf(action.receiptKey!).outcome.status).toBe('compensated');
    expect(report.largestPayload.bytes).toBeLessThanOrEqual(bound.total);
    expect(report.largestPayload.bytes).toBeLessThan(STATE_PAYLOAD_MAX_BYTES);
  });

  it(`completes a ${MAX_PLAN_STEPS}-step plan of outputs near the cap; the result comes from the step records`, async () => {
    // Prepare: every search answers with ~56 kB, just under what a step may record.
    cp.cp.vendors.admin.setFaults('travel', { oversizeNext: [{ operation: 'search_flights', count: MAX_PLAN_STEPS, bytes: 56_000 }] });
    const ids = Array.from({ length: MAX_PLAN_STEPS }, (_, i) => `s${i}`);
    // Act
    const { id, action, steps, report } = await run(ids.map(search));
    // Assess
    expect(report.failure).toBeUndefined();
    expect(action.status).toBe('completed');
    const outputs = steps.filter((s) => s.kind === 'forward').map((s) => jsonBytes(s.output));
    expect(outputs).toHaveLength(MAX_PLAN_STEPS);
    for (const bytes of outputs) {
      expect(bytes).toBeGreaterThan(STEP_OUTPUT_MAX_BYTES * 0.75);
      expect(bytes).toBeLessThanOrEqual(STEP_OUTPUT_MAX_BYTES);
    }
    const total = outputs.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(ACTION_RESULT_MAX_BYTES);
    // The state carried summaries only: its largest payload is a few kB, not a megabyte.
    expect(report.largestPayload.bytes).toBeLessThan(16_384);
    // Too large for the action record (one DynamoDB item), so it is not stored there...
    expect(action.result).toBeUndefined();
    // ...yet the action view and the receipt still give every output in full.
    const view = await cp.get(alice, `/v1/actions/${id}`);
    expect(view.status).toBe(200);
    expect(Object.keys(view.body.result as object).sort()).toEqual([...ids].sort());
    expect(jsonBytes(view.body.result)).toBe(jsonBytes(Object.fromEntries(steps.map((s) => [s.stepId, s.output]))));
    const receipt = receiptOf(action.receiptKey!);
    expect(Object.keys(receipt.outcome.result ?? {}).sort()).toEqual([...ids].sort());
    expect(receipt.steps.every((s) => s.output !== undefined)).toBe(true);
  });

  it('keeps a small result on the action record as before', async () => {
    const { action } = await run([search('only')]);
    expect(action.status).toBe('completed');
    expect(Object.keys(action.result as object)).toEqual(['only']);
  });

  it('refuses a step whose input, once its $refs are resolved, is too large to carry', async () => {
    // Prepare: three searches of ~56 kB each, and a booking whose travelers are those outputs.
    cp.cp.vendors.admin.setFaults('travel', { oversizeNext: [{ operation: 'search_flights', count: 3, bytes: 56_000 }] });
    // Act
    const { action, steps, report } = await run([
      search('a'),
      search('b'),
      search('c'),
      {
        id: 'book',
        tool: 'travel.book_flight',
        arguments: {
          holdId: 'hold_none',
          travelers: ['a', 'b', 'c'].map((s) => ({ $ref: `steps.${s}.output` })),
          contact: { email: 'ada@example.com' },
          price: { amount: 274.5, currency: 'USD' },
        },
      },
    ]);
    // Assess: refused before any grant was used or vendor called; the saga ended cleanly.
    expect(report.failure).toBeUndefined();
    expect(action.status).toBe('compensated');
    expect(action.statusReason).toMatch(/StepInputTooLargeError/);
    expect(steps.find((s) => s.stepId === 'book')).toBeUndefined();
    expect(cp.cp.vendors.admin.stats('travel').sideEffects).toEqual({});
    expect(report.largestPayload.bytes).toBeLessThan(STATE_PAYLOAD_MAX_BYTES);
    expect(action.receiptKey).toBeTruthy();
  });
});
