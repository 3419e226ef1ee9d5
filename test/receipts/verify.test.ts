import { chmod, mkdtemp, readFile, rm, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FileAuditStore } from '../../lambdas/adapters/local/file-audit-store';
import { createLogger } from '../../lambdas/middleware/powertools';
import { DigestSchema, receiptJsonSchema } from '../../lambdas/receipts/schema';
import { digestSignerFromSecret } from '../../lambdas/receipts/signing';
import { digestSigningInput, serializeDocument, writeDigest } from '../../lambdas/receipts/vault';
import { verifyVault } from '../../lambdas/receipts/verify';
import { createHash } from 'node:crypto';
import { run as audit } from '../../bin/commands/audit';
import { SIGNING_SECRET, syntheticReceipt } from '../helpers/receipts';

/** The verifier against a real local vault: each way an insider could edit history is caught. */

const dirs: string[] = [];
const signer = digestSignerFromSecret(SIGNING_SECRET);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const tick = () => new Promise((r) => setTimeout(r, 3));

afterEach(async () => {
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** 13 receipts covered by three chained digests. */
async function makeVault() {
  const dir = await mkdtemp(join(tmpdir(), 'airlock-vault-'));
  dirs.push(dir);
  const store = new FileAuditStore(dir);
  const deps = { store, secrets: { getSecret: async () => SIGNING_SECRET }, logger: createLogger({ level: 'silent' }), now: () => new Date(), digests: { settleMs: 0, wholeSeconds: false } };
  const digests: string[] = [];
  const receipts: string[] = [];
  let n = 0;
  for (const batch of [6, 4, 3]) {
    for (let i = 0; i < batch; i++) {
      const r = syntheticReceipt(++n, new Date(Date.UTC(2026, 0, 1 + (n % 3), 9)));
      await store.putIfAbsent(r.key, r.bytes, sha(r.bytes));
      receipts.push(r.key);
    }
    await tick();
    digests.push((await writeDigest(deps, signer))!.key);
    await tick();
  }
  const file = (key: string) => store.fileOf(key);
  const edit = async (key: string, f: (text: string) => string) => {
    await chmod(file(key), 0o644);
    await writeFile(file(key), f(await readFile(file(key), 'utf8')));
  };
  return { dir, store, digests, receipts, file, edit, deps };
}

const kinds = async (store: FileAuditStore, options = {}) => (await verifyVault(store, { graceMs: 0, ...options })).findings.map((f) => [f.kind, f.key]);

describe('verifyVault', () => {
  it('an untouched vault has no findings', async () => {
    const v = await makeVault();
    const report = await verifyVault(v.store, { publicKeys: [signer.publicKey] });
    expect(report.findings).toEqual([]);
    expect(report).toMatchObject({ digestsChecked: 3, receiptsChecked: 13, pending: [], keyIds: [signer.keyId], pinned: true });
  });

  it('detects an edited receipt', async () => {
    const v = await makeVault();
    await v.edit(v.receipts[4]!, (t) => t.replace('"status":"completed"', '"status":"cancelled"'));
    expect(await kinds(v.store)).toEqual([['modified-receipt', v.receipts[4]]]);
  });

  it('detects a deleted receipt', async () => {
    const v = await makeVault();
    await unlink(v.file(v.receipts[7]!));
    expect(await kinds(v.store)).toEqual([['missing-receipt', v.receipts[7]]]);
  });

  it('detects an inserted receipt (backdated, or uncovered past the grace period)', async () => {
    const v = await makeVault();
    const forged = syntheticReceipt(99, new Date('2026-01-02T09:00:00Z'));
    await v.store.putIfAbsent(forged.key, forged.bytes, sha(forged.bytes));
    // Just written: pending until the next digest, unless the grace period is over.
    expect((await verifyVault(v.store)).pending).toEqual([forged.key]);
    expect(await kinds(v.store, { graceMs: 0 })).toEqual([['unlisted-receipt', forged.key]]);
    await utimes(v.file(forged.key), new Date('2026-01-02T10:00:00Z'), new Date('2026-01-02T10:00:00Z'));
    expect(await kinds(v.store, { graceMs: 3_600_000 })).toEqual([['unlisted-receipt', forged.key]]);
  });

  it('detects a removed digest', async () => {
    const v = await makeVault();
    await unlink(v.file(v.digests[1]!));
    const found = await kinds(v.store);
    expect(found).toContainEqual(['missing-digest', v.digests[1]]);
    // Its receipts are now listed nowhere.
    expect(found.filter(([k]) => k === 'unlisted-receipt')).toHaveLength(4);
  });

  it('detects a digest re-signed with another key', async () => {
    const v = await makeVault();
    const mallory = digestSignerFromSecret('mallory-has-her-own-signing-secret-0123456789');
    // Mallory rewrites the middle digest to drop a receipt, signs it with her key and
    // publishes her public key next to the real one.
    const original = DigestSchema.parse(JSON.parse(await readFile(v.file(v.digests[1]!), 'utf8')));
    const { signature: _, ...body } = original;
    const forged = { ...body, receipts: body.receipts.slice(1), signing: { ...body.signing, keyId: mallory.keyId, publicKeyKey: `digests/keys/${mallory.keyId}.json` } };
    const forgedDoc = { ...forged, signature: mallory.sign(digestSigningInput(forged)) };
    await chmod(v.file(v.digests[1]!), 0o644);
    await writeFile(v.file(v.digests[1]!), serializeDocument(forgedDoc));
    await v.store.putIfAbsent(`digests/keys/${mallory.keyId}.json`, serializeDocument(mallory.publicKey), sha(serializeDocument(mallory.publicKey)));
    // Pinned to the real key: the forged signature is not trusted.
    expect(await kinds(v.store, { publicKeys: [signer.publicKey] })).toContainEqual(['untrusted-key', v.digests[1]]);
    // Unpinned: the next digest still records the original's hash and signature.
    expect(await kinds(v.store)).toContainEqual(['broken-chain', v.digests[2]]);
  });

  it('the latest digest re-signed by another key needs the pinned key, and is then caught', async () => {
    const v = await makeVault();
    const mallory = digestSignerFromSecret('mallory-has-her-own-signing-secret-0123456789');
    const original = DigestSchema.parse(JSON.parse(await readFile(v.file(v.digests[2]!), 'utf8')));
    const { signature: _, ...body } = original;
    const forged = { ...body, signing: { ...body.signing, keyId: mallory.keyId, publicKeyKey: `digests/keys/${mallory.keyId}.json` } };
    await chmod(v.file(v.digests[2]!), 0o644);
    await writeFile(v.file(v.digests[2]!), serializeDocument({ ...forged, signature: mallory.sign(digestSigningInput(forged)) }));
    await v.store.putIfAbsent(`digests/keys/${mallory.keyId}.json`, serializeDocument(mallory.publicKey), sha(serializeDocument(mallory.publicKey)));
    expect(await kinds(v.store, { publicKeys: [signer.publicKey] })).toEqual([['untrusted-key', v.digests[2]]]);
  });

  it('a signature that does not verify with the named key is a finding', async () => {
    const v = await makeVault();
    await v.edit(v.digests[0]!, (t) => t.replace(/"signature":"[A-Za-z0-9+/]{10}/, (m) => m.slice(0, -4) + (m.endsWith('AAAA') ? 'BBBB' : 'AAAA')));
    const found = await kinds(v.store);
    expect(found).toContainEqual(['bad-signature', v.digests[0]]);
  });

  it('--from/--to limit the digests and receipts checked', async () => {
    const v = await makeVault();
    const first = DigestSchema.parse(JSON.parse(await readFile(v.file(v.digests[0]!), 'utf8')));
    const report = await verifyVault(v.store, { from: new Date(Date.parse(first.endTime) + 1) });
    expect(report.findings).toEqual([]);
    expect(report.digestsChecked).toBe(2);
    expect(report.receiptsChecked).toBe(7);
  });
});

describe('airlock audit (CLI)', () => {
  function capture() {
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => (out.push(String(s)), true));
    return out;
  }

  it('verify exits 0 on a clean vault and 1 naming each bad object', async () => {
    const v = await makeVault();
    let out = capture();
    expect(await audit(['verify', '--dir', v.dir])).toBe(0);
    expect(out.join('')).toContain('OK: no findings');
    await v.edit(v.receipts[2]!, (t) => t.replace('"mode":"execute"', '"mode":"dry_run"'));
    await unlink(v.file(v.receipts[9]!));
    vi.restoreAllMocks();
    out = capture();
    expect(await audit(['verify', '--dir', v.dir, '--grace', '0'])).toBe(1);
    const text = out.join('');
    expect(text).toContain(`MODIFIED       ${v.receipts[2]}`);
    expect(text).toContain(`MISSING        ${v.receipts[9]}`);
    expect(text).toContain('2 finding(s)');
  });

  it('verify pins a key with --public-key; show prints a timeline; bad arguments exit 2', async () => {
    const v = await makeVault();
    const keyFile = join(v.dir, 'pinned.json');
    await writeFile(keyFile, JSON.stringify(signer.publicKey));
    const out = capture();
    expect(await audit(['verify', '--dir', v.dir, '--public-key', keyFile])).toBe(0);
    expect(await audit(['verify', '--dir', v.dir, '--public-key', digestSignerFromSecret('x'.repeat(40)).publicKey.publicKey])).toBe(1);
    expect(out.join('')).toContain('UNTRUSTED KEY');
    const id = v.receipts[0]!.split('/').at(-1)!.replace('.json', '');
    expect(await audit(['show', id, '--dir', v.dir])).toBe(0);
    expect(out.join('')).toContain(`Receipt ${id}`);
    expect(await audit(['verify', '--from', 'yesterday-ish'])).toBe(2);
    expect(await audit(['nope'])).toBe(2);
  });
});

describe('the published receipt schema', () => {
  it('docs/receipt.schema.json is generated from the zod schema', async () => {
    const published = JSON.parse(await readFile(join(import.meta.dirname, '../../docs/receipt.schema.json'), 'utf8')) as unknown;
    expect(published).toEqual(receiptJsonSchema());
    expect(published).toMatchObject({ 'x-schemaVersion': '1' });
  });
});
