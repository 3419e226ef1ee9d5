import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { run as reconcileCli } from '../../bin/commands/reconcile';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';
import { isoDay } from '../helpers/dates';

/**
 * `airlock reconcile [--fix]` against a running control plane, over `POST /v1/reconciliations`:
 * a vendor made to diverge (a refund it lost) is reported, then fixed; the route is role-checked
 * (the kill-switch role), refusals are audited, and bad bodies are 400 problems.
 */

let cp: TestControlPlane;
let operator: string;
let employee: string;
let alice: string;

beforeAll(async () => {
  cp = await startTestControlPlane();
  operator = await cp.token('olivia', { roles: ['KillSwitch'] });
  employee = await cp.token('eve', { roles: ['Employee'] });
  alice = await cp.token('alice', { roles: ['employee'], manager: 'bob', department: 'sales' });
});
afterAll(async () => {
  await cp?.close();
});
afterEach(() => {
  vi.restoreAllMocks();
});

async function capture(op: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((c) => ((out += String(c)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((c) => ((err += String(c)), true));
  try {
    return { code: await op(), out, err };
  } finally {
    vi.restoreAllMocks();
  }
}

async function postReconciliation(token: string, body: string) {
  const res = await fetch(`${cp.url}/v1/reconciliations`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

describe('airlock reconcile', () => {
  it('reports a refund the vendor lost, fixes it with --fix, and then finds nothing', async () => {
    // Prepare: authorize, capture, then a hold the vendor refuses: the saga refunds the capture.
    cp.cp.vendors.admin.setFaults('travel', { failNext: [{ operation: 'hold_seat', count: 1, status: 400, code: 'refused_for_test' }] });
    const res = await cp.post(
      alice,
      {
        agent: { name: 'trip-bot' },
        plan: [
          { id: 'pay', tool: 'payments.authorize', arguments: { amount: 20, currency: 'USD', payee: 'sandbox-air', paymentMethod: 'pm_card_visa' } },
          { id: 'charge', tool: 'payments.capture', arguments: { authorizationId: { $ref: 'steps.pay.output.authorizationId' }, amount: 20, currency: 'USD' } },
          { id: 'hold', tool: 'travel.hold_seat', arguments: { flightId: `SB102-${isoDay(17)}`, seats: 1 } },
        ],
      },
      { prefer: 'respond-async' },
    );
    const id = res.body.id as string;
    await cp.cp.runner.idle();
    const refund = (await cp.cp.store.listSteps(id)).find((s) => s.stepId === 'charge' && s.kind === 'compensate');
    expect(refund?.status).toBe('complete');
    const api = ['--url', cp.url, '--token', operator];
    const clean = await capture(() => reconcileCli([...api]));
    expect(clean.out).not.toContain(id);
    // The vendor loses the refund: the capture is live again.
    expect(cp.cp.vendors.admin.lose('payments', (refund!.output as { refundId: string }).refundId)).toBe(true);

    // Act: report only.
    const reported = await capture(() => reconcileCli([...api, '--days', '1']));
    // Assess: exit 3 (findings remain), one line naming the step, the report's vault key.
    expect(reported.code).toBe(3);
    expect(reported.out).toMatch(new RegExp(`compensated_live\\s+payments\\.capture \\S+ for step charge of ${id}: compensated in Airlock, but still in force at the vendor`));
    expect(reported.out).toMatch(/^Report: reconciliations\/dt=\d{4}-\d{2}-\d{2}\/rec_[0-9A-Z]{26}\.json$/m);

    // Act: fix, as JSON.
    const fixed = await capture(() => reconcileCli([...api, '--fix', '--json']));
    expect(fixed.code).toBe(0);
    const report = JSON.parse(fixed.out) as { fix: boolean; findings: { actionId?: string; fix?: unknown }[] };
    expect(report.fix).toBe(true);
    expect(report.findings.filter((f) => f.actionId === id)).toEqual([expect.objectContaining({ kind: 'compensated_live', fix: { tool: 'payments.refund', outcome: 'compensated' } })]);
    // The run is recorded as the operator's, on the action's audit chain.
    const events = await cp.cp.store.list(id);
    expect(events.filter((e) => e.type === 'reconcile.finding' && e.actor === 'olivia')).toHaveLength(2);

    const after = await capture(() => reconcileCli([...api]));
    expect(after.out).not.toContain(id);
  });

  it('refuses a caller without the kill-switch role (403, audited), running nothing', async () => {
    const before = (await cp.cp.composition.guardrails.listHaltEvents()).length;
    const denied = await capture(() => reconcileCli(['--fix', '--url', cp.url, '--token', employee]));
    expect(denied.code).toBe(1);
    expect(denied.err).toMatch(/Forbidden \(403\): .*"KillSwitch" role/);
    const events = await cp.cp.composition.guardrails.listHaltEvents();
    expect(events).toHaveLength(before + 1);
    expect(events.find((e) => e.actor === 'eve' && e.data.attempted === 'reconcile')).toMatchObject({ type: 'halt.refused', data: { requiredRole: 'KillSwitch' } });
  });

  it('explains usage errors without calling the API', async () => {
    for (const argv of [['--days', '0'], ['--days', 'x'], ['--days', '32'], ['extra'], ['--nope']]) {
      const bad = await capture(() => reconcileCli([...argv, '--url', 'http://127.0.0.1:1', '--token', operator]));
      expect(bad.code, argv.join(' ')).toBe(2);
    }
    expect((await capture(() => reconcileCli(['--help']))).out).toContain('Usage:');
  });

  it('answers any other body with a 400 problem naming the violations, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.record({ fix: fc.oneof(fc.string(), fc.integer(), fc.constant(null)) }),
          fc.record({ days: fc.oneof(fc.integer({ max: 0 }), fc.integer({ min: 32 }), fc.double({ min: 1.1, max: 30.9, noInteger: true }), fc.string()) }),
          fc.dictionary(fc.string({ minLength: 1 }).filter((k) => k !== 'fix' && k !== 'days' && k !== '__proto__'), fc.jsonValue(), { minKeys: 1 }),
          fc.oneof(fc.array(fc.integer()), fc.string(), fc.integer()),
        ),
        async (body) => {
          const res = await postReconciliation(operator, JSON.stringify(body));
          expect(res.status).toBe(400);
          expect(res.body).toMatchObject({ status: 400, type: expect.stringMatching(/^urn:airlock:problem:/) });
        },
      ),
      { numRuns: 25 },
    );
  });
});
