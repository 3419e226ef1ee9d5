import type { ActionRecord, ActionStatus, StoredDecision } from '../../lambdas/actions/action';
import { canonicalJson, sha256Hex } from '../../lambdas/shared/canonical-json';
import { buildReceipt, serializeReceipt, receiptKey } from '../../lambdas/receipts/build';
import { Redactor } from '../../lambdas/receipts/redact';
import { toolRegistry } from '../../lambdas/tools/registry';
import type { DynamoLedger } from '../../lambdas/adapters/aws/dynamo-ledger';
import type { DynamoSagaStore } from '../../lambdas/adapters/aws/dynamo-saga-store';
import type { AuditEvent, StepRecord } from '../../lambdas/ports/steps';

/** Raw PII values used by the fixtures; none may appear in any receipt. */
export const PII = {
  firstName: 'Adalinde',
  lastName: 'Quarrington',
  passport: 'XK9Q77123',
  dob: '1987-03-14',
  email: 'adalinde.q@example.org',
  phone: '+44 20 7946 0958',
  payerEmail: 'payer.zeta@example.net',
} as const;

export const REDACTION_KEY = 'test-redaction-key-0123456789abcdef';
export const SIGNING_SECRET = 'test-digest-signing-secret-0123456789abcdef';

/** A two-step travel plan with PII in arguments, and a payments authorize. */
export function travelEnvelope(): Record<string, unknown> {
  return {
    plan: [
      { id: 'hold', tool: 'travel.hold_seat', arguments: { flightId: 'FL-100', seats: 1 } },
      {
        id: 'book',
        tool: 'travel.book_flight',
        arguments: {
          holdId: { $ref: 'steps.hold.output.holdId' },
          travelers: [{ firstName: PII.firstName, lastName: PII.lastName, dateOfBirth: PII.dob, passportNumber: PII.passport }],
          contact: { email: PII.email, phone: PII.phone },
          price: { amount: 420, currency: 'EUR' },
        },
      },
      { id: 'pay', tool: 'payments.authorize', arguments: { amount: 420, currency: 'EUR', customerEmail: PII.payerEmail } },
    ],
    agent: { name: 'trip-bot', model: 'gpt-x' },
    reason: `Trip for ${PII.firstName} ${PII.lastName}`,
  };
}

export function decision(outcome: StoredDecision['outcome'], at: string): StoredDecision {
  return {
    outcome,
    policyIds: [outcome === 'deny' ? 'forbid-over-limit' : outcome === 'require_approval' ? 'manager-approval' : 'allow-travel'],
    reasons: [outcome === 'deny' ? 'over the daily limit' : 'policy matched'],
    quorum: outcome === 'require_approval' ? 1 : 0,
    approverRule: outcome === 'require_approval' ? 'manager' : null,
    policySetVersion: 'a'.repeat(64),
    limitsVersion: 'b'.repeat(64),
    evaluationMicros: 150,
    decidedAt: at,
  };
}

export const TERMINALS = ['completed', 'compensated', 'failed', 'denied', 'rejected', 'expired', 'cancelled'] as const;
export type Terminal = (typeof TERMINALS)[number];

/**
 * Drives one action to `status` through the real ledger adapters (as the saga would):
 * action record, transitions, step records with grants, and the audit events.
 */
export async function seedAction(
  env: { ledger: DynamoLedger; store: DynamoSagaStore },
  id: string,
  status: Terminal,
  createdAt = new Date('2025-06-01T10:00:00.000Z'),
): Promise<void> {
  const t = (s: number) => new Date(createdAt.getTime() + s * 1000);
  const at = createdAt.toISOString();
  const record: ActionRecord = {
    id,
    principal: { sub: 'alice', roles: ['employee'], manager: 'bob', department: 'sales' },
    actor: { name: 'trip-bot', model: 'gpt-x' },
    envelope: travelEnvelope(),
    kind: 'plan',
    mode: 'execute',
    reason: `Trip for ${PII.firstName} ${PII.lastName}`,
    planHash: 'p'.repeat(64),
    status: 'received',
    createdAt: at,
    updatedAt: at,
    version: 1,
  };
  await env.ledger.createAction(record);
  const ev = (type: string, data: Record<string, unknown>, s: number, actor = 'airlock') => env.store.append(id, { type, actor, data }, t(s));
  const move = async (from: ActionStatus, to: ActionStatus, s: number, reason?: string, extra: Record<string, unknown> = {}) => {
    await env.ledger.transition(id, to, { ...(reason ? { statusReason: reason } : {}), ...extra }, t(s));
    await ev('action.status', { from, to, ...(reason ? { reason } : {}) }, s);
  };
  const outcome = status === 'denied' ? 'deny' : ['rejected', 'expired'].includes(status) ? 'require_approval' : 'allow';
  await env.ledger.setDecision(id, decision(outcome, t(1).toISOString()), t(1));
  await ev('policy.evaluated', { outcome, policyIds: ['p'], policySetVersion: 'a'.repeat(64), at: 'run' }, 1);

  if (status === 'denied') return move('received', 'denied', 2, 'over the daily limit');
  if (status === 'cancelled') return move('received', 'cancelled', 2, 'cancelled by alice');
  if (status === 'rejected' || status === 'expired') {
    await move('received', 'awaiting_approval', 2);
    await ev('approval.requested', { approvalId: 'apr_1', planHash: record.planHash, quorum: 1, approverRule: 'manager', expiresAt: t(3600).toISOString() }, 3);
    if (status === 'rejected') {
      await ev('approval.vote', { approvalId: 'apr_1', voter: 'bob', decision: 'reject', comment: `Not for ${PII.lastName}, sorry`, at: t(10).toISOString() }, 10, 'bob');
      await ev('approval.rejected', { approvalId: 'apr_1', voter: 'bob', reason: 'not in budget' }, 10, 'bob');
      return move('awaiting_approval', 'rejected', 11, 'rejected by bob');
    }
    await ev('approval.expired', { approvalId: 'apr_1' }, 3601);
    return move('awaiting_approval', 'expired', 3602, 'no decision in time');
  }

  await move('received', 'running', 2);
  const step = async (stepId: string, tool: string, input: unknown, s: number, result: { output?: unknown; error?: string }, kind: 'forward' | 'compensate' = 'forward') => {
    const key = { actionId: id, stepId, kind };
    const grant = { jti: `jti-${stepId}-${kind}`, scope: `${tool}#${stepId}`, exp: Math.floor(t(s + 300).getTime() / 1000) };
    await ev('grant.issued', { stepId, kind, jti: grant.jti, scope: grant.scope, exp: grant.exp }, s);
    await env.store.beginStep(key, { tool, input, idempotencyKey: `${id}.${stepId}${kind === 'compensate' ? '.undo' : ''}`, grant, dryRun: false }, t(s));
    if (result.output !== undefined) await env.store.completeStep(key, result.output, t(s + 1));
    else await env.store.failStep(key, { name: 'VendorRejectedError', message: result.error ?? 'failed' }, true, t(s + 1));
  };
  const hold = { holdId: 'HLD-1', flightId: 'FL-100', seats: 1, status: 'held' };
  await step('hold', 'travel.hold_seat', { flightId: 'FL-100', seats: 1 }, 3, { output: hold });
  const bookInput = { holdId: 'HLD-1', travelers: [{ firstName: PII.firstName, lastName: PII.lastName, dateOfBirth: PII.dob, passportNumber: PII.passport }], contact: { email: PII.email, phone: PII.phone }, price: { amount: 420, currency: 'EUR' } };
  if (status === 'completed') {
    const booking = { bookingId: 'BKG-9', holdId: 'HLD-1', status: 'confirmed', travelers: [{ firstName: PII.firstName, lastName: PII.lastName }], contact: { email: PII.email, phone: PII.phone } };
    await step('book', 'travel.book_flight', bookInput, 5, { output: booking });
    await step('pay', 'payments.authorize', { amount: 420, currency: 'EUR', customerEmail: PII.payerEmail }, 7, { output: { authorizationId: 'AUTH-3', status: 'authorized', customerEmail: PII.payerEmail } });
    return move('running', 'completed', 9, undefined, { result: { hold, book: booking } });
  }
  // The vendor echoes the traveler's email in its error: it must not reach the receipt.
  await step('book', 'travel.book_flight', bookInput, 5, { error: `fare class closed for ${PII.email}` });
  await ev('step.failed', { error: { name: 'VendorRejectedError', message: `fare class closed for ${PII.email}` } }, 6);
  if (status === 'failed') return move('running', 'failed', 7, `VendorRejectedError: fare class closed for ${PII.email}`);
  await move('running', 'compensating', 7, 'VendorRejectedError: fare class closed');
  await step('hold', 'travel.release_hold', { holdId: 'HLD-1' }, 8, { output: { ...hold, status: 'released' } }, 'compensate');
  return move('compensating', 'compensated', 10, 'VendorRejectedError: fare class closed; 1 completed step(s) undone');
}

/** A settled action, its steps and events built in memory (no ledger): fast fixtures for the verifier. */
export function syntheticReceipt(index: number, createdAt: Date): { key: string; bytes: Uint8Array } {
  const id = `act_01J${String(index).padStart(23, '0')}`;
  const at = createdAt.toISOString();
  const action: ActionRecord = {
    id,
    principal: { sub: `user${index % 7}`, roles: ['employee'] },
    actor: { name: 'bot' },
    envelope: { tool: 'payments.authorize', arguments: { amount: 10 + index, currency: 'EUR', customerEmail: `c${index}@example.com` }, agent: { name: 'bot' } },
    kind: 'single',
    mode: 'execute',
    planHash: sha256Hex(String(index)),
    status: 'completed',
    decision: decision('allow', at),
    result: { authorizationId: `AUTH-${index}`, customerEmail: `c${index}@example.com` },
    createdAt: at,
    updatedAt: new Date(createdAt.getTime() + 1500).toISOString(),
    version: 3,
  };
  const steps: StepRecord[] = [
    {
      actionId: id, stepId: 'call', kind: 'forward', tool: 'payments.authorize', status: 'complete', attempts: 1,
      idempotencyKey: `${id}.call`, input: { amount: 10 + index, currency: 'EUR', customerEmail: `c${index}@example.com` },
      output: { authorizationId: `AUTH-${index}`, customerEmail: `c${index}@example.com` },
      grants: [{ jti: `j${index}`, scope: 'payments.authorize', exp: 1_900_000_000 }], dryRun: false,
      startedAt: at, finishedAt: at, durationMs: 0,
    },
  ];
  const events: AuditEvent[] = [];
  let prev = '0'.repeat(64);
  for (const [seq, type] of ['policy.evaluated', 'action.status', 'action.status'].entries()) {
    const body = { actionId: id, seq: seq + 1, type, at, actor: 'airlock', data: {} };
    const hash = sha256Hex(`${prev}\n${canonicalJson(body)}`);
    events.push({ ...body, hash, prevHash: prev });
    prev = hash;
  }
  const receipt = buildReceipt({ action, steps, events, redactor: new Redactor(REDACTION_KEY), tools: toolRegistry });
  return { key: receiptKey(action), bytes: serializeReceipt(receipt) };
}
