import middy from '@middy/core';
import { z } from 'zod';
import {
  beginExecution,
  evaluatePolicy,
  finishCompensation,
  issueGrant,
  prepareCompensation,
  recordCompensationFailure,
  settleAction,
} from './tasks';
import { boundedErrors } from '../middleware/bounded-errors';
import { sagaRuntime } from '../composition/aws';

/**
 * The policy function: the saga's decision and bookkeeping tasks (EvaluatePolicy,
 * BeginExecution, IssueGrant, PrepareCompensation, RecordCompensationFailure,
 * FinishCompensation, SettleAction, RecordReceipt). Each Task state names its task; errors are thrown by
 * name and caught by the ASL.
 */

const ActionId = z.string().regex(/^act_[0-9A-HJKMNP-TV-Z]{26}$/);
const Index = z.number().int().min(0).max(100);

export const PolicyTaskSchema = z.discriminatedUnion('task', [
  z.object({ task: z.literal('EvaluatePolicy'), actionId: ActionId }),
  z.object({ task: z.literal('BeginExecution'), actionId: ActionId }),
  z.object({ task: z.literal('IssueGrant'), actionId: ActionId, index: Index, kind: z.enum(['forward', 'compensate']) }),
  z.object({ task: z.literal('PrepareCompensation'), actionId: ActionId, state: z.object({ error: z.unknown().optional() }).passthrough() }),
  z.object({ task: z.literal('RecordCompensationFailure'), actionId: ActionId, index: Index, error: z.unknown().optional() }),
  z.object({ task: z.literal('FinishCompensation'), actionId: ActionId }),
  z.object({ task: z.literal('RecordReceipt'), actionId: ActionId, key: z.string().min(1).max(1024) }),
  z.object({
    task: z.literal('SettleAction'),
    actionId: ActionId,
    state: z.object({ final: z.object({ status: z.unknown(), reason: z.unknown() }).partial().optional() }).passthrough(),
  }),
]);
export type PolicyTask = z.infer<typeof PolicyTaskSchema>;

/** A task payload that does not match the contract: a bug in the ASL, never retried. */
export class TaskInputInvalidError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TaskInputInvalidError';
  }
}

async function run(event: unknown): Promise<unknown> {
  const parsed = PolicyTaskSchema.safeParse(event);
  if (!parsed.success) throw new TaskInputInvalidError(`Invalid policy task: ${parsed.error.issues.map((i) => i.path.join('.')).join(', ')}`);
  const task = parsed.data;
  const deps = await sagaRuntime();
  switch (task.task) {
    case 'EvaluatePolicy':
      return evaluatePolicy(deps, task.actionId);
    case 'BeginExecution':
      return beginExecution(deps, task.actionId);
    case 'IssueGrant':
      return issueGrant(deps, task);
    case 'PrepareCompensation':
      return prepareCompensation(deps, { actionId: task.actionId, error: task.state.error });
    case 'RecordCompensationFailure':
      await recordCompensationFailure(deps, task);
      return {};
    case 'FinishCompensation':
      return finishCompensation(deps, task.actionId);
    case 'RecordReceipt':
      await deps.actions.setReceiptKey(task.actionId, task.key, deps.now());
      return {};
    case 'SettleAction':
      return settleAction(deps, { actionId: task.actionId, ...(task.state.final ? { final: task.state.final } : {}) });
  }
}

/** Lambda entry point. */
export const handler = middy<unknown, unknown>().use(boundedErrors()).handler(run);
