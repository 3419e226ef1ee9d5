import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { httpApi, type HttpEvent } from '../../lambdas/middleware/http';
import { AgentClaimOrder, InvalidClaimsError, principalFromVerifiedClaims } from '../../lambdas/shared/principal';
import { httpEvent, lambdaContext, verifiedIdentity } from '../helpers/events';

/**
 * The agent a token acts for comes from its verified claims only, in the documented order:
 * `act.sub` (RFC 8693), then `azp`, then `client_id`. A claim of the wrong shape refuses the
 * token rather than guessing.
 */

describe('the verified agent', () => {
  it('is act.sub, else azp, else client_id', () => {
    expect(AgentClaimOrder).toEqual(['act.sub', 'azp', 'client_id']);
    const base = { sub: 'alice', roles: [] };
    expect(principalFromVerifiedClaims({ ...base, act: { sub: 'trip-bot' }, azp: 'console', client_id: 'cid' }).agent).toBe('trip-bot');
    expect(principalFromVerifiedClaims({ ...base, azp: 'console', client_id: 'cid' }).agent).toBe('console');
    expect(principalFromVerifiedClaims({ ...base, client_id: 'cid' }).agent).toBe('cid');
    expect(principalFromVerifiedClaims(base)).toEqual({ sub: 'alice', roles: [] });
    // A nested actor chain: the outermost act is the current actor.
    expect(principalFromVerifiedClaims({ ...base, act: { sub: 'planner', act: { sub: 'upstream' } } }).agent).toBe('planner');
  });

  it('refuses a token whose agent claims are of another shape, for any such shape', () => {
    const bad = fc.oneof(
      fc.record({ act: fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.record({ sub: fc.oneof(fc.integer(), fc.constant(''), fc.boolean()) })) }),
      fc.record({ azp: fc.oneof(fc.integer(), fc.constant(''), fc.array(fc.string()), fc.string({ minLength: 257, maxLength: 300 })) }),
      fc.record({ client_id: fc.oneof(fc.integer(), fc.constant(''), fc.boolean()) }),
    );
    fc.assert(
      fc.property(bad, (claims) => {
        expect(() => principalFromVerifiedClaims({ sub: 'alice', ...claims })).toThrow(InvalidClaimsError);
      }),
    );
  });

  it('reaches the handler from the Authorization header the authorizer verified (never from the body)', async () => {
    const whoami = httpApi({ 'POST /whoami': { auth: true, handle: async (req) => ({ status: 200, body: req.principal }) } });
    const claims = { sub: 'alice', iss: 'https://idp.example', iat: 1_800_000_000, exp: 1_800_000_900, jti: 'j-2', roles: ['Employee'], azp: 'trip-bot' };
    const e = httpEvent({ method: 'POST', path: '/whoami', claims: null, headers: { authorization: verifiedIdentity(claims).authorization, 'content-type': 'application/json' }, body: JSON.stringify({ agent: { name: 'someone-else' } }) });
    const event = { ...e, requestContext: { ...e.requestContext, authorizer: { principalId: '', integrationLatency: 0, jwt: { claims: verifiedIdentity(claims).claims, scopes: [] } } } } as HttpEvent;
    const res = await whoami(event, lambdaContext);
    expect(JSON.parse(res.body ?? 'null')).toMatchObject({ sub: 'alice', agent: 'trip-bot' });
    // The authorizer's copy must agree on azp: a header token naming another client is refused.
    const forged = { ...event, headers: { ...event.headers, authorization: verifiedIdentity({ ...claims, azp: 'other-bot' }).authorization } } as HttpEvent;
    expect((await whoami(forged, lambdaContext)).statusCode).toBe(401);
  });
});
