import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { CONSENT_RECEIPTS, RECONCILIATION_OBJECT_ACTIONS } from '../../lib/constructs/audit-vault';
import { DELEGATION_EXPIRY_INTERVAL, DELEGATION_EXPIRY_TASK } from '../../lib/constructs/delegation-expiry';
import { DELEGATION_EXPIRY_ACTIONS, DELEGATION_EXPIRY_KEY_PREFIXES, LEDGER_GSI1 } from '../../lib/constructs/ledger';
import { EnvNames } from '../../lambdas/composition/env';
import { actionsOf, logicalId, mentions, resourcesOf, type Statement, statementsByRole, synthAirlock, type Synthesized } from './support';

/**
 * The delegation expiry sweep on AWS: its own function on a one-minute EventBridge Scheduler
 * schedule, whose role may only touch the ledger partitions the sweep reads and writes, write
 * delegation receipts (receipts/dt=…/dlg_…) and fail the saga's approval waits — cdk-nag clean
 * (synthAirlock throws on any unacknowledged finding).
 */

let s: Synthesized;
let fnId: string;
let statements: Statement[];

beforeAll(() => {
  s = synthAirlock();
  fnId = logicalId(s.stack.delegationExpiry.fn.function);
  statements = (statementsByRole(s.template).get(logicalId(s.stack.delegationExpiry.fn.role)) ?? []).filter((st) => st.Effect === 'Allow');
});

const schedules = () => Object.values(s.template.findResources('AWS::Scheduler::Schedule')).filter((r) => mentions((r.Properties as { Target: unknown }).Target, fnId));

describe('delegation expiry sweep', () => {
  it('is an EventBridge Scheduler schedule invoking its function every minute with its task, no retries past the next run', () => {
    expect(schedules()).toHaveLength(1);
    s.template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: `rate(${DELEGATION_EXPIRY_INTERVAL.toMinutes()} minute)`,
      State: 'ENABLED',
      Target: {
        Arn: { 'Fn::GetAtt': [fnId, 'Arn'] },
        Input: JSON.stringify(DELEGATION_EXPIRY_TASK),
        RetryPolicy: Match.objectLike({ MaximumRetryAttempts: 0 }),
      },
    });
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('delegation expiry'),
      Environment: { Variables: Match.objectLike({ LEDGER_TABLE: Match.anyValue(), [EnvNames.auditBucket]: Match.anyValue() }) },
      TracingConfig: { Mode: 'Active' },
    });
  });

  it('lets the scheduler role invoke the sweep function and nothing else', () => {
    const roleArn = (schedules()[0]!.Properties as { Target: { RoleArn: { 'Fn::GetAtt': [string, string] } } }).Target.RoleArn['Fn::GetAtt'][0];
    const own = (statementsByRole(s.template).get(roleArn) ?? []).filter((st) => st.Effect === 'Allow');
    expect(own.flatMap(actionsOf)).toEqual(['lambda:InvokeFunction']);
    for (const r of own.flatMap(resourcesOf)) expect(mentions(r, fnId)).toBe(true);
  });

  it('reaches only the expiry queue, delegations, their trail, actions and approvals on the ledger (LeadingKeys), and the principal partitions of gsi1', () => {
    const ddb = statements.filter((st) => actionsOf(st).some((a) => a.startsWith('dynamodb:')));
    expect(ddb).toHaveLength(2);
    const items = ddb.find((st) => JSON.stringify(st).includes('DLGEXPIRY'))!;
    expect(actionsOf(items).sort()).toEqual([...DELEGATION_EXPIRY_ACTIONS].sort());
    expect(actionsOf(items)).not.toContain('dynamodb:Scan');
    expect(items.Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': DELEGATION_EXPIRY_KEY_PREFIXES } });
    const table = { 'Fn::GetAtt': [logicalId(s.stack.ledger.table), 'Arn'] };
    expect(resourcesOf(items)).toEqual([table]);
    const index = ddb.find((st) => st !== items)!;
    expect(actionsOf(index)).toEqual(['dynamodb:Query']);
    expect(resourcesOf(index)).toEqual([{ 'Fn::Join': ['', [table, `/index/${LEDGER_GSI1}`]] }]);
    expect(index.Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['PRINCIPAL#*'] } });
  });

  it('writes delegation receipts only (no action receipts, digests or List), and only fails approval waits (no SendTaskSuccess)', () => {
    const s3 = statements.filter((st) => actionsOf(st).some((a) => a.startsWith('s3:')));
    expect(s3).toHaveLength(1);
    expect(actionsOf(s3[0]!).sort()).toEqual([...RECONCILIATION_OBJECT_ACTIONS].sort());
    const resources = JSON.stringify(s3.flatMap(resourcesOf));
    expect(resources).toContain(`/${CONSENT_RECEIPTS}`);
    expect(resources).not.toMatch(/digests|reconciliations|receipts\/\*/);
    const states = statements.flatMap(actionsOf).filter((a) => a.startsWith('states:'));
    expect(states).toEqual(['states:SendTaskFailure']);
    // Besides its logs and traces: no secrets, no events, no other service.
    const other = statements.flatMap(actionsOf).filter((a) => !/^(dynamodb|kms|logs|xray|s3|states):/.test(a));
    expect(other).toEqual([]);
  });
});
