import { monotonicFactory } from 'ulid';

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
