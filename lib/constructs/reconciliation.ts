import { Duration } from 'aws-cdk-lib';
import type { Schedule } from 'aws-cdk-lib/aws-scheduler';
import { Construct } from 'constructs';
import type { AirlockFunction } from './airlock-function';
import { scheduleInvocations } from './scheduled-invoke';

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
    // A missed run is covered by the next one (each looks back two days), so a late or
    // dropped invocation is not retried for long: no run should overlap the next.
    this.schedule = scheduleInvocations(this, {
      fn: props.fn,
      rate: props.interval ?? RECONCILE_INTERVAL,
      task: { task: 'Reconcile' },
      what: 'the reconcile function',
      description: 'Airlock: reconcile recent commit steps against the vendors (report only)',
      retryAttempts: 2,
      maxEventAge: Duration.minutes(10),
    });
  }
}
