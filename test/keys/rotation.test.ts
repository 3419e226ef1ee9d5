import { describe, expect, it } from 'vitest';
import { generateGrantSigningKey } from '../../local/provision-secrets';
import { GrantInvalidError, GrantKeyring, mintGrant, verifyGrant, type GrantSubject } from '../../lambdas/steps/grants';
import {
  GrantKeyRotationError,
  MAX_KEYS,
  parseGrantKeySet,
  RETIRED_KEY_WINDOW_SECONDS,
  rotateGrantKeySet,
  testPendingValue,
} from '../../lambdas/keys/rotation';
import { SecretNames, type SecretsPort } from '../../lambdas/ports/secrets';

/** The grant-signing key secret in memory; a rotation just replaces the value. */
class MemorySecret implements SecretsPort {
  constructor(public value: string) {}
  async getSecret(name: string): Promise<string> {
    if (name !== SecretNames.grantSigningKey) throw new Error(`no secret ${name}`);
    return this.value;
  }
}

/** A keyring frozen on one value, like a function whose cache still holds it. */
const ring = (value: string) => new GrantKeyring(new MemorySecret(value), { cacheMs: 0 });

const subject: GrantSubject = {
  principal: 'alice',
  agent: 'agent-1',
  connector: 'travel',
  tool: 'travel.hold_seat',
  actionId: 'act_01J00000000000000000000000',
  stepId: 's1',
  kind: 'forward',
  planHash: 'a'.repeat(64),
  inputHash: 'b'.repeat(64),
};

const mint = async (value: string) => (await mintGrant(ring(value), subject)).token;
const verify = (value: string, token: string) => verifyGrant(ring(value), token, subject);
const kidOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;

const t0 = new Date('2026-01-01T00:00:00Z');
const days = (n: number) => new Date(t0.getTime() + n * 86_400_000);

describe('grant key rotation', () => {
  it('keeps a grant minted with the old key valid after a rotation, and the new signer verifies everywhere', async () => {
    // Prepare: a steady-state key set (the first rotation of a single key only publishes `next`).
    const v1 = (await rotateGrantKeySet(await generateGrantSigningKey(), { now: t0 })).value;
    const inFlight = await mint(v1);
    // Act
    const { value: v2, summary } = await rotateGrantKeySet(v1, { now: days(30) });
    // Assess: old grant verifies with the new value; a new grant verifies with the new value
    // and with the old one (a verifier whose cache has not refreshed yet).
    await expect(verify(v2, inFlight)).resolves.toMatchObject({ sub: 'alice' });
    const fresh = await mint(v2);
    expect(kidOf(fresh)).toBe(summary.signer);
    expect(kidOf(fresh)).not.toBe(kidOf(inFlight));
    await expect(verify(v2, fresh)).resolves.toMatchObject({ aud: 'travel' });
    await expect(verify(v1, fresh)).resolves.toMatchObject({ aud: 'travel' });
    expect(summary).toMatchObject({ signer: parseGrantKeySet(v1)!.next!.kid, kept: [kidOf(inFlight)], dropped: [], bootstrapped: false });
  });

  it('drops the oldest key after a second rotation', async () => {
    const v1 = (await rotateGrantKeySet(await generateGrantSigningKey(), { now: t0 })).value;
    const oldest = await mint(v1);
    const v2 = (await rotateGrantKeySet(v1, { now: days(30) })).value;
    const middle = await mint(v2);
    // Act
    const { value: v3, summary } = await rotateGrantKeySet(v2, { now: days(60) });
    // Assess: the key that signed before the first rotation is gone; the previous one stays.
    expect(summary.dropped).toEqual([kidOf(oldest)]);
    await expect(verify(v3, oldest)).rejects.toThrow(GrantInvalidError);
    await expect(verify(v3, oldest)).rejects.toThrow(/unknown key/);
    await expect(verify(v3, middle)).resolves.toBeDefined();
    await expect(verify(v3, await mint(v3))).resolves.toBeDefined();
    const set = parseGrantKeySet(v3)!;
    expect(1 + set.previous.length + (set.next ? 1 : 0)).toBe(3);
  });

  it('publishes a successor before it signs when the current value is a single key', async () => {
    const single = await generateGrantSigningKey();
    const { value, summary } = await rotateGrantKeySet(single, { now: t0 });
    // The single key keeps signing: no verifier has the successor cached yet.
    expect(summary.signer).toBe((JSON.parse(single) as { kid: string }).kid);
    expect(summary.next).not.toBe(summary.signer);
    const grant = await mint(value);
    await expect(verify(single, grant)).resolves.toBeDefined();
    await expect(testPendingValue(value, single)).resolves.toBeUndefined();
  });

  it('replaces the deploy-time placeholder with a fresh key set', async () => {
    const placeholder = 'Zq3x9wA0cRandomPasswordFromCloudFormation0123456789abcdefghij';
    const { value, summary } = await rotateGrantKeySet(placeholder, { now: t0 });
    expect(summary.bootstrapped).toBe(true);
    expect(value).not.toContain(placeholder);
    await expect(verify(value, await mint(value))).resolves.toBeDefined();
    await expect(testPendingValue(value, placeholder)).resolves.toBeUndefined();
  });

  it('keeps every key retired within the window when rotations come fast, and refuses to exceed the key limit', async () => {
    let value = (await rotateGrantKeySet(await generateGrantSigningKey(), { now: t0 })).value;
    const grants: string[] = [];
    let minute = 0;
    const at = () => new Date(t0.getTime() + ++minute * 60_000);
    // Two quick rotations: both retired signers stay (their grants may still be in flight).
    for (let i = 0; i < MAX_KEYS - 3; i += 1) {
      grants.push(await mint(value));
      value = (await rotateGrantKeySet(value, { now: at() })).value;
    }
    grants.push(await mint(value));
    value = (await rotateGrantKeySet(value, { now: at() })).value;
    for (const g of grants) await expect(verify(value, g)).resolves.toBeDefined();
    expect(parseGrantKeySet(value)!.previous).toHaveLength(MAX_KEYS - 2);
    // One more would need six keys: refused, nothing dropped.
    await expect(rotateGrantKeySet(value, { now: at() })).rejects.toThrow(GrantKeyRotationError);
    // After the window only the newest previous key is kept.
    const later = new Date(t0.getTime() + (minute * 60 + RETIRED_KEY_WINDOW_SECONDS + 1) * 1000);
    const { value: calm, summary } = await rotateGrantKeySet(value, { now: later });
    expect(summary.kept).toHaveLength(1);
    expect(summary.dropped).toHaveLength(MAX_KEYS - 2);
    await expect(testPendingValue(calm, value)).resolves.toBeUndefined();
  });

  it('testPendingValue rejects a value that is not a key set, or one that shares no key with the current set', async () => {
    const v1 = (await rotateGrantKeySet(await generateGrantSigningKey(), { now: t0 })).value;
    await expect(testPendingValue('not json', v1)).rejects.toThrow(GrantKeyRotationError);
    // A set with a brand-new signer that the current verifiers have never seen.
    const unrelated = (await rotateGrantKeySet('placeholder', { now: t0 })).value;
    const error = await testPendingValue(unrelated, v1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GrantKeyRotationError);
    expect((error as Error).message).toMatch(/current key/);
    // No key material in the message.
    for (const key of parseGrantKeySet(v1)!.previous.concat(parseGrantKeySet(unrelated)!.signer)) {
      expect((error as Error).message).not.toContain(key.d);
    }
  });
});
