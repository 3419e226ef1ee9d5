import { checkDelegationReceipt, isDelegationReceiptKey } from './consent';
import { createHash, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../shared/canonical-json';
import type { AuditObjectInfo, AuditStore } from '../ports/audit-store';
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
  | 'missing-digest'
  | 'truncated-tail'
  | 'digest-gap'
  | 'missing-anchor';

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
  /**
   * The vault must be covered up to here: its newest digest may end at most one heartbeat
   * interval (plus the tolerance) before. Defaults to `to`, else `now`; with neither given
   * explicitly, a vault whose writer stopped cleanly (or wrote on demand) may end anywhere.
   */
  until?: Date;
  /** Extra lateness allowed per heartbeat; default {@link defaultToleranceMs} of the interval. */
  toleranceMs?: number;
  /** SHA-256s of digests recorded outside the vault (the writer's log): each must still be in it. */
  expectHeads?: string[];
  now?: Date;
}

/** Where the vault ends, and what the verifier expected of its end. */
export interface VaultTail {
  /** The newest digest, or null when there is none. */
  key: string | null;
  sha256: string | null;
  endsAt: string | null;
  /** The newest digest's heartbeat: its schedule, `null` (none promised) or `undefined` (a digest from before heartbeats). */
  heartbeat: Digest['heartbeat'];
  /** The time the vault had to reach. */
  until: string;
  /** Whether `until` was asked for (`until` / `to`) rather than defaulting to now. */
  untilGiven: boolean;
  /** How far the vault's end lies behind `until` (ms, 0 when it reaches it). */
  behindMs: number;
  /** How far behind it may lie; null when nothing was promised and no `until` was given. */
  allowedMs: number | null;
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
  tail: VaultTail;
}

const sha256Hex = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const DEFAULT_GRACE_MS = 2 * 3_600_000;

/** Parses a stored JSON document that must be canonical JSON plus a newline. */
export function parseCanonical(bytes: Uint8Array): { ok: true; value: unknown } | { ok: false; why: string } {
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
  // ── heartbeat: gaps inside the chain, the tail, and anchors kept outside the vault ──
  const ordered = chain.map((o) => parsed.get(o.key)).filter((p): p is { bytes: Uint8Array; digest: Digest } => p !== undefined);
  for (let i = 1; i < ordered.length; i++) {
    const before = ordered[i - 1]!.digest;
    const after = ordered[i]!.digest;
    const allowed = allowedLag(before, options.toleranceMs);
    const lag = Date.parse(after.endTime) - Date.parse(before.endTime);
    // A writer that wrote `before` itself and was paused since says so; nothing can be missing.
    if (allowed !== null && lag > allowed && !after.heartbeat?.paused) {
      const interval = before.heartbeat!.intervalSeconds * 1000;
      add(
        'digest-gap',
        after.key,
        `no digest for ${formatDuration(lag)} between ${before.endTime} and ${after.endTime}, although ${before.key} promised one every ${formatDuration(interval)} (tolerance ${formatDuration(allowed - interval)}): digests were removed, or the writer was down`,
      );
    }
  }
  const tail = checkTail(options, now, [...parsed.values()], {
    anyDigestObject: all.length > 0,
    keyPublished: digestObjects.some((d) => d.key.startsWith('digests/keys/')),
    settledReceipts: receiptObjects.some((r) => !covered.has(r.key) && !pending.includes(r.key)),
  }, add);
  const hashesOfDigests = new Set([...parsed.values()].map((p) => sha256Hex(p.bytes)));
  for (const head of options.expectHeads ?? []) {
    if (!hashesOfDigests.has(head.toLowerCase())) {
      add('missing-anchor', head, 'no digest in the vault has this SHA-256: the digest recorded outside the vault is gone (cut off, or this is another vault)');
    }
  }
  return { findings, digestsChecked: chain.length, receiptsChecked, pending, keyIds: [...keyIds].sort(), pinned, tail };
}

/** How long after `digest` its successor may end: interval + tolerance, or null when nothing was promised. */
function allowedLag(digest: Digest, toleranceMs: number | undefined): number | null {
  const beat = digest.heartbeat;
  if (!beat || beat.stopped) return null;
  const interval = beat.intervalSeconds * 1000;
  return interval + (toleranceMs ?? defaultToleranceMs(interval));
}

/**
 * How late a scheduled digest may be by default: a sixth of the interval, at least 10 s
 * (10 min for the hourly AWS schedule: EventBridge's delivery, the writer's 1-minute settle
 * margin and Lambda's retries). Small on purpose: the vault cut back by one digest is caught
 * as soon as the verification runs more than this after the digest that is gone was due.
 */
export function defaultToleranceMs(intervalMs: number): number {
  return Math.max(10_000, Math.round(intervalMs / 6));
}

function checkTail(
  options: VerifyOptions,
  now: Date,
  digests: { bytes: Uint8Array; digest: Digest }[],
  evidence: { anyDigestObject: boolean; keyPublished: boolean; settledReceipts: boolean },
  add: (kind: FindingKind, key: string, detail: string) => void,
): VaultTail {
  const given = options.until ?? options.to;
  const until = given ?? now;
  const newest = digests.reduce<{ bytes: Uint8Array; digest: Digest } | undefined>(
    (a, b) => (!a || Date.parse(b.digest.endTime) > Date.parse(a.digest.endTime) ? b : a),
    undefined,
  );
  const untilText = `${until.toISOString()}${given ? '' : ' (now)'}`;
  if (!newest) {
    // A published key, a receipt past its grace, or an expectation of coverage: digests existed or should.
    if (evidence.keyPublished || evidence.settledReceipts || given || (options.expectHeads?.length ?? 0) > 0) {
      if (!evidence.anyDigestObject) add('truncated-tail', 'digests/', `the vault holds no digest, but ${evidence.keyPublished ? 'a signing key was published' : evidence.settledReceipts ? 'it holds receipts' : `coverage up to ${untilText} was asked for`}: every digest is missing`);
    }
    return { key: null, sha256: null, endsAt: null, heartbeat: undefined, until: until.toISOString(), untilGiven: given !== undefined, behindMs: 0, allowedMs: null };
  }
  const { digest } = newest;
  const behind = Math.max(0, until.getTime() - Date.parse(digest.endTime));
  const beat = digest.heartbeat;
  // A stopped writer, an on-demand digest or a digest from before heartbeats promises nothing;
  // then only an explicit `until` says where the vault must reach.
  const promised = beat && !beat.stopped ? allowedLag(digest, options.toleranceMs) : null;
  const allowed = promised ?? (given ? (options.toleranceMs ?? (beat ? defaultToleranceMs(beat.intervalSeconds * 1000) : 0)) : null);
  if (allowed !== null && behind > allowed) {
    const why = beat
      ? beat.stopped
        ? ', where its writer stopped'
        : `, but its writer promised a digest every ${formatDuration(beat.intervalSeconds * 1000)}`
      : beat === null
        ? ' (a digest written on demand)'
        : ' (a digest from before heartbeats)';
    add(
      'truncated-tail',
      digest.key,
      `the vault ends at ${digest.endTime}${why}: nothing covers the ${formatDuration(behind)} up to ${untilText}, more than the ${formatDuration(allowed)} allowed`,
    );
  }
  return {
    key: digest.key,
    sha256: sha256Hex(newest.bytes),
    endsAt: digest.endTime,
    heartbeat: beat,
    until: until.toISOString(),
    untilGiven: given !== undefined,
    behindMs: behind,
    allowedMs: allowed,
  };
}

/** `5 h 12 min`, `90 s`, `2 d 3 h`: durations people read in a finding. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/** Reads and checks a published digest-signing key; a string says what is wrong with it. */
export async function readKeyDoc(store: AuditStore, key: string): Promise<PublicKeyDoc | string> {
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
  // Consent and revocation receipts sit beside action receipts, covered by the same digests.
  if (isDelegationReceiptKey(key)) {
    const why = checkDelegationReceipt(key, doc.value);
    if (why) add('malformed-receipt', key, why);
    return;
  }
  const receipt = ReceiptSchema.safeParse(doc.value);
  if (!receipt.success) return add('malformed-receipt', key, 'the receipt does not match the receipt schema');
  const expected = `receipts/dt=${receipt.data.request.receivedAt.slice(0, 10)}/${receipt.data.actionId}.json`;
  if (expected !== key) add('malformed-receipt', key, `the receipt belongs at ${expected}`);
}
