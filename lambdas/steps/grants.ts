import { randomUUID } from 'node:crypto';
import { errors as joseErrors, importJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import * as z from 'zod';
import type { VerifiedGrant } from '../tools/sdk';
import { SecretNames, type SecretsPort } from '../ports/secrets';
import type { StepKind } from '../ports/steps';

/**
 * Grants: short-lived, single-use JWTs naming exactly one step. Minted by the saga after
 * policy (and approval) said yes; verified by the connector before it does anything.
 * Signed with Ed25519 (EdDSA); the key lives in Secrets Manager (files locally).
 */

export const GRANT_ISSUER = 'airlock';
/** Grants never live longer than this, whatever the config says. */
export const MAX_GRANT_TTL_SECONDS = 15 * 60;
export const DEFAULT_GRANT_TTL_SECONDS = 5 * 60;
/** Clock skew tolerated between the minting and the verifying function. */
export const GRANT_CLOCK_TOLERANCE_SECONDS = 30;

/** Why a grant was refused; named, never retryable (a new attempt mints a new grant). */
export class GrantInvalidError extends Error {
  readonly retryable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GrantInvalidError';
  }
}

/** What a grant names: one call of one tool for one step of one action. */
export interface GrantSubject {
  principal: string;
  agent: string;
  connector: string;
  tool: string;
  actionId: string;
  stepId: string;
  kind: StepKind;
  planHash: string;
  /** SHA-256 of the canonical input the step will send: the grant covers these exact arguments. */
  inputHash: string;
}

const JwkSchema = z.object({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: z.string(), d: z.string().optional(), kid: z.string().min(1) }).passthrough();
/** A single JWK, or `{ keys: [current, previous...] }` during a rotation window. */
const KeySecretSchema = z.union([JwkSchema.transform((k) => [k]), z.object({ keys: z.array(JwkSchema).min(1).max(5) }).transform((s) => s.keys)]);

type Key = Awaited<ReturnType<typeof importJWK>>;
interface Keys {
  signing: { kid: string; key: Key };
  verifying: Map<string, Key>;
}

/**
 * Reads the grant-signing key through the secrets port and caches it for a bounded time, so a
 * rotation reaches every warm function within `cacheMs` without a Secrets Manager call per step.
 */
export class GrantKeyring {
  private cached: { at: number; keys: Promise<Keys> } | undefined;

  constructor(
    private readonly secrets: SecretsPort,
    private readonly options: { cacheMs?: number; now?: () => number } = {},
  ) {}

  private async load(): Promise<Keys> {
    const raw = await this.secrets.getSecret(SecretNames.grantSigningKey);
    let parsed: z.infer<typeof JwkSchema>[];
    try {
      parsed = KeySecretSchema.parse(JSON.parse(raw));
    } catch {
      // No cause on purpose: JSON.parse messages quote the text they choke on, i.e. the key.
      throw new Error('The grant-signing key secret is not a valid Ed25519 JWK or key set');
    }
    const [current] = parsed;
    if (!current?.d) throw new Error('The current grant-signing key has no private part');
    const verifying = new Map<string, Key>();
    for (const jwk of parsed) {
      const { d: _private, ...pub } = jwk;
      verifying.set(jwk.kid, await importJWK(pub as JWK, 'EdDSA'));
    }
    return { signing: { kid: current.kid, key: await importJWK(current as JWK, 'EdDSA') }, verifying };
  }

  keys(): Promise<Keys> {
    const now = (this.options.now ?? Date.now)();
    const ttl = this.options.cacheMs ?? 5 * 60_000;
    if (!this.cached || now - this.cached.at > ttl) {
      const keys = this.load();
      this.cached = { at: now, keys };
      keys.catch(() => {
        if (this.cached?.keys === keys) this.cached = undefined;
      });
    }
    return this.cached.keys;
  }
}

export interface MintedGrant {
  token: string;
  jti: string;
  scope: string;
  /** Seconds since the epoch. */
  exp: number;
}

/** Mints a grant for exactly one step call. */
export async function mintGrant(
  keyring: GrantKeyring,
  subject: GrantSubject,
  options: { ttlSeconds?: number; now?: Date } = {},
): Promise<MintedGrant> {
  const ttl = Math.min(Math.max(options.ttlSeconds ?? DEFAULT_GRANT_TTL_SECONDS, 1), MAX_GRANT_TTL_SECONDS);
  const iat = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const exp = iat + ttl;
  const jti = randomUUID();
  const { signing } = await keyring.keys();
  const token = await new SignJWT({
    act: { sub: subject.agent },
    scope: subject.tool,
    action_id: subject.actionId,
    step_id: subject.stepId,
    step_kind: subject.kind,
    plan_hash: subject.planHash,
    input_hash: subject.inputHash,
  })
    .setProtectedHeader({ alg: 'EdDSA', kid: signing.kid, typ: 'airlock-grant+jwt' })
    .setIssuer(GRANT_ISSUER)
    .setSubject(subject.principal)
    .setAudience(subject.connector)
    .setJti(jti)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(signing.key);
  return { token, jti, scope: subject.tool, exp };
}

const ClaimsSchema = z.object({
  iss: z.literal(GRANT_ISSUER),
  sub: z.string().min(1),
  aud: z.string().min(1),
  jti: z.string().min(1),
  iat: z.number(),
  exp: z.number(),
  act: z.object({ sub: z.string().min(1) }),
  scope: z.string().min(1),
  action_id: z.string().min(1),
  step_id: z.string().min(1),
  step_kind: z.enum(['forward', 'compensate']),
  plan_hash: z.string().min(1),
  input_hash: z.string().min(1),
});

export interface GrantExpectation {
  connector: string;
  tool: string;
  actionId: string;
  stepId: string;
  kind: StepKind;
  planHash: string;
  inputHash: string;
}

/**
 * Verifies a grant against exactly the call about to be made: signature (current or previous
 * key), expiry with a small skew, audience, scope, action, step, plan hash and input hash.
 * Single use (jti) is enforced by the caller against the ledger.
 */
export async function verifyGrant(
  keyring: GrantKeyring,
  token: string,
  expected: GrantExpectation,
  options: { now?: Date; maxTtlSeconds?: number } = {},
): Promise<VerifiedGrant & { iat: number }> {
  const { verifying } = await keyring.keys();
  let payload: unknown;
  try {
    const result = await jwtVerify(token, async (header) => {
      const key = header.kid ? verifying.get(header.kid) : undefined;
      if (!key) throw new GrantInvalidError('the grant is signed with an unknown key');
      return key;
    }, {
      algorithms: ['EdDSA'],
      issuer: GRANT_ISSUER,
      audience: expected.connector,
      clockTolerance: GRANT_CLOCK_TOLERANCE_SECONDS,
      typ: 'airlock-grant+jwt',
      ...(options.now ? { currentDate: options.now } : {}),
    });
    payload = result.payload;
  } catch (error) {
    if (error instanceof GrantInvalidError) throw error;
    if (error instanceof joseErrors.JWTExpired) throw new GrantInvalidError('the grant has expired', { cause: error });
    if (error instanceof joseErrors.JWTClaimValidationFailed) {
      throw new GrantInvalidError(`the grant's ${error.claim} claim does not match this call`, { cause: error });
    }
    throw new GrantInvalidError('the grant signature or format is invalid', { cause: error });
  }
  const claims = ClaimsSchema.safeParse(payload);
  if (!claims.success) throw new GrantInvalidError('the grant lacks required claims');
  const c = claims.data;
  const maxTtl = options.maxTtlSeconds ?? MAX_GRANT_TTL_SECONDS;
  if (c.exp - c.iat > maxTtl) throw new GrantInvalidError('the grant lives longer than allowed');
  const mismatch = (
    [
      ['scope', c.scope, expected.tool],
      ['action', c.action_id, expected.actionId],
      ['step', c.step_id, expected.stepId],
      ['step kind', c.step_kind, expected.kind],
      ['plan hash', c.plan_hash, expected.planHash],
      ['input hash', c.input_hash, expected.inputHash],
    ] as const
  ).find(([, actual, wanted]) => actual !== wanted);
  if (mismatch) throw new GrantInvalidError(`the grant's ${mismatch[0]} does not match this call`);
  return {
    jti: c.jti,
    sub: c.sub,
    act: c.act,
    aud: c.aud,
    scope: c.scope,
    actionId: c.action_id,
    stepId: c.step_id,
    planHash: c.plan_hash,
    exp: c.exp,
    iat: c.iat,
  };
}
