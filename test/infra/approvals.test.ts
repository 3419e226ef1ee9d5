import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { logicalId, synthAirlock, TEST_CONFIG_INPUT, type Synthesized } from './support';

let s: Synthesized;
beforeAll(() => {
  s = synthAirlock();
});

describe('approvals function', () => {
  it('expires approvals with the saga and knows its event bus', () => {
    // Assess: the same timeout the ASL's WaitForApproval gets from config.
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      Role: { 'Fn::GetAtt': [logicalId(s.stack.functions.approvals.role), 'Arn'] },
      Environment: {
        Variables: Match.objectLike({ APPROVAL_TIMEOUT_SECONDS: String(TEST_CONFIG_INPUT.approvalTimeoutSeconds), APPROVAL_EVENT_BUS: 'default' }),
      },
    });
  });

  it('may PutEvents on the default bus only, and nobody else may', () => {
    const policies = s.template.findResources('AWS::IAM::Policy');
    const approvalsRole = logicalId(s.stack.functions.approvals.role);
    const putEvents: { role: string; resource: unknown }[] = [];
    for (const policy of Object.values(policies) as { Properties: { Roles: { Ref: string }[]; PolicyDocument: { Statement: { Action: string | string[]; Resource: unknown }[] } } }[]) {
      for (const st of policy.Properties.PolicyDocument.Statement) {
        const actions = Array.isArray(st.Action) ? st.Action : [st.Action];
        // The saga's .sync run of the Express run: Step Functions' own managed rule, nothing else.
        if (JSON.stringify(st.Resource).includes('rule/StepFunctionsGetEventsForStepFunctionsExecutionRule')) {
          expect(actions.sort()).toEqual(['events:DescribeRule', 'events:PutRule', 'events:PutTargets']);
          expect(policy.Properties.Roles).toEqual([{ Ref: logicalId(s.stack.saga.stateMachine.role) }]);
          continue;
        }
        if (actions.some((a) => a.startsWith('events:'))) {
          for (const r of policy.Properties.Roles) putEvents.push({ role: r.Ref, resource: st.Resource });
          expect(actions).toEqual(['events:PutEvents']);
        }
      }
    }
    expect(putEvents.map((p) => p.role)).toEqual([approvalsRole]);
    expect(JSON.stringify(putEvents[0]!.resource)).toContain(':event-bus/default');
    expect(JSON.stringify(putEvents[0]!.resource)).not.toContain('*');
  });
});
