import { Duration } from 'aws-cdk-lib';
import type { Schedule } from 'aws-cdk-lib/aws-scheduler';
import { Construct } from 'constructs';
import type { AirlockFunction } from './airlock-function';
import { scheduleInvocations } from './scheduled-invoke';

/**
 * How often expired delegations are swept. Intake and the saga refuse an expired delegation by
 * their own clocks, so the sweep only bounds how long an approval under it stays pending and
 * when its expiry receipt lands: within a minute.
 */
export const DELEGATION_EXPIRY_INTERVAL = Duration.minutes(1);

/** The event the schedule sends (lambdas/delegations/handler.ts parses it). */
export const DELEGATION_EXPIRY_TASK = { task: 'SweepExpiredDelegations' } as const;

/** Props of {@link DelegationExpiry}. */
export interface DelegationExpiryProps {
  /** The sweep function (lambdas/delegations/handler.ts), already bound to the ledger, the vault and the saga. */
  readonly fn: AirlockFunction;
  readonly interval?: Duration;
}

/**
 * The delegation expiry sweep's trigger: an EventBridge Scheduler schedule that invokes the
 * sweep function every minute. One standing schedule rather than one `at(expiresAt)` schedule
 * per delegation: the intake function (the internet-facing one) then needs no
 * scheduler:CreateSchedule/DeleteSchedule nor iam:PassRole, nothing is left to clean up on
 * revocation, and a missed run is caught up by the next (the queue holds every due expiry).
 */
export class DelegationExpiry extends Construct {
  readonly schedule: Schedule;

  constructor(scope: Construct, id: string, props: DelegationExpiryProps) {
    super(scope, id);
    // The next run sweeps whatever this one missed: no retries past it.
    this.schedule = scheduleInvocations(this, {
      fn: props.fn,
      rate: props.interval ?? DELEGATION_EXPIRY_INTERVAL,
      task: DELEGATION_EXPIRY_TASK,
      what: 'the delegation expiry function',
      description: 'Airlock: end expired delegations (cancel their pending approvals, write expiry receipts)',
      retryAttempts: 0,
      maxEventAge: Duration.minutes(1),
    });
  }
}
