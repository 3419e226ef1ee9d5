import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateIssuer, type DevIssuer } from '../../local/dev-issuer';
import { CODE_TTL_MS, CONSOLE_CLIENT_ID, devIssuerOidc } from '../../local/dev-issuer-oidc';
import type { LocalSite } from '../../local/site';

/**
 * The dev issuer's authorization code + PKCE endpoints, called as the local server calls them.
 * Trust boundary: anyone on the machine can send anything here, so every refusal is checked
 * and the token endpoint is fuzzed.
 */

const PORT = 8787;
const HOST = `127.0.0.1:${PORT}`;
const REDIRECT = `http://${HOST}/console/`;

let dir: string;
let issuer: DevIssuer;
let clock = Date.parse('2031-01-01T00:00:00Z');
let site: LocalSite;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'airlock-oidc-'));
  issuer = await loadOrCreateIssuer(dir);
  site = devIssuerOidc({ issuer, port: PORT, now: () => clock });
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function call(method: string, pathAndQuery: string, o: { body?: string; headers?: IncomingHttpHeaders } = {}) {
  const [rawPath, query = ''] = pathAndQuery.split('?');
  return site({
    method,
    rawPath: rawPath!,
    query: new URLSearchParams(query),
    headers: { host: HOST, ...o.headers },
    readBody: async (limit) => (o.body === undefined ? undefined : Buffer.byteLength(o.body) > limit ? 'too-large' : Buffer.from(o.body)),
  });
}

const verifierOf = () => randomBytes(40).toString('base64url');
const challengeOf = (v: string) => createHash('sha256').update(v).digest('base64url');

function authorizeParams(challenge: string, over: Record<string, string> = {}) {
  return new URLSearchParams({ response_type: 'code', client_id: CONSOLE_CLIENT_ID, redirect_uri: REDIRECT, state: 'st-1', code_challenge: challenge, code_challenge_method: 'S256', scope: 'openid', ...over });
}

/** Signs in as `sub` and returns the code from the redirect. */
async function codeFor(sub: string, verifier: string): Promise<string> {
  const res = (await call('POST', '/dev-issuer/authorize', { body: `${authorizeParams(challengeOf(verifier))}&sub=${sub}`, headers: { origin: `http://${HOST}`, 'content-type': 'application/x-www-form-urlencoded' } }))!;
  expect(res.statusCode).toBe(303);
  const location = new URL(String(res.headers.location));
  expect(`${location.origin}${location.pathname}`).toBe(REDIRECT);
  expect(location.searchParams.get('state')).toBe('st-1');
  return location.searchParams.get('code')!;
}

function token(form: Record<string, string>) {
  return call('POST', '/dev-issuer/token', { body: new URLSearchParams(form).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
}

const json = (res: { body: Buffer } | undefined) => JSON.parse(res!.body.toString('utf8')) as Record<string, unknown>;

describe('dev issuer sign-in (authorization code + PKCE)', () => {
  it('shows a sign-in page listing the demo people, with every request value escaped', async () => {
    const res = (await call('GET', `/dev-issuer/authorize?${authorizeParams(challengeOf(verifierOf()), { state: '"><script>alert(1)</script>' })}`))!;
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-security-policy']).toMatch(/script-src 'self'/);
    const html = res.body.toString('utf8');
    for (const sub of ['alice', 'bob', 'carol', 'dave', 'audrey', 'olivia']) expect(html).toContain(`name="sub" value="${sub}"`);
    expect(html).toContain('&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).not.toContain('<script>');
  });

  it('trades the code and the right verifier, once, for a token the runtime accepts', async () => {
    const verifier = verifierOf();
    const code = await codeFor('bob', verifier);
    const res = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: CONSOLE_CLIENT_ID, code_verifier: verifier });
    expect(res!.statusCode).toBe(200);
    expect(res!.headers['cache-control']).toBe('no-store');
    const body = json(res);
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 3600 });
    const claims = await issuer.verify(String(body.access_token));
    expect(claims).toMatchObject({ sub: 'bob', roles: ['Employee', 'Manager'], department: 'sales' });
    // Single use.
    const again = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: CONSOLE_CLIENT_ID, code_verifier: verifier });
    expect(again!.statusCode).toBe(400);
    expect(json(again).error).toBe('invalid_grant');
  });

  it('refuses a wrong verifier (and burns the code), another redirect URI, and an expired code', async () => {
    const v1 = verifierOf();
    const c1 = await codeFor('alice', v1);
    expect(json(await token({ grant_type: 'authorization_code', code: c1, redirect_uri: REDIRECT, client_id: CONSOLE_CLIENT_ID, code_verifier: verifierOf() })).error).toBe('invalid_grant');
    expect(json(await token({ grant_type: 'authorization_code', code: c1, redirect_uri: REDIRECT, client_id: CONSOLE_CLIENT_ID, code_verifier: v1 })).error).toBe('invalid_grant');

    const v2 = verifierOf();
    const c2 = await codeFor('alice', v2);
    expect(json(await token({ grant_type: 'authorization_code', code: c2, redirect_uri: `http://localhost:${PORT}/console/`, client_id: CONSOLE_CLIENT_ID, code_verifier: v2 })).error).toBe('invalid_grant');

    const v3 = verifierOf();
    const c3 = await codeFor('alice', v3);
    clock += CODE_TTL_MS + 1;
    expect(json(await token({ grant_type: 'authorization_code', code: c3, redirect_uri: REDIRECT, client_id: CONSOLE_CLIENT_ID, code_verifier: v3 })).error).toBe('invalid_grant');
  });

  it.each([
    ['a redirect URI off this runtime', { redirect_uri: 'https://evil.example/console/' }],
    ['another loopback port', { redirect_uri: 'http://127.0.0.1:9999/console/' }],
    ['the plain method', { code_challenge_method: 'plain' }],
    ['no state', { state: '' }],
    ['another client', { client_id: 'someone-else' }],
    ['the implicit flow', { response_type: 'token' }],
  ])('refuses %s without redirecting anywhere', async (_label, over) => {
    const res = (await call('GET', `/dev-issuer/authorize?${authorizeParams(challengeOf(verifierOf()), over)}`))!;
    expect(res.statusCode).toBe(400);
    expect(res.headers.location).toBeUndefined();
  });

  it('refuses an unknown person, a form from another origin, and another Host (DNS rebinding)', async () => {
    const form = `${authorizeParams(challengeOf(verifierOf()))}`;
    expect((await call('POST', '/dev-issuer/authorize', { body: `${form}&sub=mallory`, headers: { origin: `http://${HOST}` } }))!.statusCode).toBe(400);
    expect((await call('POST', '/dev-issuer/authorize', { body: `${form}&sub=alice`, headers: { origin: 'https://evil.example' } }))!.statusCode).toBe(403);
    const rebound = await site({ method: 'GET', rawPath: '/dev-issuer/authorize', query: authorizeParams(challengeOf(verifierOf())), headers: { host: 'evil.example:8787' }, readBody: async () => undefined });
    expect(rebound!.statusCode).toBe(421);
  });

  it('publishes a discovery document and its keys', async () => {
    const doc = json(await call('GET', '/dev-issuer/.well-known/openid-configuration'));
    expect(doc).toMatchObject({ authorization_endpoint: `http://${HOST}/dev-issuer/authorize`, token_endpoint: `http://${HOST}/dev-issuer/token`, code_challenge_methods_supported: ['S256'] });
    expect(json(await call('GET', '/dev-issuer/jwks.json'))).toEqual(issuer.jwks);
    expect(await call('GET', '/v1/tools')).toBeUndefined();
  });

  it('never issues a token for a request it did not authorize, whatever the form holds (property)', async () => {
    const verifier = verifierOf();
    const real = await codeFor('carol', verifier);
    const field = fc.oneof(fc.string({ maxLength: 80 }), fc.constantFrom(real, verifier, REDIRECT, CONSOLE_CLIENT_ID, 'authorization_code'));
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.constantFrom('grant_type', 'code', 'redirect_uri', 'client_id', 'code_verifier', 'x'), field), fc.boolean(), async (form, asJson) => {
        // Everything but the one right combination: the real code with its own verifier.
        fc.pre(!(form.code === real && form.code_verifier === verifier));
        const res = await call('POST', '/dev-issuer/token', {
          body: asJson ? JSON.stringify(form) : new URLSearchParams(form).toString(),
          headers: { 'content-type': asJson ? 'application/json' : 'application/x-www-form-urlencoded' },
        });
        expect([400, 401]).toContain(res!.statusCode);
        expect(json(res).error).toMatch(/^(invalid_request|invalid_grant|invalid_client|unsupported_grant_type)$/);
        expect(json(res).access_token).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });
});
