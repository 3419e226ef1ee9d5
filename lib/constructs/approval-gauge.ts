import { Duration, Stack, Validations } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { Schedule, ScheduleExpression, ScheduleTargetInput } from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import { Construct } from 'constructs';
import { PENDING_APPROVALS_SAMPLE_SECONDS } from '../../lambdas/observability/pending-approvals';
import type { AirlockFunction } from './airlock-function';

/**
 * How often the pending approvals are sampled, and the alarm's period. Approval thresholds
 * are hours, so five minutes is prompt enough.
 */
export const APPROVAL_GAUGE_INTERVAL = Duration.seconds(PENDING_APPROVALS_SAMPLE_SECONDS);

/** The event the schedule sends (lambdas/observability/handler.ts parses it). */
export const APPROVAL_GAUGE_TASK = { task: 'MeasurePendingApprovals' } as const;

/** Props of {@link ApprovalGauge}. */
export interface ApprovalGaugeProps {
  /** The gauge function (lambdas/observability/handler.ts), already bound to the status index. */
  readonly fn: AirlockFunction;
  readonly interval?: Duration;
}

/**
 * The live pending-approvals gauge: an EventBridge Scheduler schedule that invokes the gauge
 * function, which emits `ApprovalsPending` and `ApprovalOldestPendingAge`.
 */
export class ApprovalGauge extends Construct {
  readonly schedule: Schedule;

  constructor(scope: Construct, id: string, props: ApprovalGaugeProps) {
    super(scope, id);
    // Its own role, so invoking the gauge function is all the schedule can do.
    const role = new Role(this, 'SchedulerRole', {
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } } }),
      description: 'Airlock: EventBridge Scheduler invokes the approvals gauge function',
    });
    this.schedule = new Schedule(this, 'Schedule', {
      description: 'Airlock: sample pending approvals (count, oldest age) for the dashboard and the pending alarm',
      schedule: ScheduleExpression.rate(props.interval ?? APPROVAL_GAUGE_INTERVAL),
      // A sample is worth nothing once the next is due: no retries beyond that.
      target: new LambdaInvoke(props.fn.function, {
        input: ScheduleTargetInput.fromObject(APPROVAL_GAUGE_TASK),
        role,
        retryAttempts: 1,
        maxEventAge: Duration.minutes(4),
      }),
    });
    const fnLogicalId = Stack.of(this).resolve(Stack.of(this).getLogicalId(props.fn.function.node.defaultChild as CfnFunction));
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${String(fnLogicalId)}.Arn>:*]`,
      reason: 'lambda:InvokeFunction on the approvals gauge function and its versions/aliases (`<arn>:*`, what grantInvoke emits); one function, one action.',
    });
  }
}
