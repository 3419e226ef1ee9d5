import { createHash, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../canonical-json';
import type { AuditObjectInfo, AuditStore } from '../../ports/audit-store';
import { DigestSchema, PublicKeyDocSchema, ReceiptSchema, type Digest, type PublicKeyDoc } from './schema';
import { ed25519KeyId, publicKeyFromDoc, verifySignature } from './signing';
import { digestSigningInput, publicKeyKey } from './vault';

/**
 * The auditor's verifier: every digest's signature, the chain between digests, every
 * listed receipt's SHA-256, and receipts that are missing or listed nowhere. Everything is
 * judged from the vault's bytes alone; the only outside input is which public keys to trust.
 */

export type FindingKind =
  | 'modified-receipt'
  | 'missing-receipt'
  | 'unlisted-receipt'
  | 'malformed-receipt'
  | 'bad-digest'
  | 'bad-signature'
  | 'untrusted-key'
  | 'bad-key'
  | 'broken-chain'
  | 'missing-digest';

export interface Finding {
  kind: FindingKind;
  /** The object at fault. */
  key: string;
  detail: string;
}

export interface VerifyOptions {
  /** Only digests ending at or after this time, and receipts written since. */
  from?: Date;
  /** Only digests ending at or before this time, and receipts written until. */
  to?: Date;
  /** Pinned public keys: when given, digests signed by any other key are findings. */
  publicKeys?: PublicKeyDoc[];
  /** A receipt newer than the last digest is "pending" for this long before it counts as unlisted. */
  graceMs?: number;
  now?: Date;
}

export interface VerifyReport {
  findings: Finding[];
  digestsChecked: number;
  receiptsChecked: number;
  /** Receipts written after the last digest and within the grace period: not yet covered. */
  pending: string[];
  /** Key ids that signed the digests checked. */
  keyIds: string[];
  /** Whether the trusted keys came from `--public-key` rather than the vault itself. */
  pinned: boolean;
}

const sha256Hex = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const DEFAULT_GRACE_MS = 2 * 3_600_000;

/** Parses a stored JSON document that must be canonical JSON plus a newline. */
function parseCanonical(bytes: Uint8Array): { ok: true; value: unknown } | { ok: false; why: string } {
  const text = Buffer.from(bytes).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, why: 'is not valid JSON' };
  }
  try {
    if (`${canonicalJson(value)}\n` !== text) return { ok: false, why: 'is not in canonical form (bytes were changed)' };
  } catch {
    return { ok: false, why: 'holds values canonical JSON cannot express' };
  }
  return { ok: true, value };
}

export async function verifyVault(store: AuditStore, options: VerifyOptions = {}): Promise<VerifyReport> {
  const now = options.now ?? new Date();
  const grace = options.graceMs ?? DEFAULT_GRACE_MS;
  const findings: Finding[] = [];
  const add = (kind: FindingKind, key: string, detail: string) => findings.push({ kind, key, detail });
  const [digestObjects, receiptObjects] = await Promise.all([store.list('digests/'), store.list('receipts/')]);

  // ── keys ──
  const trusted = new Map<string, KeyObject>();
  const pinned = (options.publicKeys?.length ?? 0) > 0;
  for (const doc of options.publicKeys ?? []) trusted.set(doc.keyId, publicKeyFromDoc(doc));
  for (const o of digestObjects.filter((d) => d.key.startsWith('digests/keys/'))) {
    const doc = await readKeyDoc(store, o.key);
    if (typeof doc === 'string') {
      add('bad-key', o.key, doc);
      continue;
    }
    if (!pinned) trusted.set(doc.keyId, publicKeyFromDoc(doc));
  }

  // ── digests ──
  const all = digestObjects.filter((d) => d.key.startsWith('digests/dt='));
  const parsed = new Map<string, { bytes: Uint8Array; digest: Digest }>();
  for (const o of all) {
    const bytes = await store.get(o.key);
    if (!bytes) continue;
    const doc = parseCanonical(bytes);
    const digest = doc.ok ? DigestSchema.safeParse(doc.value) : undefined;
    if (!doc.ok) add('bad-digest', o.key, `the digest ${doc.why}`);
    else if (!digest?.success) add('bad-digest', o.key, 'the digest does not match the digest schema');
    else if (digest.data.key !== o.key) add('bad-digest', o.key, `the digest says it belongs at ${digest.data.key}`);
    else parsed.set(o.key, { bytes, digest: digest.data });
  }
  const inRange = (iso: string) => {
    const t = Date.parse(iso);
    return (!options.from || t >= options.from.getTime()) && (!options.to || t <= options.to.getTime());
  };
  const chain = all.filter((o) => {
    const p = parsed.get(o.key);
    return p ? inRange(p.digest.endTime) : true;
  });
  const keyIds = new Set<string>();
  let prevKey: string | undefined;
  for (const o of chain) {
    const entry = parsed.get(o.key);
    if (!entry) {
      prevKey = o.key;
      continue;
    }
    const { digest } = entry;
    const { signature, ...body } = digest;
    const key = trusted.get(digest.signing.keyId);
    keyIds.add(digest.signing.keyId);
    if (!key) add('untrusted-key', o.key, `signed with key ${digest.signing.keyId}, which is ${pinned ? 'not among the pinned keys' : 'not published in the vault'}`);
    else if (!verifySignature(key, digestSigningInput(body), signature)) add('bad-signature', o.key, `the signature does not verify with key ${digest.signing.keyId}`);
    if (digest.signing.publicKeyKey !== publicKeyKey(digest.signing.keyId)) add('bad-digest', o.key, 'the digest points at a key document outside digests/keys/');
    await checkLink(store, parsed, digest, prevKey, add);
    prevKey = o.key;
  }

  // ── receipts ──
  const byKey = new Map<string, AuditObjectInfo>(receiptObjects.map((r) => [r.key, r]));
  const covered = new Set<string>();
  for (const { digest } of parsed.values()) for (const r of digest.receipts) covered.add(r.key);
  const hashes = new Map<string, string | undefined>();
  const hashOf = async (key: string) => {
    if (!hashes.has(key)) {
      const bytes = await store.get(key);
      hashes.set(key, bytes ? sha256Hex(bytes) : undefined);
      if (bytes) checkReceipt(key, bytes, add);
    }
    return hashes.get(key);
  };
  let receiptsChecked = 0;
  for (const o of chain) {
    const entry = parsed.get(o.key);
    for (const r of entry?.digest.receipts ?? []) {
      receiptsChecked += 1;
      if (!byKey.has(r.key)) {
        add('missing-receipt', r.key, `listed in ${o.key} but not in the vault`);
        continue;
      }
      const actual = await hashOf(r.key);
      if (actual === undefined) add('missing-receipt', r.key, `listed in ${o.key} but cannot be read`);
      else if (actual !== r.sha256) add('modified-receipt', r.key, `SHA-256 is ${actual.slice(0, 16)}…, ${o.key} recorded ${r.sha256.slice(0, 16)}…`);
    }
  }
  const lastEnd = Math.max(0, ...[...parsed.values()].map((p) => Date.parse(p.digest.endTime)));
  const pending: string[] = [];
  for (const r of receiptObjects) {
    if (covered.has(r.key)) continue;
    const t = r.lastModified.getTime();
    if ((options.from && t < options.from.getTime()) || (options.to && t > options.to.getTime())) continue;
    if (t > lastEnd && now.getTime() - t <= grace) {
      pending.push(r.key);
      continue;
    }
    add('unlisted-receipt', r.key, t <= lastEnd ? 'written before the last digest but listed in none' : `listed in no digest for more than ${Math.round(grace / 60_000)} min`);
  }
  return { findings, digestsChecked: chain.length, receiptsChecked, pending, keyIds: [...keyIds].sort(), pinned };
}

async function readKeyDoc(store: AuditStore, key: string): Promise<PublicKeyDoc | string> {
  const bytes = await store.get(key);
  if (!bytes) return 'cannot be read';
  const doc = parseCanonical(bytes);
  if (!doc.ok) return `the key document ${doc.why}`;
  const parsed = PublicKeyDocSchema.safeParse(doc.value);
  if (!parsed.success) return 'the key document does not match its schema';
  if (ed25519KeyId(parsed.data.publicKey) !== parsed.data.keyId) return 'the key id is not the thumbprint of the key';
  if (publicKeyKey(parsed.data.keyId) !== key) return 'the key document is stored under another key id';
  try {
    publicKeyFromDoc(parsed.data);
  } catch {
    return 'the public key is not a valid Ed25519 key';
  }
  return parsed.data;
}

async function checkLink(
  store: AuditStore,
  parsed: Map<string, { bytes: Uint8Array; digest: Digest }>,
  digest: Digest,
  prevKey: string | undefined,
  add: (kind: FindingKind, key: string, detail: string) => void,
): Promise<void> {
  const prev = digest.previous;
  if (!prev) {
    if (prevKey) add('broken-chain', digest.key, `starts a new chain although ${prevKey} comes before it`);
    return;
  }
  if (prevKey !== undefined && prev.key !== prevKey) {
    const exists = (await store.get(prev.key)) !== undefined;
    add(exists ? 'broken-chain' : 'missing-digest', exists ? digest.key : prev.key, exists ? `points back to ${prev.key}, but ${prevKey} comes before it` : `${digest.key} points back to it, but it is not in the vault`);
    return;
  }
  const before = parsed.get(prev.key);
  const bytes = before?.bytes ?? (await store.get(prev.key));
  if (!bytes) {
    add('missing-digest', prev.key, `${digest.key} points back to it, but it is not in the vault`);
    return;
  }
  if (sha256Hex(bytes) !== prev.sha256) add('broken-chain', digest.key, `the SHA-256 of ${prev.key} is not the one recorded`);
  else if (before && before.digest.signature !== prev.signature) add('broken-chain', digest.key, `the signature of ${prev.key} is not the one recorded`);
  if (before && before.digest.endTime !== digest.startTime) add('broken-chain', digest.key, `starts at ${digest.startTime}, but ${prev.key} ended at ${before.digest.endTime}`);
}

function checkReceipt(key: string, bytes: Uint8Array, add: (kind: FindingKind, key: string, detail: string) => void): void {
  const doc = parseCanonical(bytes);
  if (!doc.ok) return add('malformed-receipt', key, `the receipt ${doc.why}`);
  const receipt = ReceiptSchema.safeParse(doc.value);
  if (!receipt.success) return add('malformed-receipt', key, 'the receipt does not match the receipt schema');
  const expected = `receipts/dt=${receipt.data.request.receivedAt.slice(0, 10)}/${receipt.data.actionId}.json`;
  if (expected !== key) add('malformed-receipt', key, `the receipt belongs at ${expected}`);
}
