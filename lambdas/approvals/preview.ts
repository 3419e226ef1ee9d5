import type { ActionRecord } from '../actions/action';
import { planOf } from '../actions/plan';
import { toolFacts } from '../policy/decider';
import type { ToolRegistry } from '../ports/tools';
import type { ApprovalRecord, VoteRecord } from '../ports/approvals';
import type { ApprovalPreview, ApprovalSummary, VoteView } from '../api/schemas';

/**
 * What an approver sees before deciding: who asked and why, every step in plain words with
 * the exact arguments that will be sent, the money at stake, the policies that asked for a
 * human, how each step is undone, and the plan hash the decision binds to. PII is shown only
 * to people who may decide; everyone else sees the same shape with those values masked.
 */

/** Stands in for a PII value the viewer may not see. */
export const PII_MASK = '[pii hidden]';

/**
 * Replaces the values at dotted `paths` (`travelers.*.firstName`; `*` = every array item or
 * object key) with {@link PII_MASK}. Returns a copy; the input is untouched.
 */
export function maskPaths(value: unknown, paths: readonly string[]): unknown {
  const copy: unknown = value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as unknown);
  const mask = (node: unknown, segments: string[]): void => {
    if (node === null || typeof node !== 'object' || segments.length === 0) return;
    const [head, ...rest] = segments as [string, ...string[]];
    const container = node as Record<string, unknown>;
    const keys = head === '*' ? Object.keys(container) : Object.prototype.hasOwnProperty.call(container, head) ? [head] : [];
    for (const key of keys) {
      if (rest.length === 0) {
        if (container[key] !== undefined && container[key] !== null) container[key] = PII_MASK;
      } else {
        mask(container[key], rest);
      }
    }
  };
  for (const path of paths) mask(copy, path.split('.').filter(Boolean));
  return copy;
}

export interface PreviewStep {
  index: number;
  id: string;
  tool: string;
  tier: string;
  vendor: string;
  /** One sentence: what this step does, to whom, for how much. */
  plain: string;
  /** The exact arguments that will be sent (PII masked unless the viewer may decide). */
  arguments: unknown;
  piiMasked: boolean;
  amount: { amount: number; currency: string } | null;
  /** How the step is undone if a later step fails; null when it needs none or cannot be. */
  compensation: { tool: string; description: string } | null;
}

export interface PreviewViewer {
  /** The viewer may decide (eligible per policy, not the requester, not a grantee). */
  canDecide: boolean;
  /** Why not, when they may not. */
  refusal?: string;
  /** The viewer's own vote, if any. */
  vote?: { decision: string; at: string };
}

function formatMoney(m: { amount: number; currency: string }): string {
  return `${m.amount.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })} ${m.currency}`;
}

/** The steps of an action as an approver sees them. */
export function previewSteps(tools: ToolRegistry, action: ActionRecord, showPii: boolean): PreviewStep[] {
  const plan = planOf(action, tools);
  return plan.steps.map((step, index) => {
    const registered = tools.find(step.tool);
    const facts = registered ? toolFacts(tools, step.tool, step.arguments) : undefined;
    const undo = registered ? tools.compensationOf(registered) : undefined;
    const piiPaths = registered?.tool.pii?.input ?? [];
    const amount = facts?.amount ?? null;
    const vendor = registered?.connector.vendor.name ?? 'unknown vendor';
    const parts = [
      `Step ${index + 1} of ${plan.steps.length}: ${step.tool} on ${vendor} (${registered?.tool.tier ?? 'unknown'} tier).`,
      registered?.tool.description ?? 'Unknown tool.',
      amount ? `Amount: ${formatMoney(amount)}.` : undefined,
      facts?.counterparty ? `Counterparty: ${facts.counterparty}.` : undefined,
      facts?.grantee ? `Grantee: ${facts.grantee}.` : undefined,
      undo ? `If a later step fails it is undone with ${undo.fullName}.` : registered?.tool.tier === 'commit' ? 'It cannot be undone.' : undefined,
    ];
    return {
      index,
      id: step.id,
      tool: step.tool,
      tier: registered?.tool.tier ?? 'unknown',
      vendor,
      plain: parts.filter((p): p is string => p !== undefined).join(' '),
      arguments: showPii ? step.arguments : maskPaths(step.arguments, piiPaths),
      piiMasked: !showPii && piiPaths.length > 0,
      amount,
      compensation: undo ? { tool: undo.fullName, description: undo.tool.description } : null,
    };
  });
}

/**
 * Money at stake per currency over commit-tier steps. The same amount in the same currency
 * counts once: a plan that authorizes a payment for a booking and then books it moves that
 * money once, and an approver must see what the trip costs, not twice that.
 */
export function amountAtStake(steps: readonly PreviewStep[]): { amount: number; currency: string }[] {
  const seen = new Set<string>();
  const totals = new Map<string, number>();
  steps.forEach((s) => {
    if (s.tier !== 'commit' || !s.amount) return;
    const key = `${s.amount.currency}|${s.amount.amount}`;
    if (seen.has(key)) return;
    seen.add(key);
    totals.set(s.amount.currency, (totals.get(s.amount.currency) ?? 0) + s.amount.amount);
  });
  return [...totals].map(([currency, amount]) => ({ currency, amount: Math.round(amount * 100) / 100 }));
}

/** The public shape of a vote. */
export function voteView(v: VoteRecord): VoteView {
  return { voter: v.voter, decision: v.decision, ...(v.comment ? { comment: v.comment } : {}), at: v.at };
}

/** The short form of an approval (listings). Never carries the task token: records do not hold it. */
export function approvalSummary(approval: ApprovalRecord, votes: readonly VoteRecord[], now: Date): ApprovalSummary {
  const approvals = new Set(votes.filter((v) => v.decision === 'approve').map((v) => v.voter));
  return {
    id: approval.id,
    actionId: approval.actionId,
    status: approval.status,
    planHash: approval.planHash,
    quorum: approval.quorum,
    approverRule: approval.approverRule,
    requester: approval.requester,
    approvalsSoFar: approvals.size,
    expiresAt: approval.expiresAt,
    expired: approval.status === 'expired' || (approval.status === 'pending' && Date.parse(approval.expiresAt) <= now.getTime()),
    createdAt: approval.createdAt,
    ...(approval.outcome ? { outcome: approval.outcome } : {}),
    links: { self: `/v1/approvals/${approval.id}`, decision: `/v1/approvals/${approval.id}/decision`, action: `/v1/actions/${approval.actionId}` },
  };
}

/**
 * Who asked: the principal, the agent as the body named itself, and the agent the verified
 * token named with the delegation it acts under, so an approver never takes a body's
 * self-declared name for the agent's identity.
 */
export function requestedBy(action: Pick<ActionRecord, 'principal' | 'actor' | 'delegation'>) {
  return { principal: action.principal.sub, agent: action.actor, verifiedAgent: action.principal.agent ?? null, delegationId: action.delegation?.id ?? null };
}

/** The full preview (GET /v1/approvals/{id}). */
export function approvalPreview(
  tools: ToolRegistry,
  action: ActionRecord,
  approval: ApprovalRecord,
  votes: readonly VoteRecord[],
  viewer: PreviewViewer,
  now: Date,
): ApprovalPreview {
  const steps = previewSteps(tools, action, viewer.canDecide);
  return {
    ...approvalSummary(approval, votes, now),
    requestedBy: requestedBy(action),
    reason: action.reason ?? null,
    mode: action.mode,
    steps,
    amountAtStake: amountAtStake(steps),
    policies: {
      policyIds: action.decision?.policyIds ?? [],
      reasons: action.decision?.reasons ?? [],
      policySetVersion: action.decision?.policySetVersion ?? null,
      steps: (action.decision?.steps ?? []).filter((s) => s.outcome === 'require_approval'),
    },
    votes: votes.map(voteView),
    viewer,
  };
}
