import { Duration, Stack, Validations } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { Schedule, ScheduleExpression, ScheduleTargetInput } from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import type { Construct } from 'constructs';
import type { AirlockFunction } from './airlock-function';

/** What {@link scheduleInvocations} needs: which function, how often, with what, and how long a late run is still worth making. */
export interface ScheduledInvokeProps {
  readonly fn: AirlockFunction;
  readonly rate: Duration;
  /** The event the function parses (its handler's task). */
  readonly task: Record<string, unknown>;
  /** What the function is, for the role's description and the cdk-nag acknowledgement ("the reconcile function"). */
  readonly what: string;
  /** The schedule's description. */
  readonly description: string;
  readonly retryAttempts: number;
  readonly maxEventAge: Duration;
}

/**
 * An EventBridge Scheduler schedule invoking one function on a rate, created under `scope` as
 * `SchedulerRole` and `Schedule`. The schedule gets its own role (not the stack-wide one CDK
 * shares between schedule targets), so invoking that function is all it can do; the `<arn>:*`
 * finding that grantInvoke's resource raises is acknowledged for that one function.
 */
export function scheduleInvocations(scope: Construct, props: ScheduledInvokeProps): Schedule {
  const stack = Stack.of(scope);
  const role = new Role(scope, 'SchedulerRole', {
    assumedBy: new ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
    description: `Airlock: EventBridge Scheduler invokes ${props.what}`,
  });
  const schedule = new Schedule(scope, 'Schedule', {
    description: props.description,
    schedule: ScheduleExpression.rate(props.rate),
    target: new LambdaInvoke(props.fn.function, {
      input: ScheduleTargetInput.fromObject(props.task),
      role,
      retryAttempts: props.retryAttempts,
      maxEventAge: props.maxEventAge,
    }),
  });
  const fnLogicalId = stack.resolve(stack.getLogicalId(props.fn.function.node.defaultChild as CfnFunction));
  Validations.of(role).acknowledge({
    id: `AwsSolutions-IAM5[Resource::<${String(fnLogicalId)}.Arn>:*]`,
    reason: `lambda:InvokeFunction on ${props.what} and its versions/aliases (\`<arn>:*\`, what grantInvoke emits); one function, one action.`,
  });
  return schedule;
}
