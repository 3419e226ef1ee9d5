import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import * as z from 'zod';
import { SecretNames, type SecretsPort } from '../ports/secrets';
import { GrantKeyring, MAX_GRANT_TTL_SECONDS, mintGrant, verifyGrant, type GrantSubject } from '../steps/grants';

/**
 * Rotation of the grant-signing key, as pure functions over the secret's value (the
 * Secrets Manager protocol lives in lambdas/keys/handler.ts and adapters/aws/secret-rotation.ts).
 *
 * The value keeps the shape GrantKeyring reads (`{ keys: [...] }`: the first key signs, every
 * key verifies) plus two members the keyring ignores:
 *
 *   { "keys": [signer, previous..., next], "next": "<kid>", "retiredAt": { "<kid>": epochSeconds } }
 *
 * Why a pre-published `next` key: every function caches the key set (GrantKeyring 5 min on
 * top of the Secrets Manager adapter's 5 min), so for up to ~10 minutes after a rotation a
 * minter may still sign with the old key while a verifier may still hold the old set. Keeping
 * the old signer as `previous` covers the first case. The second case needs the new signer to
 * be known to every verifier BEFORE it signs: each rotation therefore promotes the key that
 * the previous rotation already published as `next` (in every cache for days) and publishes a
 * fresh `next`. No function ever meets a grant signed by a key it has not seen.
 *
 * Why one previous key is enough: a grant lives at most 15 minutes and a cache at most ~10,
 * so a key that stopped signing is needed for at most {@link RETIRED_KEY_WINDOW_SECONDS};
 * rotations are days apart. If rotations come faster than that (manual RotateSecret calls),
 * every previous key retired within the window is kept too, and a rotation that would need
 * more than {@link MAX_KEYS} keys is refused rather than dropping a key that may still be live.
 */

/** GrantKeyring accepts at most this many keys. */
export const MAX_KEYS = 5;
/** Previous keys kept regardless of age: the signer this rotation retires. */
export const PREVIOUS_KEYS_KEPT = 1;
/**
 * How long a retired key may still sign (stale caches: keyring 5 min + adapter 5 min) and its
 * grants stay valid (15 min), plus clock skew; rounded up to 30 minutes.
 */
export const RETIRED_KEY_WINDOW_SECONDS = 30 * 60;
const CACHE_STALENESS_SECONDS = 10 * 60;
// The window must cover the worst case it claims to; a change to the grant TTL must revisit it.
if (MAX_GRANT_TTL_SECONDS + CACHE_STALENESS_SECONDS + 60 > RETIRED_KEY_WINDOW_SECONDS) {
  throw new Error('RETIRED_KEY_WINDOW_SECONDS is shorter than a grant can stay in use');
}

/** The key set cannot be rotated or the pending value fails its checks. Values never appear in the message. */
export class GrantKeyRotationError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GrantKeyRotationError';
  }
}

const PrivateJwkSchema = z
  .object({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: z.string().min(1), d: z.string().min(1), kid: z.string().min(1) })
  .passthrough();
/** An Ed25519 private JWK with a key id, as stored in the secret. */
export type GrantPrivateJwk = z.infer<typeof PrivateJwkSchema>;
type PrivateJwk = GrantPrivateJwk;

const KeySetSchema = z.union([
  PrivateJwkSchema.transform((k) => ({ keys: [k], next: undefined, retiredAt: {} as Record<string, number> })),
  z.object({
    keys: z.array(PrivateJwkSchema).min(1).max(MAX_KEYS),
    next: z.string().min(1).optional(),
    retiredAt: z.record(z.string(), z.number()).default({}),
  }),
]);

/** A parsed grant-signing key set. */
export interface GrantKeySet {
  /** Signs new grants. */
  signer: PrivateJwk;
  /** Published successor: verifies now, signs after the next rotation. */
  next: PrivateJwk | undefined;
  /** Keys that signed before, newest first; they verify in-flight grants. */
  previous: PrivateJwk[];
  /** When each previous key stopped signing (seconds since the epoch). */
  retiredAt: Record<string, number>;
}

/**
 * Parses a secret value (a single private JWK or a key set). Returns undefined when it is
 * neither, e.g. the random placeholder CloudFormation generates before the first rotation.
 */
export function parseGrantKeySet(value: string): GrantKeySet | undefined {
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    return undefined;
  }
  const parsed = KeySetSchema.safeParse(json);
  if (!parsed.success) return undefined;
  const { keys, next: nextKid, retiredAt } = parsed.data;
  const [signer, ...rest] = keys as [PrivateJwk, ...PrivateJwk[]];
  const next = nextKid !== undefined && nextKid !== signer.kid ? rest.find((k) => k.kid === nextKid) : undefined;
  return { signer, next, previous: rest.filter((k) => k !== next), retiredAt };
}

/** Serializes a key set in the shape GrantKeyring reads: signer first, then previous, then next. */
export function serializeGrantKeySet(set: GrantKeySet): string {
  const keys = [set.signer, ...set.previous, ...(set.next ? [set.next] : [])];
  const kids = new Set(keys.map((k) => k.kid));
  const retiredAt = Object.fromEntries(Object.entries(set.retiredAt).filter(([kid]) => kids.has(kid)));
  return JSON.stringify({ keys, ...(set.next ? { next: set.next.kid } : {}), retiredAt });
}

/** A fresh Ed25519 private JWK with `kid` = RFC 7638 thumbprint, `alg: EdDSA`, `use: sig`. */
export async function generateGrantKey(): Promise<PrivateJwk> {
  const { privateKey } = await generateKeyPair('Ed25519', { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  return PrivateJwkSchema.parse({ ...jwk, kid, alg: 'EdDSA', use: 'sig' });
}

/** What a rotation did, by key id (public thumbprints, safe to log). */
export interface RotationSummary {
  signer: string;
  next: string;
  kept: string[];
  dropped: string[];
  /** The current value was not a key set (first rotation after deploy): a fresh set was made. */
  bootstrapped: boolean;
}

/**
 * Computes the pending value from the current one.
 *
 * - Current value is a key set with a published `next`: `next` becomes the signer, the old
 *   signer becomes previous (retired now), a fresh key becomes `next`.
 * - Current value has no `next` (a single JWK, or a hand-made set): the signer keeps signing
 *   and a fresh `next` is published; it takes over at the following rotation, because a key
 *   no verifier has cached must not sign yet.
 * - Current value is not a key set (the deploy-time placeholder): a fresh signer and `next`.
 *   Nothing can have been signed with a placeholder, so nothing is lost.
 */
export async function rotateGrantKeySet(
  currentValue: string,
  options: { now?: Date; generate?: () => Promise<PrivateJwk> } = {},
): Promise<{ value: string; summary: RotationSummary }> {
  const generate = options.generate ?? generateGrantKey;
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const current = parseGrantKeySet(currentValue);
  if (!current) {
    const set: GrantKeySet = { signer: await generate(), next: await generate(), previous: [], retiredAt: {} };
    return { value: serializeGrantKeySet(set), summary: summarize(set, [], true) };
  }
  const fresh = await generate();
  if (!current.next) {
    const set: GrantKeySet = { ...current, previous: keepPrevious(current.previous, current.retiredAt, now), next: fresh };
    return checked(set, current);
  }
  const retiredAt = { ...current.retiredAt, [current.signer.kid]: now };
  const previous = keepPrevious([current.signer, ...current.previous], retiredAt, now);
  return checked({ signer: current.next, next: fresh, previous, retiredAt }, current);
}

/** The newest {@link PREVIOUS_KEYS_KEPT} previous keys, plus any retired within the window. */
function keepPrevious(previous: PrivateJwk[], retiredAt: Record<string, number>, now: number): PrivateJwk[] {
  // A key without a retirement time predates this scheme: treat it as retired long ago.
  return previous.filter((k, i) => i < PREVIOUS_KEYS_KEPT || now - (retiredAt[k.kid] ?? 0) < RETIRED_KEY_WINDOW_SECONDS);
}

function checked(set: GrantKeySet, current: GrantKeySet): { value: string; summary: RotationSummary } {
  const count = 1 + set.previous.length + (set.next ? 1 : 0);
  if (count > MAX_KEYS) {
    throw new GrantKeyRotationError(
      `Rotating now would need ${count} keys (max ${MAX_KEYS}): too many rotations within ${RETIRED_KEY_WINDOW_SECONDS / 60} minutes would drop a key that may still sign in-flight grants; retry later`,
    );
  }
  const before = [current.signer, ...current.previous, ...(current.next ? [current.next] : [])].map((k) => k.kid);
  const after = new Set([set.signer, ...set.previous, ...(set.next ? [set.next] : [])].map((k) => k.kid));
  return { value: serializeGrantKeySet(set), summary: summarize(set, before.filter((kid) => !after.has(kid)), false) };
}

function summarize(set: GrantKeySet, dropped: string[], bootstrapped: boolean): RotationSummary {
  return { signer: set.signer.kid, next: set.next?.kid ?? '', kept: set.previous.map((k) => k.kid), dropped, bootstrapped };
}

/** A secrets port holding one value: lets the checks below run the real GrantKeyring. */
function fixedSecret(value: string): SecretsPort {
  return {
    getSecret: async (name) => {
      if (name !== SecretNames.grantSigningKey) throw new GrantKeyRotationError(`unexpected secret ${name}`);
      return value;
    },
  };
}

const PROBE: GrantSubject = {
  principal: 'rotation-test',
  agent: 'rotation-test',
  connector: 'rotation-test',
  tool: 'rotation.test',
  actionId: 'rotation-test',
  stepId: 'rotation-test',
  kind: 'forward',
  planHash: 'rotation-test',
  inputHash: 'rotation-test',
};

/**
 * The testSecret checks, run through the same GrantKeyring/mintGrant/verifyGrant the
 * functions use: the pending value parses; a grant it signs verifies with it AND with the
 * current value (verifiers with a stale cache); a grant the current value signs verifies
 * with the pending value (in-flight grants and stale minters).
 */
export async function testPendingValue(pendingValue: string, currentValue: string): Promise<void> {
  const pending = parseGrantKeySet(pendingValue);
  if (!pending) throw new GrantKeyRotationError('The pending grant-signing key value is not a valid key set');
  if (!pending.next) throw new GrantKeyRotationError('The pending grant-signing key value publishes no next key');
  const pendingRing = new GrantKeyring(fixedSecret(pendingValue), { cacheMs: 0 });
  const roundTrip = async (signer: GrantKeyring, verifier: GrantKeyring, what: string) => {
    try {
      const grant = await mintGrant(signer, PROBE, { ttlSeconds: 60 });
      await verifyGrant(verifier, grant.token, PROBE);
    } catch (cause) {
      throw new GrantKeyRotationError(`Pending grant-signing key check failed: ${what}`, { cause });
    }
  };
  await roundTrip(pendingRing, pendingRing, 'a grant signed with the new key does not verify with the new key set');
  const current = parseGrantKeySet(currentValue);
  // A placeholder current value has no grants and no verifiers to keep working.
  if (!current) return;
  const currentRing = new GrantKeyring(fixedSecret(currentValue), { cacheMs: 0 });
  await roundTrip(currentRing, pendingRing, 'a grant signed with the current key does not verify with the new key set');
  await roundTrip(pendingRing, currentRing, 'a grant signed with the new key does not verify with the current key set');
}
