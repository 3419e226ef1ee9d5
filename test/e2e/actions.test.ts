import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quietBreakers, startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';

/** POST /v1/actions and friends over HTTP against the whole local control plane. */
let cp: TestControlPlane;
let alice: string;

beforeAll(async () => {
  cp = await startTestControlPlane();
  alice = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
});
afterAll(async () => {
  await cp?.close();
});

const echo = (message = 'hi') => ({ tool: 'echo.say', arguments: { message }, agent: { name: 'e2e' } });

async function raw(path: string, init: RequestInit & { token?: string } = {}) {
  const res = await fetch(`${cp.url}${path}`, {
    ...init,
    headers: { ...(init.token ? { authorization: `Bearer ${init.token}` } : {}), ...(init.headers as Record<string, string>) },
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: text ? (JSON.parse(text) as Record<string, any>) : undefined };
}

describe('the actions API over HTTP', () => {
  it('answers a read tool synchronously and replays it for the same key', async () => {
    const first = await cp.post(alice, echo('sync'), { key: 'e2e-sync' });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ status: 'completed', result: { message: 'sync', length: 4 } });
    expect(first.headers.get('location')).toBe(`/v1/actions/${first.body.id}`);
    const again = await cp.post(alice, echo('sync'), { key: 'e2e-sync' });
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.id).toBe(first.body.id);
  });

  it('answers 202 with a Location when asked not to wait, and the action reaches completed', async () => {
    const res = await cp.post(alice, echo('later'), { prefer: 'respond-async' });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'received', decision: { outcome: 'allow' }, links: { self: `/v1/actions/${res.body.id}` } });
    await cp.cp.runner.idle();
    const got = await cp.get(alice, res.body.links.self);
    expect(got.status).toBe(200);
    expect(got.body.status).toBe('completed');
    expect(got.body.receipt).toMatch(/^receipts\/dt=\d{4}-\d{2}-\d{2}\/act_/);
  });

  it('lists the caller’s own actions newest first, with a cursor', async () => {
    const bob = await cp.token('list-bob', { roles: ['Employee'] });
    const ids: string[] = [];
    for (const m of ['a', 'b', 'c']) ids.push((await cp.post(bob, echo(m), { prefer: 'respond-async' })).body.id);
    const page1 = await raw('/v1/actions?limit=2', { token: bob });
    expect(page1.body!.items.map((a: { id: string }) => a.id)).toEqual([ids[2], ids[1]]);
    const page2 = await raw(`/v1/actions?limit=2&cursor=${encodeURIComponent(page1.body!.nextCursor)}`, { token: bob });
    expect(page2.body!.items.map((a: { id: string }) => a.id)).toEqual([ids[0]]);
    expect((await raw('/v1/actions?limit=0', { token: bob })).status).toBe(400);
    expect((await raw('/v1/actions?status=nope', { token: bob })).status).toBe(400);
    expect((await raw('/v1/actions?cursor=forged', { token: bob })).status).toBe(400);
    // Well-formed but with an empty key: DynamoDB refuses it (ValidationException), which is the cursor's fault.
    const emptyKey = Buffer.from(JSON.stringify({ pk: '', sk: '', gsi1pk: 'PRINCIPAL#list-bob', gsi1sk: '' })).toString('base64url');
    const refused = await raw(`/v1/actions?cursor=${emptyKey}`, { token: bob });
    expect(refused.status).toBe(400);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
  });

  it.each([
    ['no Idempotency-Key', { body: JSON.stringify(echo()), headers: { 'content-type': 'application/json' } }, 400, 'urn:airlock:problem:idempotency-key-missing'],
    ['an unknown tool', { body: JSON.stringify({ ...echo(), tool: 'nope.nothing' }), headers: { 'content-type': 'application/json', 'idempotency-key': 'u1' } }, 400, 'urn:airlock:problem:validation'],
    ['a body that is not JSON', { body: '{"tool":', headers: { 'content-type': 'application/json', 'idempotency-key': 'u2' } }, 400, 'urn:airlock:problem:malformed-json'],
    ['a body over 64 KiB', { body: JSON.stringify({ ...echo(), reason: 'x'.repeat(70_000) }), headers: { 'content-type': 'application/json', 'idempotency-key': 'u3' } }, 413, 'urn:airlock:problem:payload-too-large'],
    ['no token', { body: JSON.stringify(echo()), headers: { 'content-type': 'application/json', 'idempotency-key': 'u4' }, token: '' }, 401, 'urn:airlock:problem:unauthorized'],
  ])('answers %s with a problem document', async (_label, init, status, type) => {
    const res = await raw('/v1/actions', { method: 'POST', token: 'token' in init ? undefined : alice, ...init } as RequestInit & { token?: string });
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.body!.type).toBe(type);
    expect(res.text).not.toMatch(/\n\s+at /);
  });

  it('answers 422 for a reused key with another payload', async () => {
    await cp.post(alice, echo('one'), { key: 'reuse' });
    const res = await cp.post(alice, echo('two'), { key: 'reuse' });
    expect(res.status).toBe(422);
    expect(res.body.type).toBe('urn:airlock:problem:idempotency-key-reused');
  });

  it('denies a deny-listed supplier with 403, the policy id and its reason, and still writes a receipt', async () => {
    const res = await cp.post(alice, {
      tool: 'procurement.place_order',
      arguments: {
        supplierId: 'shady-supplies',
        lines: [{ sku: 'SHD-001', quantity: 1 }],
        shipTo: { name: 'Ada Lovelace', street: '1 Analytical Way', city: 'London', postalCode: 'N1 9GU', country: 'GB' },
        maxTotal: { amount: 50, currency: 'USD' },
      },
      agent: { name: 'e2e' },
    });
    expect(res.status).toBe(403);
    expect(res.body.type).toBe('urn:airlock:problem:policy-denied');
    expect(res.body.policyIds).toContain('procurement.denied-vendor');
    expect(res.body.reasons.length).toBeGreaterThan(0);
    await cp.cp.runner.idle();
    const got = await cp.get(alice, `/v1/actions/${res.body.actionId}`);
    expect(got.body.status).toBe('denied');
    expect(got.body.receipt).toBeTruthy();
  });

  it('previews a decision with POST /v1/decisions and records nothing', async () => {
    const who = await cp.token('previewer', { roles: ['Employee'], manager: 'boss' });
    const decide = (body: unknown) =>
      raw('/v1/decisions', { method: 'POST', token: who, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const allow = await decide(echo('preview'));
    expect(allow.status).toBe(200);
    expect(allow.body!.decision).toMatchObject({ outcome: 'allow', policyIds: expect.arrayContaining(['read.request']) });
    // Decisions name the limits file in force, as they name the policy set.
    expect(allow.body!.decision.limitsVersion).toBe(quietBreakers().version);
    expect(allow.body!.planHash).toMatch(/^[0-9a-f]{64}$/);
    const big = await decide({
      agent: { name: 'e2e' },
      tool: 'travel.book_flight',
      arguments: { holdId: 'hold_x', travelers: [{ firstName: 'A', lastName: 'B' }], contact: { email: 'a@example.com' }, price: { amount: 2400, currency: 'USD' } },
    });
    expect(big.body!.decision).toMatchObject({ outcome: 'require_approval', quorum: 1, approverRule: 'manager' });
    expect((await decide({ ...echo(), tool: 'nope.nothing' })).status).toBe(400);
    expect((await raw('/v1/actions', { token: who })).body!.items).toEqual([]);
  });

  it('hides other people’s actions behind 404', async () => {
    const mine = await cp.post(alice, echo('private'));
    const mallory = await cp.token('mallory', { roles: ['Employee'] });
    expect((await cp.get(mallory, `/v1/actions/${mine.body.id}`)).status).toBe(404);
    expect((await cp.get(mallory, '/v1/actions/act_00000000000000000000000000')).status).toBe(404);
    const auditor = await cp.token('audrey', { roles: ['Auditor'] });
    expect((await cp.get(auditor, `/v1/actions/${mine.body.id}`)).status).toBe(200);
  });
});
