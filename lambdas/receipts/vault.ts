import { createHash } from 'node:crypto';
import { canonicalJson } from '../shared/canonical-json';
import type { Logger } from '../shared/logger';
import type { ToolRegistry } from '../ports/tools';
import { TerminalStatuses, type ActionRecord, type ActionStatus } from '../actions/action';
import type { ActionStore } from '../ports/ledger';
import type { AuditEvent, EventLog, LedgerSnapshot, StepRecord, StepStore } from '../ports/steps';
import { AuditObjectConflictError, type AuditStore, type PutResult } from '../ports/audit-store';
import { SecretNames, type SecretsPort } from '../ports/secrets';
import { buildReceipt, eventChainIntact, receiptKey, serializeReceipt } from './build';
import { Redactor } from './redact';
import { DigestSchema, RECEIPT_SCHEMA_VERSION, type Digest, type DigestEntry } from './schema';
import { digestSignerFromSecret, type DigestSigner } from './signing';
import type { Metrics } from '../ports/metrics';
import { countKpi } from '../observability/kpis';

/**
 * The audit vault's use cases: WriteReceipt (end of every saga path) and WriteDigest (hourly
 * in AWS, on demand locally). Both only read the ledger and only ever add objects.
 */

/** The redaction key and the digest-signing key, by secret name. */
export const AuditSecretNames = {
  redactionKey: SecretNames.receiptRedactionKey,
  digestSigningKey: SecretNames.digestSigningKey,
} as const;

/** No action with this id: nothing to write a receipt for. */
export class ActionNotFoundError extends Error {
  constructor(actionId: string, options?: { cause?: unknown }) {
    super(`No action ${actionId}`, options);
    this.name = 'ActionNotFoundError';
  }
}

export interface ReceiptsDeps {
  actions: Pick<ActionStore, 'getAction'>;
  steps: Pick<StepStore, 'listSteps'>;
  events: Pick<EventLog, 'list' | 'listWithAction'>;
  store: AuditStore;
  secrets: SecretsPort;
  /** The tools' declarations (which fields are PII). */
  tools: ToolRegistry;
  logger: Logger;
  now: () => Date;
  digests: DigestOptions;
  /** Audit KPIs: receipts written and failed, how each action ended, digests and their age. */
  metrics?: Metrics;
}

export interface DigestOptions {
  /**
   * How far back (days) a receipt's key date can lie behind its write time: an action is
   * keyed by the day it was created and settles at most the approval timeout later.
   * Undefined lists every receipt (the local vault, where listing is cheap).
   */
  lookbackDays?: number;
  /** A digest ends this long before "now", so writes in flight when it lists are not lost. */
  settleMs: number;
  /** Truncate digest end times to whole seconds (S3 LastModified has second precision). */
  wholeSeconds: boolean;
  /**
   * The schedule digests are written on (hourly in AWS, a timer locally), declared in every
   * digest as its heartbeat so the verifier can tell a vault that stops early. Undefined: the
   * writer runs on demand and promises nothing.
   */
  intervalSeconds?: number;
}

/** Options of one {@link writeDigest} call. */
export interface WriteDigestOptions {
  /** The writer is stopping cleanly: this digest says no next one is due. */
  closing?: boolean;
  /**
   * The key of the digest this writer (this process) wrote last. When the vault's head is
   * still that digest and it is overdue, the writer was paused (the machine slept) and says
   * so; when the head is older than that digest, digests were removed behind the writer's
   * back: an alarm.
   */
  lastWritten?: string;
}

export interface WriteReceiptResult {
  key: string;
  status: ActionStatus;
  sha256: string;
  write: PutResult;
}

const sha256Hex = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');

/**
 * WriteReceipt: builds the action's receipt from the ledger and stores it once. A retry that
 * finds the same bytes is a no-op; different bytes are an alarm (logged with ALARM and
 * thrown as AuditObjectConflictError).
 */
export async function writeReceipt(deps: ReceiptsDeps, actionId: string, options: ReceiptOptions = {}): Promise<WriteReceiptResult> {
  try {
    const result = await storeReceipt(deps, actionId, options);
    if (result.write === 'created') {
      // Once per action: the vault takes the first write only, so retries never count twice.
      countKpi(deps.metrics, 'ReceiptWritten');
      countKpi(deps.metrics, 'ActionEnded', { outcome: result.status });
      const took = deps.now().getTime() - result.createdAtMs;
      if (Number.isFinite(took) && took >= 0) deps.metrics?.observe('ActionDuration', took, 'Milliseconds', { outcome: result.status });
    }
    return { key: result.key, status: result.status, sha256: result.sha256, write: result.write };
  } catch (error) {
    countKpi(deps.metrics, 'ReceiptFailed');
    throw error;
  }
}

/** Options of one {@link writeReceipt} call. */
export interface ReceiptOptions {
  traceId?: string | null;
  /**
   * The action's records as its caller holds them (the read fast path, which wrote them all):
   * used when {@link heldRecordsOf} accepts them, and the ledger is read otherwise.
   */
  held?: unknown;
}

/**
 * The held records, when they are this action's and hold together: the action settled, the
 * events a whole chain from sequence 1 that verifies, every step record this action's.
 * Undefined otherwise. Not a trust boundary (only the saga function, which wrote them, hands
 * them over); it keeps a mistake from becoming a receipt: the ledger is read instead.
 */
export function heldRecordsOf(value: unknown, actionId: string): LedgerSnapshot | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const { action, events, steps } = value as Partial<Record<keyof LedgerSnapshot, unknown>>;
  if (action === null || typeof action !== 'object' || !Array.isArray(events) || !Array.isArray(steps)) return undefined;
  const a = action as Partial<ActionRecord>;
  if (a.id !== actionId || typeof a.status !== 'string' || !TerminalStatuses.has(a.status as ActionStatus)) return undefined;
  const chain = events as AuditEvent[];
  const whole = chain.every((e, i) => e !== null && typeof e === 'object' && e.actionId === actionId && e.seq === i + 1) && eventChainIntact(chain);
  const ours = (steps as StepRecord[]).every((r) => r !== null && typeof r === 'object' && r.actionId === actionId);
  return whole && ours ? { action: a as ActionRecord, events: chain, steps: steps as StepRecord[] } : undefined;
}

/** The action, its events and its steps as the ledger holds them now. */
async function readHistory(deps: ReceiptsDeps, actionId: string): Promise<{ action: ActionRecord | undefined; events: readonly AuditEvent[]; steps: readonly StepRecord[] }> {
  // The action and its events in one request where the store allows it; the steps beside them.
  const [history, steps] = await Promise.all([
    deps.events.listWithAction
      ? deps.events.listWithAction(actionId)
      : Promise.all([deps.actions.getAction(actionId), deps.events.list(actionId)]).then(([action, events]) => ({ action, events })),
    deps.steps.listSteps(actionId),
  ]);
  return { action: history.action, events: history.events, steps };
}

async function storeReceipt(deps: ReceiptsDeps, actionId: string, options: ReceiptOptions): Promise<WriteReceiptResult & { createdAtMs: number }> {
  const held = heldRecordsOf(options.held, actionId);
  const [records, key] = await Promise.all([held ?? readHistory(deps, actionId), deps.secrets.getSecret(AuditSecretNames.redactionKey)]);
  const { action, events, steps } = records;
  if (!action) throw new ActionNotFoundError(actionId);
  const builder = (from: { action: ActionRecord; steps: readonly StepRecord[] }) => (chain: readonly AuditEvent[]) =>
    // An action-level trace id wins when intake records one; else the saga's X-Ray trace.
    buildReceipt({ action: from.action, steps: from.steps, events: chain, redactor: new Redactor(key), tools: deps.tools, traceId: from.action.traceId ?? options.traceId ?? null });
  const build = builder({ action, steps });
  const receipt = build(events);
  if (!receipt.events.intact) deps.logger.error('ALARM audit event chain does not verify', { actionId, events: receipt.events.count });
  const body = serializeReceipt(receipt);
  const sha256 = sha256Hex(body);
  const objectKey = receiptKey(action);
  const result = (write: PutResult, stored: string) => ({ key: objectKey, status: action.status, sha256: stored, write, createdAtMs: Date.parse(action.createdAt) });
  try {
    const write = await deps.store.putIfAbsent(objectKey, body, sha256);
    deps.logger.info('receipt stored', { actionId, key: objectKey, sha256, write, status: action.status });
    return result(write, sha256);
  } catch (error) {
    if (error instanceof AuditObjectConflictError) {
      // Another run stored this action's receipt first: from fewer events (a vote refused as the
      // action settled was appended after it), or from more than this writer read (the fast
      // path's held records, or a ledger read that another run's events and receipt overtook;
      // 10,000-action storm: a read handed off to the saga, both writing, the later build stored
      // first). Not tampering when the stored bytes are exactly what the ledger as it is now
      // builds from its first events (the stored receipt's count), with its action and steps.
      const stored = await storedReceipt(deps, objectKey);
      const now = stored ? await readHistory(deps, actionId) : undefined;
      const ordered = now ? bySeq(now.events) : [];
      if (stored && now?.action && builds(stored, ordered, builder({ action: now.action, steps: now.steps }))) {
        if (stored.count < ordered.length) {
          // The vault keeps the first receipt; the later events stay on the action's chain in the ledger.
          deps.logger.warn('receipt in the vault was written before later audit events; they stay on the action chain', {
            actionId,
            key: objectKey,
            receiptEvents: stored.count,
            chainEvents: ordered.length,
            laterEvents: ordered.slice(stored.count).map((e) => e.type),
          });
        } else {
          deps.logger.info('receipt in the vault was built from later ledger records than this writer read; it is the receipt of record', {
            actionId,
            key: objectKey,
            receiptEvents: stored.count,
            readEvents: events.length,
          });
        }
        return result('identical', stored.sha256);
      }
      deps.logger.error('ALARM receipt differs from the one already in the vault', {
        actionId,
        key: objectKey,
        storedSha256: error.storedSha256,
        newSha256: error.newSha256,
      });
    }
    throw error;
  }
}

const bySeq = (events: readonly AuditEvent[]) => [...events].sort((a, b) => a.seq - b.seq);

/** The receipt stored at `objectKey`: its digest and the event count it states; undefined when it has none. */
async function storedReceipt(deps: ReceiptsDeps, objectKey: string): Promise<{ count: number; sha256: string } | undefined> {
  const stored = await deps.store.get(objectKey);
  if (!stored) return undefined;
  let count: unknown;
  try {
    count = (JSON.parse(Buffer.from(stored).toString('utf8')) as { events?: { count?: unknown } }).events?.count;
  } catch {
    return undefined;
  }
  return typeof count === 'number' && Number.isInteger(count) && count >= 1 ? { count, sha256: sha256Hex(stored) } : undefined;
}

/**
 * Whether the stored receipt is exactly what the first of `ordered` events (by sequence) build,
 * its own event count taken from it and everything else from `build`'s records. Anything else
 * stays an ALARM: a vault or ledger that changed under the receipt.
 */
function builds(stored: { count: number; sha256: string }, ordered: readonly AuditEvent[], build: (chain: readonly AuditEvent[]) => ReturnType<typeof buildReceipt>): boolean {
  if (stored.count > ordered.length) return false;
  return sha256Hex(serializeReceipt(build(ordered.slice(0, stored.count)))) === stored.sha256;
}

/** Compact UTC time for digest keys: `20250102T030405.678Z`. */
export function compactTime(iso: string): string {
  return iso.replace(/[-:]/g, '');
}

/** `digests/dt=YYYY-MM-DD/<end>.json`. */
export function digestKey(endTime: string): string {
  return `digests/dt=${endTime.slice(0, 10)}/${compactTime(endTime)}.json`;
}

/** `digests/keys/<keyId>.json`: the published public half of a digest-signing key. */
export function publicKeyKey(keyId: string): string {
  return `digests/keys/${keyId}.json`;
}

/** The exact bytes Ed25519 signs for a digest: a label and the canonical digest without its signature. */
export function digestSigningInput(body: Omit<Digest, 'signature'>): Uint8Array {
  return Buffer.from(`airlock-digest/${RECEIPT_SCHEMA_VERSION}\n${canonicalJson(body)}`, 'utf8');
}

/** A stored JSON document: canonical JSON and a newline (the verifier insists on exactly this). */
export function serializeDocument(doc: unknown): Uint8Array {
  return Buffer.from(`${canonicalJson(doc)}\n`, 'utf8');
}

const DAY = 86_400_000;
const EPOCH = new Date(0).toISOString();

/** The newest digest in the vault (the chain head), or undefined before the first. */
export async function latestDigest(store: AuditStore, now: Date): Promise<{ key: string; bytes: Uint8Array; digest: Digest } | undefined> {
  let keys: string[] = [];
  // The head is normally from the last hour; only a long pause needs the full listing.
  for (let back = 0; back < 3 && keys.length === 0; back++) {
    const day = new Date(now.getTime() - back * DAY).toISOString().slice(0, 10);
    keys = (await store.list(`digests/dt=${day}/`)).map((o) => o.key);
  }
  if (keys.length === 0) keys = (await store.list('digests/dt=')).map((o) => o.key);
  const key = keys.at(-1);
  if (!key) return undefined;
  const bytes = await store.get(key);
  if (!bytes) throw new Error(`Digest ${key} vanished while being read`);
  return { key, bytes, digest: DigestSchema.parse(JSON.parse(Buffer.from(bytes).toString('utf8'))) };
}

/**
 * WriteDigest: lists every receipt stored since the previous digest with its SHA-256,
 * chains to the previous digest (key, hash and signature) and signs the lot with Ed25519,
 * after CloudTrail's digest files. Publishes the public key first. Returns undefined when
 * no time has passed since the last digest.
 */
export async function writeDigest(
  deps: Pick<ReceiptsDeps, 'store' | 'secrets' | 'logger' | 'now' | 'digests' | 'metrics'>,
  signer?: DigestSigner,
  options: WriteDigestOptions = {},
): Promise<{ key: string; digest: Digest; sha256: string } | undefined> {
  const now = deps.now();
  const sign = signer ?? digestSignerFromSecret(await deps.secrets.getSecret(AuditSecretNames.digestSigningKey));
  const head = await latestDigest(deps.store, now);
  let endMs = now.getTime() - deps.digests.settleMs;
  if (deps.digests.wholeSeconds) endMs = Math.floor(endMs / 1000) * 1000;
  const startTime = head?.digest.endTime ?? EPOCH;
  const startMs = Date.parse(startTime);
  // A closing digest must land even right after another one, or the vault would end on a
  // digest that still promises a successor.
  if (endMs <= startMs && options.closing && !deps.digests.wholeSeconds) endMs = startMs + 1;
  if (endMs <= startMs) return undefined;
  const endTime = new Date(endMs).toISOString();
  // Keys sort by end time. Another writer's newer digest (`audit digest`) is fine; an older head is not.
  if (options.lastWritten && (!head || head.key < options.lastWritten)) {
    deps.logger.error('ALARM the newest digest in the vault is not the one this writer wrote last: digests were removed', {
      lastWritten: options.lastWritten,
      head: head?.key ?? null,
    });
  }
  const interval = deps.digests.intervalSeconds;
  const overdue = head?.digest.heartbeat && !head.digest.heartbeat.stopped && endMs - startMs > head.digest.heartbeat.intervalSeconds * 1000;
  const paused = Boolean(interval && overdue && options.lastWritten !== undefined && head?.key === options.lastWritten);

  const lookback = deps.digests.lookbackDays;
  const candidates =
    head && lookback !== undefined ? await receiptsSince(deps.store, startMs - lookback * DAY, endMs) : await deps.store.list('receipts/');
  const entries: DigestEntry[] = [];
  for (const o of candidates) {
    const t = o.lastModified.getTime();
    if (t <= startMs || t > endMs) continue;
    const bytes = await deps.store.get(o.key);
    if (!bytes) continue;
    entries.push({ key: o.key, sha256: sha256Hex(bytes), size: bytes.length, lastModified: o.lastModified.toISOString() });
  }

  await deps.store.putIfAbsent(publicKeyKey(sign.keyId), serializeDocument(sign.publicKey), sha256Hex(serializeDocument(sign.publicKey)));
  const key = digestKey(endTime);
  const body: Omit<Digest, 'signature'> = {
    schemaVersion: RECEIPT_SCHEMA_VERSION,
    kind: 'airlock.digest',
    key,
    startTime,
    endTime,
    receipts: entries,
    previous: head ? { key: head.key, sha256: sha256Hex(head.bytes), signature: head.digest.signature } : null,
    heartbeat: interval
      ? { intervalSeconds: interval, ...(options.closing ? { stopped: true as const } : {}), ...(paused ? { paused: true as const } : {}) }
      : null,
    signing: { algorithm: 'Ed25519', keyId: sign.keyId, publicKeyKey: publicKeyKey(sign.keyId) },
  };
  const digest: Digest = { ...body, signature: sign.sign(digestSigningInput(body)) };
  const bytes = serializeDocument(digest);
  const sha256 = sha256Hex(bytes);
  await deps.store.putIfAbsent(key, bytes, sha256);
  countKpi(deps.metrics, 'DigestWritten');
  // How long the vault went without a digest: the heartbeat the digest-age alarm watches.
  if (head) deps.metrics?.observe('DigestAge', Math.max(0, (now.getTime() - Date.parse(head.digest.endTime)) / 1000), 'Seconds');
  // The log is the anchor outside the vault: its SHA-256 is what `audit verify --expect-head` takes.
  deps.logger.info('digest stored', { key, sha256, receipts: entries.length, previous: head?.key ?? null, heartbeat: body.heartbeat });
  return { key, digest, sha256 };
}

async function receiptsSince(store: AuditStore, fromMs: number, toMs: number) {
  const out = [];
  for (let day = Math.floor(fromMs / DAY); day <= Math.floor(toMs / DAY); day++) {
    out.push(...(await store.list(`receipts/dt=${new Date(day * DAY).toISOString().slice(0, 10)}/`)));
  }
  return out;
}
