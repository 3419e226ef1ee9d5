import { createHash } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoSagaStore } from '../lambdas/adapters/aws/dynamo-saga-store';
import { FileAuditStore } from '../lambdas/adapters/local/file-audit-store';
import { createLogger } from '../lambdas/middleware/powertools';
import { digestSignerFromSecret } from '../lambdas/receipts/signing';
import { writeDigest, writeReceipt, type ReceiptsDeps } from '../lambdas/receipts/vault';
import { verifyVault } from '../lambdas/receipts/verify';
import { startLedger } from '../test/helpers/ledger';
import { REDACTION_KEY, SIGNING_SECRET, seedAction, syntheticReceipt } from '../test/helpers/receipts';
import { toolRegistry } from '../lambdas/tools/registry';

/**
 * Audit vault benchmark (local): receipts written per second — through the whole
 * WriteReceipt path (dynalite reads, redaction, canonical JSON, write-once file) and the
 * store alone — then one digest and `verify` over 10,000 receipts.
 * `npm run bench:audit` (RECEIPTS=10000 LEDGER_RECEIPTS=300 to change the sizes).
 */
const RECEIPTS = Number(process.env.RECEIPTS ?? 10_000);
const LEDGER_RECEIPTS = Number(process.env.LEDGER_RECEIPTS ?? 300);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const logger = createLogger({ level: 'silent' });

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'airlock-bench-audit-'));
  const env = await startLedger();
  try {
    // 1. WriteReceipt end to end, from ledger records on dynalite.
    const saga = new DynamoSagaStore({ client: env.dynamo.client, tableName: env.tableName });
    const ledgerStore = new FileAuditStore(join(dir, 'ledger-vault'));
    const deps: ReceiptsDeps = {
      actions: env.ledger,
      steps: saga,
      events: saga,
      store: ledgerStore,
      secrets: { getSecret: async (name) => (name.includes('redaction') ? REDACTION_KEY : SIGNING_SECRET) },
      tools: toolRegistry,
      logger,
      now: () => new Date(),
      digests: { settleMs: 0, wholeSeconds: false },
    };
    const ids = Array.from({ length: LEDGER_RECEIPTS }, (_, i) => `act_01JBENCH${String(i).padStart(18, '0')}`);
    for (const id of ids) await seedAction({ ledger: env.ledger, store: saga }, id, 'completed');
    let t = performance.now();
    for (const id of ids) await writeReceipt(deps, id);
    const endToEnd = LEDGER_RECEIPTS / ((performance.now() - t) / 1000);

    // 2. The write-once store alone (receipts built beforehand): atomic create, read-only.
    const store = new FileAuditStore(join(dir, 'vault'));
    const prepared = Array.from({ length: RECEIPTS }, (_, i) => syntheticReceipt(i + 1, new Date(Date.UTC(2026, 0, 1 + (i % 28)))));
    t = performance.now();
    for (const r of prepared) await store.putIfAbsent(r.key, r.bytes, sha(r.bytes));
    const storeOnly = RECEIPTS / ((performance.now() - t) / 1000);

    // 3. One digest over all of them, then verify.
    const signer = digestSignerFromSecret(SIGNING_SECRET);
    t = performance.now();
    await writeDigest({ store, secrets: deps.secrets, logger, now: () => new Date(), digests: { settleMs: 0, wholeSeconds: false } }, signer);
    const digestMs = performance.now() - t;
    t = performance.now();
    const report = await verifyVault(store, { publicKeys: [signer.publicKey] });
    const verifyMs = performance.now() - t;
    if (report.findings.length > 0 || report.receiptsChecked !== RECEIPTS) throw new Error(`verify disagrees: ${JSON.stringify(report.findings.slice(0, 3))}`);

    const rows = [
      ['WriteReceipt end to end (dynalite → file vault)', `${endToEnd.toFixed(0)} receipts/s`, `${LEDGER_RECEIPTS} actions, 3 steps, ~20 events each`],
      ['write-once file store (temp, link, utimes, chmod)', `${storeOnly.toFixed(0)} receipts/s`, `${RECEIPTS} receipts`],
      ['digest', `${digestMs.toFixed(0)} ms`, `${RECEIPTS} receipts listed and hashed`],
      ['verify', `${verifyMs.toFixed(0)} ms`, `${RECEIPTS} receipts, 1 digest, pinned key`],
    ];
    for (const [what, value, note] of rows) console.log(`${what!.padEnd(50)} ${value!.padStart(16)}   ${note}`);
  } finally {
    await env.close();
    await chmod(dir, 0o700).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
