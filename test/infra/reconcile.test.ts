import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { RECONCILE_TIMEOUT_SECONDS } from '../../lib/airlock-stack';
import { RECONCILE_INTERVAL } from '../../lib/constructs/reconciliation';
import { RECONCILIATION_OBJECT_ACTIONS } from '../../lib/constructs/audit-vault';
import { LEDGER_GSI1 } from '../../lib/constructs/ledger';
import { SecretNames } from '../../lambdas/ports/secrets';
import { connectors } from '../../lambdas/tools/registry';
import { actionsOf, logicalId, mentions, resourcesOf, type Statement, statementsByRole, synthAirlock, type Synthesized } from './support';

let s: Synthesized;
let statements: Statement[];
let fnId: string;
const reconciled = connectors.filter((c) => c.reconcile).map((c) => c.name);

beforeAll(() => {
  s = synthAirlock();
  statements = (statementsByRole(s.template).get(logicalId(s.stack.reconciler.role)) ?? []).filter((st) => st.Effect === 'Allow');
  fnId = logicalId(s.stack.reconciler.function);
});

const allowing = (prefix: string) => statements.filter((st) => actionsOf(st).some((a) => a.startsWith(prefix)));

describe('scheduled reconciliation', () => {
  it('is an EventBridge Scheduler schedule invoking the reconcile function with {"task":"Reconcile"}', () => {
    expect(reconciled.length).toBeGreaterThan(0);
    // Three schedules: this one, the approvals gauge's (test/infra/approval-gauge.test.ts) and the delegation expiry sweep's (test/infra/delegation-expiry.test.ts).
    s.template.resourceCountIs('AWS::Scheduler::Schedule', 3);
    s.template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: `rate(${RECONCILE_INTERVAL.toMinutes()} minutes)`,
      State: 'ENABLED',
      Target: {
        Arn: { 'Fn::GetAtt': [fnId, 'Arn'] },
        Input: JSON.stringify({ task: 'Reconcile' }),
        RetryPolicy: Match.objectLike({ MaximumRetryAttempts: 2 }),
      },
    });
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.handler',
      Description: Match.stringLikeRegexp('reconciliation'),
      Timeout: RECONCILE_TIMEOUT_SECONDS,
      Environment: { Variables: Match.objectLike({ VENDOR_BASE_URLS: JSON.stringify({ travel: 'https://travel.vendor.example/api' }) }) },
    });
  });

  it('lets the scheduler role invoke the reconcile function and nothing else', () => {
    const schedule = Object.values(s.template.findResources('AWS::Scheduler::Schedule')).find((r) => mentions((r.Properties as { Target: unknown }).Target, fnId))!;
    const roleArn = (schedule.Properties as { Target: { RoleArn: { 'Fn::GetAtt': [string, string] } } }).Target.RoleArn['Fn::GetAtt'][0];
    const own = (statementsByRole(s.template).get(roleArn) ?? []).filter((st) => st.Effect === 'Allow');
    expect(own.flatMap(actionsOf)).toEqual(['lambda:InvokeFunction']);
    for (const r of own.flatMap(resourcesOf)) expect(mentions(r, fnId)).toBe(true);
  });

  it('reads the ledger as it needs: Query on the step-day index, GetItem on STEP#/ACTION#, event appends on ACTION# only', () => {
    // Besides: the rate-limit counters of its /v1 route (RATE#) and the kill switch's trail (HALTLOG), asserted below.
    const ddb = allowing('dynamodb:').filter((st) => st.Sid !== 'LedgerRateCounters' && st.Sid !== 'LedgerHaltLogAppend');
    expect(ddb.flatMap(actionsOf).sort()).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:Query']);
    const table = { 'Fn::GetAtt': [logicalId(s.stack.ledger.table), 'Arn'] };
    const index = ddb.find((st) => st.Sid === 'LedgerStepDayIndex')!;
    expect(index.Resource).toEqual({ 'Fn::Join': ['', [table, `/index/${LEDGER_GSI1}`]] });
    const reads = ddb.find((st) => st.Sid === 'LedgerReconcileReads')!;
    expect(reads.Resource).toEqual(table);
    expect(reads.Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['STEP#*', 'ACTION#*'] } });
    const writes = ddb.filter((st) => actionsOf(st).includes('dynamodb:PutItem'));
    expect(writes.map((st) => st.Condition)).toEqual([{ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['ACTION#*'] } }]);
    // Nothing that could change an action's state or read the whole table.
    for (const a of ['dynamodb:Scan', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem']) expect(ddb.flatMap(actionsOf)).not.toContain(a);
  });

  it('serves POST /v1/reconciliations: counts it on RATE# items and records refusals on the HALTLOG partition only', () => {
    const rate = allowing('dynamodb:').filter((st) => st.Sid === 'LedgerRateCounters');
    expect(rate.map((st) => st.Condition)).toEqual([{ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['RATE#*'] } }]);
    const log = allowing('dynamodb:').filter((st) => st.Sid === 'LedgerHaltLogAppend');
    expect(log.flatMap(actionsOf)).toEqual(['dynamodb:PutItem']);
    expect(log.map((st) => st.Condition)).toEqual([{ 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['HALTLOG'] } }]);
    const routes = Object.values(s.template.findResources('AWS::ApiGatewayV2::Route')).map((r) => (r.Properties as { RouteKey: string }).RouteKey);
    expect(routes).toContain('POST /v1/reconciliations');
  });

  it('writes only reconciliation reports to the vault', () => {
    const s3 = allowing('s3:');
    expect(s3.flatMap(actionsOf).sort()).toEqual([...RECONCILIATION_OBJECT_ACTIONS].sort());
    const bucket = logicalId(s.stack.auditVault.bucket);
    expect(s3.flatMap(resourcesOf)).toEqual([{ 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucket, 'Arn'] }, '/reconciliations/*']] }]);
  });

  it('reads exactly the vendor credentials of the reconciled connectors, and the closed secrets name it as a reader', () => {
    const secrets = allowing('secretsmanager:');
    const readable = secrets.flatMap(resourcesOf);
    expect(readable).toHaveLength(reconciled.length);
    const secretIds = Object.entries(s.template.findResources('AWS::SecretsManager::Secret'));
    for (const name of reconciled) {
      const [id] = secretIds.find(([, r]) => (r.Properties as { Name?: string }).Name === SecretNames.vendorCredential(name))!;
      expect(readable.some((r) => mentions(r, id)), name).toBe(true);
    }
    for (const [id, r] of secretIds) {
      const isReconciled = reconciled.some((n) => (r.Properties as { Name?: string }).Name === SecretNames.vendorCredential(n));
      if (!isReconciled) expect(readable.some((res) => mentions(res, id)), id).toBe(false);
    }
  });

  it('alarms on ReconcileFinding per reconciled connector, over every finding kind', () => {
    const alarms = Object.entries(s.template.findResources('AWS::CloudWatch::Alarm')).filter(([id]) => id.startsWith('ObservabilityReconcileFinding'));
    expect(alarms).toHaveLength(reconciled.length);
    for (const [, alarm] of alarms) {
      const props = alarm.Properties as { Metrics: { MetricStat?: { Metric: { MetricName: string; Dimensions: { Name: string; Value: string }[] } } }[]; Threshold: number };
      const stats = props.Metrics.filter((m) => m.MetricStat).map((m) => m.MetricStat!.Metric);
      expect(stats.every((m) => m.MetricName === 'ReconcileFinding')).toBe(true);
      expect(stats.map((m) => m.Dimensions.find((d) => d.Name === 'kind')!.Value).sort()).toEqual(['compensated_live', 'duplicate', 'orphan', 'unknown']);
      expect(props.Threshold).toBe(1);
    }
  });
});
