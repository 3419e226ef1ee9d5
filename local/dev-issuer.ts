import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  SignJWT,
  type JWK,
  type JWTPayload,
} from 'jose';
import { z } from 'zod';
import { createPrivateFileOnce } from '../lambdas/adapters/local/private-file';
import { ensurePrivateDir } from './state-dir';

/**
 * The local dev issuer: stands in for the identity provider whose tokens API Gateway's JWT
 * authorizer checks in AWS. Its signing key is generated on first run under
 * `<stateDir>/issuer/` (0600) and reused, so tokens survive a restart.
 */

/** `iss` of every local token. Fixed (not port-based) so tokens survive a port change. */
export const LOCAL_ISSUER = 'airlock-local';
/** `aud` the local runtime requires; the stack's authorizer is configured the same way. */
export const LOCAL_AUDIENCE = 'airlock';
/** ES256: a compact, widely supported JWS algorithm (jose signs and verifies it natively). */
export const LOCAL_ALG = 'ES256';
/** Seconds of clock skew accepted on exp/nbf/iat, as small as a dev machine allows. */
export const CLOCK_TOLERANCE_SECONDS = 5;
/** Upper bound on a local token's lifetime. */
export const MAX_TOKEN_TTL_SECONDS = 24 * 60 * 60;
const MAX_TOKEN_CHARS = 8 * 1024;
/** Tokens remembered as verified (least recently used forgotten first). */
const VERIFIED_CACHE_SIZE = 4096;

/** File under `<stateDir>/issuer/` that holds the private JWK. */
export const ISSUER_KEY_FILE = 'signing-key.jwk.json';

/** The token was missing a piece, malformed, forged, expired, or for someone else. */
export class InvalidTokenError extends Error {
  /** jose's error code (`ERR_JWT_EXPIRED`, …) or a local reason; for logs, never for callers. */
  readonly reason: string;
  constructor(reason: string, options?: { cause?: unknown }) {
    super(`Invalid token: ${reason}`, options);
    this.name = 'InvalidTokenError';
    this.reason = reason;
  }
}

/** Claims a local token carries about the principal (see shared/principal ClaimNames). */
export interface PrincipalClaims {
  sub: string;
  roles?: string[];
  manager?: string;
  department?: string;
  /** Anything else (e.g. `scope`); standard claims (iss, aud, exp, …) are always set by the issuer. */
  [claim: string]: unknown;
}

export interface DevIssuer {
  issuer: string;
  audience: string;
  alg: typeof LOCAL_ALG;
  /** Key id in every token header; the verifier refuses any other. */
  kid: string;
  /** Public key set, e.g. for a `/.well-known/jwks.json` or another verifier. */
  jwks: { keys: JWK[] };
  /**
   * Signs a token for `claims.sub`. `ttl` is seconds or a duration like `15m`, `1h`;
   * `now` exists so tests can mint already-expired tokens.
   */
  sign(claims: PrincipalClaims, ttl?: number | string, options?: { now?: Date }): Promise<string>;
  /** Verifies signature, alg, kid, iss, aud, exp/nbf/iat and returns the payload; throws InvalidTokenError. */
  verify(token: string): Promise<JWTPayload>;
}

const PrivateJwkSchema = z
  .object({
    kty: z.literal('EC'),
    crv: z.literal('P-256'),
    x: z.string().min(1),
    y: z.string().min(1),
    d: z.string().min(1),
    kid: z.string().min(1),
    alg: z.literal(LOCAL_ALG),
  })
  .passthrough();

/** Parses `30`, `30s`, `15m`, `1h`, `1d` into seconds, within (0, MAX_TOKEN_TTL_SECONDS]. */
export function parseTtl(ttl: number | string): number {
  let seconds: number;
  if (typeof ttl === 'number') {
    seconds = ttl;
  } else {
    const m = /^\s*(\d{1,7})\s*([smhd]?)\s*$/i.exec(ttl);
    if (!m) throw new RangeError(`Invalid ttl ${JSON.stringify(ttl)}; use e.g. 900, 15m, 1h`);
    const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? '').toLowerCase() as '' | 's' | 'm' | 'h' | 'd'];
    seconds = Number(m[1]) * unit;
  }
  if (!Number.isInteger(seconds) || seconds <= 0 || seconds > MAX_TOKEN_TTL_SECONDS) {
    throw new RangeError(`ttl must be between 1 second and ${MAX_TOKEN_TTL_SECONDS / 3600} hours`);
  }
  return seconds;
}

async function generatePrivateJwk(): Promise<string> {
  const { privateKey } = await generateKeyPair(LOCAL_ALG, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  return `${JSON.stringify({ ...jwk, kid, alg: LOCAL_ALG, use: 'sig' }, null, 2)}\n`;
}

/**
 * Loads the issuer key from `<stateDir>/issuer/`, generating it on first run. Concurrent
 * first runs agree on one key (atomic create-if-absent).
 */
export async function loadOrCreateIssuer(stateDir: string): Promise<DevIssuer> {
  const dir = await ensurePrivateDir(join(stateDir, 'issuer'));
  const text = await createPrivateFileOnce(join(dir, ISSUER_KEY_FILE), generatePrivateJwk);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new Error(`${join(dir, ISSUER_KEY_FILE)} is not valid JSON; delete it to make a new key`, { cause });
  }
  const parsed = PrivateJwkSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(`${join(dir, ISSUER_KEY_FILE)} is not an ES256 private JWK; delete it to make a new key`);
  }
  const { d: _d, ...publicFields } = parsed.data;
  const publicJwk: JWK = { ...publicFields, use: 'sig' };
  const privateKey = await importJWK(parsed.data, LOCAL_ALG);
  const publicKey = await importJWK(publicJwk, LOCAL_ALG);
  const verified = new Map<string, JWTPayload>();
  const kid = parsed.data.kid;

  return {
    issuer: LOCAL_ISSUER,
    audience: LOCAL_AUDIENCE,
    alg: LOCAL_ALG,
    kid,
    jwks: { keys: [publicJwk] },
    async sign(claims, ttl = '1h', options = {}) {
      const lifetime = parseTtl(ttl);
      const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
      const { sub, ...rest } = claims;
      return new SignJWT(rest)
        .setProtectedHeader({ alg: LOCAL_ALG, kid, typ: 'JWT' })
        .setIssuer(LOCAL_ISSUER)
        .setAudience(LOCAL_AUDIENCE)
        .setSubject(sub)
        .setIssuedAt(now)
        .setNotBefore(now)
        .setExpirationTime(now + lifetime)
        .setJti(randomUUID())
        .sign(privateKey);
    },
    async verify(token) {
      if (token.length === 0 || token.length > MAX_TOKEN_CHARS) throw new InvalidTokenError('size');
      // A token whose exact bytes were verified before has the same signature, issuer, audience
      // and kid: only its time window can have changed. Agents send the same token on every
      // call; its ES256 check was ~3 % of the local control plane's CPU under the chaos storm.
      const known = verified.get(token);
      if (known) {
        verified.delete(token);
        const now = Date.now() / 1000;
        const { exp, nbf } = known;
        if (typeof exp === 'number' && now <= exp + CLOCK_TOLERANCE_SECONDS && (typeof nbf !== 'number' || now >= nbf - CLOCK_TOLERANCE_SECONDS)) {
          verified.set(token, known);
          return structuredClone(known);
        }
        // Out of its window: the full check below says how.
      }
      try {
        const { payload, protectedHeader } = await jwtVerify(token, publicKey, {
          issuer: LOCAL_ISSUER,
          audience: LOCAL_AUDIENCE,
          algorithms: [LOCAL_ALG],
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
          requiredClaims: ['sub', 'exp', 'iat'],
        });
        // API Gateway's authorizer also insists the header kid names a key it knows.
        if (protectedHeader.kid !== kid) throw new InvalidTokenError('kid');
        verified.set(token, structuredClone(payload));
        if (verified.size > VERIFIED_CACHE_SIZE) verified.delete(verified.keys().next().value!);
        return payload;
      } catch (error) {
        if (error instanceof InvalidTokenError) throw error;
        const code = error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : 'invalid';
        throw new InvalidTokenError(code, { cause: error });
      }
    },
  };
}
