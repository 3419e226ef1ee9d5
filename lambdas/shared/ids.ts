import { randomFillSync } from 'node:crypto';
import { decodeTime, encodeTime, monotonicFactory } from 'ulid';
import * as z from 'zod';
import type { StepKey } from '../ports/steps';

const POOL_BYTES = 4096;
let pool: Uint8Array | undefined;
let next = POOL_BYTES;

/**
 * A fraction in [0, 1) from one byte of the operating system's CSPRNG, the bytes drawn 4 KiB at
 * a time. The ulid package's own source asks Web Crypto for one byte per character, 16 calls
 * per id (about a tenth of a millisecond of every action under load, profiled). A byte over 256
 * picks one of ULID's 32 characters with equal odds (byte >> 3), as before.
 */
export function pooledRandomFraction(): number {
  if (next >= POOL_BYTES) {
    pool ??= new Uint8Array(POOL_BYTES);
    randomFillSync(pool);
    next = 0;
  }
  return pool![next++]! / 256;
}

const nextUlid = monotonicFactory(pooledRandomFraction);

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
