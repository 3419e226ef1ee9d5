import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProblemType } from '../../lambdas/shared/problem';
import { httpApi } from '../../lambdas/middleware/http';
import { approvalIdFor } from '../../lambdas/shared/ids';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';
import { startTestRuntime, type TestRuntime } from '../helpers/local-runtime';
import { rawHttp } from '../helpers/raw-http';

/**
 * Identity claims through the real HTTP path: the local stand-in verifies the token with
 * jose and flattens its claims exactly as API Gateway does (`[a b]`); the handler must read
 * roles from the token itself, so names with spaces, commas and brackets survive intact.
 */

/** Role names identity providers really issue, and ones built to look like a flattened list. */
const roleName = fc.oneof(
  fc.constantFrom('Security Admins', 'Employee SecurityAdmin', 'a,b', '[x]', '[Employee SecurityAdmin]', ' padded ', 'SecurityAdmin', 'Ünïcode 管理者', 'x"y', 'a\\b'),
  fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !/\p{Cs}/u.test(s)),
  fc.array(fc.constantFrom('a', ' ', ',', '[', ']', 'Admin'), { minLength: 1, maxLength: 8 }).map((parts) => parts.join('')),
);

describe('roles read exactly as issued (custom echo route)', () => {
  let rt: TestRuntime;
  const echo = httpApi({ 'GET /whoami': { auth: true, handle: async (req) => ({ status: 200, body: req.principal }) } });

  beforeAll(async () => {
    rt = await startTestRuntime({
      routes: [{ method: 'GET', path: '/whoami', fn: 'intake', auth: true }],
      loadHandler: async () => echo,
    });
  });
  afterAll(async () => {
    await rt?.close();
  });

  const whoami = async (authorization: string) => {
    const res = await fetch(`${rt.url}/whoami`, { headers: { authorization } });
    return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as Record<string, unknown> };
  };

  it('round-trips any roles array as one set of exact names', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(roleName, { maxLength: 6 }), async (roles) => {
        const token = await rt.token('alice', { roles });
        const res = await whoami(`Bearer ${token}`);
        expect(res.status).toBe(200);
        expect(res.body.roles).toEqual([...new Set(roles)].sort());
      }),
      { numRuns: 40 },
    );
  });

  it('keeps "Employee SecurityAdmin" one role, and "Security Admins" one role', async () => {
    const res = await whoami(`Bearer ${await rt.token('mallory', { roles: ['Employee SecurityAdmin', 'Security Admins', 'a,b', '[x]'] })}`);
    expect(res.body).toEqual({ sub: 'mallory', roles: ['Employee SecurityAdmin', 'Security Admins', '[x]', 'a,b'] });
  });

  it('accepts the scheme in any case (RFC 9110)', async () => {
    const token = await rt.token('alice', { roles: ['Employee'] });
    expect((await whoami(`bearer ${token}`)).status).toBe(200);
    expect((await whoami(`BEARER ${token}`)).status).toBe(200);
  });

  it.each([
    ['a string', 'SecurityAdmin'],
    ['a number', 7],
    ['an object', { SecurityAdmin: true }],
    ['an array holding a number', ['Employee', 1]],
    ['an array holding an empty name', ['']],
    ['null', null],
  ])('refuses a signed token whose roles claim is %s (401 problem)', async (_label, roles) => {
    const token = await rt.runtime.issuer.sign({ sub: 'alice', roles: roles as unknown as string[] });
    const res = await whoami(`Bearer ${token}`);
    expect(res.status).toBe(401);
    expect(res.type).toBe('application/problem+json');
    expect(res.body).toMatchObject({ type: ProblemType.unauthorized, status: 401 });
    expect(String(res.body.detail)).toMatch(/roles/);
  });

  it('refuses a request carrying two Authorization headers, even two valid ones', async () => {
    const alice = await rt.token('alice', { roles: ['Employee'] });
    const admin = await rt.token('carol', { roles: ['SecurityAdmin'] });
    const res = await rawHttp(
      rt.runtime.port,
      `GET /whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${alice}\r\nAuthorization: Bearer ${admin}\r\nConnection: close\r\n\r\n`,
    );
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(res.body)).toMatchObject({ type: ProblemType.unauthorized, status: 401 });
  });
});

describe('a quorum of SecurityAdmins counts only real SecurityAdmins (whole control plane)', () => {
  let cp: TestControlPlane;
  beforeAll(async () => {
    cp = await startTestControlPlane();
  });
  afterAll(async () => {
    await cp?.close();
  });

  const decide = async (token: string, approvalId: string, planHash: string) => {
    const res = await fetch(`${cp.url}/v1/approvals/${approvalId}/decision`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ decision: 'approve', planHash }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };

  it('refuses the votes of "Employee SecurityAdmin", "Security Admins" and "SecurityAdmin,Employee"', async () => {
    const alice = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
    const grant = { tool: 'iam.grant_role', arguments: { principalId: 'bob', role: 'editor', reason: 'on-call' }, agent: { name: 'ops-bot' } };
    const accepted = await cp.post(alice, grant, { prefer: 'respond-async' });
    expect(accepted.status).toBe(202);
    const actionId = accepted.body.id as string;
    await expect.poll(async () => (await cp.get(alice, `/v1/actions/${actionId}`)).body.status, { timeout: 10_000 }).toBe('awaiting_approval');
    const approvalId = approvalIdFor(actionId);

    const carol = await cp.token('carol', { roles: ['SecurityAdmin'] });
    await expect.poll(async () => (await cp.get(carol, `/v1/approvals/${approvalId}`)).status, { timeout: 10_000 }).toBe(200);
    const { planHash } = (await cp.get(carol, `/v1/approvals/${approvalId}`)).body as { planHash: string };

    for (const roles of [['Employee SecurityAdmin'], ['Security Admins'], ['SecurityAdmin,Employee'], ['[SecurityAdmin]']]) {
      const impostor = await cp.token(`impostor-${roles[0]!.length}`, { roles });
      const vote = await decide(impostor, approvalId, planHash);
      expect(vote.status, JSON.stringify(roles)).toBe(403);
      expect(vote.body.type).toBe(ProblemType.approvalForbidden);
    }

    const first = await decide(carol, approvalId, planHash);
    expect(first.body).toMatchObject({ status: 'pending', approvalsSoFar: 1, quorum: 2 });
    const dave = await cp.token('dave', { roles: ['Employee', 'SecurityAdmin'] });
    const second = await decide(dave, approvalId, planHash);
    expect(second.body).toMatchObject({ status: 'approved', approvalsSoFar: 2, quorum: 2 });
  });
});
