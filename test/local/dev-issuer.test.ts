import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, importJWK, SignJWT, UnsecuredJWT, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  InvalidTokenError,
  ISSUER_KEY_FILE,
  loadOrCreateIssuer,
  LOCAL_AUDIENCE,
  LOCAL_ISSUER,
  parseTtl,
  type DevIssuer,
} from '../../local/dev-issuer';

let stateDir: string;
let issuer: DevIssuer;
let privateJwk: JWK;

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'airlock-issuer-'));
  issuer = await loadOrCreateIssuer(stateDir);
  privateJwk = JSON.parse(await readFile(join(stateDir, 'issuer', ISSUER_KEY_FILE), 'utf8')) as JWK;
});
afterAll(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

async function forge(payload: Record<string, unknown>, header: { alg?: string; kid?: string } = {}, jwk: JWK = privateJwk) {
  const key = await importJWK(jwk, 'ES256');
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: LOCAL_ISSUER, aud: LOCAL_AUDIENCE, sub: 'alice', iat: now, exp: now + 60, ...payload })
    .setProtectedHeader({ alg: 'ES256', kid: issuer.kid, ...header })
    .sign(key);
}

async function reason(token: string): Promise<string> {
  try {
    await issuer.verify(token);
    return 'accepted';
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidTokenError);
    return (error as InvalidTokenError).reason;
  }
}

describe('dev issuer', () => {
  it('stores its private key 0600 in a 0700 folder', async () => {
    expect((await stat(join(stateDir, 'issuer'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(stateDir, 'issuer', ISSUER_KEY_FILE))).mode & 0o777).toBe(0o600);
    expect(privateJwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', kid: issuer.kid });
    expect(issuer.jwks.keys[0]).not.toHaveProperty('d');
  });

  it('signs tokens it verifies, with the principal claims', async () => {
    const token = await issuer.sign({ sub: 'alice', roles: ['employee'], manager: 'bob', department: 'sales' }, '10m');
    const claims = await issuer.verify(token);
    expect(claims).toMatchObject({
      iss: LOCAL_ISSUER,
      aud: LOCAL_AUDIENCE,
      sub: 'alice',
      roles: ['employee'],
      manager: 'bob',
      department: 'sales',
    });
    expect(claims.exp! - claims.iat!).toBe(600);
    expect(typeof claims.jti).toBe('string');
  });

  it('reloads the same key from the state directory', async () => {
    const again = await loadOrCreateIssuer(stateDir);
    expect(again.kid).toBe(issuer.kid);
    await expect(again.verify(await issuer.sign({ sub: 'alice' }))).resolves.toMatchObject({ sub: 'alice' });
  });

  it('refuses expired tokens beyond the clock tolerance', async () => {
    const token = await issuer.sign({ sub: 'alice' }, 60, { now: new Date(Date.now() - 120_000) });
    expect(await reason(token)).toBe('ERR_JWT_EXPIRED');
  });

  it('refuses a wrong audience or issuer', async () => {
    expect(await reason(await forge({ aud: 'someone-else' }))).toBe('ERR_JWT_CLAIM_VALIDATION_FAILED');
    expect(await reason(await forge({ iss: 'https://evil.example' }))).toBe('ERR_JWT_CLAIM_VALIDATION_FAILED');
  });

  it('refuses tokens without sub', async () => {
    expect(await reason(await forge({ sub: undefined }))).toBe('ERR_JWT_CLAIM_VALIDATION_FAILED');
  });

  it('refuses alg none', async () => {
    const token = new UnsecuredJWT({ sub: 'alice', roles: ['admin'] }).setIssuer(LOCAL_ISSUER).setAudience(LOCAL_AUDIENCE).setIssuedAt().setExpirationTime('1h').encode();
    expect(await reason(token)).not.toBe('accepted');
  });

  it('refuses a token signed by another key, even with our kid', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ iss: LOCAL_ISSUER, aud: LOCAL_AUDIENCE, sub: 'mallory', iat: now, exp: now + 60 })
      .setProtectedHeader({ alg: 'ES256', kid: issuer.kid })
      .sign(privateKey);
    expect(await reason(token)).toBe('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  });

  it('refuses a tampered payload and an unknown kid', async () => {
    const [h, , s] = (await issuer.sign({ sub: 'alice', roles: ['employee'] })).split('.');
    const payload = Buffer.from(JSON.stringify({ sub: 'alice', roles: ['admin'], iss: LOCAL_ISSUER, aud: LOCAL_AUDIENCE })).toString('base64url');
    expect(await reason(`${h}.${payload}.${s}`)).toBe('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    expect(await reason(await forge({}, { kid: 'other' }))).toBe('kid');
  });

  it('remembers a verified token only by its exact bytes and within its time window', async () => {
    const token = await issuer.sign({ sub: 'alice', roles: ['employee'] }, '10s');
    const first = await issuer.verify(token);
    (first.roles as string[]).push('admin'); // a caller's changes never reach the next answer
    expect(await issuer.verify(token)).toMatchObject({ sub: 'alice', roles: ['employee'] });
    // Any other bytes are checked in full, even after the same token was remembered.
    const [h, p, s] = token.split('.');
    const flipped = `${s!.slice(0, -2)}${s!.endsWith('AA') ? 'BB' : 'AA'}`;
    expect(await reason(`${h}.${p}.${flipped}`)).toBe('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    // Past exp and the clock tolerance, the remembered token is refused as expired.
    vi.useFakeTimers({ now: Date.now() + 16_000, toFake: ['Date'] });
    try {
      expect(await reason(token)).toBe('ERR_JWT_EXPIRED');
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses garbage and oversized tokens', async () => {
    expect(await reason('not-a-jwt')).not.toBe('accepted');
    expect(await reason('a'.repeat(9000))).toBe('size');
  });
});

describe('parseTtl', () => {
  it.each([
    [60, 60],
    ['90', 90],
    ['30s', 30],
    ['15m', 900],
    ['1h', 3600],
    ['1d', 86400],
  ])('%j → %i seconds', (input, seconds) => {
    expect(parseTtl(input)).toBe(seconds);
  });

  it.each([0, -1, 1.5, '2d', '1w', 'abc', '', 86401])('refuses %j', (input) => {
    expect(() => parseTtl(input)).toThrow(RangeError);
  });
});
