import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatPreview, PreviewSchema } from '../../bin/commands/approvals';
import { sweepExpiredDelegations } from '../../lambdas/delegations/expiry';
import type { RegisteredTool, ToolRegistry } from '../../lambdas/ports/tools';
import { ExpiryReceiptSchema } from '../../lambdas/receipts/consent';
import { verifyVault } from '../../lambdas/receipts/verify';
import { grantActor } from '../../lambdas/saga/tasks';
import { approvalIdFor } from '../../lambdas/shared/ids';
import { startTestControlPlane, travelPlan, type TestControlPlane } from '../helpers/control-plane';

/**
 * A delegation's expiry through the whole local control plane (requireDelegation on), with the
 * sweep's clock injected: nothing happens before the expiry; past it, the control plane's timer
 * ends the delegation, cancels its agent's pending approval (out of the approver's inbox), and
 * writes an expiry receipt that the digests list and the verifier checks. Also: the grant each
 * connector receives names the verified agent, never the body's agent name, on the read fast
 * path and in the saga; and `POST /v1/decisions` previews what intake would do with the
 * delegation (test/delegations/preview.property.test.ts shows they agree in general).
 */

let cp: TestControlPlane;
let alice: string;
let bob: string;
const clock = { t: Date.now() };
/** The actor (`act.sub`) of every grant a connector received, by tool. */
const seen: { tool: string; act: string | undefined }[] = [];

const agentToken = (agent: string) => cp.token('alice', { roles: ['Employee'], manager: 'bob', claims: { act: { sub: agent } } });
const inHours = (h: number) => new Date(Date.now() + h * 3_600_000).toISOString();

async function send(method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(`${cp.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as any };
}

/** The registry with every tool's execute wrapped to record the grant it ran under. */
function recording(tools: ToolRegistry): ToolRegistry {
  const wrap = (entry: RegisteredTool): RegisteredTool => ({
    ...entry,
    tool: {
      ...entry.tool,
      execute: (client: never, input: never, ctx: { grant?: { act: { sub: string } } }) => {
        seen.push({ tool: entry.fullName, act: ctx.grant?.act.sub });
        return (entry.tool.execute as (c: never, i: never, x: unknown) => Promise<unknown>)(client, input, ctx);
      },
    } as unknown as RegisteredTool['tool'],
  });
  return { find: (name) => (tools.find(name) ? wrap(tools.find(name)!) : undefined), all: () => tools.all(), compensationOf: (e) => tools.compensationOf(e) };
}

beforeAll(async () => {
  cp = await startTestControlPlane({
    controlPlane: { requireDelegation: true, delegationExpiryIntervalMs: 25, delegationExpiryClock: () => new Date(clock.t) },
  });
  alice = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
  bob = await cp.token('bob', { roles: ['Employee', 'Manager'] });
  const steps = cp.cp.composition.steps;
  cp.cp.composition.steps = (connector) => {
    const deps = steps(connector);
    return { ...deps, tools: recording(deps.tools) };
  };
});
afterAll(async () => {
  await cp?.close();
});

describe('a delegation reaching its expiry', () => {
  it('is ended by the control plane\'s sweep: its pending approval cancelled, an expiry receipt written, listed and verified', async () => {
    const d = (await send('POST', '/v1/delegations', alice, { agent: 'expiring-bot', connectors: ['travel'], rules: { askForCommit: true }, expiresAt: inHours(2) })).body;
    const bot = await agentToken('expiring-bot');
    const [search, hold] = travelPlan().plan;
    const res = await cp.post(bot, { agent: { name: 'declared-bot' }, plan: [search!, hold!] }, { prefer: 'respond-async' });
    expect(res.status).toBe(202);
    const id = res.body.id as string;
    await expect.poll(async () => (await cp.cp.ledger.getAction(id))?.status, { timeout: 10_000 }).toBe('awaiting_approval');
    await expect.poll(async () => (await send('GET', `/v1/approvals/${approvalIdFor(id)}`, bob)).body.status, { timeout: 10_000 }).toBe('pending');
    // The approver sees the verified agent and its delegation beside the body's claimed name.
    const preview = (await send('GET', `/v1/approvals/${approvalIdFor(id)}`, bob)).body;
    expect(preview.requestedBy).toEqual({ principal: 'alice', agent: { name: 'declared-bot' }, verifiedAgent: 'expiring-bot', delegationId: d.id });
    expect(formatPreview(PreviewSchema.parse(preview))).toContain(`Verified   agent expiring-bot, under delegation ${d.id}`);
    const inbox = (await send('GET', '/v1/approvals?status=pending', bob)).body.items.find((a: { id: string }) => a.id === approvalIdFor(id));
    expect(inbox.requestedBy).toMatchObject({ verifiedAgent: 'expiring-bot', delegationId: d.id });

    // Before the expiry the sweep leaves it alone (a sweep run here, on the same clock, ends nothing).
    expect((await sweepExpiredDelegations(cp.cp.composition.delegationExpiry)).expired).not.toContain(d.id);
    expect((await cp.cp.ledger.getAction(id))?.status).toBe('awaiting_approval');

    clock.t = Date.parse(d.expiresAt) + 1_000;
    await expect.poll(async () => (await send('GET', '/v1/delegations', alice)).body.items.find((x: { id: string }) => x.id === d.id)?.expiryReceiptKey, { timeout: 10_000 }).toBeTruthy();
    const listed = (await send('GET', '/v1/delegations', alice)).body.items.find((x: { id: string }) => x.id === d.id);
    expect(listed).toMatchObject({ state: 'expired', expiryReceiptKey: `receipts/dt=${d.expiresAt.slice(0, 10)}/${d.id}.expiry.json` });

    await expect.poll(async () => (await cp.cp.ledger.getAction(id))?.status, { timeout: 10_000 }).toBe('cancelled');
    // The approval is closed just after the action ends (the cancel path's order).
    await expect.poll(async () => (await send('GET', `/v1/approvals/${approvalIdFor(id)}`, bob)).body.status, { timeout: 10_000 }).toBe('cancelled');
    expect((await send('GET', '/v1/approvals?status=pending', bob)).body.items.map((a: { id: string }) => a.id)).not.toContain(approvalIdFor(id));
    const events = await cp.cp.store.list(id);
    expect(events.find((e) => e.type === 'action.cancelled')).toMatchObject({ actor: 'airlock', data: { reason: expect.stringContaining(`${d.id} expired`) } });
    await expect.poll(async () => (await cp.cp.ledger.getAction(id))?.receiptKey, { timeout: 20_000 }).toBeTruthy();

    // The receipt is the sweep's last write for this delegation.
    await expect.poll(async () => (await cp.cp.receipts.store.get(listed.expiryReceiptKey)) !== undefined, { timeout: 10_000 }).toBe(true);
    const bytes = await cp.cp.receipts.store.get(listed.expiryReceiptKey);
    const receipt = ExpiryReceiptSchema.parse(JSON.parse(Buffer.from(bytes!).toString('utf8')));
    expect(receipt).toMatchObject({ delegationId: d.id, principal: 'alice', agent: 'expiring-bot', expiredAt: d.expiresAt, consentReceiptKey: d.consentReceiptKey });
    const trail = await cp.cp.composition.delegations.listDelegationEvents('alice');
    expect(trail.filter((e) => e.type === 'delegation.expired' && e.data.delegationId === d.id)).toHaveLength(1);

    // Revoking it now answers it as it is: expired, nothing written.
    const late = await send('DELETE', `/v1/delegations/${d.id}`, alice, { reason: 'too late' });
    expect(late.status).toBe(200);
    expect(late.body).toMatchObject({ state: 'expired', revocationReceiptKey: null, stopped: { cancelled: [], stopping: [] } });

    // The agent is refused (its only delegation is gone) and the sweep, running on, writes nothing more.
    expect((await cp.post(bot, { agent: { name: 'expiring-bot' }, plan: [search!] })).body).toMatchObject({ missing: 'no-delegation' });
    const written = await cp.cp.receipts.writeDigestNow();
    expect(written).toBeDefined();
    expect((await verifyVault(cp.cp.receipts.store)).findings).toEqual([]);
    const digested = JSON.stringify(written!.digest);
    expect(digested).toContain(`${d.id}.expiry.json`);
  });
});

describe('a delegation expiring under a running plan', () => {
  it('stops the plan before its next step; what it did is compensated and it ends cancelled', async () => {
    // Past the first test's expiry on the sweep's clock, well before every other test's.
    const d = (await send('POST', '/v1/delegations', alice, { agent: 'running-bot', connectors: ['travel', 'payments'], expiresAt: inHours(6) })).body;
    const bot = await agentToken('running-bot');
    // Travel answers in 0.8 s (under the test's 1 s vendor timeout): the sweep marks the plan cancelled while the hold is still running.
    cp.cp.vendors.admin.setFaults('travel', { latencyMs: 800 });
    try {
      const running = await cp.post(bot, travelPlan(), { prefer: 'respond-async' });
      expect(running.status).toBe(202);
      const id = running.body.id as string;
      await expect.poll(async () => (await cp.cp.store.listSteps(id)).some((st) => st.stepId === 'hold'), { timeout: 10_000, interval: 20 }).toBe(true);
      clock.t = Date.parse(d.expiresAt) + 1_000;
      await expect.poll(async () => (await cp.cp.ledger.getAction(id))?.cancel?.by, { timeout: 10_000, interval: 20 }).toBe('airlock');
      cp.cp.vendors.admin.setFaults('travel', {});
      await expect.poll(async () => (await cp.cp.ledger.getAction(id))?.receiptKey, { timeout: 20_000 }).toBeTruthy();
      const action = (await cp.cp.ledger.getAction(id))!;
      expect(action.status).toBe('cancelled');
      expect(action.statusReason).toContain(`${d.id} expired`);
      const steps = await cp.cp.store.listSteps(id);
      expect(steps.find((st) => st.kind === 'compensate' && st.stepId === 'hold')).toMatchObject({ status: 'complete' });
      expect(steps.some((st) => st.kind === 'forward' && st.stepId === 'book')).toBe(false);
    } finally {
      cp.cp.vendors.admin.setFaults('travel', {});
    }
  });
});

describe('the grant a connector receives', () => {
  it('names the verified agent, however the body names it, on the read fast path and in the saga', async () => {
    await send('POST', '/v1/delegations', alice, { agent: 'honest-bot', connectors: ['echo', 'travel', 'payments'], expiresAt: inHours(48) });
    const bot = await agentToken('honest-bot');
    seen.length = 0;
    // A single read: the fast path (no saga).
    const read = await cp.post(bot, { agent: { name: 'someone-else' }, tool: 'echo.say', arguments: { message: 'hi' } });
    expect(read.status).toBe(200);
    expect(seen).toEqual([{ tool: 'echo.say', act: 'honest-bot' }]);
    // A plan: the saga, every forward step.
    const plan = await cp.post(bot, { ...travelPlan(), agent: { name: 'admin-bot' } }, { prefer: 'respond-async' });
    expect(plan.status).toBe(202);
    await expect.poll(async () => (await cp.cp.ledger.getAction(plan.body.id))?.receiptKey, { timeout: 20_000 }).toBeTruthy();
    expect((await cp.cp.ledger.getAction(plan.body.id))?.status).toBe('completed');
    expect(seen.length).toBeGreaterThan(1);
    expect(new Set(seen.map((s) => s.act))).toEqual(new Set(['honest-bot']));
  });

  it('names the principal when the token names no agent (a person acting for themself), never the body\'s name', () => {
    expect(grantActor({ principal: { sub: 'alice', roles: [], agent: 'trip-bot' } })).toBe('trip-bot');
    expect(grantActor({ principal: { sub: 'alice', roles: [] } })).toBe('alice');
  });
});

describe('a decision preview', () => {
  it('refuses as intake would (no live delegation, while required), recording nothing, and shows the delegation\'s rule at work', async () => {
    const stranger = await agentToken('preview-stranger');
    const refused = await send('POST', '/v1/decisions', stranger, travelPlan());
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ type: 'urn:airlock:problem:delegation-required', missing: 'no-delegation', agent: 'preview-stranger' });
    const trail = await cp.cp.composition.delegations.listDelegationEvents('alice');
    expect(trail.filter((e) => e.data.agent === 'preview-stranger')).toEqual([]);
    // Intake refuses the same, and audits it.
    expect((await cp.post(stranger, travelPlan())).body).toMatchObject({ type: 'urn:airlock:problem:delegation-required', missing: 'no-delegation' });
    expect((await cp.cp.composition.delegations.listDelegationEvents('alice')).filter((e) => e.data.agent === 'preview-stranger')).toHaveLength(1);

    await send('POST', '/v1/delegations', alice, { agent: 'preview-bot', connectors: ['travel', 'payments'], rules: { askForCommit: true }, expiresAt: inHours(48) });
    const bot = await agentToken('preview-bot');
    const preview = await send('POST', '/v1/decisions', bot, travelPlan());
    expect(preview.status).toBe(200);
    expect(preview.body.decision).toMatchObject({ outcome: 'require_approval' });
    expect(preview.body.decision.policyIds).toContain('delegation.ask-for-commit');
  });
});
