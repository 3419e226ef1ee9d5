import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { APPROVAL_GAUGE_INTERVAL, APPROVAL_GAUGE_TASK } from '../../lib/constructs/approval-gauge';
import { LEDGER_GSI1 } from '../../lib/constructs/ledger';
import { RUNBOOK_FILE, Runbooks } from '../../lib/constructs/observability';
import { actionsOf, logicalId, mentions, resourcesOf, type Statement, statementsByRole, synthAirlock, TEST_CONFIG_INPUT, type Synthesized } from './support';

let s: Synthesized;
let fnId: string;
let statements: Statement[];

beforeAll(() => {
  s = synthAirlock({ ...TEST_CONFIG_INPUT, alarms: { approvalPendingHours: 6, vendorErrorRatePercent: 20, api5xxRatePercent: 1 } });
  fnId = logicalId(s.stack.approvalGauge.fn.function);
  statements = (statementsByRole(s.template).get(logicalId(s.stack.approvalGauge.fn.role)) ?? []).filter((st) => st.Effect === 'Allow');
});

const gaugeSchedule = () =>
  Object.values(s.template.findResources('AWS::Scheduler::Schedule')).filter((r) => mentions((r.Properties as { Target: unknown }).Target, fnId));

describe('approvals gauge', () => {
  it('is an EventBridge Scheduler schedule invoking the gauge function every 5 minutes with its task', () => {
    expect(gaugeSchedule()).toHaveLength(1);
    s.template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: `rate(${APPROVAL_GAUGE_INTERVAL.toMinutes()} minutes)`,
      State: 'ENABLED',
      Target: {
        Arn: { 'Fn::GetAtt': [fnId, 'Arn'] },
        Input: JSON.stringify(APPROVAL_GAUGE_TASK),
        RetryPolicy: Match.objectLike({ MaximumRetryAttempts: 1 }),
      },
    });
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('approvals gauge'),
      Environment: { Variables: Match.objectLike({ LEDGER_TABLE: Match.anyValue() }) },
      TracingConfig: { Mode: 'Active' },
    });
  });

  it('lets the scheduler role invoke the gauge function and nothing else', () => {
    const roleArn = (gaugeSchedule()[0]!.Properties as { Target: { RoleArn: { 'Fn::GetAtt': [string, string] } } }).Target.RoleArn['Fn::GetAtt'][0];
    const own = (statementsByRole(s.template).get(roleArn) ?? []).filter((st) => st.Effect === 'Allow');
    expect(own.flatMap(actionsOf)).toEqual(['lambda:InvokeFunction']);
    for (const r of own.flatMap(resourcesOf)) expect(mentions(r, fnId)).toBe(true);
  });

  it('may only Query the status index of the ledger (no table resource, no item read or write), and decrypt through DynamoDB', () => {
    const ddb = statements.filter((st) => actionsOf(st).some((a) => a.startsWith('dynamodb:')));
    expect(ddb.flatMap(actionsOf)).toEqual(['dynamodb:Query']);
    const table = { 'Fn::GetAtt': [logicalId(s.stack.ledger.table), 'Arn'] };
    expect(ddb.flatMap(resourcesOf)).toEqual([{ 'Fn::Join': ['', [table, `/index/${LEDGER_GSI1}`]] }]);
    const kms = statements.filter((st) => actionsOf(st).some((a) => a.startsWith('kms:')));
    expect(kms.flatMap(actionsOf).sort()).toEqual(['kms:Decrypt', 'kms:DescribeKey']);
    expect(kms.every((st) => JSON.stringify(st.Condition).includes('kms:ViaService'))).toBe(true);
    // Besides its logs and traces, nothing else: no secrets, no S3, no Step Functions, no events.
    const other = statements.flatMap(actionsOf).filter((a) => !/^(dynamodb|kms|logs|xray):/.test(a));
    expect(other).toEqual([]);
  });

  it('feeds the ApprovalsPendingTooLong alarm: the oldest pending age past the configured hours, with its runbook', () => {
    const alarms = Object.entries(s.template.findResources('AWS::CloudWatch::Alarm')).filter(([id]) => id.startsWith('ObservabilityApprovalsPendingTooLong'));
    expect(alarms).toHaveLength(1);
    expect(alarms[0]![1].Properties).toMatchObject({
      MetricName: 'ApprovalOldestPendingAge',
      Namespace: 'Airlock',
      Statistic: 'Maximum',
      Period: APPROVAL_GAUGE_INTERVAL.toSeconds(),
      Threshold: 6 * 3600,
      ComparisonOperator: 'GreaterThanThreshold',
      AlarmDescription: expect.stringMatching(new RegExp(`Runbook: ${RUNBOOK_FILE}#${Runbooks.approvalsPending}$`)),
    });
  });

  it('is on the dashboard: pending count and the oldest age', () => {
    const [dash] = Object.values(s.template.findResources('AWS::CloudWatch::Dashboard'));
    const text = JSON.stringify(dash!.Properties.DashboardBody);
    expect(text).toContain('Pending approvals (live gauge)');
    expect(text).toContain('ApprovalsPending');
    expect(text).toContain('ApprovalOldestPendingAge');
  });
});
