import { mkdtemp, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoSagaStore } from '../../lambdas/adapters/aws/dynamo-saga-store';
import { FileSecrets } from '../../lambdas/adapters/local/file-secrets';
import { createLogger } from '../../lambdas/middleware/powertools';
import { ReceiptSchema, type Receipt } from '../../lambdas/receipts/schema';
import { PII_TOKEN_PREFIX } from '../../lambdas/receipts/redact';
import { renderTimeline } from '../../lambdas/receipts/timeline';
import { writeReceipt } from '../../lambdas/receipts/vault';
import { verifyVault } from '../../lambdas/receipts/verify';
import { createReceiptsHandler, ReceiptsTaskInvalidError } from '../../lambdas/receipts/handler';
import { composeLocal, type LocalComposition } from '../../lambdas/composition/local';
import { provisionLocalSecrets } from '../../local/provision-secrets';
import { AuditObjectConflictError, ObjectLockedError } from '../../lambdas/ports/audit-store';
import { startLedger } from '../helpers/ledger';
import { PII, seedAction, TERMINALS, type Terminal } from '../helpers/receipts';

/**
 * Receipts from ledger data written through the real adapters on dynalite, stored in the
 * local write-once vault: every terminal status, redaction, idempotency, conflicts, digests.
 */

let env: Awaited<ReturnType<typeof startLedger>>;
let store: DynamoSagaStore;
let dir: string;
let composition: LocalComposition;
let handler: ReturnType<typeof createReceiptsHandler>;
const lines: string[] = [];
const ids = new Map<Terminal, string>();
const receipts = new Map<Terminal, { key: string; bytes: string; receipt: Receipt }>();

beforeAll(async () => {
  env = await startLedger();
  store = new DynamoSagaStore({ client: env.dynamo.client, tableName: env.tableName });
  dir = await mkdtemp(join(tmpdir(), 'airlock-receipts-'));
  const secrets = new FileSecrets(join(dir, 'secrets'));
  await provisionLocalSecrets(secrets, []);
  composition = composeLocal(
    {
      stateDir: dir,
      dynamo: { client: env.dynamo.client, tableName: env.tableName },
      secrets,
      logger: createLogger({ level: 'info', sink: (line) => lines.push(line) }),
      workflow: { start: async () => undefined },
      callbacks: { sendTaskSuccess: async () => undefined, sendTaskFailure: async () => undefined },
      connectorFunction: (name) => name,
      vendorBaseUrls: {},
    },
    { digestAfterEachReceipt: true },
  );
  handler = createReceiptsHandler(async () => composition.receipts);
  let n = 0;
  for (const status of TERMINALS) {
    const id = `act_01JRECE1PT${String(++n).padStart(16, '0')}`;
    ids.set(status, id);
    await seedAction({ ledger: env.ledger, store }, id, status);
    const out = (await handler({ task: 'WriteReceipt', actionId: id }, {} as never)) as { key: string; status: string };
    const bytes = Buffer.from((await composition.vault.store.get(out.key))!).toString('utf8');
    receipts.set(status, { key: out.key, bytes, receipt: ReceiptSchema.parse(JSON.parse(bytes)) });
  }
});

/** Rewrites one stored event's body in place (its chain fields kept), as someone with table access could. */
async function rewriteEvent(id: string, seq: number): Promise<void> {
  const { PutItemCommand, GetItemCommand } = await import('@aws-sdk/client-dynamodb');
  const key = { pk: { S: `ACTION#${id}` }, sk: { S: `EVENT#${String(seq).padStart(8, '0')}` } };
  const item = (await env.dynamo.client.send(new GetItemCommand({ TableName: env.tableName, Key: key }))).Item!;
  const doc = JSON.parse(item.doc!.S!) as { actor: string };
  await env.dynamo.client.send(new PutItemCommand({ TableName: env.tableName, Item: { ...item, doc: { S: JSON.stringify({ ...doc, actor: 'mallory' }) } } }));
}

/**
 * A settled action whose records one writer holds (`held`) while another run appends an event
 * and stores the receipt of the longer chain first (`later`).
 */
async function overtaken(id: string) {
  await seedAction({ ledger: env.ledger, store }, id, 'completed');
  const held = { action: await env.ledger.getAction(id), events: await store.list(id), steps: await store.listSteps(id) };
  await store.append(id, { type: 'approval.vote_refused', actor: 'u51', data: { reason: 'closed' } });
  return { held, later: await writeReceipt(composition.receipts.deps, id) };
}

afterAll(async () => {
  await env?.close();
  if (dir) {
    await chmod(dir, 0o700).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
});

describe('receipts for every terminal status', () => {
  it.each(TERMINALS)('%s: stored under its creation day with the final status', (status) => {
    const r = receipts.get(status)!;
    expect(r.key).toBe(`receipts/dt=2025-06-01/${ids.get(status)}.json`);
    expect(r.receipt.outcome.status).toBe(status);
    expect(r.receipt.request.principal).toEqual({ sub: 'alice', roles: ['employee'], manager: 'bob', department: 'sales' });
    expect(r.receipt.request.actor).toEqual({ name: 'trip-bot', model: 'gpt-x' });
    expect(r.receipt.events.intact).toBe(true);
    expect(r.receipt.events.count).toBe(r.receipt.events.chain.length);
    expect(r.receipt.events.chain.map((e) => e.seq)).toEqual(r.receipt.events.chain.map((_, i) => i + 1));
    expect(r.receipt.events.head).toBe(r.receipt.events.chain.at(-1)?.hash);
    expect(r.receipt.decision?.policySetVersion).toBe('a'.repeat(64));
    expect(r.receipt.decision?.limitsVersion).toBe('b'.repeat(64));
    expect(r.receipt.outcome.durationMs).toBeGreaterThan(0);
  });

  it('completed: every step with its grant, idempotency key and vendor reference', () => {
    const { receipt } = receipts.get('completed')!;
    expect(receipt.steps.map((s) => [s.stepId, s.kind, s.tool, s.status])).toEqual([
      ['hold', 'forward', 'travel.hold_seat', 'complete'],
      ['book', 'forward', 'travel.book_flight', 'complete'],
      ['pay', 'forward', 'payments.authorize', 'complete'],
    ]);
    const book = receipt.steps[1]!;
    expect(book.vendorReference).toEqual({ bookingId: 'BKG-9', holdId: 'HLD-1' });
    expect(book.grants).toEqual([{ jti: 'jti-book-forward', scope: 'travel.book_flight#book', expiresAt: '2025-06-01T10:05:05.000Z' }]);
    expect(book.idempotencyKey).toBe(`${ids.get('completed')}.book`);
    expect(book.attempts).toBe(1);
    expect(book.durationMs).toBe(1000);
    expect(receipt.steps[2]!.vendorReference).toEqual({ authorizationId: 'AUTH-3' });
  });

  it('compensated: the compensation names what it undid and when', () => {
    const { receipt } = receipts.get('compensated')!;
    const undo = receipt.steps.find((s) => s.kind === 'compensate')!;
    expect(undo).toMatchObject({ stepId: 'hold', tool: 'travel.release_hold', status: 'complete' });
    expect(undo.undoes).toEqual({
      stepId: 'hold',
      tool: 'travel.hold_seat',
      idempotencyKey: `${ids.get('compensated')}.hold`,
      vendorReference: { holdId: 'HLD-1', flightId: 'FL-100' },
      undoneAt: '2025-06-01T10:00:09.000Z',
    });
    expect(receipt.steps.find((s) => s.stepId === 'book')?.status).toBe('failed');
  });

  it('rejected and expired: the approvals section comes from the approval events', () => {
    const rejected = receipts.get('rejected')!.receipt.approvals;
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatchObject({ approvalId: 'apr_1', outcome: 'rejected', decidedBy: 'bob', quorum: 1, approverRule: 'manager', planHash: 'p'.repeat(64) });
    expect(rejected[0]!.votes).toEqual([{ voter: 'bob', decision: 'reject', comment: expect.stringContaining('Not for pii:hmac-sha256:'), at: '2025-06-01T10:00:10.000Z' }]);
    expect(receipts.get('expired')!.receipt.approvals[0]).toMatchObject({ outcome: 'expired', votes: [] });
    expect(receipts.get('denied')!.receipt.decision?.outcome).toBe('deny');
    expect(receipts.get('denied')!.receipt.steps).toEqual([]);
  });

  it('the timeline names who asked, who decided and what ran', () => {
    const text = renderTimeline(receipts.get('compensated')!.receipt);
    expect(text).toContain('received from alice via trip-bot');
    expect(text).toContain('undo hold with travel.release_hold');
    expect(text).toContain('settled compensated');
    expect(renderTimeline(receipts.get('rejected')!.receipt)).toContain('vote reject by bob');
  });
});

describe('redaction', () => {
  it('no raw PII value appears anywhere in any receipt, and no grant token', () => {
    for (const [status, { bytes }] of receipts) {
      for (const value of Object.values(PII)) expect(bytes.includes(value), `${status} holds ${value}`).toBe(false);
      expect(bytes).not.toMatch(/eyJ[A-Za-z0-9_-]{8,}\./);
    }
  });

  it('equal values get equal tokens, so receipts stay linkable', () => {
    const { receipt } = receipts.get('completed')!;
    const env = receipt.request.envelope as { plan: { arguments: { contact?: { email: string } } }[] };
    const fromEnvelope = env.plan[1]!.arguments.contact!.email;
    const fromInput = (receipt.steps[1]!.input as { contact: { email: string } }).contact.email;
    const fromOutput = (receipt.steps[1]!.output as { contact: { email: string } }).contact.email;
    expect(fromEnvelope.startsWith(PII_TOKEN_PREFIX)).toBe(true);
    expect(fromInput).toBe(fromEnvelope);
    expect(fromOutput).toBe(fromEnvelope);
    const other = receipts.get('failed')!.receipt.request.envelope as typeof env;
    expect(other.plan[1]!.arguments.contact!.email).toBe(fromEnvelope);
    // $refs name places, not values, and stay readable.
    expect((env.plan[1]!.arguments as Record<string, unknown>).holdId).toEqual({ $ref: 'steps.hold.output.holdId' });
    expect(receipt.redaction.fields).toBeGreaterThan(10);
  });

  it('free text echoing a PII value is scrubbed (vendor errors, reasons)', () => {
    const { receipt } = receipts.get('failed')!;
    expect(receipt.outcome.reason).toMatch(/^VendorRejectedError: fare class closed for pii:hmac-sha256:[0-9a-f]{32}$/);
    expect(receipt.steps.find((s) => s.stepId === 'book')?.error?.message).toContain('pii:hmac-sha256:');
    expect(receipt.request.reason).toMatch(/^Trip for pii:hmac-sha256:/);
  });
});

describe('write once', () => {
  it('a second write of the same receipt is a no-op success', async () => {
    const id = ids.get('completed')!;
    const { deps } = composition.receipts;
    const again = await writeReceipt(deps, id);
    expect(again.write).toBe('identical');
    expect(again.sha256).toBeTruthy();
  });

  it('a second run after RecordReceipt writes the same receipt: recording its key does not move settledAt', async () => {
    // Seed 7 at 1,000 actions: a run resumed after a crash settled a read and recorded its
    // receipt; the agent's retry took the idempotency claim over 30 s later and started one
    // more run, whose WriteReceipt read settledAt from updatedAt, which RecordReceipt had moved:
    // ALARM "receipt differs" seven times, and the run failed ReceiptWriteFailed.
    const id = ids.get('completed')!;
    const first = receipts.get('completed')!;
    await env.ledger.setReceiptKey(id, first.key, new Date('2025-06-01T11:00:00.000Z'));
    lines.length = 0;
    const again = await writeReceipt(composition.receipts.deps, id);
    expect(again.write).toBe('identical');
    expect(lines.some((l) => l.includes('ALARM'))).toBe(false);
    expect(first.receipt.outcome.settledAt).toBe((await env.ledger.getAction(id))!.settledAt);
  });

  it('an event appended after the receipt was stored leaves the stored receipt as the one of record, without an alarm', async () => {
    // CI storm (seed 21): a vote refused as the action settled was appended after another run
    // stored the receipt; every later run built different bytes, failed ReceiptWriteFailed
    // with an ALARM, and the action never got its receipt key.
    const id = ids.get('completed')!;
    const first = receipts.get('completed')!;
    await store.append(id, { type: 'approval.vote_refused', actor: 'u50', data: { reason: 'closed' } });
    lines.length = 0;
    const again = await writeReceipt(composition.receipts.deps, id);
    expect(again).toMatchObject({ key: first.key, write: 'identical' });
    expect(lines.some((l) => l.includes('ALARM'))).toBe(false);
    expect(lines.some((l) => l.includes('written before later audit events') && l.includes('approval.vote_refused'))).toBe(true);
    expect(Buffer.from((await composition.vault.store.get(first.key))!).toString('utf8')).toBe(first.bytes);
  });

  it('a receipt the ledger no longer builds is an alarm: an event rewritten, not appended', async () => {
    const id = ids.get('cancelled')!;
    // Rewrite the first event's body in place (its chain fields kept): the prefix no longer builds the stored receipt.
    await rewriteEvent(id, (await store.list(id))[0]!.seq);
    await store.append(id, { type: 'late.event', actor: 'mallory' });
    lines.length = 0;
    await expect(writeReceipt(composition.receipts.deps, id)).rejects.toBeInstanceOf(AuditObjectConflictError);
    expect(lines.some((l) => l.includes('ALARM') && l.includes(id))).toBe(true);
    // The stored receipt is untouched.
    expect(Buffer.from((await composition.vault.store.get(receipts.get('cancelled')!.key))!).toString('utf8')).toBe(receipts.get('cancelled')!.bytes);
  });

  it('the local vault refuses deletes and keeps files read-only', async () => {
    const key = receipts.get('completed')!.key;
    await expect(composition.vault.store.delete(key)).rejects.toBeInstanceOf(ObjectLockedError);
    expect((await stat(composition.vault.store.fileOf(key))).mode & 0o777).toBe(0o444);
    // Root ignores file modes; anyone else cannot write the file.
    if (process.getuid?.() !== 0) await expect(writeFile(composition.vault.store.fileOf(key), 'x')).rejects.toThrow();
  });

  it('digests after each receipt cover every receipt, and the vault verifies', async () => {
    const report = await verifyVault(composition.vault.store, { graceMs: 0 });
    expect(report.findings).toEqual([]);
    expect(report.receiptsChecked).toBe(TERMINALS.length);
    expect(report.digestsChecked).toBeGreaterThanOrEqual(TERMINALS.length);
  });

  it('the handler refuses malformed tasks', async () => {
    await expect(handler({ task: 'WriteReceipt', actionId: '../x' }, {} as never)).rejects.toBeInstanceOf(ReceiptsTaskInvalidError);
    await expect(handler({ task: 'DeleteReceipt' }, {} as never)).rejects.toBeInstanceOf(ReceiptsTaskInvalidError);
  });
});

// After the digest checks above: these receipts are written outside the handler, so no digest lists them.
describe('writers racing', () => {
  it('a writer whose records another run overtook finds the later receipt of record, without an alarm', async () => {
    // 10,000-action storm (seed 7): a read's fast path handed off to the saga and both wrote
    // the receipt; the one built later, from more events, was stored first, and the earlier
    // writer, holding fewer events, raised "ALARM receipt differs". Two Lambdas can race so in AWS.
    const id = 'act_01JRECE1PT9000000000000001';
    const { held, later } = await overtaken(id);
    expect(later.write).toBe('created');
    lines.length = 0;
    const earlier = await writeReceipt(composition.receipts.deps, id, { held });
    expect(earlier).toMatchObject({ key: later.key, write: 'identical', sha256: later.sha256 });
    expect(lines.some((l) => l.includes('ALARM'))).toBe(false);
    expect(lines.some((l) => l.includes('built from later ledger records'))).toBe(true);
    const stored = ReceiptSchema.parse(JSON.parse(Buffer.from((await composition.vault.store.get(later.key))!).toString('utf8')));
    expect(stored.events.count).toBe(held.events.length + 1);
  });

  it('a writer whose records are older than a receipt the ledger does not build still raises the alarm', async () => {
    const id = 'act_01JRECE1PT9000000000000002';
    const { held, later } = await overtaken(id);
    // The ledger's newest event rewritten after the receipt was stored: no prefix builds it now.
    await rewriteEvent(id, (await store.list(id)).at(-1)!.seq);
    lines.length = 0;
    await expect(writeReceipt(composition.receipts.deps, id, { held })).rejects.toBeInstanceOf(AuditObjectConflictError);
    expect(lines.some((l) => l.includes('ALARM') && l.includes(id))).toBe(true);
    expect(ReceiptSchema.parse(JSON.parse(Buffer.from((await composition.vault.store.get(later.key))!).toString('utf8'))).events.count).toBe(held.events.length + 1);
  });
});
