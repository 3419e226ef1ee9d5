import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  MathExpression,
  Metric,
  TextWidget,
  TreatMissingData,
  type IMetric,
  type IWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { TERMINAL_STATUSES } from '../../lambdas/actions/action';
import { MetricCatalog, METRICS_NAMESPACE, METRICS_SERVICE as SERVICE_NAME, type MetricName } from '../../lambdas/observability/catalog';

/** The `kind` values of the `ReconcileFinding` metric (the catalog's). */
const RECONCILE_FINDING_KINDS = MetricCatalog.ReconcileFinding.dimensions.kind;

/** Where every alarm's description points: a section of this file. */
export const RUNBOOK_FILE = 'docs/runbooks.md';

/** Runbook anchors (the `##` headings of docs/runbooks.md, GitHub-style). */
export const Runbooks = {
  compensationFailed: 'compensation-failed',
  receiptFailed: 'receipt-failed',
  digestStale: 'digest-stale',
  api5xx: 'api-5xx-rate',
  vendorErrors: 'vendor-error-rate',
  approvalsWaiting: 'approvals-waiting',
  approvalsPending: 'approvals-pending-past-threshold',
  sagaFailed: 'saga-executions-failed-or-timed-out',
  ledgerThrottled: 'ledger-throttled',
  breakerOpen: 'breaker-open',
  haltActive: 'halt-active',
  reconcileFinding: 'reconcile-finding',
} as const;

export interface ObservabilityProps {
  api: HttpApi;
  stateMachine: StateMachine;
  ledger: ITable;
  connectorNames: readonly string[];
  /** Connectors the scheduled reconciliation asks (one `ReconcileFinding` alarm each). */
  reconciledConnectors?: readonly string[];
  /** The digest schedule: the vault is stale after two intervals without a digest. */
  digestInterval: Duration;
  /** How often the approvals gauge samples (its alarm evaluates one sample per period). */
  approvalGaugeInterval: Duration;
  alarms: { email?: string | undefined; approvalPendingHours: number; vendorErrorRatePercent: number; api5xxRatePercent: number };
  removalPolicy: RemovalPolicy;
}

const FIVE_MINUTES = Duration.minutes(5);

/**
 * The safety dashboard and the alarms that page on it. Every metric is one of the catalog's
 * (lambdas/observability/catalog.ts), in the Airlock namespace with the `service` dimension
 * Powertools adds; every alarm goes to one encrypted SNS topic and names its runbook section.
 */
export class AirlockObservability extends Construct {
  readonly topic: Topic;
  readonly dashboard: Dashboard;
  /** Every alarm by construct id. */
  readonly alarms = new Map<string, Alarm>();

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const key = new Key(this, 'AlarmTopicKey', {
      description: 'Encrypts the Airlock alarm topic',
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy,
    });
    // CloudWatch publishes alarms to the encrypted topic, so it must use the key.
    key.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
      }),
    );
    this.topic = new Topic(this, 'AlarmTopic', { displayName: 'Airlock alarms', masterKey: key, enforceSSL: true });
    if (props.alarms.email) this.topic.addSubscription(new EmailSubscription(props.alarms.email));
    const action = new SnsAction(this.topic);

    const m = (name: MetricName, dims: Record<string, string> = {}, statistic = 'Sum', label?: string) =>
      new Metric({ namespace: METRICS_NAMESPACE, metricName: name, dimensionsMap: { service: SERVICE_NAME, ...dims }, statistic, period: FIVE_MINUTES, ...(label ? { label } : {}) });
    // Dimensions whose values the deployment defines (policy ids, limit ids, reasons): one line per value found.
    const search = (name: MetricName, dim: string, label: string) =>
      new MathExpression({ expression: `SEARCH('{${METRICS_NAMESPACE},service,${dim}} MetricName="${name}"', 'Sum', 300)`, label, period: FIVE_MINUTES });
    const perConnector = (name: MetricName, statistic = 'Sum') => props.connectorNames.map((c) => m(name, { connector: c }, statistic, c));

    const alarm = (id: string, description: string, runbook: string, metric: Metric | MathExpression, options: { threshold: number; periods?: number; comparison?: ComparisonOperator; missing?: TreatMissingData }) => {
      const created = metric.createAlarm(this, id, {
        alarmDescription: `${description} Runbook: ${RUNBOOK_FILE}#${runbook}`,
        threshold: options.threshold,
        evaluationPeriods: options.periods ?? 1,
        comparisonOperator: options.comparison ?? ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: options.missing ?? TreatMissingData.NOT_BREACHING,
      });
      created.addAlarmAction(action);
      created.addOkAction(action);
      this.alarms.set(id, created);
      return created;
    };

    // ── alarms ──
    for (const c of props.connectorNames) {
      alarm(`CompensationFailed-${c}`, `A ${c} compensation failed after its retries: a committed side effect was NOT undone.`, Runbooks.compensationFailed, m('CompensationFailed', { connector: c }, 'Sum'), { threshold: 1 });
      alarm(
        `VendorErrorRate-${c}`,
        `More than ${props.alarms.vendorErrorRatePercent}% of ${c} vendor calls failed over 5 minutes (twice in 15 minutes).`,
        Runbooks.vendorErrors,
        new MathExpression({
          expression: 'IF(calls > 0, 100 * errors / calls, 0)',
          usingMetrics: { errors: m('VendorError', { connector: c }), calls: m('VendorCall', { connector: c }) },
          label: `${c} vendor error %`,
          period: FIVE_MINUTES,
        }),
        { threshold: props.alarms.vendorErrorRatePercent, periods: 3, comparison: ComparisonOperator.GREATER_THAN_THRESHOLD },
      );
      alarm(`BreakerOpened-${c}`, `The ${c} circuit breaker opened: new work needing ${c} is refused.`, Runbooks.breakerOpen, m('BreakerTransition', { connector: c, to: 'open' }), { threshold: 1 });
    }
    for (const c of props.reconciledConnectors ?? []) {
      // One alarm per connector over every finding kind (the metric's `kind` dimension).
      alarm(
        `ReconcileFinding-${c}`,
        `Reconciliation found the ledger and ${c} disagree (orphan, compensated but live, duplicate or unknown record).`,
        Runbooks.reconcileFinding,
        new MathExpression({
          expression: RECONCILE_FINDING_KINDS.map((k) => k.replace('_', '')).join(' + '),
          usingMetrics: Object.fromEntries(RECONCILE_FINDING_KINDS.map((k) => [k.replace('_', ''), m('ReconcileFinding', { kind: k, connector: c })])),
          label: `${c} reconcile findings`,
          period: FIVE_MINUTES,
        }),
        { threshold: 1 },
      );
    }
    alarm('ReceiptFailed', 'A receipt could not be written to the audit vault.', Runbooks.receiptFailed, m('ReceiptFailed'), { threshold: 1 });
    const stalePeriod = Duration.seconds(props.digestInterval.toSeconds() * 2);
    alarm(
      'DigestStale',
      `No signed digest was written for two digest intervals (${stalePeriod.toHumanString()}): the vault's heartbeat stopped.`,
      Runbooks.digestStale,
      new Metric({ namespace: METRICS_NAMESPACE, metricName: 'DigestWritten', dimensionsMap: { service: SERVICE_NAME }, statistic: 'Sum', period: stalePeriod }),
      { threshold: 1, comparison: ComparisonOperator.LESS_THAN_THRESHOLD, missing: TreatMissingData.BREACHING },
    );
    alarm(
      'Api5xxRate',
      `More than ${props.alarms.api5xxRatePercent}% of API requests answered 5xx over 5 minutes (twice in 15 minutes).`,
      Runbooks.api5xx,
      new MathExpression({
        expression: 'IF(requests > 0, 100 * errors / requests, 0)',
        usingMetrics: { errors: props.api.metricServerError({ period: FIVE_MINUTES, statistic: 'Sum' }), requests: props.api.metricCount({ period: FIVE_MINUTES, statistic: 'Sum' }) },
        label: 'API 5xx %',
        period: FIVE_MINUTES,
      }),
      { threshold: props.alarms.api5xxRatePercent, periods: 3, comparison: ComparisonOperator.GREATER_THAN_THRESHOLD },
    );
    alarm(
      'ApprovalWaitedTooLong',
      `An approval waited more than ${props.alarms.approvalPendingHours} h for a decision.`,
      Runbooks.approvalsWaiting,
      new Metric({ namespace: METRICS_NAMESPACE, metricName: 'ApprovalTimeToDecision', dimensionsMap: { service: SERVICE_NAME }, statistic: 'Maximum', period: Duration.hours(1) }),
      { threshold: props.alarms.approvalPendingHours * 3600, comparison: ComparisonOperator.GREATER_THAN_THRESHOLD },
    );
    // The live gauge: pages while an approval still waits, not only once it is decided or expired.
    alarm(
      'ApprovalsPendingTooLong',
      `The oldest pending approval has waited more than ${props.alarms.approvalPendingHours} h (sampled every ${props.approvalGaugeInterval.toHumanString()}).`,
      Runbooks.approvalsPending,
      new Metric({ namespace: METRICS_NAMESPACE, metricName: 'ApprovalOldestPendingAge', dimensionsMap: { service: SERVICE_NAME }, statistic: 'Maximum', period: props.approvalGaugeInterval }),
      { threshold: props.alarms.approvalPendingHours * 3600, comparison: ComparisonOperator.GREATER_THAN_THRESHOLD },
    );
    alarm('ApprovalExpired', 'An approval expired undecided: the action it held did not run.', Runbooks.approvalsWaiting, m('ApprovalDecided', { outcome: 'expired' }), { threshold: 1 });
    alarm('SagaExecutionsFailed', 'A saga execution failed beyond its Catch (no compensation or receipt ran in Step Functions).', Runbooks.sagaFailed, props.stateMachine.metricFailed({ period: FIVE_MINUTES, statistic: 'Sum' }), { threshold: 1 });
    alarm('SagaExecutionsTimedOut', 'A saga execution timed out (no compensation or receipt).', Runbooks.sagaFailed, props.stateMachine.metricTimedOut({ period: FIVE_MINUTES, statistic: 'Sum' }), { threshold: 1 });
    alarm(
      'LedgerThrottled',
      'DynamoDB throttled reads or writes on the ledger table (intake answers 503 with Retry-After).',
      Runbooks.ledgerThrottled,
      new MathExpression({
        expression: 'reads + writes',
        usingMetrics: {
          reads: props.ledger.metric('ReadThrottleEvents', { period: FIVE_MINUTES, statistic: 'Sum' }),
          writes: props.ledger.metric('WriteThrottleEvents', { period: FIVE_MINUTES, statistic: 'Sum' }),
        },
        label: 'ledger throttle events',
        period: FIVE_MINUTES,
      }),
      { threshold: 1 },
    );
    alarm('HaltEverything', 'A kill-switch halt on everything is in force: no new action runs.', Runbooks.haltActive, m('HaltsEverythingActive', {}, 'Maximum'), { threshold: 1 });

    // ── dashboard ──
    const graph = (title: string, left: IMetric[], extra: Partial<ConstructorParameters<typeof GraphWidget>[0]> = {}) =>
      new GraphWidget({ title, left, width: 8, height: 6, ...extra });
    const header = (text: string) => new TextWidget({ markdown: `## ${text}`, width: 24, height: 1 });
    const rows: IWidget[][] = [
      [header('Agent traffic')],
      [
        graph('Requests and 5xx (API Gateway)', [props.api.metricCount({ period: FIVE_MINUTES }), props.api.metricServerError({ period: FIVE_MINUTES }), props.api.metricClientError({ period: FIVE_MINUTES })]),
        graph('Actions requested, decisions', [m('ActionRequested', { kind: 'single' }, 'Sum', 'single'), m('ActionRequested', { kind: 'plan' }, 'Sum', 'plan'), ...(['allow', 'deny', 'require_approval'] as const).flatMap((o) => [m('Decision', { outcome: o, stage: 'intake' }, 'Sum', `${o} (intake)`), m('Decision', { outcome: o, stage: 'run' }, 'Sum', `${o} (run)`)])]),
        graph('Idempotency replays and conflicts (422/409)', [m('IdempotentReplay', {}, 'Sum', 'replayed'), m('IdempotencyConflict', { kind: 'payload_mismatch' }, 'Sum', '422 key reused'), m('IdempotencyConflict', { kind: 'in_progress' }, 'Sum', '409 in progress')]),
      ],
      [header('Safety outcomes')],
      [
        graph('Actions by outcome', TERMINAL_STATUSES.map((o) => m('ActionEnded', { outcome: o }, 'Sum', o))),
        graph('Policy denials by policy id', [search('PolicyDenied', 'policy', 'denied by')]),
        graph('Compensations executed / failed', [...perConnector('CompensationExecuted'), ...props.connectorNames.map((c) => m('CompensationFailed', { connector: c }, 'Sum', `${c} FAILED`))]),
      ],
      [
        graph('Grant refusals by reason', (['wrong_connector', 'invalid', 'replayed'] as const).map((r) => m('GrantRefused', { reason: r }, 'Sum', r))),
        graph('Step retries', props.connectorNames.flatMap((c) => (['forward', 'compensate'] as const).map((k) => m('StepRetried', { connector: c, kind: k }, 'Sum', `${c} ${k}`)))),
        graph('Action duration p90 (ms)', TERMINAL_STATUSES.map((o) => m('ActionDuration', { outcome: o }, 'p90', o))),
        graph('Saga executions (Step Functions)', [props.stateMachine.metricStarted({ period: FIVE_MINUTES }), props.stateMachine.metricSucceeded({ period: FIVE_MINUTES }), props.stateMachine.metricFailed({ period: FIVE_MINUTES }), props.stateMachine.metricTimedOut({ period: FIVE_MINUTES })]),
      ],
      [header('Approvals')],
      [
        graph('Approvals requested / decided', [m('ApprovalRequested', {}, 'Sum', 'requested'), ...(['approved', 'rejected', 'expired'] as const).map((o) => m('ApprovalDecided', { outcome: o }, 'Sum', o))]),
        graph('Time to decision (s)', [m('ApprovalTimeToDecision', {}, 'p50', 'p50'), m('ApprovalTimeToDecision', {}, 'p90', 'p90'), m('ApprovalTimeToDecision', {}, 'Maximum', 'max')]),
        graph('Refused votes by reason', [search('ApprovalVoteRefused', 'reason', 'refused')]),
      ],
      [
        graph('Pending approvals (live gauge)', [m('ApprovalsPending', {}, 'Maximum', 'pending')], {
          right: [m('ApprovalOldestPendingAge', {}, 'Maximum', 'oldest waiting (s)')],
        }),
      ],
      [header('Vendors')],
      [
        graph('Vendor calls', perConnector('VendorCall')),
        graph('Vendor errors', perConnector('VendorError')),
        graph('Vendor latency p90 (ms)', perConnector('VendorLatency', 'p90')),
      ],
      [
        graph('Reconciliation runs and fixes', [
          ...(['clean', 'findings', 'partial'] as const).map((o) => m('ReconcileRun', { outcome: o }, 'Sum', `run ${o}`)),
          search('ReconcileFixed', 'connector,outcome', 'fixed'),
        ]),
        graph('Reconciliation findings by kind and connector', [search('ReconcileFinding', 'connector,kind', 'finding')]),
      ],
      [header('Audit')],
      [
        graph('Receipts written / failed', [m('ReceiptWritten', {}, 'Sum', 'written'), m('ReceiptFailed', {}, 'Sum', 'FAILED')]),
        graph('Digests and digest age (s)', [m('DigestWritten', {}, 'Sum', 'digests')], { right: [m('DigestAge', {}, 'Maximum', 'age of previous digest')] }),
        graph('Ledger throttling (DynamoDB)', [props.ledger.metric('ReadThrottleEvents', { period: FIVE_MINUTES, statistic: 'Sum' }), props.ledger.metric('WriteThrottleEvents', { period: FIVE_MINUTES, statistic: 'Sum' })]),
      ],
      [header('Guardrails')],
      [
        graph('Rate-limit rejections by policy', [search('RateLimitRejected', 'policy', 'rejected')]),
        graph('Spend reserved / cap refusals', [...perConnector('SpendReserved'), search('SpendCapRefused', 'cap', 'cap refused')]),
        graph('Breakers and halts', [
          ...props.connectorNames.flatMap((c) => [m('BreakerTransition', { connector: c, to: 'open' }, 'Sum', `${c} opened`), m('BreakerRejected', { connector: c }, 'Sum', `${c} rejected`)]),
          ...(['all', 'connector', 'tool', 'agent', 'principal'] as const).map((s) => m('HaltRefused', { scope: s }, 'Sum', `halt refused (${s})`)),
          m('HaltsActive', {}, 'Maximum', 'halts active'),
          m('HaltsEverythingActive', {}, 'Maximum', 'halts on everything'),
        ]),
      ],
      [graph('Anomalies by signal and action', [search('AnomalyDetected', 'action,signal', 'anomaly')])],
    ];
    this.dashboard = new Dashboard(this, 'Dashboard', { widgets: rows, defaultInterval: Duration.hours(6) });
  }
}
