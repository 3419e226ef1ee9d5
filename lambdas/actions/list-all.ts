import { maskPaths, PII_MASK } from '../approvals/preview';
import type { ActionView } from '../api/schemas';
import type { AccessLog, ActionPage, ActionStore } from '../ports/ledger';
import type { ToolRegistry } from '../ports/tools';
import type { Logger } from '../shared/logger';
import type { Principal } from '../shared/principal';
import type { ActionRecord, ActionStatus } from './action';
import { actionView, AUDITOR_ROLE, toolsOf } from './view';

/**
 * Every principal's actions for auditors (`GET /v1/actions?scope=all`): newest first over a
 * time range, filtered by status, tool and principal. Anyone else is refused, and the refusal
 * is recorded on the access trail before the 403.
 */

/** The longest time range one listing may span: the day index is read a day at a time. */
export const MAX_LIST_ALL_DAYS = 31;
/** The range when the caller gives no `since`: the last week. */
export const DEFAULT_LIST_ALL_DAYS = 7;

const DAY_MS = 86_400_000;

/** The caller may not list every principal's actions (not an auditor). */
export class ActionListForbiddenError extends Error {
  readonly requiredRole = AUDITOR_ROLE;
  constructor() {
    super(`Listing every principal's actions needs the role ${AUDITOR_ROLE}; without scope=all you see your own actions.`);
    this.name = 'ActionListForbiddenError';
  }
}

/** The time range is not one the listing reads (reversed, or too long). */
export class ActionListRangeError extends Error {
  constructor(readonly parameter: 'since' | 'until', message: string) {
    super(message);
    this.name = 'ActionListRangeError';
  }
}

export interface ListAllActionsDeps {
  actions: Pick<ActionStore, 'listAllActions'>;
  accessLog: Pick<AccessLog, 'recordAccessRefusal'>;
  tools: ToolRegistry;
  now: () => Date;
  logger: Logger;
}

export interface ListAllActionsRequest {
  status?: ActionStatus;
  tool?: string;
  principal?: string;
  since?: string;
  until?: string;
  limit: number;
  /** Opens the caller's cursor (checked after the role, so a refusal never depends on it). */
  cursor?: () => string;
}

/** Checks the role (recording a refusal), resolves the range, and lists. */
export async function listAllActions(deps: ListAllActionsDeps, viewer: Principal, request: ListAllActionsRequest): Promise<ActionPage> {
  if (!viewer.roles.includes(AUDITOR_ROLE)) {
    await deps.accessLog.recordAccessRefusal({
      at: deps.now().toISOString(),
      actor: viewer.sub,
      attempted: 'list_all_actions',
      requiredRole: AUDITOR_ROLE,
      roles: viewer.roles.slice(0, 32).map((r) => r.slice(0, 128)),
    });
    deps.logger.warn('list of all actions refused', { requiredRole: AUDITOR_ROLE });
    throw new ActionListForbiddenError();
  }
  const until = request.until !== undefined ? new Date(request.until) : deps.now();
  const since = request.since !== undefined ? new Date(request.since) : new Date(until.getTime() - DEFAULT_LIST_ALL_DAYS * DAY_MS);
  if (since.getTime() > until.getTime()) throw new ActionListRangeError('since', 'since must not be after until');
  if (until.getTime() - since.getTime() > MAX_LIST_ALL_DAYS * DAY_MS) throw new ActionListRangeError('since', `the range may span at most ${MAX_LIST_ALL_DAYS} days`);
  return deps.actions.listAllActions({
    since,
    until,
    limit: request.limit,
    ...(request.status ? { status: request.status } : {}),
    ...(request.tool ? { tool: request.tool } : {}),
    ...(request.principal ? { principalSub: request.principal } : {}),
    ...(request.cursor !== undefined ? { startAfter: request.cursor() } : {}),
  });
}

/**
 * An action as an auditor's listing shows it: someone else's outputs with the tools' declared
 * PII fields as {@link PII_MASK}, as approval previews mask arguments for those who may not
 * decide (an unknown tool's output is masked whole).
 */
export function listedActionView(action: ActionRecord, viewer: Principal, tools: ToolRegistry): ActionView {
  const view = actionView(action);
  if (action.principal.sub === viewer.sub || action.result === undefined || action.result === null) return view;
  const mask = (tool: string, output: unknown) => {
    const registered = tools.find(tool);
    return registered === undefined ? PII_MASK : maskPaths(output, registered.tool.pii?.output ?? []);
  };
  if (action.kind === 'single') {
    const [tool] = toolsOf(action.envelope);
    view.result = tool === undefined ? PII_MASK : mask(tool, action.result);
    return view;
  }
  // A plan's result is its outputs by step id.
  const stepTools = new Map(view.steps.map((s) => [s.id, s.tool]));
  if (typeof action.result !== 'object' || Array.isArray(action.result)) {
    view.result = PII_MASK;
    return view;
  }
  const outputs = action.result as Record<string, unknown>;
  view.result = Object.fromEntries(Object.entries(outputs).map(([id, output]) => [id, mask(stepTools.get(id) ?? '', output)]));
  return view;
}
