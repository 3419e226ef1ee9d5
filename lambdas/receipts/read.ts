import { createHash } from 'node:crypto';
import type { ActionStore } from '../ports/ledger';
import type { AuditStore } from '../ports/audit-store';
import { canView } from '../actions/view';
import type { Principal } from '../shared/principal';
import { receiptKey } from './build';
import { DigestSchema } from './schema';
import { publicKeyFromDoc, verifySignature } from './signing';
import { digestKey, digestSigningInput, latestDigest } from './vault';
import { parseCanonical, readKeyDoc } from './verify';

/**
 * One receipt as its reader sees it (GET /v1/actions/{id}/receipt): the exact stored bytes
 * and whether they are what the vault's signed digests say — the checksum against the digest
 * that covers the receipt's write time, and that digest's Ed25519 signature. The whole
 * vault's chain is `airlock audit verify`'s job; this answers "is this receipt intact?".
 */

/** No receipt to show: no such action, not the reader's, or none written yet. */
export class ReceiptNotFoundError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ReceiptNotFoundError';
  }
}

/** How far the receipt checks out. */
export interface ReceiptVerification {
  /** `verified`: listed with this checksum by a digest whose signature is valid; `pending`: no digest covers it yet. */
  status: 'verified' | 'pending' | 'failed';
  checksum: 'match' | 'mismatch' | 'not-listed';
  signature: 'valid' | 'invalid' | 'not-checked';
  digest: { key: string; endTime: string; keyId: string } | null;
  latestDigest: string | null;
  detail: string;
}

export interface ReceiptRead {
  actionId: string;
  key: string;
  sha256: string;
  size: number;
  /** The stored bytes as text (canonical JSON and a newline): what a download must contain. */
  body: string;
  verification: ReceiptVerification;
}

export interface ReadReceiptDeps {
  actions: Pick<ActionStore, 'getAction'>;
  store: AuditStore;
  now: () => Date;
}

const DAY = 86_400_000;
/** Days after a receipt's write time searched for the digest that covers it. */
const DIGEST_SEARCH_DAYS = 3;
const sha256Hex = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** The first digest ending at or after `writtenAt`: the one that must list a receipt written then. */
async function coveringDigestKey(store: AuditStore, writtenAt: Date, now: Date): Promise<string | undefined> {
  const floor = digestKey(writtenAt.toISOString());
  for (let day = Math.floor(writtenAt.getTime() / DAY); day <= Math.floor(now.getTime() / DAY) && day <= Math.floor(writtenAt.getTime() / DAY) + DIGEST_SEARCH_DAYS; day++) {
    const keys = (await store.list(`digests/dt=${new Date(day * DAY).toISOString().slice(0, 10)}/`)).map((o) => o.key);
    const found = keys.find((k) => k >= floor);
    if (found) return found;
  }
  return undefined;
}

/** Checks `bytes` (stored at `key`, written at `writtenAt`) against the digest that covers it. */
export async function verifyReceipt(store: AuditStore, key: string, bytes: Uint8Array, writtenAt: Date, now: Date): Promise<ReceiptVerification> {
  const sha256 = sha256Hex(bytes);
  const head = await latestDigest(store, now).catch(() => undefined);
  const latest = head?.key ?? null;
  const digestKeyFound = await coveringDigestKey(store, writtenAt, now);
  if (!digestKeyFound) {
    return {
      status: 'pending',
      checksum: 'not-listed',
      signature: 'not-checked',
      digest: null,
      latestDigest: latest,
      detail: 'No digest covers this receipt yet: digests are written on a schedule. Check again later.',
    };
  }
  const failed = (detail: string, extra: Partial<ReceiptVerification> = {}): ReceiptVerification => ({
    status: 'failed',
    checksum: 'not-listed',
    signature: 'not-checked',
    digest: null,
    latestDigest: latest,
    detail,
    ...extra,
  });
  const digestBytes = await store.get(digestKeyFound);
  const parsedDoc = digestBytes ? parseCanonical(digestBytes) : { ok: false as const, why: 'cannot be read' };
  if (!parsedDoc.ok) return failed(`The digest ${digestKeyFound} ${parsedDoc.why}.`);
  const digest = DigestSchema.safeParse(parsedDoc.value);
  if (!digest.success) return failed(`The digest ${digestKeyFound} does not match its schema.`);
  const d = digest.data;
  const ref = { key: digestKeyFound, endTime: d.endTime, keyId: d.signing.keyId };
  const keyDoc = await readKeyDoc(store, d.signing.publicKeyKey);
  const { signature, ...unsigned } = d;
  const signed = typeof keyDoc !== 'string' && keyDoc.keyId === d.signing.keyId && verifySignature(publicKeyFromDoc(keyDoc), digestSigningInput(unsigned), signature);
  const entry = d.receipts.find((r) => r.key === key);
  const checksum = !entry ? 'not-listed' : entry.sha256 === sha256 ? 'match' : 'mismatch';
  const base = { checksum, signature: signed ? 'valid' : 'invalid', digest: ref, latestDigest: latest } as const;
  if (!signed) return { ...base, status: 'failed', detail: `The signature of digest ${digestKeyFound} does not verify${typeof keyDoc === 'string' ? `: ${keyDoc}` : ''}.` };
  if (checksum === 'not-listed') return { ...base, status: 'failed', detail: `Digest ${digestKeyFound} covers the time this receipt was written but does not list it.` };
  if (checksum === 'mismatch') return { ...base, status: 'failed', detail: `The receipt's SHA-256 differs from the one digest ${digestKeyFound} recorded: it was changed.` };
  return {
    ...base,
    status: 'verified',
    detail: `Its SHA-256 matches digest ${digestKeyFound}, whose Ed25519 signature is valid (key ${d.signing.keyId}, published in the vault; pin it with airlock audit verify --public-key).`,
  };
}

/** The receipt of `actionId` for `viewer` (its owner, an approver of it, or an auditor), checked against the digests. */
export async function readReceipt(deps: ReadReceiptDeps, viewer: Principal, actionId: string): Promise<ReceiptRead> {
  const action = await deps.actions.getAction(actionId);
  // Someone who may not see the action is told it has no receipt, as GET /v1/actions/{id} says 404.
  if (!action || !canView(viewer, action)) throw new ReceiptNotFoundError(`No action ${actionId}.`);
  const key = action.receiptKey ?? receiptKey(action);
  const [info] = (await deps.store.list(key)).filter((o) => o.key === key);
  const bytes = info ? await deps.store.get(key) : undefined;
  if (!info || !bytes) throw new ReceiptNotFoundError(`Action ${actionId} has no receipt yet: it is written when the action ends (it is ${action.status}).`);
  return {
    actionId,
    key,
    sha256: sha256Hex(bytes),
    size: bytes.byteLength,
    body: Buffer.from(bytes).toString('utf8'),
    verification: await verifyReceipt(deps.store, key, bytes, info.lastModified, deps.now()),
  };
}
