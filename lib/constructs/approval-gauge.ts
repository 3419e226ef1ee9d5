import { Duration } from 'aws-cdk-lib';
import type { Schedule } from 'aws-cdk-lib/aws-scheduler';
import { Construct } from 'constructs';
import { PENDING_APPROVALS_SAMPLE_SECONDS } from '../../lambdas/observability/pending-approvals';
import type { AirlockFunction } from './airlock-function';
import { scheduleInvocations } from './scheduled-invoke';

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
    // A sample is worth nothing once the next is due: no retries beyond that.
    this.schedule = scheduleInvocations(this, {
      fn: props.fn,
      rate: props.interval ?? APPROVAL_GAUGE_INTERVAL,
      task: APPROVAL_GAUGE_TASK,
      what: 'the approvals gauge function',
      description: 'Airlock: sample pending approvals (count, oldest age) for the dashboard and the pending alarm',
      retryAttempts: 1,
      maxEventAge: Duration.minutes(4),
    });
  }
}
