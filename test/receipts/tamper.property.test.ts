import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../lambdas/middleware/powertools';
import { digestSignerFromSecret } from '../../lambdas/receipts/signing';
import { writeDigest } from '../../lambdas/receipts/vault';
import { verifyVault } from '../../lambdas/receipts/verify';
import { MemoryAuditStore } from '../helpers/memory-audit-store';
import { SIGNING_SECRET, syntheticReceipt } from '../helpers/receipts';

/**
 * Random receipt sets cut into random digest periods, then one random byte of one random
 * object (receipt, digest or published key) changed: the verifier always reports it.
 */

const signer = digestSignerFromSecret(SIGNING_SECRET);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function buildVault(batches: number[]) {
  let t = Date.parse('2026-03-01T00:00:00Z');
  const store = new MemoryAuditStore(() => new Date(t));
  const deps = { store, secrets: { getSecret: async () => SIGNING_SECRET }, logger: createLogger({ level: 'silent' }), now: () => new Date(t), digests: { settleMs: 0, wholeSeconds: false } };
  let n = 0;
  for (const size of batches) {
    for (let i = 0; i < size; i++) {
      t += 1_000;
      const r = syntheticReceipt(++n, new Date(Date.UTC(2026, 1, 1 + (n % 20))));
      await store.putIfAbsent(r.key, r.bytes, sha(r.bytes));
    }
    t += 1_000;
    await writeDigest(deps, signer);
  }
  return { store, now: new Date(t + 1_000) };
}

describe('tampering (property)', () => {
  it('an untouched random vault verifies clean', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 4 }), async (batches) => {
        const { store, now } = await buildVault(batches);
        const report = await verifyVault(store, { now, publicKeys: [signer.publicKey] });
        expect(report.findings).toEqual([]);
        expect(report.receiptsChecked).toBe(batches.reduce((a, b) => a + b, 0));
      }),
      { numRuns: 25 },
    );
  });

  it('any single-byte change to any object is detected', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        async (batches, which, where, delta) => {
          const { store, now } = await buildVault(batches);
          const keys = [...store.objects.keys()].sort();
          const key = keys[which % keys.length]!;
          const object = store.objects.get(key)!;
          const pos = where % object.bytes.length;
          object.bytes[pos] = (object.bytes[pos]! + delta) % 256;
          // Unpinned too: the keys in the vault are all the verifier knows.
          const report = await verifyVault(store, { now });
          expect(report.findings.length, `changing byte ${pos} of ${key} went unnoticed`).toBeGreaterThan(0);
        },
      ),
      { numRuns: 150 },
    );
  });
});
