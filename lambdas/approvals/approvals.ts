import { TerminalStatuses, type ActionRecord } from '../actions/action';
import { AUDITOR_ROLE } from '../actions/view';
import { approvalPreview, approvalSummary, requestedBy, voteView } from './preview';
import { toolFacts } from '../policy/decider';
import type { ApprovalPage } from '../api/schemas';
import type { Logger } from '../shared/logger';
import type { Outcome, PolicyEngine, StepDecision } from '../policy/index';
import type { Principal } from '../shared/principal';
import { ApprovalNoLongerWaitingError, ApprovalNotFoundError, VoteRefusedError } from './errors';
import { planOf } from '../actions/plan';
import { ACTION_CANCELLED_TASK_ERROR } from '../actions/cancel';
import type { ToolRegistry } from '../ports/tools';
import type { ActionStore } from '../ports/ledger';
import { type AcceptedVote, type AcceptVotes, type ApprovalRecord, type ApprovalStatus, type ApprovalStore, type VoteDecision, type VoteRecord, type VoteRefusalReason } from '../ports/approvals';
import { approvalIdFor, actionIdOf } from '../shared/ids';
import type { EventPublisher } from '../ports/events';
import type { AuditEvent, EventLog } from '../ports/steps';
import { TaskTokenInvalidError, type TaskCallbacks } from '../ports/task-callbacks';
import { noticeOf, subjectOf, type HaltGuard } from '../guardrails/halts';
import type { Metrics } from '../ports/metrics';
import { countKpi, recordApprovalDecided } from '../observability/kpis';

/**
 * Human approval: the saga's RequestApproval task and the approvers' decisions. An approval
 * binds to the plan hash, counts distinct people, never lets the requester (or an IAM
 * grantee) approve, and answers the waiting saga exactly once: every outcome is a
 * conditional `pending → <outcome>` write, and only its winner calls SendTaskSuccess /
 * SendTaskFailure. The task token lives in the ledger and goes only to TaskCallbacks.
 *
 * The deadline is the single judge of a vote against the expiry: a cast vote counts only once
 * a conditional write on the approval accepted it while pending and before `expiresAt`, and
 * the vote that decides the approval writes the outcome in that same write. The expiry is a
 * `pending → expired` write on the same item, so whichever lands first wins and the other
 * loses whole: a quorum accepted is never followed by `expired`, and a vote the expiry beat is
 * refused (`approval.vote_refused`, reason `expired`) and never reaches the receipt as a vote.
 */

/** The ASL's default WaitForApproval TimeoutSeconds (72 h); the stack sets both from one config value. */
export const DEFAULT_APPROVAL_TIMEOUT_SECONDS = 259_200;

/** Error names the ASL's WaitForApproval Catch matches (the ErrorEquals contract). */
export const ApprovalErrors = { rejected: 'ApprovalRejected', expired: 'ApprovalExpired' } as const;

/** Audit event types receipts are built from. */
export const ApprovalEventTypes = {
  requested: 'approval.requested',
  vote: 'approval.vote',
  granted: 'approval.granted',
  rejected: 'approval.rejected',
  expired: 'approval.expired',
  voteRefused: 'approval.vote_refused',
} as const;

/**
 * The rule that refused a vote when code, not Cedar, decided it: stable ids recorded in the
 * audit event and the receipt beside the Cedar policy ids of the other refusals.
 */
export const VoteRefusalRules = {
  self_approval: 'airlock.self_approval',
  grantee: 'airlock.grantee_approval',
  // Only when Cedar named no policy: no permit matched (default deny) or evaluation failed.
  ineligible: 'airlock.no_permit',
  stale_plan: 'airlock.plan_hash',
  vote_changed: 'airlock.one_vote',
  closed: 'airlock.approval_closed',
  expired: 'airlock.approval_expired',
  halted: 'airlock.halted',
} as const satisfies Record<VoteRefusalReason, string>;

/**
 * Refused votes recorded per approval at most (and one per voter and reason): enough for
 * every real mistake, small enough that someone hammering the API with many identities
 * cannot bloat the action's chain or its receipt. Refusals past the cap are only logged.
 */
export const MAX_REFUSED_VOTES = 50;

/** Roles recorded with a refused vote: the verified claim, bounded like the rest of the event. */
const MAX_RECORDED_ROLES = 32;

/**
 * How long after an outcome a repeated vote waits before re-sending a lost answer: longer
 * than any approvals function runs (the stack's timeout is seconds), so the winner is gone.
 */
export const ANSWER_GRACE_MS = 60_000;

/** EventBridge detail-type of the notification sent when an approval is requested. */
export const APPROVAL_REQUESTED_EVENT = 'airlock.approval.requested';

export interface ApprovalsDeps {
  actions: ActionStore;
  approvals: ApprovalStore;
  events: EventLog;
  callbacks: TaskCallbacks;
  publisher: EventPublisher;
  engine: PolicyEngine;
  /** The tools plans may name (the registry port). */
  tools: ToolRegistry;
  /** Same value as WaitForApproval's TimeoutSeconds. */
  timeoutSeconds: number;
  now: () => Date;
  logger: Logger;
  /** Active halts: a vote on work a halt covers is refused (none: no kill switch). */
  halts?: HaltGuard;
  /** Approval KPIs: requested, decided (and how long it took), refused votes. */
  metrics?: Metrics;
}

/** RequestApproval was asked for an action that is not waiting for approval. Not retryable. */
export class ApprovalRequestError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ApprovalRequestError';
  }
}

// ── eligibility ──────────────────────────────────────────────────────────────

/** Subs that receive something from the action's steps (IAM grantees). */
export function granteesOf(tools: ToolRegistry, action: ActionRecord): string[] {
  const subs = new Set<string>();
  for (const step of planOf(action, tools).steps) {
    try {
      const grantee = toolFacts(tools, step.tool, step.arguments).grantee;
      if (grantee) subs.add(grantee);
    } catch {
      // An unknown tool has no grantee; the plan was validated when it was accepted.
    }
  }
  return [...subs].sort();
}

export interface Eligibility {
  allowed: boolean;
  reason: string;
  policyIds: string[];
  /** Why not, as a refusal code, when not allowed. */
  refusal?: Extract<VoteRefusalReason, 'self_approval' | 'grantee' | 'ineligible'>;
}

/**
 * Whether `approver` may decide `action`. The requester and grantees are refused in code
 * before Cedar is asked, so a permissive policy (or a broken forbid) cannot let anyone
 * approve their own action.
 */
export function eligibility(engine: PolicyEngine, tools: ToolRegistry, approver: Principal, action: ActionRecord, approval?: ApprovalRecord, now?: Date): Eligibility {
  if (approver.sub === action.principal.sub || approver.sub === approval?.requester) {
    return { allowed: false, reason: 'The requester can never approve their own action.', policyIds: [VoteRefusalRules.self_approval], refusal: 'self_approval' };
  }
  const grantees = new Set([...granteesOf(tools, action), ...(approval?.grantees ?? [])]);
  if (grantees.has(approver.sub)) {
    return { allowed: false, reason: 'The person who receives the grant can never approve it.', policyIds: [VoteRefusalRules.grantee], refusal: 'grantee' };
  }
  const steps = planOf(action, tools).steps.map((s) => ({ id: s.id, facts: toolFacts(tools, s.tool, s.arguments) }));
  const decided: StepDecision[] | undefined = action.decision?.steps?.map((s) => ({
    id: s.id,
    outcome: s.outcome as Outcome,
    policyIds: s.policyIds,
    reasons: s.reasons,
    quorum: 0,
    approverRule: null,
  }));
  const check = engine.canApprove({
    approver,
    requester: action.principal,
    steps,
    ...(decided ? { decision: { steps: decided } } : {}),
    ...(now ? { now } : {}),
  });
  if (check.allowed) return { allowed: true, reason: 'eligible', policyIds: check.policyIds };
  return {
    allowed: false,
    reason: check.reasons.join(' ') || 'No policy lets you approve this action.',
    policyIds: check.policyIds,
    refusal: 'ineligible',
  };
}

// ── requesting ──────────────────────────────────────────────────────────────

/**
 * What SendTaskSuccess answers the saga with. Bounded (Step Functions refuses an output over
 * 256 KiB): the approving votes without their comments, at most MAX_ANSWER_VOTES of them;
 * the ledger and the receipt keep every vote in full.
 */
function successOutput(approval: ApprovalRecord, votes: readonly VoteRecord[]) {
  return {
    approvalId: approval.id,
    planHash: approval.planHash,
    votes: votes
      .filter((v) => v.decision === 'approve')
      .slice(0, MAX_ANSWER_VOTES)
      .map((v) => ({ voter: v.voter, decision: v.decision, at: v.at })),
    approvedAt: approval.outcome?.at ?? null,
  };
}

/** Approving votes named in the saga's answer: with 256-character voter ids, still far under 256 KiB. */
const MAX_ANSWER_VOTES = 100;

/** Answers the saga for an approval that already has its outcome (a lost answer, or a resumed saga). */
async function answer(deps: ApprovalsDeps, approval: ApprovalRecord, taskToken: string): Promise<void> {
  if (approval.status === 'approved') {
    await deps.callbacks.sendTaskSuccess(taskToken, successOutput(approval, acceptedVotes(approval, await deps.approvals.listVotes(approval.id))));
  } else if (approval.status === 'rejected') {
    await deps.callbacks.sendTaskFailure(taskToken, ApprovalErrors.rejected, approval.outcome?.reason ?? 'rejected by an approver');
  } else if (approval.status === 'expired') {
    await deps.callbacks.sendTaskFailure(taskToken, ApprovalErrors.expired, 'no quorum of approvers before the approval expired');
  } else if (approval.status === 'cancelled') {
    await deps.callbacks.sendTaskFailure(taskToken, ACTION_CANCELLED_TASK_ERROR, approval.outcome?.reason ?? 'cancelled');
  } else {
    return;
  }
  await deps.approvals.markAnswered(approval.id, deps.now());
}

/** Answers with the stored token; a token nobody waits on any more is logged and dropped. */
async function answerStored(deps: ApprovalsDeps, approvalId: string): Promise<'answered' | 'token_invalid'> {
  const approval = await deps.approvals.getApproval(approvalId);
  const token = await deps.approvals.getTaskToken(approvalId);
  if (!approval || !token) throw new Error(`Approval ${approvalId} has no task token`);
  try {
    await answer(deps, approval, token);
    return 'answered';
  } catch (error) {
    if (error instanceof TaskTokenInvalidError) {
      deps.logger.warn('the saga no longer waits on this approval', { approvalId, actionId: approval.actionId, reason: error.reason });
      return 'token_invalid';
    }
    throw error;
  }
}

/**
 * Moves a pending approval past its expiry to `expired`. The winner of the conditional write
 * records the audit event and tells the saga (ApprovalExpired; harmless if Step Functions
 * already timed the task out). Returns whether this call expired it.
 */
export async function expireApproval(deps: ApprovalsDeps, approvalId: string): Promise<boolean> {
  const approval = await deps.approvals.getApproval(approvalId);
  if (!approval || approval.status !== 'pending' || Date.parse(approval.expiresAt) > deps.now().getTime()) return false;
  const won = await deps.approvals.settle(approval.id, 'expired', { by: 'airlock', reason: 'expired' }, deps.now());
  if (!won) return false;
  recordApprovalDecided(deps.metrics, 'expired', approval.createdAt, deps.now());
  await deps.events.append(approval.actionId, { type: ApprovalEventTypes.expired, actor: 'airlock', data: { approvalId } }, deps.now());
  await answerStored(deps, approvalId);
  return true;
}

/**
 * RequestApproval (the WaitForApproval task): stores the approval with the saga's task token,
 * records `approval.requested` and notifies approvers. Idempotent per action: a retried or
 * resumed request keeps the approval and its votes, replaces the token, and answers at once
 * when the outcome is already known.
 */
export async function requestApproval(
  deps: ApprovalsDeps,
  input: { actionId: string; taskToken: string },
): Promise<{ approvalId: string; status: ApprovalStatus; expiresAt: string }> {
  const action = await deps.actions.getAction(input.actionId);
  if (!action) throw new ApprovalRequestError(`No action ${input.actionId}`);
  const id = approvalIdFor(action.id);
  const now = deps.now();
  let approval = await deps.approvals.getApproval(id);
  const resumed = approval !== undefined;

  if (!approval) {
    if (action.status !== 'awaiting_approval') {
      throw new ApprovalRequestError(`Action ${action.id} is ${action.status}, not awaiting approval`);
    }
    const record: ApprovalRecord = {
      id,
      actionId: action.id,
      status: 'pending',
      planHash: action.planHash,
      quorum: Math.max(1, action.decision?.quorum ?? 1),
      approverRule: action.decision?.approverRule ?? null,
      requester: action.principal.sub,
      grantees: granteesOf(deps.tools, action),
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + deps.timeoutSeconds * 1000).toISOString(),
      accepted: [],
      revision: 0,
    };
    const created = await deps.approvals.createApproval(record, input.taskToken);
    if (created === 'created') countKpi(deps.metrics, 'ApprovalRequested');
    approval = created === 'created' ? record : await deps.approvals.getApproval(id);
    if (!approval) throw new Error(`Approval ${id} vanished after a conflicting create`);
  }
  if (approval.actionId !== action.id || approval.planHash !== action.planHash) {
    throw new ApprovalRequestError(`Approval ${id} does not belong to this plan`);
  }

  // A resumed saga waits on a new token; the old one is dead. Replacing it is always safe.
  await deps.approvals.replaceTaskToken(id, input.taskToken, now);

  const history = await deps.events.list(action.id);
  if (!history.some((e) => e.type === ApprovalEventTypes.requested && e.data.approvalId === id)) {
    await deps.events.append(
      action.id,
      {
        type: ApprovalEventTypes.requested,
        actor: 'airlock',
        data: { approvalId: id, planHash: approval.planHash, quorum: approval.quorum, approverRule: approval.approverRule, expiresAt: approval.expiresAt },
      },
      now,
    );
    await notify(deps, action, approval);
  }

  if (approval.status === 'pending' && Date.parse(approval.expiresAt) <= now.getTime()) {
    // Expired while nobody decided it. If another write settled it first (a cancel), answer that.
    if (!(await expireApproval(deps, id)) && (await deps.approvals.getApproval(id))?.status !== 'pending') await answerStored(deps, id);
  } else if (approval.status !== 'pending') {
    // Decided but the answer was lost (a timed-out wait asked again, or the runner resumed):
    // the ledger decides, and its votes and outcome go on the chain before the saga moves on.
    if (!TerminalStatuses.has(action.status)) await chainOutcome(deps, approval, action);
    await answerStored(deps, id);
  } else if (resumed) {
    // Votes may be cast whose request died before the approval accepted them (a crash between
    // the vote write and the accepting write): a resumed saga takes them, while the deadline
    // allows, rather than wait for a click that may never come.
    await finishVotes(deps, id, action, 'airlock');
  }
  const latest = (await deps.approvals.getApproval(id)) ?? approval;
  deps.logger.info('approval requested', { approvalId: id, actionId: action.id, status: latest.status });
  // expiresAt lets a local runner keep the original deadline across restarts.
  return { approvalId: id, status: latest.status, expiresAt: latest.expiresAt };
}

/** Best effort: the approval is in the ledger (and the API) whether or not the notification goes out. */
async function notify(deps: ApprovalsDeps, action: ActionRecord, approval: ApprovalRecord): Promise<void> {
  try {
    await deps.publisher.publish({
      type: APPROVAL_REQUESTED_EVENT,
      time: deps.now(),
      detail: {
        approvalId: approval.id,
        actionId: action.id,
        requester: action.principal.sub,
        agent: action.actor,
        reason: action.reason ?? null,
        tools: planOf(action, deps.tools).steps.map((s) => s.tool),
        quorum: approval.quorum,
        approverRule: approval.approverRule,
        policyIds: action.decision?.policyIds ?? [],
        planHash: approval.planHash,
        expiresAt: approval.expiresAt,
        links: { preview: `/v1/approvals/${approval.id}` },
      },
    });
  } catch (error) {
    deps.logger.warn('approval notification not delivered', { approvalId: approval.id, error: error instanceof Error ? { name: error.name, message: error.message } : String(error) });
  }
}

// ── reading ─────────────────────────────────────────────────────────────────

async function load(deps: ApprovalsDeps, approvalId: string): Promise<{ approval: ApprovalRecord; action: ActionRecord }> {
  const approval = await deps.approvals.getApproval(approvalId);
  const action = approval ? await deps.actions.getAction(approval.actionId) : undefined;
  if (!approval || !action || approval.actionId !== actionIdOf(approvalId)) throw new ApprovalNotFoundError(approvalId);
  return { approval, action };
}

/** GET /v1/approvals/{id}: the preview, for eligible approvers, the requester, voters and auditors (404 for anyone else). */
export async function getApprovalPreview(deps: ApprovalsDeps, viewer: Principal, approvalId: string) {
  const { approval, action } = await load(deps, approvalId);
  const now = deps.now();
  const votes = acceptedVotes(approval, await deps.approvals.listVotes(approval.id));
  const mine = votes.find((v) => v.voter === viewer.sub);
  const check = eligibility(deps.engine, deps.tools, viewer, action, approval, now);
  const mayView = check.allowed || viewer.sub === approval.requester || viewer.roles.includes(AUDITOR_ROLE) || mine !== undefined;
  if (!mayView) throw new ApprovalNotFoundError(approvalId);
  return approvalPreview(
    deps.tools,
    action,
    approval,
    votes,
    {
      canDecide: check.allowed,
      ...(check.allowed ? {} : { refusal: check.reason }),
      ...(mine ? { vote: { decision: mine.decision, at: mine.at } } : {}),
    },
    now,
  );
}

/** One page of the approvals inbox, and where the next one starts (an approval id), if anywhere. */
export interface ApprovalListing {
  items: ApprovalPage['items'];
  startAfter?: string;
}

/**
 * GET /v1/approvals?status=…: for `pending`, the approvals the caller may decide (not yet
 * expired); for other statuses, those the caller may view. Newest first, continuing after
 * the approval id `startAfter` (the edge turns it into and out of an authenticated cursor).
 */
export async function listApprovals(
  deps: ApprovalsDeps,
  viewer: Principal,
  query: { status: ApprovalStatus; limit: number; startAfter?: string },
): Promise<ApprovalListing> {
  const now = deps.now();
  const items: ReturnType<typeof listItem>[] = [];
  let position = query.startAfter;
  // Filtering happens after the query, so read a few pages to fill one; bounded so a caller
  // who may decide nothing does not make us read the whole index.
  for (let page = 0; page < 5; page++) {
    const res = await deps.approvals.listApprovals({ status: query.status, limit: 50, ...(position !== undefined ? { startAfter: position } : {}) });
    let examined = 0;
    for (const approval of res.items) {
      if (items.length >= query.limit) break;
      examined++;
      position = approval.id;
      if (query.status === 'pending' && Date.parse(approval.expiresAt) <= now.getTime()) continue;
      const action = await deps.actions.getAction(approval.actionId);
      if (!action) continue;
      const check = eligibility(deps.engine, deps.tools, viewer, action, approval, now);
      const visible =
        query.status === 'pending'
          ? check.allowed
          : check.allowed || viewer.sub === approval.requester || viewer.roles.includes(AUDITOR_ROLE);
      if (!visible) continue;
      items.push(listItem(deps.tools, approval, action, acceptedVotes(approval, await deps.approvals.listVotes(approval.id)), check.allowed, now));
    }
    // The page is full before this batch ran out: the next page starts after the last one examined.
    if (examined < res.items.length) return { items, startAfter: position! };
    if (res.lastEvaluated === undefined) return { items };
    position = res.lastEvaluated;
    if (items.length >= query.limit) break;
  }
  return { items, startAfter: position! };
}

function listItem(tools: ToolRegistry, approval: ApprovalRecord, action: ActionRecord, votes: VoteRecord[], canDecide: boolean, now: Date) {
  return {
    ...approvalSummary(approval, votes, now),
    requestedBy: requestedBy(action),
    reason: action.reason ?? null,
    tools: planOf(action, tools).steps.map((s) => s.tool),
    canDecide,
  };
}

// ── deciding ────────────────────────────────────────────────────────────────

export interface DecisionInput {
  approvalId: string;
  voter: Principal;
  decision: VoteDecision;
  planHash: string;
  comment?: string;
}

export interface DecisionResult {
  approvalId: string;
  status: ApprovalStatus;
  vote: ReturnType<typeof voteView>;
  /** False when this was a repeat of a vote already counted. */
  recorded: boolean;
  approvalsSoFar: number;
  quorum: number;
}

const closed = (approval: ApprovalRecord) =>
  new VoteRefusedError({ kind: 'decided', approvalStatus: approval.status }, `Approval ${approval.id} is ${approval.status}; no more decisions are taken.`);

const tokenGone = (approvalId: string, cause: TaskTokenInvalidError) => new ApprovalNoLongerWaitingError(approvalId, cause.reason, { cause });

async function result(deps: ApprovalsDeps, approvalId: string, vote: VoteRecord, recorded: boolean): Promise<DecisionResult> {
  const approval = await deps.approvals.getApproval(approvalId);
  const votes = approval ? acceptedVotes(approval, await deps.approvals.listVotes(approvalId)) : [];
  return {
    approvalId,
    status: approval?.status ?? 'pending',
    vote: voteView(vote),
    recorded,
    approvalsSoFar: new Set(votes.filter((v) => v.decision === 'approve').map((v) => v.voter)).size,
    quorum: approval?.quorum ?? 1,
  };
}

/** What a refusal needs to be recorded: the approval, its action, the vote as sent, and when. */
interface VoteContext {
  approval: ApprovalRecord;
  action: ActionRecord;
  input: DecisionInput;
  now: Date;
}

/**
 * Records a refused vote on the action's audit chain with the voter's verified identity, the
 * refusal code and the rule(s) that refused it, then returns the problem for the caller to
 * throw. Recorded once per voter and reason and at most {@link MAX_REFUSED_VOTES} per
 * approval; repeats are only logged. Nothing is added once the action has settled: its
 * receipt may already be in the vault, and a receipt is never rewritten.
 */
async function refuse(
  deps: ApprovalsDeps,
  ctx: VoteContext,
  reason: VoteRefusalReason,
  policyIds: readonly string[],
  refusal: VoteRefusedError,
): Promise<VoteRefusedError> {
  const { approval, action, input, now } = ctx;
  countKpi(deps.metrics, 'ApprovalVoteRefused', { reason });
  const voter = input.voter.sub;
  const rules = policyIds.length > 0 ? [...policyIds] : [VoteRefusalRules[reason]];
  const roles = input.voter.roles.slice(0, MAX_RECORDED_ROLES).map((r) => r.slice(0, 128));
  const entry = { approvalId: approval.id, actionId: action.id, voter, roles, decision: input.decision, reason, policyIds: rules };
  const current = await deps.actions.getAction(action.id);
  if (!current || TerminalStatuses.has(current.status)) {
    // The audit record of this refusal: the receipt is final, so this line is the only trace.
    deps.logger.warn('vote refused after the action settled (logged only; its receipt is final)', { audit: ApprovalEventTypes.voteRefused, ...entry });
    return refusal;
  }
  const claim = await deps.approvals.claimRefusal(approval.id, voter, reason, MAX_REFUSED_VOTES, now);
  if (claim.outcome === 'capped') {
    deps.logger.warn('vote refused past the cap (logged only)', entry);
    return refusal;
  }
  const sent = /^[0-9a-f]{64}$/.test(input.planHash) ? { planHash: input.planHash } : {};
  try {
    // Once per voter and reason, whoever writes it: the claim's own request, or a repeat that
    // finds the claim but not its event (the request that claimed it died before appending).
    const { appended } = await deps.events.appendOnce(
      action.id,
      {
        type: ApprovalEventTypes.voteRefused,
        actor: voter,
        data: {
          approvalId: approval.id,
          voter,
          roles,
          decision: input.decision,
          reason,
          policyIds: rules,
          detail: refusal.message,
          ...sent,
          at: now.toISOString(),
          ...(claim.outcome === 'recorded' && claim.count >= MAX_REFUSED_VOTES ? { capReached: true } : {}),
        },
      },
      (e) => e.type === ApprovalEventTypes.voteRefused && e.data?.approvalId === approval.id && e.data?.voter === voter && e.data?.reason === reason,
      now,
    );
    if (!appended) {
      deps.logger.warn('vote refused again (recorded once)', entry);
      return refusal;
    }
  } catch (error) {
    // A repeat of this refusal will try again; until then the log line is the record.
    deps.logger.error('ALARM refused vote claimed but not recorded on the action', entry);
    throw error;
  }
  // The action may have settled between the look above and the append: its receipt, built
  // after it settled, may then hold the trail without this event. The saga settles the action
  // before it reads the trail, so settled now means the receipt may lack it: the audit line is
  // written too, as for a refusal after the action settled (a 10,000-action storm met this).
  const after = await deps.actions.getAction(action.id);
  if (!after || TerminalStatuses.has(after.status)) {
    deps.logger.warn('vote refused as the action settled (recorded on the action and logged: its receipt may have been built before the event)', { audit: ApprovalEventTypes.voteRefused, ...entry });
    return refusal;
  }
  deps.logger.info(claim.outcome === 'recorded' ? 'vote refused' : 'vote refused: recorded by a repeat (the first request died before its event)', entry);
  return refusal;
}

/** A repeated click: the same decision is harmless (and finishes an answer that was lost); another one is a conflict. */
async function repeatVote(deps: ApprovalsDeps, ctx: VoteContext, existing: VoteRecord): Promise<DecisionResult> {
  const { approval } = ctx;
  if (existing.decision !== ctx.input.decision) {
    throw await refuse(
      deps,
      ctx,
      'vote_changed',
      [],
      new VoteRefusedError({ kind: 'vote-changed', vote: voteView(existing) }, `You already voted to ${existing.decision} approval ${approval.id}; a vote cannot be changed.`),
    );
  }
  let latest = (await deps.approvals.getApproval(approval.id)) ?? approval;
  const live = !TerminalStatuses.has(ctx.action.status);
  if (latest.status === 'pending' && Date.parse(latest.expiresAt) > deps.now().getTime() && live) {
    // The first request may have died after casting the vote (a crash, a timeout) and before
    // the approval accepted it, or before its audit event: finish its work. Every step is
    // idempotent, so a repeat racing a live first request is harmless.
    latest = await finishVotesAnswering(deps, approval.id, ctx.action, ctx.input.voter.sub);
  } else if (latest.status !== 'pending' && live) {
    // A winner that died after its deciding write leaves its votes and outcome off the chain.
    await chainOutcome(deps, latest, ctx.action);
  }
  if (!isAccepted(latest, existing.voter)) throw await lateVote(deps, ctx, latest);
  // Finish an answer only when its winner must have died: within the grace period the winner
  // may still be calling, and a second SendTaskSuccess on one token is what we never send.
  const settledAt = latest.outcome ? Date.parse(latest.outcome.at) : Number.NaN;
  if (latest.status !== 'pending' && !latest.answeredAt && deps.now().getTime() - settledAt > ANSWER_GRACE_MS) {
    await answerStored(deps, latest.id);
  }
  return result(deps, approval.id, existing, false);
}

/**
 * The refusal of a vote cast but not accepted: the expiry came first (the deadline judged it
 * late), or another vote or a cancel decided the approval first. Recorded before the saga
 * hears of the expiry, so it lands in the receipt.
 */
async function lateVote(deps: ApprovalsDeps, ctx: VoteContext, latest: ApprovalRecord): Promise<VoteRefusedError> {
  const now = deps.now();
  const expired = latest.status === 'expired' || (latest.status === 'pending' && Date.parse(latest.expiresAt) <= now.getTime());
  if (!expired) return refuse(deps, { ...ctx, now }, 'closed', [], closed(latest));
  const refusal = await refuse(
    deps,
    { ...ctx, now },
    'expired',
    [],
    new VoteRefusedError({ kind: 'expired', expiresAt: latest.expiresAt }, `Approval ${latest.id} expired at ${latest.expiresAt} before your vote was accepted; the action will not run.`),
  );
  if (latest.status === 'pending') await expireApproval(deps, latest.id);
  return refusal;
}

/** Loads the approval voted on; a vote on one that does not exist (404) is logged, since there is no action to record it on. */
async function loadForVote(deps: ApprovalsDeps, input: DecisionInput): Promise<{ approval: ApprovalRecord; action: ActionRecord }> {
  try {
    return await load(deps, input.approvalId);
  } catch (error) {
    if (error instanceof ApprovalNotFoundError) {
      deps.logger.warn('vote refused: no such approval', { approvalId: input.approvalId, voter: input.voter.sub, roles: input.voter.roles, decision: input.decision });
    }
    throw error;
  }
}

/**
 * POST /v1/approvals/{id}/decision. Order of checks: eligibility (403), a repeat of the
 * caller's own vote (200 / 409), the approval still open and unexpired (409), the plan hash
 * the approver saw (409); then one conditional vote write and, when it completes the quorum
 * or rejects, one conditional outcome write whose winner answers the saga. Every refusal is
 * recorded on the action's audit chain (see {@link refuse}).
 */
export async function decideApproval(deps: ApprovalsDeps, input: DecisionInput): Promise<DecisionResult> {
  const { approval, action } = await loadForVote(deps, input);
  const now = deps.now();
  const voter = input.voter.sub;
  const ctx: VoteContext = { approval, action, input, now };

  const check = eligibility(deps.engine, deps.tools, input.voter, action, approval, now);
  if (!check.allowed) {
    throw await refuse(
      deps,
      ctx,
      check.refusal ?? 'ineligible',
      check.policyIds,
      new VoteRefusedError({ kind: 'forbidden', policyIds: check.policyIds }, check.reason),
    );
  }

  const earlier = await deps.approvals.getVote(approval.id, voter);
  if (earlier) return repeatVote(deps, ctx, earlier);

  if (approval.status === 'expired') {
    throw await refuse(deps, ctx, 'expired', [], closed(approval));
  }
  if (approval.status !== 'pending') throw await refuse(deps, ctx, 'closed', [], closed(approval));
  if (TerminalStatuses.has(action.status)) {
    throw await refuse(
      deps,
      ctx,
      'closed',
      [],
      new VoteRefusedError({ kind: 'action-ended', actionStatus: action.status }, `Action ${action.id} is ${action.status}; there is nothing left to approve.`),
    );
  }
  if (Date.parse(approval.expiresAt) <= now.getTime()) {
    // Recorded before the saga hears of the expiry, so it lands in the receipt.
    const refusal = await refuse(
      deps,
      ctx,
      'expired',
      [],
      new VoteRefusedError({ kind: 'expired', expiresAt: approval.expiresAt }, `Approval ${approval.id} expired at ${approval.expiresAt}; the action will not run.`),
    );
    await expireApproval(deps, approval.id);
    throw refusal;
  }
  const halt = deps.halts
    ? await deps.halts.covering(subjectOf(deps.tools, action.principal, action.actor.name, planOf(action, deps.tools).steps.map((s) => s.tool)))
    : undefined;
  if (halt) {
    const notice = noticeOf(halt);
    throw await refuse(
      deps,
      ctx,
      'halted',
      [],
      new VoteRefusedError(
        { kind: 'halted', halt: notice },
        `Action ${action.id} is halted by ${halt.id} (${halt.scope}${halt.target ? ` ${halt.target}` : ''}): ${halt.reason} Votes on halted work are refused; decide after the halt is resumed.`,
      ),
    );
  }
  if (input.planHash !== approval.planHash || input.planHash !== action.planHash) {
    throw await refuse(
      deps,
      ctx,
      'stale_plan',
      [],
      new VoteRefusedError(
        { kind: 'plan-changed', planHash: approval.planHash },
        'The planHash you sent is not the plan waiting for approval. Fetch the preview again and decide on what it shows.',
      ),
    );
  }

  const vote: VoteRecord = {
    approvalId: approval.id,
    voter,
    decision: input.decision,
    planHash: input.planHash,
    ...(input.comment ? { comment: input.comment } : {}),
    at: now.toISOString(),
  };
  const put = await deps.approvals.putVote(vote);
  if (put.outcome === 'exists') return repeatVote(deps, ctx, put.vote);
  // The vote is cast; it counts only if the approval accepts it before the deadline.
  const latest = await finishVotesAnswering(deps, approval.id, action, voter);
  if (!isAccepted(latest, voter)) throw await lateVote(deps, ctx, latest);
  deps.logger.info('approval vote recorded', { approvalId: approval.id, voter, decision: input.decision });
  return result(deps, approval.id, vote, true);
}

const isVoteEvent = (approvalId: string, voter: string) => (e: AuditEvent) =>
  e.type === ApprovalEventTypes.vote && e.data.approvalId === approvalId && e.data.voter === voter;

const isOutcomeEvent = (type: string, approvalId: string) => (e: AuditEvent) => e.type === type && e.data.approvalId === approvalId;

function voteEvent(vote: VoteRecord) {
  return {
    type: ApprovalEventTypes.vote,
    actor: vote.voter,
    data: { approvalId: vote.approvalId, voter: vote.voter, decision: vote.decision, ...(vote.comment ? { comment: vote.comment } : {}), at: vote.at },
  };
}

/** Whether the approval accepted `voter`'s vote. */
const isAccepted = (approval: ApprovalRecord, voter: string) => (approval.accepted ?? []).some((a) => a.voter === voter);

/**
 * The votes the approval accepted, in the order it took them, as their voters cast them
 * (comments included). A cast vote the approval never took (its request died, or the expiry
 * or another outcome came first) is not among them: it counts for nothing and shows nowhere.
 */
export function acceptedVotes(approval: ApprovalRecord, cast: readonly VoteRecord[]): VoteRecord[] {
  const byVoter = new Map(cast.map((v) => [v.voter, v]));
  return (approval.accepted ?? []).map(
    (a) => byVoter.get(a.voter) ?? { approvalId: approval.id, voter: a.voter, decision: a.decision, planHash: approval.planHash, at: a.at },
  );
}

/** Distinct approving voters among the accepted votes (the requester or a grantee never count, even if one slipped in). */
function approversOf(approval: ApprovalRecord, action: ActionRecord, accepted: readonly AcceptedVote[]): AcceptedVote[] {
  const excluded = new Set([approval.requester, action.principal.sub, ...approval.grantees]);
  return [...new Map(accepted.filter((v) => v.decision === 'approve' && !excluded.has(v.voter)).map((v) => [v.voter, v])).values()];
}

/** What accepted votes decide: the earliest rejection rejects; otherwise a quorum of distinct approvers approves. */
function outcomeOf(approval: ApprovalRecord, action: ActionRecord, accepted: readonly AcceptedVote[], cast: readonly VoteRecord[], by: string): AcceptVotes['settle'] {
  const rejection = accepted.filter((v) => v.decision === 'reject').sort((a, b) => a.at.localeCompare(b.at))[0];
  if (rejection) {
    const comment = cast.find((v) => v.voter === rejection.voter)?.comment;
    return { to: 'rejected', outcome: { by: rejection.voter, reason: comment ?? `rejected by ${rejection.voter}` } };
  }
  if (approversOf(approval, action, accepted).length >= approval.quorum) return { to: 'approved', outcome: { by, reason: 'quorum reached' } };
  return undefined;
}

/** Accepting writes that lose to another accepting write are tried again; each loss is someone else's progress. */
const MAX_ACCEPT_ATTEMPTS = 64;

/**
 * Accepts every cast vote the approval has not taken yet (this request's, and any a dead
 * request cast), in one conditional write per attempt: only while the approval is pending and
 * only before its `expiresAt`, judged at the write. When the votes decide the approval, the
 * outcome is in that same write. Returns the approval as it stands after, and whether this
 * call's write decided it (its caller answers the saga).
 */
async function admitVotes(deps: ApprovalsDeps, approvalId: string, action: ActionRecord, by: string): Promise<{ approval: ApprovalRecord; decidedHere: boolean }> {
  const excluded = new Set([action.principal.sub]);
  for (let attempt = 0; attempt < MAX_ACCEPT_ATTEMPTS; attempt++) {
    const approval = await deps.approvals.getApproval(approvalId);
    if (!approval) throw new Error(`Approval ${approvalId} vanished`);
    if (approval.status !== 'pending') return { approval, decidedHere: false };
    const cast = await deps.approvals.listVotes(approvalId);
    const taken = new Set((approval.accepted ?? []).map((a) => a.voter));
    for (const sub of [approval.requester, ...approval.grantees]) excluded.add(sub);
    const fresh = cast.filter((v) => !taken.has(v.voter) && v.planHash === approval.planHash && !excluded.has(v.voter));
    if (fresh.length === 0) return { approval, decidedHere: false };
    // Read the clock at the write, not when the request began: a vote is judged by when it lands.
    const now = deps.now();
    if (Date.parse(approval.expiresAt) <= now.getTime()) return { approval, decidedHere: false };
    const accepted = [...(approval.accepted ?? []), ...fresh.map((v) => ({ voter: v.voter, decision: v.decision, at: v.at, acceptedAt: now.toISOString() }))];
    const settle = outcomeOf(approval, action, accepted, cast, by);
    const change: AcceptVotes = { accepted, revision: approval.revision ?? 0, ...(settle ? { settle } : {}) };
    if (!(await deps.approvals.acceptVotes(approvalId, change, now))) continue;
    if (settle) recordApprovalDecided(deps.metrics, settle.to, approval.createdAt, now);
    const after = (await deps.approvals.getApproval(approvalId)) ?? approval;
    return { approval: after, decidedHere: settle !== undefined };
  }
  throw new Error(`Approval ${approvalId}: votes not accepted after ${MAX_ACCEPT_ATTEMPTS} attempts`);
}

/**
 * Puts the approval's accepted votes on the action's audit chain, each exactly once however
 * many requests race, and then its outcome (granted or rejected) once: the receipt is how
 * anyone proves the quorum, so it holds exactly the votes the approval accepted.
 */
async function chainOutcome(deps: ApprovalsDeps, approval: ApprovalRecord, action: ActionRecord): Promise<void> {
  const votes = acceptedVotes(approval, await deps.approvals.listVotes(approval.id));
  const chained = await deps.events.list(action.id);
  const now = deps.now();
  for (const v of votes) {
    if (!chained.some(isVoteEvent(approval.id, v.voter))) await deps.events.appendOnce(action.id, voteEvent(v), isVoteEvent(approval.id, v.voter), now);
  }
  if (approval.status === 'approved') {
    const approvers = approversOf(approval, action, approval.accepted ?? []);
    await deps.events.appendOnce(
      action.id,
      { type: ApprovalEventTypes.granted, actor: approval.outcome?.by ?? 'airlock', data: { approvalId: approval.id, votes: approvers.map((v) => ({ voter: v.voter, at: v.at })) } },
      isOutcomeEvent(ApprovalEventTypes.granted, approval.id),
      now,
    );
  } else if (approval.status === 'rejected') {
    const rejecter = approval.outcome?.by ?? 'airlock';
    const reason = approval.outcome?.reason ?? 'rejected by an approver';
    await deps.events.appendOnce(
      action.id,
      { type: ApprovalEventTypes.rejected, actor: rejecter, data: { approvalId: approval.id, voter: rejecter, reason } },
      isOutcomeEvent(ApprovalEventTypes.rejected, approval.id),
      now,
    );
  }
}

/**
 * Brings a pending approval to what its cast votes decide: accepts them (see {@link admitVotes}),
 * puts the accepted votes and any outcome on the chain, and, when this call's write decided
 * the approval, answers the saga. A voter, a repeated click and a resumed saga may all call
 * this at once. `by` names who caused the call (a voter, or `airlock` for a resumed saga).
 */
async function finishVotes(deps: ApprovalsDeps, approvalId: string, action: ActionRecord, by: string): Promise<ApprovalRecord> {
  const { approval, decidedHere } = await admitVotes(deps, approvalId, action, by);
  await chainOutcome(deps, approval, action);
  if (decidedHere) {
    const token = await deps.approvals.getTaskToken(approval.id);
    if (!token) throw new Error(`Approval ${approval.id} has no task token`);
    await answer(deps, approval, token);
  }
  return approval;
}

/** {@link finishVotes} for a voter's request: a saga that no longer waits becomes a 409 problem. */
async function finishVotesAnswering(deps: ApprovalsDeps, approvalId: string, action: ActionRecord, by: string): Promise<ApprovalRecord> {
  try {
    return await finishVotes(deps, approvalId, action, by);
  } catch (error) {
    if (error instanceof TaskTokenInvalidError) throw tokenGone(approvalId, error);
    throw error;
  }
}
