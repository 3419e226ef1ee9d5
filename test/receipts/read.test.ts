import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ActionRecord } from '../../lambdas/actions/action';
import { canonicalJson } from '../../lambdas/shared/canonical-json';
import { silentLogger } from '../../lambdas/middleware/powertools';
import { readReceipt, ReceiptNotFoundError, verifyReceipt } from '../../lambdas/receipts/read';
import { digestSignerFromSecret } from '../../lambdas/receipts/signing';
import { writeDigest } from '../../lambdas/receipts/vault';
import { MemoryAuditStore } from '../helpers/memory-audit-store';
import { SIGNING_SECRET } from '../helpers/receipts';

/** GET /v1/actions/{id}/receipt's core: the stored bytes, checked against the digest that covers them. */

const T0 = Date.parse('2030-03-04T05:06:07.000Z');
const ID = 'act_01J00000000000000000000000';
const KEY = `receipts/dt=2030-03-04/${ID}.json`;
const BODY = Buffer.from('{"kind":"airlock.receipt","outcome":{"status":"completed"}}\n');
const signer = digestSignerFromSecret(SIGNING_SECRET);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function vault() {
  let now = T0;
  const store = new MemoryAuditStore(() => new Date(now));
  const deps = { store, secrets: { getSecret: async () => SIGNING_SECRET }, logger: silentLogger, now: () => new Date(now), digests: { settleMs: 0, wholeSeconds: false } };
  return {
    store,
    at: (ms: number) => (now = T0 + ms),
    now: () => new Date(now),
    digest: () => writeDigest(deps, signer),
  };
}

const action = (over: Partial<Omit<ActionRecord, 'version'>> = {}): ActionRecord => ({
  id: ID,
  principal: { sub: 'alice', roles: ['Employee'], manager: 'bob' },
  actor: { name: 'trip-bot' },
  envelope: { tool: 'travel.search_flights', arguments: {} },
  kind: 'single',
  mode: 'execute',
  planHash: 'a'.repeat(64),
  status: 'completed',
  receiptKey: KEY,
  createdAt: new Date(T0).toISOString(),
  updatedAt: new Date(T0).toISOString(),
  version: 1,
  ...over,
});

describe('verifyReceipt', () => {
  it('is pending until a digest covers the receipt, then verified by checksum and signature', async () => {
    const v = vault();
    await v.store.putIfAbsent(KEY, BODY, sha(BODY));
    const written = (await v.store.list(KEY))[0]!.lastModified;
    const before = await verifyReceipt(v.store, KEY, BODY, written, v.now());
    expect(before).toMatchObject({ status: 'pending', checksum: 'not-listed', signature: 'not-checked', digest: null });

    v.at(1000);
    const d = await v.digest();
    const after = await verifyReceipt(v.store, KEY, BODY, written, v.now());
    expect(after).toMatchObject({ status: 'verified', checksum: 'match', signature: 'valid', digest: { key: d!.key, keyId: signer.keyId }, latestDigest: d!.key });
  });

  it('finds the covering digest, not the newest, when later digests exist', async () => {
    const v = vault();
    await v.store.putIfAbsent(KEY, BODY, sha(BODY));
    v.at(1000);
    const first = await v.digest();
    v.at(90_000_000); // a day later: the covering digest is in yesterday's folder
    const last = await v.digest();
    const r = await verifyReceipt(v.store, KEY, BODY, new Date(T0), v.now());
    expect(r).toMatchObject({ status: 'verified', digest: { key: first!.key }, latestDigest: last!.key });
  });

  it('fails when the bytes differ from the ones the digest recorded, whatever changed', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 200 }), async (other) => {
        fc.pre(sha(other) !== sha(BODY));
        const v = vault();
        await v.store.putIfAbsent(KEY, BODY, sha(BODY));
        v.at(1000);
        await v.digest();
        const r = await verifyReceipt(v.store, KEY, other, new Date(T0), v.now());
        expect(r).toMatchObject({ status: 'failed', checksum: 'mismatch', signature: 'valid' });
      }),
      { numRuns: 25 },
    );
  });

  it('fails when the covering digest does not list the receipt', async () => {
    const v = vault();
    v.at(1000);
    await v.digest();
    // Written "before" the digest but not in it: as if slipped into the vault afterwards.
    await v.store.putIfAbsent(KEY, BODY, sha(BODY));
    const r = await verifyReceipt(v.store, KEY, BODY, new Date(T0 + 500), v.now());
    expect(r).toMatchObject({ status: 'failed', checksum: 'not-listed', signature: 'valid' });
  });

  it('fails when the digest signature does not verify', async () => {
    const v = vault();
    await v.store.putIfAbsent(KEY, BODY, sha(BODY));
    v.at(1000);
    const d = await v.digest();
    // Re-sign the digest with another key but keep the vault's published key id: a forgery.
    const stored = v.store.objects.get(d!.key)!;
    const forged = { ...d!.digest, signature: digestSignerFromSecret('another-secret-0123456789abcdef-xyz').sign(Buffer.from('x')) };
    stored.bytes = Buffer.from(`${canonicalJson(forged)}\n`);
    const r = await verifyReceipt(v.store, KEY, BODY, new Date(T0), v.now());
    expect(r).toMatchObject({ status: 'failed', signature: 'invalid', checksum: 'match' });
  });
});

describe('readReceipt', () => {
  it('gives the owner, her manager (the approver) and auditors the exact stored bytes; others get not-found', async () => {
    const v = vault();
    await v.store.putIfAbsent(KEY, BODY, sha(BODY));
    const owned = action({ decision: { outcome: 'require_approval', policyIds: ['p'], reasons: [], quorum: 1, approverRule: 'manager', policySetVersion: 'v', evaluationMicros: 1, decidedAt: new Date(T0).toISOString() } });
    const deps = { actions: { getAction: async (id: string) => (id === ID ? owned : undefined) }, store: v.store, now: v.now };
    for (const viewer of [
      { sub: 'alice', roles: ['Employee'] },
      { sub: 'bob', roles: ['Manager'] },
      { sub: 'audrey', roles: ['Auditor'] },
    ]) {
      const r = await readReceipt(deps, viewer, ID);
      expect(r).toMatchObject({ actionId: ID, key: KEY, sha256: sha(BODY), size: BODY.length, body: BODY.toString('utf8') });
    }
    await expect(readReceipt(deps, { sub: 'mallory', roles: ['Employee'] }, ID)).rejects.toBeInstanceOf(ReceiptNotFoundError);
    await expect(readReceipt(deps, { sub: 'alice', roles: [] }, 'act_01J00000000000000000000001')).rejects.toBeInstanceOf(ReceiptNotFoundError);
  });

  it('says not found, with the status, while the action has no receipt yet', async () => {
    const v = vault();
    const deps = { actions: { getAction: async () => action({ status: 'awaiting_approval', receiptKey: undefined }) }, store: v.store, now: v.now };
    await expect(readReceipt(deps, { sub: 'alice', roles: [] }, ID)).rejects.toThrow(/no receipt yet.*awaiting_approval/);
  });
});
