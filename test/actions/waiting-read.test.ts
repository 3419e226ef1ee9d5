import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalIdFor } from '../../lambdas/shared/ids';
import { bigTrip, startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';

/**
 * GET /v1/actions/{id} with `Prefer: wait=N` (a long poll) through the whole local control
 * plane: answered when the status changes, or its end's receipt is written, or after N s.
 * Every response is checked against docs/openapi.json by the test control plane.
 */

let cp: TestControlPlane;
let alice: string;
let bob: string;
let carol: string;

beforeAll(async () => {
  cp = await startTestControlPlane();
  alice = await cp.token('wr-alice', { roles: ['Employee'], manager: 'wr-bob' });
  bob = await cp.token('wr-bob', { roles: ['Employee', 'Manager'] });
  carol = await cp.token('wr-carol', { roles: ['Employee'] });
});
afterAll(async () => {
  await cp?.close();
});

async function send(method: string, path: string, token: string, options: { body?: unknown; prefer?: string } = {}) {
  const res = await fetch(`${cp.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(options.prefer ? { prefer: options.prefer } : {}) },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as any };
}

/** Waits (long polls) until `done`, counting the requests it took. */
async function waitUntil(id: string, done: (status: string) => boolean, max: number) {
  for (let requests = 1; requests <= max; requests++) {
    const res = await send('GET', `/v1/actions/${id}`, alice, { prefer: 'wait=20' });
    expect(res.status).toBe(200);
    expect(res.headers.get('preference-applied')).toBe('wait=20');
    if (done(res.body.status)) return { res, requests };
  }
  throw new Error(`${id} not done after ${max} waiting requests`);
}

describe('a read that waits for a change', () => {
  it('follows an action through approval to its receipted end in a handful of requests', async () => {
    const asked = await cp.post(alice, bigTrip(), { prefer: 'respond-async' });
    expect(asked.status).toBe(202);
    const id = asked.body.id as string;
    const waiting = await waitUntil(id, (s) => s === 'awaiting_approval', 3);
    expect(waiting.res.body.status).toBe('awaiting_approval');

    // A waiting read held open while the approver votes: it answers with the next status.
    const pending = send('GET', `/v1/actions/${id}`, alice, { prefer: 'wait=20' });
    const preview = await send('GET', `/v1/approvals/${approvalIdFor(id)}`, bob);
    expect((await send('POST', `/v1/approvals/${approvalIdFor(id)}/decision`, bob, { body: { decision: 'approve', planHash: preview.body.planHash } })).status).toBe(200);
    const moved = await pending;
    expect(moved.status).toBe(200);
    expect(moved.body.status).not.toBe('awaiting_approval');

    const end = await waitUntil(id, (s) => s === 'completed', 4);
    // Answered with its receipt: the end is not reported before the receipt is written.
    expect(end.res.body.receipt).toMatch(/^receipts\/dt=\d{4}-\d{2}-\d{2}\/act_/);
  });

  it('answers at once for a finished action, the same as without waiting, capping the wait it reports', async () => {
    const done = await cp.post(alice, { tool: 'echo.say', arguments: { message: 'done' }, agent: { name: 'wr' } }, { key: 'wr-done' });
    expect(done.body.status).toBe('completed');
    const id = done.body.id as string;
    await expect.poll(async () => (await cp.cp.ledger.getAction(id))?.receiptKey, { timeout: 10_000 }).toBeTruthy();
    const plain = await send('GET', `/v1/actions/${id}`, alice);
    const waited = await send('GET', `/v1/actions/${id}`, alice, { prefer: 'wait=999' });
    expect(plain.headers.get('preference-applied')).toBeNull();
    expect(waited.headers.get('preference-applied')).toBe('wait=20');
    expect(waited.body).toEqual(plain.body);
    // Only `wait` is a preference here: others are ignored, and no wait is applied.
    expect((await send('GET', `/v1/actions/${id}`, alice, { prefer: 'respond-async' })).headers.get('preference-applied')).toBeNull();
  });

  it('answers after the wait as the action then is when nothing changed, and 404 at once to someone who may not see it', async () => {
    const asked = await cp.post(alice, bigTrip(), { prefer: 'respond-async' });
    const id = asked.body.id as string;
    await waitUntil(id, (s) => s === 'awaiting_approval', 3);
    const still = await send('GET', `/v1/actions/${id}`, alice, { prefer: 'wait=1' });
    expect(still.status).toBe(200);
    expect(still.headers.get('preference-applied')).toBe('wait=1');
    expect(still.body.status).toBe('awaiting_approval');
    expect((await send('GET', `/v1/actions/${id}`, carol, { prefer: 'wait=20' })).status).toBe(404);
    expect((await send('POST', `/v1/actions/${id}/cancel`, alice, { body: { reason: 'test over' } })).status).toBe(200);
  });
});
