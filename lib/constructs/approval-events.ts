import { Stack } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { AirlockFunction } from './airlock-function';
import { EnvNames } from '../../lambdas/composition/env';

/** Env var: the approval wait in seconds, equal to WaitForApproval's TimeoutSeconds. */
export const APPROVAL_TIMEOUT_ENV = EnvNames.approvalTimeoutSeconds;
/** Env var: the EventBridge bus `airlock.approval.requested` goes to. */
export const APPROVAL_EVENT_BUS_ENV = EnvNames.approvalEventBus;
/** The account's default bus: teams add rules to it without Airlock owning a bus. */
export const DEFAULT_EVENT_BUS = 'default';

/**
 * Configures the approvals function: the same expiry the saga waits (so an approval and its
 * WaitForApproval end together) and PutEvents on exactly one bus, so it can notify
 * approvers and nothing else.
 */
export function bindApprovalEvents(fn: AirlockFunction, props: { approvalTimeoutSeconds: number; eventBusName?: string }): void {
  const bus = props.eventBusName ?? DEFAULT_EVENT_BUS;
  fn.addEnvironment(APPROVAL_TIMEOUT_ENV, String(props.approvalTimeoutSeconds));
  fn.addEnvironment(APPROVAL_EVENT_BUS_ENV, bus);
  fn.role.addToPrincipalPolicy(
    new PolicyStatement({
      sid: 'PublishApprovalEvents',
      actions: ['events:PutEvents'],
      resources: [Stack.of(fn).formatArn({ service: 'events', resource: 'event-bus', resourceName: bus })],
    }),
  );
}
