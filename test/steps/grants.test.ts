import { generateKeyPair, exportJWK, calculateJwkThumbprint, SignJWT, importJWK, type JWK } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoSagaStore } from '../../lambdas/adapters/aws/dynamo-saga-store';
import { GrantInvalidError, GrantKeyring, mintGrant, type GrantSubject } from '../../lambdas/steps/grants';
import { createLogger } from '../../lambdas/middleware/powertools';
import { runStep, type RunStepDeps } from '../../lambdas/steps/run-step';
import { inputHash } from '../../lambdas/saga/tasks';
import { SecretNames, type SecretsPort } from '../../lambdas/ports/secrets';
import { startSandboxVendors, type SandboxVendors } from '../../local/vendors/index';
import { isoDay } from '../helpers/dates';
import { startLedger } from '../helpers/ledger';
import { toolRegistry } from '../../lambdas/tools/registry';

/** Secrets in memory: what a rotation changes is just this map. */
class MemorySecrets implements SecretsPort {
  constructor(readonly values: Map<string, string>) {}
  async getSecret(name: string) {
    const v = this.values.get(name);
    if (v === undefined) throw new Error(`no secret ${name}`);
    return v;
  }
}

async function newKey(): Promise<Record<string, unknown>> {
  const { privateKey } = await generateKeyPair('Ed25519', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg: 'EdDSA' };
}

let env: Awaited<ReturnType<typeof startLedger>>;
let vendors: SandboxVendors;
let secrets: MemorySecrets;
let store: DynamoSagaStore;
let logs: string[];
let currentKey: Record<string, unknown>;

const actionId = 'act_01J00000000000000000000000';
const planHash = 'a'.repeat(64);
const input = { flightId: `SB102-${isoDay(14)}`, seats: 1 };

function deps(): RunStepDeps {
  return {
    connector: 'travel',
    tools: toolRegistry,
    steps: store,
    keyring: new GrantKeyring(secrets, { cacheMs: 0 }),
    secrets,
    baseUrls: vendors.baseUrls,
    logger: createLogger({ level: 'debug', sink: (l) => logs.push(l) }),
    now: () => new Date(),
    timeoutMs: 2_000,
  };
}

function subject(overrides: Partial<GrantSubject> = {}): GrantSubject {
  return {
    principal: 'alice', agent: 'trip-bot', connector: 'travel', tool: 'travel.hold_seat', actionId, stepId: 'hold',
    kind: 'forward', planHash, inputHash: inputHash(input), ...overrides,
  };
}

const payload = (grant: string, stepId = 'hold') => ({
  kind: 'forward' as const, actionId, stepId, tool: 'travel.hold_seat', input, planHash, dryRun: false, grant,
});

beforeAll(async () => {
  env = await startLedger();
  store = new DynamoSagaStore({ client: env.dynamo.client, tableName: env.tableName });
  currentKey = await newKey();
  secrets = new MemorySecrets(new Map([
    [SecretNames.grantSigningKey, JSON.stringify(currentKey)],
    [SecretNames.vendorCredential('travel'), 'travel-api-key-0123456789'],
  ]));
  vendors = await startSandboxVendors({ credentials: { travel: 'travel-api-key-0123456789' } });
});
afterAll(async () => {
  await vendors?.close();
  await env?.close();
});
beforeEach(() => {
  logs = [];
  vendors.admin.reset();
});

let n = 0;
const fresh = () => `hold${n++}`;

describe('grants: a connector refuses anything but exactly this call', () => {
  const refusals: [string, (keyring: GrantKeyring) => Promise<string>][] = [
    ['an expired grant', async (k) => (await mintGrant(k, subject(), { ttlSeconds: 60, now: new Date(Date.now() - 10 * 60_000) })).token],
    ['a grant for another connector (audience)', async (k) => (await mintGrant(k, subject({ connector: 'payments' }))).token],
    ['a grant for another tool (scope)', async (k) => (await mintGrant(k, subject({ tool: 'travel.book_flight' }))).token],
    ['a grant for another step', async (k) => (await mintGrant(k, subject({ stepId: 'other' }))).token],
    ['a grant for another plan hash', async (k) => (await mintGrant(k, subject({ planHash: 'b'.repeat(64) }))).token],
    ['a grant for other arguments', async (k) => (await mintGrant(k, subject({ inputHash: inputHash({ ...input, seats: 9 }) }))).token],
    ['a tampered signature', async (k) => {
      const t = (await mintGrant(k, subject())).token;
      const [h, p, sig] = t.split('.');
      return `${h}.${p}.${sig!.slice(0, -4)}${sig!.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
    }],
    ['a grant signed by a key Airlock does not know', async () => {
      const rogue = await newKey();
      const key = await importJWK(rogue as JWK, 'EdDSA');
      return new SignJWT({ scope: 'travel.hold_seat', action_id: actionId, step_id: 'hold', step_kind: 'forward', plan_hash: planHash, input_hash: inputHash(input), act: { sub: 'x' } })
        .setProtectedHeader({ alg: 'EdDSA', kid: String(rogue.kid), typ: 'airlock-grant+jwt' })
        .setIssuer('airlock').setSubject('alice').setAudience('travel').setJti('rogue').setIssuedAt().setExpirationTime('5m')
        .sign(key);
    }],
    ['an unsigned grant', async () => {
      const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
      return `${enc({ alg: 'none', typ: 'airlock-grant+jwt' })}.${enc({ iss: 'airlock', aud: 'travel' })}.`;
    }],
  ];

  it.each(refusals)('refuses %s with a named error and no vendor call', async (_name, make) => {
    const d = deps();
    const grant = await make(d.keyring);
    const error = await runStep(d, payload(grant, 'hold')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GrantInvalidError);
    expect((error as Error).name).toBe('GrantInvalidError');
    expect(vendors.admin.stats('travel').requests).toEqual({});
    expect(logs.some((l) => l.includes('grant refused'))).toBe(true);
  });

  it('refuses a replayed grant (single use) with no second vendor call', async () => {
    const d = deps();
    const stepId = fresh();
    const grant = (await mintGrant(d.keyring, subject({ stepId }))).token;
    // The step is still running elsewhere (a slow vendor) when the same grant arrives again.
    vendors.admin.setFaults('travel', { latencyMs: 400 });
    const first = runStep(d, payload(grant, stepId));
    first.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    const second = await runStep(d, payload(grant, stepId)).catch((e: unknown) => e);
    await first;
    vendors.admin.setFaults('travel', {});
    expect(second).toBeInstanceOf(GrantInvalidError);
    expect(vendors.admin.stats('travel').sideEffects).toEqual({ hold_seat: 1 });
  });

  it('refuses a grant replayed after its attempt failed, and takes a fresh grant for the retry', async () => {
    const d = deps();
    const stepId = fresh();
    const first = (await mintGrant(d.keyring, subject({ stepId }))).token;
    vendors.admin.setFaults('travel', { failNext: [{ operation: 'hold_seat', count: 1, status: 503 }] });
    await expect(runStep(d, payload(first, stepId))).rejects.toThrow();
    const requests = { ...vendors.admin.stats('travel').requests };
    // The failed attempt still consumed its grant: the step record keeps its id.
    const replay = await runStep(d, payload(first, stepId)).catch((e: unknown) => e);
    expect(replay).toBeInstanceOf(GrantInvalidError);
    expect(vendors.admin.stats('travel').requests).toEqual(requests);
    // The saga's retry mints a new grant: one more attempt on the same record.
    await expect(runStep(d, payload((await mintGrant(d.keyring, subject({ stepId }))).token, stepId))).resolves.toMatchObject({ status: 'held' });
    const record = await store.getStep({ actionId, stepId, kind: 'forward' });
    expect(record).toMatchObject({ status: 'complete', attempts: 2 });
    expect(record?.grants).toHaveLength(2);
    expect(vendors.admin.stats('travel').sideEffects).toEqual({ hold_seat: 1 });
  });

  it('returns the recorded output for a completed step without calling the vendor', async () => {
    const d = deps();
    const stepId = fresh();
    const out1 = await runStep(d, payload((await mintGrant(d.keyring, subject({ stepId }))).token, stepId));
    const requests = { ...vendors.admin.stats('travel').requests };
    // A Step Functions retry or a replayed invocation, even with the very same grant.
    const again = await runStep(d, payload((await mintGrant(d.keyring, subject({ stepId }))).token, stepId));
    expect(again).toEqual(out1);
    expect(vendors.admin.stats('travel').requests).toEqual(requests);
    expect(vendors.admin.stats('travel').sideEffects).toEqual({ hold_seat: 1 });
  });

  it('keeps in-flight grants valid across a key rotation', async () => {
    const d = deps();
    const stepId = fresh();
    const before = (await mintGrant(d.keyring, subject({ stepId }))).token;
    // Rotate: the new key signs, the previous one still verifies during the window.
    const next = await newKey();
    secrets.values.set(SecretNames.grantSigningKey, JSON.stringify({ keys: [next, currentKey] }));
    await expect(runStep(d, payload(before, stepId))).resolves.toMatchObject({ status: 'held' });
    const after = await mintGrant(d.keyring, subject({ stepId: fresh() }));
    expect(JSON.parse(Buffer.from(after.token.split('.')[0]!, 'base64url').toString()).kid).toBe(next.kid);
    // Once the window closes, grants signed with the old key are refused.
    secrets.values.set(SecretNames.grantSigningKey, JSON.stringify(next));
    currentKey = next;
    const stale = await runStep(d, payload(before, fresh())).catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(GrantInvalidError);
  });

  it('never logs the grant, the signing key or the vendor credential', async () => {
    const d = deps();
    const stepId = fresh();
    const grant = (await mintGrant(d.keyring, subject({ stepId }))).token;
    await runStep(d, payload(grant, stepId));
    await runStep(d, payload(grant, fresh())).catch(() => undefined);
    const text = logs.join('\n');
    expect(text.length).toBeGreaterThan(0);
    for (const secret of [grant, grant.split('.')[2]!, String(currentKey.d), 'travel-api-key-0123456789']) {
      expect(text).not.toContain(secret);
    }
  });

  it('caps a grant lifetime at 15 minutes whatever the config says', async () => {
    const d = deps();
    const g = await mintGrant(d.keyring, subject(), { ttlSeconds: 3600 });
    const claims = JSON.parse(Buffer.from(g.token.split('.')[1]!, 'base64url').toString()) as { iat: number; exp: number };
    expect(claims.exp - claims.iat).toBe(900);
  });
});
