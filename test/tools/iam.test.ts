import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { VendorAuthError, VendorRejectedError, VendorTimeoutError, VendorUnavailableError } from '../../lambdas/tools/errors';
import { toolRegistry } from '../../lambdas/tools/registry';
import { GrantMismatchError, ToolInputInvalidError } from '../../lambdas/tools/invoke';
import type { VerifiedGrant } from '../../lambdas/tools/sdk';
import { failure, startHarness, type Harness } from './harness';

type Change = { changeId: string | null; before: string[]; after: string[] };
const grant = { principalId: 'alice', role: 'editor', reason: 'needs to edit the Q3 report' };

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.vendors.close();
});
afterEach(() => h.vendors.admin.reset('iam'));

function verifiedGrant(scope: string): VerifiedGrant {
  return { jti: randomUUID(), sub: 'alice', act: { sub: 'agent-1' }, aud: 'iam', scope, actionId: 'a1', stepId: 's1', planHash: 'h', exp: Math.floor(Date.now() / 1000) + 60 };
}

describe('iam connector', () => {
  it('rejects bad input', async () => {
    for (const input of [{ ...grant, role: 'Admin!' }, { ...grant, reason: '' }, { principalId: 'alice', role: 'editor' }, { ...grant, scope: '*' }]) {
      expect(await failure(h.call('iam.grant_role', input))).toBeInstanceOf(ToolInputInvalidError);
    }
  });

  it('grants with before/after snapshots and revokes as compensation (happy path)', async () => {
    const before = (await h.call('iam.get_role_assignments', { principalId: 'alice' })) as { roles: { role: string }[] };
    expect(before.roles.map((r) => r.role)).toEqual(['viewer']);
    const change = (await h.call('iam.grant_role', grant, { grant: verifiedGrant('iam.grant_role') })) as Change;
    expect(change).toMatchObject({ before: ['viewer'], after: ['editor', 'viewer'] });
    const undo = toolRegistry.find('iam.grant_role')!.tool.compensation!.input(grant, change);
    const revoked = (await h.call('iam.revoke_role', undo)) as Change;
    expect(revoked).toMatchObject({ before: ['editor', 'viewer'], after: ['viewer'] });
    // A retried compensation converges without another change.
    const again = (await h.call('iam.revoke_role', undo)) as Change;
    expect(again).toMatchObject({ changeId: null, before: ['viewer'], after: ['viewer'] });
    expect(h.vendors.admin.stats('iam').sideEffects).toEqual({ grant_role: 1, revoke_role: 1 });
  });

  it('refuses a grant naming another tool', async () => {
    const err = await failure(h.call('iam.grant_role', grant, { grant: verifiedGrant('iam.revoke_role') }));
    expect(err).toBeInstanceOf(GrantMismatchError);
    expect(h.vendors.admin.stats('iam').requests).toEqual({});
  });

  it('maps vendor errors', async () => {
    const dup = await failure(h.call('iam.grant_role', { ...grant, role: 'viewer' }));
    expect(dup).toBeInstanceOf(VendorRejectedError);
    expect(dup.vendorCode).toBe('already_assigned');
    const unknownRole = await failure(h.call('iam.grant_role', { ...grant, role: 'root' }));
    expect(unknownRole.vendorCode).toBe('unknown_role');
    const nobody = await failure(h.call('iam.get_role_assignments', { principalId: 'mallory' }));
    expect(nobody.vendorStatus).toBe(404);
    h.vendors.admin.setFaults('iam', { failNext: [{ operation: 'grant_role', count: 1, status: 503 }] });
    expect(await failure(h.call('iam.grant_role', grant))).toBeInstanceOf(VendorUnavailableError);
    h.vendors.admin.setFaults('iam', { failNext: [{ operation: 'grant_role', count: 1, status: 401 }] });
    expect(await failure(h.call('iam.grant_role', grant))).toBeInstanceOf(VendorAuthError);
    h.vendors.admin.setFaults('iam', { timeoutNext: [{ operation: 'get_role_assignments', count: 1 }] });
    expect(await failure(h.call('iam.get_role_assignments', { principalId: 'alice' }))).toBeInstanceOf(VendorTimeoutError);
  });

  it('dry run validates the grant without granting', async () => {
    const preview = (await h.call('iam.grant_role', grant, { dryRun: true })) as { details: { after: string[] } };
    expect(preview.details.after).toEqual(['editor', 'viewer']);
    expect(h.vendors.admin.stats('iam').sideEffects).toEqual({});
  });

  it('reusing an idempotency key grants once', async () => {
    const key = randomUUID();
    const a = await h.call('iam.grant_role', grant, { idempotencyKey: key });
    const b = await h.call('iam.grant_role', grant, { idempotencyKey: key });
    expect(b).toEqual(a);
    expect(h.vendors.admin.stats('iam').sideEffects.grant_role).toBe(1);
  });

  it('reconciles after commit-then-drop with the vendor snapshots', async () => {
    h.vendors.admin.setFaults('iam', { commitThenDrop: [{ operation: 'grant_role', count: 1 }] });
    const change = (await h.call('iam.grant_role', grant)) as Change;
    expect(change).toMatchObject({ before: ['viewer'], after: ['editor', 'viewer'] });
    expect(h.vendors.admin.stats('iam').sideEffects.grant_role).toBe(1);
  });

  it('the admin endpoint needs the admin token, not the API key; the API needs the API key', async () => {
    const base = h.vendors.baseUrls.iam!;
    const withApiKey = await fetch(`${base}/_admin/stats`, { headers: { 'x-api-key': h.credentials.iam! } });
    expect(withApiKey.status).toBe(401);
    const withAdmin = await fetch(`${base}/_admin/faults`, {
      method: 'POST',
      headers: { 'x-admin-token': h.vendors.adminTokens.iam!, 'content-type': 'application/json' },
      body: JSON.stringify({ failNext: [{ operation: 'get_role_assignments', count: 1, status: 503 }] }),
    });
    expect(withAdmin.status).toBe(200);
    expect(await failure(h.call('iam.get_role_assignments', { principalId: 'alice' }))).toBeInstanceOf(VendorUnavailableError);
    const stats = await fetch(`${base}/_admin/stats`, { headers: { 'x-admin-token': h.vendors.adminTokens.iam! } });
    expect(((await stats.json()) as { requests: Record<string, number> }).requests.get_role_assignments).toBe(1);
    const noKey = await fetch(`${base}/v1/principals/alice/roles`);
    expect(noKey.status).toBe(401);
    const otherKey = await fetch(`${base}/v1/principals/alice/roles`, { headers: { authorization: `Bearer ${h.credentials.travel}` } });
    expect(otherKey.status).toBe(401);
  });
});
