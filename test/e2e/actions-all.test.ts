import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';

/** GET /v1/actions?scope=all over HTTP: auditors list everyone's actions, anyone else gets an audited 403. */
let cp: TestControlPlane;

beforeAll(async () => {
  cp = await startTestControlPlane();
});
afterAll(async () => {
  await cp?.close();
});

const echo = (message: string) => ({ tool: 'echo.say', arguments: { message }, agent: { name: 'e2e' } });
const pay = (email: string) => ({
  tool: 'payments.authorize',
  arguments: { amount: 12.5, currency: 'USD', payee: 'sandbox-air', paymentMethod: 'pm_card_visa', customerEmail: email },
  agent: { name: 'e2e' },
});

describe('GET /v1/actions?scope=all', () => {
  it('lists every principal\'s actions for an auditor, newest first, filtered and paged, with others\' PII masked', async () => {
    const alice = await cp.token('all-alice', { roles: ['Employee'], manager: 'all-bob' });
    const bob = await cp.token('all-bob', { roles: ['Employee'] });
    const ids: string[] = [];
    ids.push((await cp.post(alice, echo('one'))).body.id);
    ids.push((await cp.post(bob, echo('two'))).body.id);
    const paid = await cp.post(alice, pay('ada@example.com'));
    expect(paid.body.status).toBe('completed');
    ids.push(paid.body.id);
    await cp.cp.runner.idle();

    const auditor = await cp.token('all-audrey', { roles: ['Auditor'] });
    const everything = await cp.get(auditor, '/v1/actions?scope=all&limit=100');
    expect(everything.status).toBe(200);
    expect(everything.body.items.map((a: { id: string }) => a.id)).toEqual([...ids].reverse());
    const payment = everything.body.items[0];
    expect(payment.principal).toEqual({ sub: 'all-alice' });
    expect(payment.result.customerEmail).toBe('[pii hidden]');
    expect(JSON.stringify(everything.body)).not.toContain('ada@example.com');
    // Alice's own listing shows her own output as it is.
    expect((await cp.get(alice, `/v1/actions/${ids[2]}`)).body.result.customerEmail).toBe('ada@example.com');

    // Filters: principal, tool, status; and a cursor bound to them.
    expect((await cp.get(auditor, '/v1/actions?scope=all&principal=all-bob')).body.items.map((a: { id: string }) => a.id)).toEqual([ids[1]]);
    expect((await cp.get(auditor, '/v1/actions?scope=all&tool=payments.authorize')).body.items.map((a: { id: string }) => a.id)).toEqual([ids[2]]);
    expect((await cp.get(auditor, '/v1/actions?scope=all&status=denied')).body.items).toEqual([]);
    const page1 = await cp.get(auditor, '/v1/actions?scope=all&limit=2');
    expect(page1.body.items).toHaveLength(2);
    const next = encodeURIComponent(page1.body.nextCursor);
    const page2 = await cp.get(auditor, `/v1/actions?scope=all&limit=2&cursor=${next}`);
    expect([...page1.body.items, ...page2.body.items].map((a: { id: string }) => a.id)).toEqual([...ids].reverse());
    // The cursor belongs to this filter and this caller.
    expect((await cp.get(auditor, `/v1/actions?scope=all&limit=2&tool=echo.say&cursor=${next}`)).status).toBe(400);
    expect((await cp.get(auditor, `/v1/actions?limit=2&cursor=${next}`)).status).toBe(400);
    // A time range in the future holds nothing; a reversed or too long one is a 400.
    const future = new Date(Date.now() + 86_400_000).toISOString();
    expect((await cp.get(auditor, `/v1/actions?scope=all&since=${encodeURIComponent(future)}&until=${encodeURIComponent(future)}`)).body.items).toEqual([]);
    const past = new Date(Date.now() - 40 * 86_400_000).toISOString();
    expect((await cp.get(auditor, `/v1/actions?scope=all&since=${encodeURIComponent(past)}`)).status).toBe(400);
    expect((await cp.get(auditor, `/v1/actions?scope=all&since=${encodeURIComponent(future)}&until=${encodeURIComponent(past)}`)).status).toBe(400);
  });

  it('refuses anyone but an auditor with a 403 problem, recorded on the access trail', async () => {
    const mallory = await cp.token('all-mallory', { roles: ['Employee', 'Manager'] });
    const before = new Date().toISOString().slice(0, 10);
    const res = await cp.get(mallory, '/v1/actions?scope=all');
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ type: 'urn:airlock:problem:forbidden', requiredRole: 'Auditor' });
    // The trail is kept per UTC day: read the day before and after the request (midnight may pass).
    const days = [...new Set([before, new Date().toISOString().slice(0, 10)])];
    const trail = async () => (await Promise.all(days.map((d) => cp.cp.ledger.listAccessRefusals(d)))).flat().filter((r) => r.actor === 'all-mallory');
    await expect.poll(trail, { timeout: 5_000 }).toEqual([
      expect.objectContaining({ actor: 'all-mallory', attempted: 'list_all_actions', requiredRole: 'Auditor', roles: ['Employee', 'Manager'] }),
    ]);
    // The filters belong to scope=all: for one's own actions they are a 400, not a silent ignore.
    for (const q of ['tool=echo.say', 'principal=x', `since=${encodeURIComponent(new Date().toISOString())}`]) {
      expect((await cp.get(mallory, `/v1/actions?${q}`)).status, q).toBe(400);
    }
  });

  it('answers any malformed query with a 400 problem, never a 5xx (fast-check)', async () => {
    const auditor = await cp.token('all-audrey', { roles: ['Auditor'] });
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('tool', 'principal', 'since', 'until', 'status', 'scope', 'limit'),
        fc.string({ maxLength: 40 }),
        async (key, value) => {
          const res = await cp.get(auditor, `/v1/actions?scope=all&${key}=${encodeURIComponent(value)}`);
          expect([200, 400]).toContain(res.status);
          if (res.status === 400) expect(res.body.type).toBe('urn:airlock:problem:validation');
        },
      ),
      { numRuns: 40 },
    );
  });
});
