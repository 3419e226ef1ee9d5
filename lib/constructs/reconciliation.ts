import { Duration, Stack, Validations } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Schedule, ScheduleExpression, ScheduleTargetInput } from 'aws-cdk-lib/aws-scheduler';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import { Construct } from 'constructs';
import type { AirlockFunction } from './airlock-function';

/** How often the deployed reconciliation runs (the local control plane's `reconcileIntervalMs` default too). */
export const RECONCILE_INTERVAL = Duration.minutes(15);

/** Props of {@link Reconciliation}. */
export interface ReconciliationProps {
  /** The reconcile function (lambdas/reconcile/handler.ts), already bound to the ledger, vault and vendor secrets. */
  readonly fn: AirlockFunction;
  readonly interval?: Duration;
}

/**
 * The scheduled reconciliation against vendors: an EventBridge Scheduler schedule that
 * invokes the reconcile function with `{"task":"Reconcile"}`. The run reports only (audit
 * events, `ReconcileFinding` metrics, a report in the vault); fixing is an operator's call.
 */
export class Reconciliation extends Construct {
  readonly schedule: Schedule;

  constructor(scope: Construct, id: string, props: ReconciliationProps) {
    super(scope, id);
    // Its own role (not the stack-wide one CDK shares between schedule targets), so that
    // invoking the reconcile function is all it can do.
    const role = new Role(this, 'SchedulerRole', {
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } } }),
      description: 'Airlock: EventBridge Scheduler invokes the reconcile function',
    });
    this.schedule = new Schedule(this, 'Schedule', {
      description: 'Airlock: reconcile recent commit steps against the vendors (report only)',
      schedule: ScheduleExpression.rate(props.interval ?? RECONCILE_INTERVAL),
      // A missed run is covered by the next one (each looks back two days), so a late or
      // dropped invocation is not retried for long: no run should overlap the next.
      target: new LambdaInvoke(props.fn.function, {
        input: ScheduleTargetInput.fromObject({ task: 'Reconcile' }),
        role,
        retryAttempts: 2,
        maxEventAge: Duration.minutes(10),
      }),
    });
    const fnLogicalId = Stack.of(this).resolve(Stack.of(this).getLogicalId(props.fn.function.node.defaultChild as CfnFunction));
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${String(fnLogicalId)}.Arn>:*]`,
      reason: 'lambda:InvokeFunction on the reconcile function and its versions/aliases (`<arn>:*`, what grantInvoke emits); one function, one action.',
    });
  }
}
