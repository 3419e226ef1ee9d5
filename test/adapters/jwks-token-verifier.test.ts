import fc from 'fast-check';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { JwksTokenVerifier } from '../../lambdas/adapters/aws/jwks-token-verifier';
import { TokenRejectedError } from '../../lambdas/ports/tokens';

/**
 * The verifier the intake function uses on AWS for /mcp (the JWT authorizer cannot send MCP's
 * 401 challenge): OpenID discovery → JWKS, then signature, iss, aud, exp, nbf, sub. The issuer
 * is a fake fetch serving the discovery document and the key set; no network.
 */
const ISSUER = 'https://login.example.com/';
const AUDIENCE = ['airlock', 'airlock-mcp'];

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;
let issuerKey: KeyPair;
let strangerKey: KeyPair;
let jwks: { keys: JWK[] };

beforeAll(async () => {
  issuerKey = await generateKeyPair('RS256');
  strangerKey = await generateKeyPair('RS256');
  jwks = { keys: [{ ...(await exportJWK(issuerKey.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] };
});

/** A fake issuer: counts requests, can be made to fail discovery. */
function fakeIssuer(options: { discoveryStatus?: number; jwksUri?: unknown } = {}) {
  const calls: string[] = [];
  const fetchImpl = (async (input: string | URL | Request) => {
    const url = String(input instanceof Request ? input.url : input);
    calls.push(url);
    if (url === 'https://login.example.com/.well-known/openid-configuration') {
      if (options.discoveryStatus) return new Response('down', { status: options.discoveryStatus });
      return Response.json({ issuer: ISSUER, jwks_uri: 'jwksUri' in options ? options.jwksUri : 'https://login.example.com/keys' });
    }
    if (url === 'https://login.example.com/keys') return Response.json(jwks);
    return new Response('not found', { status: 404 });
  }) as typeof fetch;
  return { fetch: fetchImpl, calls };
}

async function token(claims: Record<string, unknown>, o: { key?: KeyPair; kid?: string; iss?: string; aud?: string | string[]; exp?: number | string; nbf?: number } = {}) {
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: o.kid ?? 'k1' }).setIssuedAt().setIssuer(o.iss ?? ISSUER).setAudience(o.aud ?? 'airlock').setExpirationTime(o.exp ?? '5m');
  if (o.nbf !== undefined) jwt = jwt.setNotBefore(o.nbf);
  return jwt.sign((o.key ?? issuerKey).privateKey);
}

async function rejection(verifier: JwksTokenVerifier, jwt: string): Promise<string> {
  const error = await verifier.verify(jwt).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TokenRejectedError);
  return (error as TokenRejectedError).reason;
}

describe('JwksTokenVerifier', () => {
  it('accepts a token the issuer signed for one of the audiences, and returns its claims', async () => {
    // Prepare
    const issuer = fakeIssuer();
    const verifier = new JwksTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, fetch: issuer.fetch });
    // Act
    const claims = await verifier.verify(await token({ sub: 'alice', roles: ['Employee'] }, { aud: 'airlock-mcp' }));
    // Assess
    expect(claims).toMatchObject({ sub: 'alice', roles: ['Employee'], iss: ISSUER, aud: 'airlock-mcp' });
    expect(verifier.issuer).toBe(ISSUER);
  });

  it('refuses what the JWT authorizer refuses: another issuer, audience or key, expired, not yet valid, no sub', async () => {
    const verifier = new JwksTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, fetch: fakeIssuer().fetch, clockToleranceSeconds: 0 });
    const now = Math.floor(Date.now() / 1000);
    expect(await rejection(verifier, await token({ sub: 'a' }, { iss: 'https://evil.example.com/' }))).toBe('ERR_JWT_CLAIM_VALIDATION_FAILED');
    expect(await rejection(verifier, await token({ sub: 'a' }, { aud: 'someone-else' }))).toBe('ERR_JWT_CLAIM_VALIDATION_FAILED');
    expect(await rejection(verifier, await token({ sub: 'a' }, { exp: now - 60 }))).toBe('ERR_JWT_EXPIRED');
    expect(await rejection(verifier, await token({ sub: 'a' }, { nbf: now + 600 }))).toBe('ERR_JWT_CLAIM_VALIDATION_FAILED');
    expect(await rejection(verifier, await token({}))).toBe('ERR_JWT_CLAIM_VALIDATION_FAILED');
    // Signed by a key the issuer never published, under its kid or another.
    expect(await rejection(verifier, await token({ sub: 'a' }, { key: strangerKey }))).toBe('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    expect(await rejection(verifier, await token({ sub: 'a' }, { key: strangerKey, kid: 'k2' }))).toMatch(/^ERR_JWKS_/);
  });

  it('refuses unsigned and symmetric tokens (no algorithm confusion)', async () => {
    const verifier = new JwksTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, fetch: fakeIssuer().fetch });
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const payload = { sub: 'mallory', iss: ISSUER, aud: 'airlock', exp: Math.floor(Date.now() / 1000) + 300 };
    expect(await rejection(verifier, `${b64({ alg: 'none', kid: 'k1' })}.${b64(payload)}.`)).toMatch(/^ERR_/);
    const hs = await new SignJWT(payload).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(new TextEncoder().encode(JSON.stringify(jwks.keys[0])));
    expect(await rejection(verifier, hs)).toMatch(/^ERR_/);
  });

  it('refuses empty and oversized tokens before fetching anything', async () => {
    const issuer = fakeIssuer();
    const verifier = new JwksTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, fetch: issuer.fetch });
    expect(await rejection(verifier, '')).toBe('size');
    expect(await rejection(verifier, 'a'.repeat(16 * 1024 + 1))).toBe('size');
    expect(issuer.calls).toEqual([]);
  });

  it('reads the discovery document and the keys once for many tokens', async () => {
    const issuer = fakeIssuer();
    const verifier = new JwksTokenVerifier({ issuer: `${ISSUER}/`, audience: AUDIENCE, fetch: issuer.fetch });
    // A trailing slash too many still finds the discovery document; the issuer claim must match as configured.
    const viaSlash = new JwksTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, fetch: issuer.fetch });
    for (let i = 0; i < 5; i++) await viaSlash.verify(await token({ sub: `u${i}` }));
    expect(issuer.calls.filter((c) => c.endsWith('openid-configuration'))).toHaveLength(1);
    expect(issuer.calls.filter((c) => c.endsWith('/keys'))).toHaveLength(1);
    expect(await rejection(verifier, await token({ sub: 'a' }))).toBe('ERR_JWT_CLAIM_VALIDATION_FAILED');
  });

  it('answers keys-unavailable when discovery fails, and tries discovery again on the next token', async () => {
    const down = fakeIssuer({ discoveryStatus: 503 });
    const verifier = new JwksTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, fetch: down.fetch });
    expect(await rejection(verifier, await token({ sub: 'a' }))).toBe('keys-unavailable');
    expect(await rejection(verifier, await token({ sub: 'a' }))).toBe('keys-unavailable');
    expect(down.calls.filter((c) => c.endsWith('openid-configuration'))).toHaveLength(2);
    const noJwks = new JwksTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, fetch: fakeIssuer({ jwksUri: 42 }).fetch });
    expect(await rejection(noJwks, await token({ sub: 'a' }))).toBe('keys-unavailable');
  });

  it('never answers anything but a verified token or TokenRejectedError, whatever the string (fast-check)', async () => {
    const verifier = new JwksTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, fetch: fakeIssuer().fetch });
    const good = await token({ sub: 'alice' });
    const [h, p, s] = good.split('.') as [string, string, string];
    const tampered = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.tuple(fc.base64String({ maxLength: 200 }), fc.base64String({ maxLength: 200 }), fc.base64String({ maxLength: 200 })).map((parts) => parts.join('.')),
      fc.string({ minLength: 1, maxLength: 40 }).map((x) => `${h}.${p}${x}.${s}`),
      fc.string({ minLength: 1, maxLength: 40 }).map((x) => `${h}.${p}.${s.slice(0, -4)}${x}`),
    );
    await fc.assert(
      fc.asyncProperty(tampered, async (candidate) => {
        fc.pre(candidate !== good);
        await expect(verifier.verify(candidate)).rejects.toBeInstanceOf(TokenRejectedError);
      }),
      { numRuns: 200 },
    );
  });
});
