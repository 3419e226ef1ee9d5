import type { ActionRecord } from './action';
import type { StepRecord } from '../ports/steps';
import type { Principal } from '../shared/principal';
import { approvalIdFor } from '../shared/ids';
import type { ActionView } from '../api/schemas';

/** Roles that may read every action (auditors answer "who asked, who approved"). */
export const AUDITOR_ROLE = 'Auditor';

/**
 * Whether `viewer` may see `action`. Anyone else is told the action does not exist (404,
 * not 403), so ids cannot be probed.
 */
export function canView(viewer: Principal, action: ActionRecord, extraViewers: readonly string[] = []): boolean {
  return (
    action.principal.sub === viewer.sub ||
    viewer.roles.includes(AUDITOR_ROLE) ||
    extraViewers.includes(viewer.sub) ||
    matchesApproverRule(viewer, action)
  );
}

/**
 * Whether `viewer` fits the stored approver rule of an action that needed approval
 * (`manager`, `role:<Role>`, joined by ` and `), so approvers can open the action they are
 * asked about. Viewing only: deciding is checked with Cedar by the approvals function.
 */
export function matchesApproverRule(viewer: Principal, action: ActionRecord): boolean {
  const rule = action.decision?.outcome === 'require_approval' ? action.decision.approverRule : null;
  if (!rule || viewer.sub === action.principal.sub) return false;
  return rule.split(' and ').every((part) => {
    const term = part.trim();
    if (term === 'manager') return action.principal.manager !== undefined && action.principal.manager === viewer.sub;
    if (term.startsWith('role:')) return viewer.roles.includes(term.slice('role:'.length));
    return false;
  });
}

function plannedSteps(envelope: unknown): { id: string; tool: string }[] {
  if (envelope && typeof envelope === 'object') {
    const e = envelope as Record<string, unknown>;
    if (Array.isArray(e.plan)) {
      return e.plan.map((s) => ({ id: String((s as Record<string, unknown>).id), tool: String((s as Record<string, unknown>).tool) }));
    }
    if (typeof e.tool === 'string') return [{ id: 'call', tool: e.tool }];
  }
  return [];
}

/** The tools an action calls, each once, in plan order (the day index filters on them). */
export function toolsOf(envelope: unknown): string[] {
  return [...new Set(plannedSteps(envelope).map((s) => s.tool))];
}

const stepStatus = { in_progress: 'running', complete: 'completed', failed: 'failed' } as const;

/**
 * The plan's steps with what the saga recorded for each: status, attempts, output or error,
 * timings, and the compensation that undid it, if any.
 */
export function stepViews(action: ActionRecord, records: readonly StepRecord[]) {
  const forward = new Map(records.filter((r) => r.kind === 'forward').map((r) => [r.stepId, r]));
  const undo = new Map(records.filter((r) => r.kind === 'compensate').map((r) => [r.stepId, r]));
  return plannedSteps(action.envelope).map((step) => {
    const r = forward.get(step.id);
    const u = undo.get(step.id);
    return {
      ...step,
      status: r ? stepStatus[r.status] : ('pending' as const),
      ...(r ? { attempts: r.attempts, startedAt: r.startedAt } : {}),
      ...(r?.finishedAt ? { finishedAt: r.finishedAt } : {}),
      ...(r?.status === 'complete' ? { output: r.output } : {}),
      ...(r?.error && r.status !== 'complete' ? { error: r.error } : {}),
      ...(u ? { compensation: { tool: u.tool, status: stepStatus[u.status], ...(u.finishedAt ? { finishedAt: u.finishedAt } : {}) } } : {}),
    };
  });
}

/** A completed action's result: a single call's output, or a plan's outputs by step id. */
export function resultFromSteps(action: Pick<ActionRecord, 'kind' | 'envelope'>, records: readonly StepRecord[]): unknown {
  const outputs = Object.fromEntries(
    records.filter((r) => r.kind === 'forward' && r.status === 'complete').map((r) => [r.stepId, r.output]),
  );
  return action.kind === 'single' ? outputs[plannedSteps(action.envelope)[0]?.id ?? ''] : outputs;
}

/**
 * The view of one action with its steps. A completed action whose outputs were too large for
 * the action record (see ACTION_RESULT_MAX_BYTES) gets its result from the step records.
 */
export function actionDetailView(action: ActionRecord, records: readonly StepRecord[]): ActionView {
  const view = actionView(action, stepViews(action, records));
  if (action.result === undefined && action.status === 'completed') view.result = resultFromSteps(action, records) ?? null;
  return view;
}

/** The public representation of an action (GET /v1/actions/{id} and listings). */
export function actionView(action: ActionRecord, steps?: ActionView['steps']): ActionView {
  return {
    id: action.id,
    status: action.status,
    ...(action.statusReason ? { statusReason: action.statusReason } : {}),
    kind: action.kind,
    mode: action.mode,
    principal: { sub: action.principal.sub },
    actor: action.actor,
    ...(action.reason ? { reason: action.reason } : {}),
    planHash: action.planHash,
    steps: steps ?? plannedSteps(action.envelope).map((s) => ({ ...s, status: 'pending' as const })),
    decision: action.decision ?? null,
    // One approval per action, with an id derived from the action's: listed once one was asked for.
    approvals: action.approvalIds ?? (action.decision?.outcome === 'require_approval' ? [approvalIdFor(action.id)] : []),
    receipt: action.receiptKey ?? null,
    result: action.result ?? null,
    createdAt: action.createdAt,
    updatedAt: action.updatedAt,
    links: { self: `/v1/actions/${action.id}` },
  };
}
