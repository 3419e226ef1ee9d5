import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { approvalIdFor } from '../../lambdas/shared/ids';
import { ConsentReceiptSchema, RevocationReceiptSchema } from '../../lambdas/receipts/consent';
import { verifyVault } from '../../lambdas/receipts/verify';
import { banner, requireDelegationFromEnv } from '../../bin/commands/dev';
import { startTestControlPlane, travelPlan, type TestControlPlane } from '../helpers/control-plane';

/**
 * Delegations through the whole local control plane with `requireDelegation` on (as the
 * deployed stack runs): the agent is the one the verified token names (act.sub), consent and
 * revocation receipts land in the vault under the digests, the budget holds, and revocation
 * refuses new work at once, cancels pending approvals and stops running plans (compensated).
 */

let cp: TestControlPlane;
let alice: string;
let carol: string;
let bob: string;

/** alice's token as presented by `agent` (RFC 8693 act claim). */
const agentToken = (agent: string, claim: 'act' | 'azp' = 'act') =>
  cp.token('alice', { roles: ['Employee'], manager: 'bob', claims: claim === 'act' ? { act: { sub: agent } } : { azp: agent } });

const inHours = (h: number) => new Date(Date.now() + h * 3_600_000).toISOString();

/** Search and hold a seat: travel only, so alice's manager may approve it (travel.approve.manager). */
function holdOnly() {
  const [search, hold] = travelPlan().plan;
  return { agent: { name: 'trip-bot' }, plan: [search!, hold!] };
}

beforeAll(async () => {
  cp = await startTestControlPlane({ controlPlane: { requireDelegation: true } });
  alice = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
  carol = await cp.token('carol', { roles: ['Employee'], manager: 'bob' });
  bob = await cp.token('bob', { roles: ['Employee', 'Manager'] });
});
afterAll(async () => {
  await cp?.close();
});
afterEach(() => {
  for (const vendor of ['travel', 'payments']) cp.cp.vendors.admin.setFaults(vendor, {});
});

async function send(method: string, path: string, token: string, body?: unknown, raw?: string) {
  const res = await fetch(`${cp.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(raw !== undefined ? { body: raw } : body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as any };
}

async function vaultDoc(key: string) {
  const bytes = await cp.cp.receipts.store.get(key);
  return bytes ? JSON.parse(Buffer.from(bytes).toString('utf8')) : undefined;
}

async function settled(id: string) {
  await expect.poll(async () => (await cp.cp.ledger.getAction(id))?.receiptKey, { timeout: 20_000 }).toBeTruthy();
  return (await cp.cp.ledger.getAction(id))!;
}

const grant = (agent: string, extra: Record<string, unknown> = {}) =>
  send('POST', '/v1/delegations', alice, { agent, connectors: ['travel', 'payments'], expiresAt: inHours(2), purpose: 'conference trip', ...extra });

describe('requireDelegation', () => {
  it('is off unless asked for, and the banner says how to turn it on', async () => {
    expect(requireDelegationFromEnv(undefined)).toBe(false);
    expect(requireDelegationFromEnv('0')).toBe(false);
    expect(requireDelegationFromEnv('1')).toBe(true);
    expect(requireDelegationFromEnv(' TRUE ')).toBe(true);
    const line = banner(cp.runtime).split('\n').find((l) => l.includes('delegations'));
    expect(line).toMatch(/required \(requireDelegation on/);
  });

  it('refuses an agent without a delegation, naming the agent and the tools; audited, nothing recorded', async () => {
    const bot = await agentToken('stranger-bot');
    const res = await cp.post(bot, travelPlan());
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ type: 'urn:airlock:problem:delegation-required', missing: 'no-delegation', agent: 'stranger-bot' });
    expect(res.body.tools).toEqual(['travel.search_flights', 'travel.hold_seat', 'payments.authorize', 'travel.book_flight']);
    expect(res.body.detail).toMatch(/stranger-bot/);
    const events = await cp.cp.composition.delegations.listDelegationEvents('alice');
    expect(events.find((e) => e.actor === 'stranger-bot')).toMatchObject({ type: 'delegation.refused', data: { missing: 'no-delegation' } });
    expect((await cp.get(alice, '/v1/actions')).body.items).toEqual([]);
  });

  it('refuses a token that names no agent: nothing can match', async () => {
    const res = await cp.post(alice, { tool: 'echo.say', arguments: { message: 'hi' }, agent: { name: 'self-declared' } });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ type: 'urn:airlock:problem:delegation-required', missing: 'no-agent', agent: null, tools: ['echo.say'] });
  });

  it('never takes the body\'s self-declared agent name for the verified one', async () => {
    await grant('named-bot');
    const impostor = await agentToken('impostor-bot');
    const res = await cp.post(impostor, { ...travelPlan(), agent: { name: 'named-bot' } });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ missing: 'no-delegation', agent: 'impostor-bot' });
  });
});

describe('granting a delegation', () => {
  it('writes a consent receipt to the vault first, lists it for its principal only, and the agent then books under it', async () => {
    const created = await grant('trip-bot', { budget: { amount: 1000, currency: 'USD', period: 'day' } });
    expect(created.status).toBe(201);
    const d = created.body;
    expect(created.headers.get('location')).toBe(`/v1/delegations/${d.id}`);
    expect(d).toMatchObject({ agent: 'trip-bot', connectors: ['payments', 'travel'], tools: [], state: 'active', budget: { amount: 1000, currency: 'USD', period: 'day' } });

    const consent = ConsentReceiptSchema.parse(await vaultDoc(d.consentReceiptKey));
    expect(consent).toMatchObject({ delegationId: d.id, principal: { sub: 'alice' }, agent: 'trip-bot', scope: { connectors: ['payments', 'travel'] }, expiresAt: d.expiresAt, purpose: 'conference trip' });
    expect(consent.policySetVersion).toMatch(/^[0-9a-f]{64}$/);
    expect(consent.limitsVersion).toMatch(/^[0-9a-f]{64}$/);

    expect((await send('GET', '/v1/delegations', alice)).body.items.map((x: { id: string }) => x.id)).toContain(d.id);
    expect((await send('GET', '/v1/delegations', carol)).body.items).toEqual([]);

    // The agent's token via azp works the same as act.sub (the documented order).
    const bot = await agentToken('trip-bot', 'azp');
    const booked = await cp.post(bot, travelPlan(), { prefer: 'wait=15' });
    expect(booked.status).toBe(200);
    expect(booked.body.status).toBe('completed');
    const action = await settled(booked.body.id);
    expect(action.delegation).toMatchObject({ id: d.id, agent: 'trip-bot' });
    const receipt = await vaultDoc(action.receiptKey!);
    expect(receipt.request).toMatchObject({ agent: 'trip-bot', delegationId: d.id });
  });

  it('keeps the budget: an action that would pass it is refused with the figures, audited, nothing recorded', async () => {
    // The plan moves $274.50 twice (authorized through payments, booked through travel: two connectors): $549.
    await grant('budget-bot', { budget: { amount: 600, currency: 'USD', period: 'total' } });
    const bot = await agentToken('budget-bot');
    const first = await cp.post(bot, travelPlan(), { prefer: 'wait=15' });
    expect(first.body.status).toBe('completed');
    const before = (await cp.get(alice, '/v1/actions')).body.items.length;
    const second = await cp.post(bot, travelPlan());
    expect(second.status).toBe(403);
    expect(second.body).toMatchObject({ type: 'urn:airlock:problem:delegation-budget-exceeded', limit: 60_000, used: 54_900, requested: 54_900, currency: 'USD' });
    expect((await cp.get(alice, '/v1/actions')).body.items.length).toBe(before);
    const events = await cp.cp.composition.delegations.listDelegationEvents('alice');
    expect(events.some((e) => e.actor === 'budget-bot' && e.data.missing === 'budget')).toBe(true);
  });

  it('covers only its scope: a tool outside it is refused, naming that tool', async () => {
    await send('POST', '/v1/delegations', alice, { agent: 'echo-bot', tools: ['echo.say'], expiresAt: inHours(1) });
    const bot = await agentToken('echo-bot');
    expect((await cp.post(bot, { tool: 'echo.say', arguments: { message: 'hi' }, agent: { name: 'echo-bot' } })).status).toBe(200);
    const res = await cp.post(bot, travelPlan());
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ missing: 'tools-not-covered', agent: 'echo-bot', tools: ['travel.search_flights', 'travel.hold_seat', 'payments.authorize', 'travel.book_flight'] });
  });

  it('passes its stricter rule to Cedar: "always ask me for commit steps" sends the booking for approval', async () => {
    await grant('careful-bot', { rules: { askForCommit: true } });
    const bot = await agentToken('careful-bot');
    const res = await cp.post(bot, travelPlan(), { prefer: 'respond-async' });
    expect(res.status).toBe(202);
    await expect.poll(async () => (await cp.cp.ledger.getAction(res.body.id))?.status, { timeout: 10_000 }).toBe('awaiting_approval');
    expect((await cp.cp.ledger.getAction(res.body.id))?.decision?.policyIds).toContain('delegation.ask-for-commit');
  });

  it('is refused to an agent\'s token: only the principal grants (audited)', async () => {
    const bot = await agentToken('trip-bot');
    const res = await send('POST', '/v1/delegations', bot, { agent: 'trip-bot', connectors: ['payments'], expiresAt: inHours(1) });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ type: 'urn:airlock:problem:forbidden' });
    expect(res.body.detail).toMatch(/principal themself/);
  });
});

describe('bad delegation requests', () => {
  const cases: [string, unknown, RegExp][] = [
    ['an unknown tool', { agent: 'b', tools: ['travel.teleport'], expiresAt: inHours(1) }, /\/tools\/0/],
    ['an unknown connector', { agent: 'b', connectors: ['moon'], expiresAt: inHours(1) }, /\/connectors\/0/],
    ['no scope at all', { agent: 'b', expiresAt: inHours(1) }, /\/tools/],
    ['a negative budget', { agent: 'b', connectors: ['travel'], budget: { amount: -1, currency: 'USD', period: 'day' }, expiresAt: inHours(1) }, /\/budget\/amount/],
    ['a currency without a rate', { agent: 'b', connectors: ['travel'], budget: { amount: 5, currency: 'XYZ', period: 'day' }, expiresAt: inHours(1) }, /\/budget/],
    ['a past expiry', { agent: 'b', connectors: ['travel'], expiresAt: new Date(Date.now() - 60_000).toISOString() }, /\/expiresAt/],
    ['an expiry years ahead', { agent: 'b', connectors: ['travel'], expiresAt: inHours(24 * 800) }, /\/expiresAt/],
    ['an unknown member', { agent: 'b', connectors: ['travel'], expiresAt: inHours(1), admin: true }, /\//],
    ['an agent id with spaces', { agent: 'a b', connectors: ['travel'], expiresAt: inHours(1) }, /\/agent/],
  ];
  it.each(cases)('%s is a 400 listing the violation, and nothing is recorded', async (_name, body, path) => {
    const before = (await send('GET', '/v1/delegations', alice)).body.items.length;
    const consentsBefore = (await cp.cp.receipts.store.list('receipts/')).filter((o) => o.key.endsWith('.consent.json')).length;
    const res = await send('POST', '/v1/delegations', alice, body);
    expect(res.status).toBe(400);
    expect(res.body.type).toBe('urn:airlock:problem:validation');
    expect(res.body.violations.map((v: { path: string }) => v.path).join(' ')).toMatch(path);
    expect((await send('GET', '/v1/delegations', alice)).body.items.length).toBe(before);
    expect((await cp.cp.receipts.store.list('receipts/')).filter((o) => o.key.endsWith('.consent.json')).length).toBe(consentsBefore);
  });

  it('malformed JSON is a 400 problem', async () => {
    const res = await send('POST', '/v1/delegations', alice, undefined, '{"agent": ');
    expect(res.status).toBe(400);
    expect(res.body.type).toBe('urn:airlock:problem:malformed-json');
  });

  it('revoking someone else\'s delegation, or an unknown id, is a 404 (ids cannot be probed); a bad body is a 400', async () => {
    const mine = (await grant('probe-bot')).body.id as string;
    expect((await send('DELETE', `/v1/delegations/${mine}`, carol)).status).toBe(404);
    expect((await send('DELETE', '/v1/delegations/dlg_01JF0000000000000000000000', alice)).status).toBe(404);
    expect((await send('DELETE', '/v1/delegations/not-an-id', alice)).status).toBe(404);
    expect((await send('DELETE', `/v1/delegations/${mine}`, alice, { reason: '' })).status).toBe(400);
    expect((await send('GET', '/v1/delegations', alice)).body.items.find((d: { id: string }) => d.id === mine).state).toBe('active');
  });
});

describe('revocation stops work in flight', () => {
  it('refuses the agent at once, cancels its pending approval, stops its running plan (compensated), and writes a revocation receipt', async () => {
    // Two delegations to one agent: the newest covering one applies.
    const askFirst = (await grant('revoked-bot', { rules: { askForCommit: true } })).body;
    const d = (await grant('revoked-bot')).body;
    const bot = await agentToken('revoked-bot');
    // A running plan: travel answers in 0.4 s, so it is still running when the revocation comes.
    cp.cp.vendors.admin.setFaults('travel', { latencyMs: 400 });
    const running = await cp.post(bot, travelPlan(), { prefer: 'respond-async' });
    expect(running.status).toBe(202);
    expect((await cp.cp.ledger.getAction(running.body.id))?.delegation?.id).toBe(d.id);
    await expect.poll(async () => (await cp.cp.store.listSteps(running.body.id)).some((s) => s.stepId === 'hold'), { timeout: 10_000, interval: 20 }).toBe(true);

    const revoked = await send('DELETE', `/v1/delegations/${d.id}`, alice, { reason: 'trip cancelled' });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: d.id, state: 'revoked', revokeReason: 'trip cancelled', stopped: { cancelled: [], stopping: [running.body.id] } });
    cp.cp.vendors.admin.setFaults('travel', {});

    const action = await settled(running.body.id);
    expect(action.status).toBe('cancelled');
    const steps = await cp.cp.store.listSteps(running.body.id);
    expect(steps.find((s) => s.kind === 'compensate' && s.stepId === 'hold')).toMatchObject({ status: 'complete' });
    const events = await cp.cp.store.list(running.body.id);
    expect(events.find((e) => e.type === 'action.cancelled')?.data).toMatchObject({ reason: expect.stringContaining(d.id) });

    const revocation = RevocationReceiptSchema.parse(await vaultDoc(revoked.body.revocationReceiptKey));
    expect(revocation).toMatchObject({ delegationId: d.id, agent: 'revoked-bot', revokedBy: 'alice', reason: 'trip cancelled', consentReceiptKey: d.consentReceiptKey });

    // The other delegation of the same agent (ask-for-commit) still stands: its plan waits for approval.
    const waiting = await cp.post(bot, holdOnly(), { prefer: 'respond-async' });
    expect(waiting.status).toBe(202);
    await expect.poll(async () => (await cp.cp.ledger.getAction(waiting.body.id))?.status, { timeout: 10_000 }).toBe('awaiting_approval');
    await expect.poll(async () => (await send('GET', `/v1/approvals/${approvalIdFor(waiting.body.id)}`, bob)).status, { timeout: 10_000 }).toBe(200);
    expect((await cp.cp.ledger.getAction(waiting.body.id))?.delegation?.id).toBe(askFirst.id);

    const second = await send('DELETE', `/v1/delegations/${askFirst.id}`, alice);
    expect(second.status).toBe(200);
    expect(second.body.stopped).toEqual({ cancelled: [waiting.body.id], stopping: [] });
    expect((await send('GET', `/v1/approvals/${approvalIdFor(waiting.body.id)}`, bob)).body).toMatchObject({ status: 'cancelled' });
    expect((await settled(waiting.body.id)).status).toBe('cancelled');

    // Refused at once: no delegation of the agent is live any more.
    const after = await cp.post(bot, travelPlan());
    expect(after.status).toBe(403);
    expect(after.body).toMatchObject({ missing: 'no-delegation', agent: 'revoked-bot' });

    // Idempotent: the same answer again (the sweep finds nothing left to stop).
    const again = await send('DELETE', `/v1/delegations/${d.id}`, alice);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ state: 'revoked', revokedAt: revoked.body.revokedAt, stopped: { cancelled: [], stopping: [] } });
  });

  it('refuses the agent once the delegation has expired', async () => {
    const d = (await grant('brief-bot', { expiresAt: new Date(Date.now() + 1_500).toISOString() })).body;
    const bot = await agentToken('brief-bot');
    await expect
      .poll(async () => (await cp.post(bot, { tool: 'travel.search_flights', arguments: { origin: 'SFO', destination: 'JFK', date: travelPlan().plan[0]!.arguments.date }, agent: { name: 'x' } })).status, {
        timeout: 10_000,
        interval: 200,
      })
      .toBe(403);
    expect((await send('GET', '/v1/delegations', alice)).body.items.find((x: { id: string }) => x.id === d.id).state).toBe('expired');
  });
});

describe('the vault', () => {
  it('lists consent and revocation receipts in the signed digests, and the verifier finds nothing wrong', async () => {
    await cp.cp.receipts.writeDigestNow();
    const report = await verifyVault(cp.cp.receipts.store);
    expect(report.findings).toEqual([]);
    const keys = (await cp.cp.receipts.store.list('receipts/')).map((o) => o.key);
    expect(keys.some((k) => k.endsWith('.consent.json'))).toBe(true);
    expect(keys.some((k) => k.endsWith('.revocation.json'))).toBe(true);
  });
});
