import { Duration, Stack, Validations } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { Schedule, ScheduleExpression, ScheduleTargetInput } from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import { Construct } from 'constructs';
import type { AirlockFunction } from './airlock-function';

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
    // Its own role, so invoking the sweep function is all the schedule can do.
    const role = new Role(this, 'SchedulerRole', {
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } } }),
      description: 'Airlock: EventBridge Scheduler invokes the delegation expiry sweep',
    });
    this.schedule = new Schedule(this, 'Schedule', {
      description: 'Airlock: end expired delegations (cancel their pending approvals, write expiry receipts)',
      schedule: ScheduleExpression.rate(props.interval ?? DELEGATION_EXPIRY_INTERVAL),
      // The next run sweeps whatever this one missed: no retries past it.
      target: new LambdaInvoke(props.fn.function, {
        input: ScheduleTargetInput.fromObject(DELEGATION_EXPIRY_TASK),
        role,
        retryAttempts: 0,
        maxEventAge: Duration.minutes(1),
      }),
    });
    const fnLogicalId = Stack.of(this).resolve(Stack.of(this).getLogicalId(props.fn.function.node.defaultChild as CfnFunction));
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${String(fnLogicalId)}.Arn>:*]`,
      reason: 'lambda:InvokeFunction on the delegation expiry function and its versions/aliases (`<arn>:*`, what grantInvoke emits); one function, one action.',
    });
  }
}
