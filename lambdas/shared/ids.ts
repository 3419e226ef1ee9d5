import { decodeTime, encodeTime, monotonicFactory } from 'ulid';
import * as z from 'zod';
import type { StepKey } from '../ports/steps';

const nextUlid = monotonicFactory();

/**
 * Action ids: `act_` + ULID. Sortable by creation time (newest-first listings), 30 chars, and
 * valid as a Step Functions execution name ([A-Za-z0-9_-], ≤ 80), which makes
 * StartExecution idempotent per action.
 */
export function newActionId(now = Date.now()): string {
  return `act_${nextUlid(now)}`;
}

export const ActionIdPattern = /^act_[0-9A-HJKMNP-TV-Z]{26}$/;

/** When an action id was minted (ms since the epoch): the time its ULID encodes. */
export function actionIdTime(id: string): number {
  return decodeTime(id.slice('act_'.length));
}

/**
 * The smallest and largest action ids minted in [sinceMs, untilMs]: ULIDs sort by their time
 * prefix, so a key range over ids is a time range over actions.
 */
export function actionIdRange(sinceMs: number, untilMs: number): { from: string; to: string } {
  return { from: `act_${encodeTime(Math.max(0, sinceMs), 10)}${'0'.repeat(16)}`, to: `act_${encodeTime(Math.max(0, untilMs), 10)}${'Z'.repeat(16)}` };
}

/** An action id in a task payload or a schema. */
export const ActionIdSchema = z.string().regex(ActionIdPattern);

/** The approval id of an action: `act_<ULID>` → `apr_<ULID>`. */
export function approvalIdFor(actionId: string): string {
  return `apr_${actionId.replace(/^act_/, '')}`;
}

/** The action id of an approval id (the inverse of {@link approvalIdFor}). */
export function actionIdOf(approvalId: string): string {
  return `act_${approvalId.replace(/^apr_/, '')}`;
}

export const ApprovalIdPattern = /^apr_[0-9A-HJKMNP-TV-Z]{26}$/;

/** The deterministic idempotency key of a step, sent to the vendor. */
export function stepIdempotencyKey(key: StepKey): string {
  return `${key.actionId}.${key.stepId}${key.kind === 'compensate' ? '.undo' : ''}`;
}

/** UTC day of a date, `YYYY-MM-DD`. */
export function utcDay(now: Date): string {
  return now.toISOString().slice(0, 10);
}
