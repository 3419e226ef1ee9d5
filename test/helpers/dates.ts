import { utcDay } from '../../lambdas/shared/ids';

const DAY_MS = 86_400_000;

/**
 * The UTC day `days` after `now`, as `YYYY-MM-DD`. Fixtures take flight dates from here
 * because the travel sandbox refuses flights that have departed: a literal date turns a
 * passing test into a failing one on the day it goes by. One day ahead is already safe
 * (the earliest sandbox flight leaves at 07:00 UTC); give tests that must not share a
 * flight distinct offsets.
 */
export function isoDay(days: number, now: Date = new Date()): string {
  return utcDay(new Date(now.getTime() + days * DAY_MS));
}
