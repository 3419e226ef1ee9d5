import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { approvalIdFor } from '../../lambdas/shared/ids';
import { bigTrip, startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';
import { isoDay } from '../helpers/dates';

async function until<T>(probe: () => Promise<T | undefined>, ms = 5_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function decide(cp: TestControlPlane, token: string, approvalId: string, decision: 'approve' | 'reject', planHash?: string) {
  const preview = await cp.get(token, `/v1/approvals/${approvalId}`);
  const res = await fetch(`${cp.url}/v1/approvals/${approvalId}/decision`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ decision, planHash: planHash ?? preview.body.planHash, comment: `${decision}d in a test` }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

describe('approval through the local saga runner', () => {
  it('waits for the manager, refuses self-approval, then runs on approval', async () => {
    const cp = await startTestControlPlane();
    cleanup.push(() => cp.close());
    const alice = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
    const bob = await cp.token('bob', { roles: ['Employee', 'Manager'] });
    const res = await cp.post(alice, bigTrip());
    expect(res.status).toBe(202);
    expect(res.body.decision.outcome).toBe('require_approval');
    const id = res.body.id as string;
    await until(async () => ((await cp.cp.ledger.getAction(id))?.status === 'awaiting_approval' ? true : undefined));
    const approvalId = approvalIdFor(id);
    expect((await cp.get(alice, `/v1/actions/${id}`)).body.approvals).toEqual([approvalId]);
    await until(async () => ((await cp.get(bob, `/v1/approvals/${approvalId}`)).status === 200 ? true : undefined));
    // Nothing happened at the vendors while waiting.
    expect(cp.cp.vendors.admin.stats('travel').sideEffects).toEqual({});
    expect((await decide(cp, alice, approvalId, 'approve')).status).toBe(403);
    expect((await decide(cp, bob, approvalId, 'approve', 'f'.repeat(64))).status).toBe(409);
    expect((await decide(cp, bob, approvalId, 'approve')).status).toBe(200);
    await cp.cp.runner.idle();
    const action = await cp.cp.ledger.getAction(id);
    expect(action?.status).toBe('completed');
    expect(cp.cp.vendors.admin.stats('travel').sideEffects).toEqual({ hold_seat: 1, book_flight: 1 });
    const events = (await cp.cp.store.list(id)).map((e) => e.type);
    expect(events).toEqual(expect.arrayContaining(['approval.requested', 'approval.vote', 'approval.granted']));
    expect(events.indexOf('approval.granted')).toBeLessThan(events.indexOf('grant.issued'));
  });

  it('ends rejected on a rejection and expired when nobody decides in time, with a receipt each', async () => {
    const cp = await startTestControlPlane({ controlPlane: { approvalTimeoutSeconds: 1 } });
    cleanup.push(() => cp.close());
    const alice = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
    const bob = await cp.token('bob', { roles: ['Manager'] });
    const rejected = await cp.post(alice, bigTrip(isoDay(21)));
    const expired = await cp.post(alice, bigTrip(isoDay(22)));
    const rid = rejected.body.id as string;
    await until(async () => ((await cp.get(bob, `/v1/approvals/${approvalIdFor(rid)}`)).status === 200 ? true : undefined));
    expect((await decide(cp, bob, approvalIdFor(rid), 'reject')).status).toBe(200);
    await cp.cp.runner.idle();
    expect((await cp.cp.ledger.getAction(rid))?.status).toBe('rejected');
    const eid = expired.body.id as string;
    expect((await cp.cp.ledger.getAction(eid))?.status).toBe('expired');
    // The approval is closed as expired too, and the expiry is an audit event.
    expect((await cp.get(alice, `/v1/approvals/${approvalIdFor(eid)}`)).body.status).toBe('expired');
    expect((await cp.cp.store.list(eid)).map((e) => e.type)).toContain('approval.expired');
    // Deciding after the end is refused.
    expect((await decide(cp, bob, approvalIdFor(eid), 'approve')).status).toBe(409);
    for (const id of [rid, eid]) expect((await cp.cp.ledger.getAction(id))?.receiptKey ?? (await cp.get(alice, `/v1/actions/${id}`)).body.receipt).toBeTruthy();
    expect(cp.cp.vendors.admin.stats('travel').sideEffects).toEqual({});
    // The local wait outlasts the expiry by the approvals function's time (10 s), as the deployed Task does.
  }, 60_000);

  it('keeps an action waiting across a restart, still approvable afterwards', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'airlock-approval-restart-'));
    cleanup.push(() => rm(stateDir, { recursive: true, force: true }));
    const first = await startTestControlPlane({ stateDir });
    const alice = await first.token('alice', { roles: ['Employee'], manager: 'bob' });
    const res = await first.post(alice, bigTrip(isoDay(23)));
    const id = res.body.id as string;
    await until(async () => ((await first.cp.ledger.getAction(id))?.status === 'awaiting_approval' ? true : undefined));
    const bob1 = await first.token('bob', { roles: ['Manager'] });
    await until(async () => ((await first.get(bob1, `/v1/approvals/${approvalIdFor(id)}`)).status === 200 ? true : undefined));
    await first.close();

    const second = await startTestControlPlane({ stateDir });
    cleanup.push(() => second.close());
    const bob = await second.token('bob', { roles: ['Manager'] });
    // The resumed saga re-requests the approval with a fresh task token; the vote answers it.
    await until(async () => {
      const r = await decide(second, bob, approvalIdFor(id), 'approve');
      return r.status === 200 ? r : undefined;
    });
    await second.cp.runner.idle();
    expect((await second.cp.ledger.getAction(id))?.status).toBe('completed');
  });

  it('an approval that expired while the control plane was down ends expired after the restart, with its receipt', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'airlock-approval-expired-restart-'));
    cleanup.push(() => rm(stateDir, { recursive: true, force: true }));
    const first = await startTestControlPlane({ stateDir, controlPlane: { approvalTimeoutSeconds: 1 } });
    const alice = await first.token('alice', { roles: ['Employee'], manager: 'bob' });
    const id = (await first.post(alice, bigTrip(isoDay(24)))).body.id as string;
    const bob1 = await first.token('bob', { roles: ['Manager'] });
    const preview = await until(async () => {
      const r = await first.get(bob1, `/v1/approvals/${approvalIdFor(id)}`);
      return r.status === 200 ? r.body : undefined;
    });
    await first.close();
    // Down past the expiry: the resumed saga finds the approval pending and out of time.
    await expect.poll(() => Date.now() > Date.parse(String(preview.expiresAt)) + 200, { timeout: 5_000, interval: 50 }).toBe(true);

    const second = await startTestControlPlane({ stateDir, controlPlane: { approvalTimeoutSeconds: 1 } });
    cleanup.push(() => second.close());
    await until(async () => ((await second.cp.ledger.getAction(id))?.receiptKey ? true : undefined), 30_000);
    await second.cp.runner.idle();
    expect((await second.cp.ledger.getAction(id))).toMatchObject({ status: 'expired' });
    const bob = await second.token('bob', { roles: ['Manager'] });
    expect((await second.get(bob, `/v1/approvals/${approvalIdFor(id)}`)).body.status).toBe('expired');
  }, 60_000);
});
