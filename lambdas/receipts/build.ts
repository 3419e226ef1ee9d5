import { canonicalJson, sha256Hex } from '../shared/canonical-json';
import type { ActionRecord } from '../actions/action';
import { TerminalStatuses } from '../actions/action';
import { resultFromSteps } from '../actions/view';
import type { ToolRegistry } from '../ports/tools';
import type { AuditEvent, StepRecord } from '../ports/steps';
import { Redactor } from './redact';
import { RECEIPT_SCHEMA_VERSION, ReceiptSchema, type Receipt, type ReceiptApproval, type ReceiptStep } from './schema';

/**
 * Builds an action's receipt from the ledger: a pure function of the action record, its
 * step records and its audit events (plus the redaction key), so a retried WriteReceipt
 * produces the same bytes and the write-once store can tell a retry from a conflict.
 * Nothing here reads the clock.
 */

/** The action is not in a terminal status yet: nothing final to record. */
export class ActionNotSettledError extends Error {
  constructor(actionId: string, status: string, options?: { cause?: unknown }) {
    super(`Action ${actionId} is ${status}, not settled; its receipt cannot be written yet`, options);
    this.name = 'ActionNotSettledError';
  }
}

/** `receipts/dt=YYYY-MM-DD/<actionId>.json`, dated by the action's creation (UTC). */
export function receiptKey(action: { id: string; createdAt: string }): string {
  return `receipts/dt=${new Date(action.createdAt).toISOString().slice(0, 10)}/${action.id}.json`;
}

/** The receipt's stored bytes: canonical JSON on one line (Athena's JSON SerDe reads one object per line). */
export function serializeReceipt(receipt: Receipt): Uint8Array {
  return Buffer.from(`${canonicalJson(receipt)}\n`, 'utf8');
}

export interface ReceiptInput {
  action: ActionRecord;
  steps: readonly StepRecord[];
  events: readonly AuditEvent[];
  redactor: Redactor;
  /** The tools' declarations: which of their fields are PII. */
  tools: ToolRegistry;
  /** X-Ray trace id of the saga, when known. */
  traceId?: string | null;
}

const GENESIS = '0'.repeat(64);

/** What redaction needs: the keyed redactor and the tools' PII declarations. */
interface Scrub {
  redactor: Redactor;
  tools: ToolRegistry;
}

function piiPaths(tools: ToolRegistry, tool: string, side: 'input' | 'output'): readonly string[] | undefined {
  const registered = tools.find(tool);
  if (!registered) return undefined;
  return registered.tool.pii?.[side] ?? [];
}

/** Redacts a tool's input or output; a tool Airlock does not know is redacted whole. */
function redactToolValue(scrub: Scrub, tool: string, side: 'input' | 'output', value: unknown): unknown {
  if (value === undefined) return undefined;
  const paths = piiPaths(scrub.tools, tool, side);
  return paths === undefined ? scrub.redactor.redactAll(value) : scrub.redactor.redactPaths(value, paths);
}

function redactEnvelope(scrub: Scrub, envelope: unknown): unknown {
  if (envelope === null || typeof envelope !== 'object' || Array.isArray(envelope)) return scrub.redactor.redactAll(envelope);
  const env = envelope as Record<string, unknown>;
  if (Array.isArray(env.plan)) {
    return {
      ...env,
      plan: env.plan.map((step: unknown) => {
        if (step === null || typeof step !== 'object') return scrub.redactor.redactAll(step);
        const s = step as Record<string, unknown>;
        return { ...s, arguments: redactToolValue(scrub, String(s.tool), 'input', s.arguments) };
      }),
    };
  }
  return { ...env, arguments: redactToolValue(scrub, String(env.tool), 'input', env.arguments) };
}

/** Identifiers a vendor gave the work (holdId, bookingId, authorizationId, orderId, …), top level or one level down. */
export function vendorReferenceOf(output: unknown): Record<string, string> | undefined {
  if (output === null || typeof output !== 'object' || Array.isArray(output)) return undefined;
  const refs: Record<string, string> = {};
  const visit = (obj: Record<string, unknown>, prefix: string, depth: number) => {
    for (const [k, v] of Object.entries(obj)) {
      if (typeof v === 'string' && /^(id|[a-z][A-Za-z0-9]*Id|reference|confirmation\w*)$/.test(k) && !v.startsWith('pii:')) refs[`${prefix}${k}`] = v;
      else if (depth === 0 && v !== null && typeof v === 'object' && !Array.isArray(v)) visit(v as Record<string, unknown>, `${prefix}${k}.`, 1);
    }
  };
  visit(output as Record<string, unknown>, '', 0);
  return Object.keys(refs).length > 0 ? refs : undefined;
}

function buildSteps(scrub: Scrub, records: readonly StepRecord[], action: ActionRecord): ReceiptStep[] {
  const order = planOrder(action.envelope);
  const rank = (r: StepRecord) => (order.get(r.stepId) ?? 1_000) * 2 + (r.kind === 'compensate' ? 1 : 0);
  // Forward steps in plan order, then compensations in the order they ran (reverse plan order).
  const forward = records.filter((r) => r.kind === 'forward').sort((a, b) => rank(a) - rank(b));
  const undo = records.filter((r) => r.kind === 'compensate').sort((a, b) => a.startedAt.localeCompare(b.startedAt) || rank(b) - rank(a));
  const forwardById = new Map(forward.map((r) => [r.stepId, r]));
  return [...forward, ...undo].map((r) => {
    const output = r.output === undefined ? undefined : redactToolValue(scrub, r.tool, 'output', r.output);
    const reference = vendorReferenceOf(output);
    const original = r.kind === 'compensate' ? forwardById.get(r.stepId) : undefined;
    const originalRef = original?.output === undefined ? undefined : vendorReferenceOf(redactToolValue(scrub, original.tool, 'output', original.output));
    const step: ReceiptStep = {
      stepId: r.stepId,
      kind: r.kind,
      tool: r.tool,
      status: r.status,
      attempts: r.attempts,
      idempotencyKey: r.idempotencyKey,
      dryRun: r.dryRun,
      input: redactToolValue(scrub, r.tool, 'input', r.input) ?? null,
      ...(output !== undefined ? { output } : {}),
      ...(r.error ? { error: { name: r.error.name, message: r.error.message } } : {}),
      grants: r.grants.map((g) => ({ jti: g.jti, scope: g.scope, expiresAt: new Date(g.exp * 1000).toISOString() })),
      ...(reference ? { vendorReference: reference } : {}),
      startedAt: r.startedAt,
      ...(r.finishedAt ? { finishedAt: r.finishedAt } : {}),
      ...(r.durationMs !== undefined && r.durationMs >= 0 ? { durationMs: Math.round(r.durationMs) } : {}),
      ...(r.kind === 'compensate'
        ? {
            undoes: {
              stepId: r.stepId,
              tool: original?.tool ?? 'unknown',
              idempotencyKey: original?.idempotencyKey ?? '',
              ...(originalRef ? { vendorReference: originalRef } : {}),
              ...(r.status === 'complete' && r.finishedAt ? { undoneAt: r.finishedAt } : {}),
            },
          }
        : {}),
    };
    return step;
  });
}

function planOrder(envelope: unknown): Map<string, number> {
  const order = new Map<string, number>();
  const plan = (envelope as { plan?: unknown } | null)?.plan;
  if (Array.isArray(plan)) plan.forEach((s, i) => order.set(String((s as { id?: unknown } | null)?.id), i));
  return order;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const isoOf = (v: unknown): string | undefined => {
  if (typeof v === 'string' && !Number.isNaN(Date.parse(v))) return new Date(v).toISOString();
  if (typeof v === 'number' && Number.isFinite(v)) return new Date(v > 1e12 ? v : v * 1000).toISOString();
  return undefined;
};

/** The approvals section, from the approval.* audit events (the ledger's approval records may be gone). */
export function approvalsFromEvents(events: readonly AuditEvent[]): ReceiptApproval[] {
  const byId = new Map<string, ReceiptApproval>();
  const get = (id: string): ReceiptApproval => {
    let a = byId.get(id);
    if (!a) {
      a = { approvalId: id, votes: [], outcome: 'pending' };
      byId.set(id, a);
    }
    return a;
  };
  for (const e of events) {
    if (!e.type.startsWith('approval.')) continue;
    const d = e.data;
    const id = str(d.approvalId);
    if (!id) continue;
    const a = get(id);
    switch (e.type) {
      case 'approval.requested': {
        const planHash = str(d.planHash);
        const quorum = num(d.quorum);
        const expiresAt = isoOf(d.expiresAt);
        if (planHash) a.planHash = planHash;
        if (quorum !== undefined) a.quorum = Math.max(0, Math.round(quorum));
        if (d.approverRule === null || typeof d.approverRule === 'string') a.approverRule = d.approverRule;
        a.requestedAt = e.at;
        if (expiresAt) a.expiresAt = expiresAt;
        break;
      }
      case 'approval.vote': {
        const comment = str(d.comment);
        a.votes.push({
          voter: str(d.voter) ?? e.actor,
          decision: str(d.decision) ?? 'unknown',
          ...(comment ? { comment } : {}),
          at: isoOf(d.at) ?? e.at,
        });
        break;
      }
      case 'approval.vote_refused': {
        const detail = str(d.detail);
        const planHash = str(d.planHash);
        const strings = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
        (a.refusedVotes ??= []).push({
          voter: str(d.voter) ?? e.actor,
          roles: strings(d.roles),
          decision: str(d.decision) ?? 'unknown',
          reason: str(d.reason) ?? 'unknown',
          policyIds: strings(d.policyIds),
          ...(detail ? { detail } : {}),
          ...(planHash && /^[0-9a-f]{64}$/.test(planHash) ? { planHash } : {}),
          at: isoOf(d.at) ?? e.at,
        });
        if (d.capReached === true) a.refusedVotesCapped = true;
        break;
      }
      case 'approval.granted':
      case 'approval.rejected':
      case 'approval.expired':
      case 'approval.cancelled': {
        a.outcome = e.type === 'approval.granted' ? 'granted' : e.type === 'approval.rejected' ? 'rejected' : e.type === 'approval.cancelled' ? 'cancelled' : 'expired';
        a.decidedAt = e.at;
        // A cancel has no voter: whoever cancelled decided it.
        const voter = str(d.voter) ?? (e.type === 'approval.cancelled' ? e.actor : undefined);
        const reason = str(d.reason);
        if (voter) a.decidedBy = voter;
        if (reason) a.reason = reason;
        break;
      }
    }
  }
  return [...byId.values()];
}

/** Recomputes each event's hash from its body and the previous hash (the ledger's chain rule). */
export function eventChainIntact(events: readonly AuditEvent[]): boolean {
  let prev = GENESIS;
  for (const e of [...events].sort((a, b) => a.seq - b.seq)) {
    const body = { actionId: e.actionId, seq: e.seq, type: e.type, at: e.at, actor: e.actor, data: e.data };
    if (e.prevHash !== prev || sha256Hex(`${prev}\n${canonicalJson(body)}`) !== e.hash) return false;
    prev = e.hash;
  }
  return true;
}

/** Builds and validates the receipt of a settled action. */
export function buildReceipt(input: ReceiptInput): Receipt {
  const { action, redactor } = input;
  const scrub: Scrub = { redactor, tools: input.tools };
  if (!TerminalStatuses.has(action.status)) throw new ActionNotSettledError(action.id, action.status);
  const events = [...input.events].sort((a, b) => a.seq - b.seq);
  const steps = buildSteps(scrub, input.steps, action);
  const envelope = redactEnvelope(scrub, action.envelope);
  const result = redactResult(scrub, action, input.steps);
  const d = action.decision;
  const draft: Receipt = {
    schemaVersion: RECEIPT_SCHEMA_VERSION,
    actionId: action.id,
    request: {
      receivedAt: action.createdAt,
      principal: {
        sub: action.principal.sub,
        roles: [...action.principal.roles],
        ...(action.principal.manager ? { manager: action.principal.manager } : {}),
        ...(action.principal.department ? { department: action.principal.department } : {}),
      },
      actor: { name: action.actor.name, ...(action.actor.model ? { model: action.actor.model } : {}) },
      ...(action.principal.agent ? { agent: action.principal.agent } : {}),
      ...(action.delegation ? { delegationId: action.delegation.id } : {}),
      kind: action.kind,
      mode: action.mode,
      ...(action.reason ? { reason: action.reason } : {}),
      planHash: action.planHash,
      envelope,
    },
    decision: d
      ? {
          outcome: d.outcome,
          policyIds: [...d.policyIds],
          reasons: [...d.reasons],
          quorum: d.quorum,
          approverRule: d.approverRule,
          policySetVersion: d.policySetVersion,
          ...(d.limitsVersion ? { limitsVersion: d.limitsVersion } : {}),
          evaluationMicros: d.evaluationMicros,
          decidedAt: d.decidedAt,
        }
      : null,
    approvals: approvalsFromEvents(events),
    steps,
    outcome: {
      status: action.status as Receipt['outcome']['status'],
      ...(action.statusReason ? { reason: action.statusReason } : {}),
      ...(result !== undefined ? { result } : {}),
      createdAt: action.createdAt,
      // The move to the end, not the last write: RecordReceipt writes the receipt key after the
      // receipt, and a second run (a resume, an idempotency takeover) must build the same bytes.
      settledAt: action.settledAt ?? action.updatedAt,
      durationMs: Math.max(0, Date.parse(action.settledAt ?? action.updatedAt) - Date.parse(action.createdAt)),
      simulated: action.mode === 'dry_run',
    },
    traceId: input.traceId ?? null,
    events: {
      count: events.length,
      head: events.at(-1)?.hash ?? null,
      intact: eventChainIntact(events),
      chain: events.map((e) => ({ seq: e.seq, type: e.type, at: e.at, actor: e.actor, hash: e.hash, prevHash: e.prevHash })),
    },
    redaction: { algorithm: 'HMAC-SHA-256', keyId: redactor.keyId, fields: 0 },
  };
  // Free text (reasons, comments, error messages) may echo a PII value from elsewhere; ids
  // and hashes are never scrubbed, so a short value cannot corrupt them.
  const receipt: Receipt = {
    ...draft,
    request: { ...draft.request, envelope: redactor.scrub(envelope), ...(action.reason ? { reason: redactor.scrub(action.reason) } : {}) },
    decision: draft.decision ? { ...draft.decision, reasons: redactor.scrub(draft.decision.reasons) } : null,
    approvals: draft.approvals.map((a) => ({
      ...a,
      votes: a.votes.map((v) => (v.comment ? { ...v, comment: redactor.scrub(v.comment) } : v)),
      ...(a.refusedVotes ? { refusedVotes: a.refusedVotes.map((v) => (v.detail ? { ...v, detail: redactor.scrub(v.detail) } : v)) } : {}),
      ...(a.reason ? { reason: redactor.scrub(a.reason) } : {}),
    })),
    steps: draft.steps.map((s) => ({
      ...s,
      input: redactor.scrub(s.input),
      ...(s.output !== undefined ? { output: redactor.scrub(s.output) } : {}),
      ...(s.error ? { error: redactor.scrub(s.error) } : {}),
    })),
    outcome: {
      ...draft.outcome,
      ...(draft.outcome.reason ? { reason: redactor.scrub(draft.outcome.reason) } : {}),
      ...(result !== undefined ? { result: redactor.scrub(result) } : {}),
    },
    redaction: { ...draft.redaction, fields: redactor.redactedFields },
  };
  return ReceiptSchema.parse(receipt);
}

/**
 * The action's result: a single call's output, or a plan's outputs by step id. Outputs too
 * large for the action record are put together from the step records.
 */
function redactResult(scrub: Scrub, action: ActionRecord, records: readonly StepRecord[]): unknown {
  const value = action.result === undefined && action.status === 'completed' ? resultFromSteps(action, records) : action.result;
  if (value === undefined) return undefined;
  const env = action.envelope as { tool?: unknown; plan?: unknown } | null;
  if (action.kind === 'single' && typeof env?.tool === 'string') return redactToolValue(scrub, env.tool, 'output', value);
  if (Array.isArray(env?.plan) && value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    const tools = new Map(env.plan.map((s: unknown) => [String((s as { id?: unknown })?.id), String((s as { tool?: unknown })?.tool)]));
    for (const [id, output] of Object.entries(value as Record<string, unknown>)) {
      const tool = tools.get(id);
      out[id] = tool ? redactToolValue(scrub, tool, 'output', output) : scrub.redactor.redactAll(output);
    }
    return out;
  }
  return scrub.redactor.redactAll(value);
}
