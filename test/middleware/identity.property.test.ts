import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidClaimsError, principalFromVerifiedClaims } from '../../lambdas/shared/principal';
import { ProblemType } from '../../lambdas/shared/problem';
import { httpApi, type HttpEvent } from '../../lambdas/middleware/http';
import { decodeAuthorizationPayload, IdentityRefusedError } from '../../lambdas/middleware/identity';
import { httpEvent, lambdaContext, verifiedIdentity, verifiedToken } from '../helpers/events';

/** The edge reads identity from the verified token's JSON, cross-checked against the authorizer. */

const whoami = httpApi({ 'GET /whoami': { auth: true, handle: async (req) => ({ status: 200, body: req.principal }) } });

const claims = { sub: 'alice', iss: 'https://idp.example', iat: 1_800_000_000, exp: 1_800_000_900, jti: 'j-1', roles: ['Employee'], manager: 'bob' };

/** An event whose Authorization header and authorizer claims come from possibly different tokens. */
function event(headerClaims: Record<string, unknown>, authorizerClaims: Record<string, unknown> = headerClaims, authorization?: string): HttpEvent {
  const e = httpEvent({ method: 'GET', path: '/whoami', claims: null, headers: { authorization: authorization ?? verifiedIdentity(headerClaims).authorization } });
  return {
    ...e,
    requestContext: { ...e.requestContext, authorizer: { principalId: '', integrationLatency: 0, jwt: { claims: verifiedIdentity(authorizerClaims).claims, scopes: [] } } },
  } as HttpEvent;
}

async function call(e: HttpEvent) {
  const res = await whoami(e, lambdaContext);
  return { status: res.statusCode ?? 0, headers: res.headers ?? {}, body: JSON.parse(res.body ?? 'null') as Record<string, unknown> };
}

const wellFormed = (s: string) => !/\p{Cs}/u.test(s);
const role = fc.oneof(
  fc.string({ minLength: 1, maxLength: 64 }).filter(wellFormed),
  fc.string({ minLength: 1, maxLength: 16, unit: 'grapheme' }),
  fc.constantFrom('Security Admins', 'Employee SecurityAdmin', 'a,b', '[x]', '[a b]', ' ', '\u0000', '"', '\\'),
);

describe('principalFromVerifiedClaims', () => {
  it('returns any roles array as its exact set of names, whatever they contain', () => {
    fc.assert(
      fc.property(fc.array(role, { maxLength: 20 }), (roles) => {
        expect(principalFromVerifiedClaims({ sub: 's', roles }).roles).toEqual([...new Set(roles)].sort());
      }),
      { numRuns: 500 },
    );
  });

  it('refuses every roles claim that is not an array of 1–256-character strings', () => {
    const notRoles = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.dictionary(fc.string(), fc.string()),
      fc.array(fc.oneof(fc.integer(), fc.constant(null), fc.constant(''), fc.constant('x'.repeat(257)), fc.constant('\ud800'), fc.array(fc.string())), { minLength: 1 }).chain((bad) =>
        fc.array(fc.string({ minLength: 1, maxLength: 5 })).map((good) => [...good, ...bad]),
      ),
      fc.constant(Array.from({ length: 257 }, (_, i) => `r${i}`)),
    );
    fc.assert(
      fc.property(notRoles, (roles) => {
        expect(() => principalFromVerifiedClaims({ sub: 's', roles })).toThrow(InvalidClaimsError);
      }),
    );
  });

  it('refuses a missing or malformed sub, manager or department', () => {
    for (const bad of [{}, { sub: '' }, { sub: 1 }, { sub: ['a'] }, { sub: 's', manager: ['bob'] }, { sub: 's', department: 3 }, { sub: 'x'.repeat(257) }, { sub: 'a\udc00' }]) {
      expect(() => principalFromVerifiedClaims(bad), JSON.stringify(bad)).toThrow(InvalidClaimsError);
    }
    expect(principalFromVerifiedClaims({ sub: 's', extra: { any: 'shape' } })).toEqual({ sub: 's', roles: [] });
  });
});

describe('the HTTP edge', () => {
  it('reads the principal from the Authorization token, not from the flattened claims', async () => {
    const res = await call(event({ ...claims, roles: ['Employee SecurityAdmin', 'Security Admins'] }));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ sub: 'alice', roles: ['Employee SecurityAdmin', 'Security Admins'], manager: 'bob' });
  });

  it.each([
    ['another subject', { sub: 'mallory' }],
    ['another issuer', { iss: 'https://evil.example' }],
    ['another jti', { jti: 'j-2' }],
    ['another iat', { iat: claims.iat + 1 }],
    ['another exp', { exp: claims.exp + 3600 }],
    ['another manager', { manager: 'mallory' }],
    ['a department the authorizer did not see', { department: 'finance' }],
  ])('answers 401 when the header token differs from the verified one: %s', async (_label, change) => {
    const res = await call(event({ ...claims, ...change }, claims));
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.body).toMatchObject({ type: ProblemType.unauthorized, status: 401, detail: 'A valid bearer token is required.' });
  });

  it('accepts a bare token and any case of the Bearer scheme, as API Gateway does', async () => {
    const token = verifiedToken(claims);
    for (const authorization of [token, `bearer ${token}`, `BEARER  ${token}`, `Bearer ${token} `]) {
      expect((await call(event(claims, claims, authorization))).status, authorization.slice(0, 8)).toBe(200);
    }
  });

  it('answers 401 for repeated, missing, unsigned or undecodable tokens', async () => {
    const token = verifiedToken(claims);
    const part = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
    for (const authorization of [
      `Bearer ${token},Bearer ${token}`,
      `Bearer ${token}, Bearer ${token}`,
      '',
      'Bearer',
      'Basic dXNlcjpwYXNz',
      `${part({ alg: 'none' })}.${part(claims)}.`,
      `${part({ typ: 'JWT' })}.${part(claims)}.sig`,
      `${part({ alg: 'ES256' })}.${part('not json')}.sig`,
      `${part({ alg: 'ES256' })}.${part([claims])}.sig`,
      `${part({ alg: 'ES256' })}.${Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url')}.sig`,
      `${part({ alg: 'ES256' })}.${part(claims)}.sig.extra`,
      `Bearer ${'a'.repeat(20_000)}.${part(claims)}.sig`,
    ]) {
      const res = await call(event(claims, claims, authorization));
      expect(res.status, authorization.slice(0, 60)).toBe(401);
      expect(res.body.type).toBe(ProblemType.unauthorized);
    }
  });

  it('answers 401 when there is a token but no authorizer claims', async () => {
    const e = httpEvent({ method: 'GET', path: '/whoami', claims: null, headers: { authorization: verifiedIdentity(claims).authorization } });
    expect((await call(e)).status).toBe(401);
  });

  it('answers any Authorization header with 200 for the verified token or a 401 problem, never 5xx', async () => {
    const token = verifiedToken(claims);
    const header = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.string({ maxLength: 40 }).map((s) => `Bearer ${s}`),
      fc.tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 })).map(([a, b]) => `Bearer ${token}${a}${b}`),
      fc.jsonValue().map((v) => `Bearer eyJhbGciOiJFUzI1NiJ9.${Buffer.from(JSON.stringify(v) ?? '').toString('base64url')}.x`),
    );
    await fc.assert(
      fc.asyncProperty(header, async (authorization) => {
        const res = await call(event(claims, claims, authorization));
        expect([200, 401]).toContain(res.status);
        if (res.status === 200) expect(res.body.sub).toBe('alice');
        else expect(res.body.type).toBe(ProblemType.unauthorized);
      }),
      { numRuns: 400 },
    );
  });
});

describe('decodeAuthorizationPayload', () => {
  const reason = (header: string | undefined) => {
    try {
      decodeAuthorizationPayload(header);
      return 'decoded';
    } catch (error) {
      return error instanceof IdentityRefusedError ? error.reason : 'other';
    }
  };

  it('says why a header gives no payload, for the log', () => {
    expect(reason(undefined)).toBe('no-token');
    expect(reason('Bearer a.b')).toBe('malformed-token');
    expect(reason(verifiedToken({ sub: 's' }))).toBe('decoded');
  });
});
