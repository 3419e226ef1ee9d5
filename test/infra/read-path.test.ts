import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { EnvNames } from '../../lambdas/composition/env';
import { READ_PATH_MARGIN_SECONDS } from '../../lib/constructs/read-path';
import { actionsOf, logicalId, resourcesOf, type Statement, statementsByRole, type Synthesized, synthAirlock, TEST_CONFIG_INPUT } from './support';

/**
 * Issue 17's read fast path as deployed: intake invokes the saga function's RunRead and no
 * other function; the saga function invokes the connector functions and the receipts function
 * (exact ARNs, no `:*`) and nothing else; the variables that wire it are set.
 */

let s: Synthesized;
let byRole: Map<string, Statement[]>;
let roles: Record<string, string>;
const invokes = (role: string) =>
  (byRole.get(role) ?? []).filter((st) => st.Effect === 'Allow' && actionsOf(st).some((a) => a.startsWith('lambda:')));
const arnOf = (id: string) => JSON.stringify({ 'Fn::GetAtt': [id, 'Arn'] });

beforeAll(() => {
  // Prepare: one synth for the file.
  s = synthAirlock();
  byRole = statementsByRole(s.template);
  roles = Object.fromEntries(Object.entries(s.stack.functions).map(([name, fn]) => [name, logicalId(fn.role)]));
  for (const [name, fn] of s.stack.connectorFunctions) roles[`connector-${name}`] = logicalId(fn.role);
});

describe('the read fast path (IAM)', () => {
  it('lets intake invoke the saga function and nothing else', () => {
    const statements = invokes(roles.intake!);
    expect(statements).toHaveLength(1);
    expect(actionsOf(statements[0]!)).toEqual(['lambda:InvokeFunction']);
    expect(resourcesOf(statements[0]!).map((r) => JSON.stringify(r))).toEqual([arnOf(logicalId(s.stack.functions.saga.function))]);
  });

  it('lets the saga function invoke exactly the connector functions and the receipts function', () => {
    const statements = invokes(roles.saga!);
    expect(statements).toHaveLength(1);
    expect(actionsOf(statements[0]!)).toEqual(['lambda:InvokeFunction']);
    const expected = [...s.stack.connectorFunctions.values(), s.stack.functions.receipts].map((fn) => arnOf(logicalId(fn.function)));
    expect(resourcesOf(statements[0]!).map((r) => JSON.stringify(r)).sort()).toEqual(expected.sort());
  });

  it('gives no other function a Lambda invoke permission', () => {
    for (const [name, role] of Object.entries(roles)) {
      if (name === 'intake' || name === 'saga') continue;
      expect(invokes(role), name).toEqual([]);
    }
  });

  it('names the saga function to intake and the receipts function to the saga, with a connector wait below its timeout', () => {
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      Role: { 'Fn::GetAtt': [roles.intake, 'Arn'] },
      Environment: { Variables: Match.objectLike({ [EnvNames.readFunction]: { 'Fn::GetAtt': [logicalId(s.stack.functions.saga.function), 'Arn'] } }) },
    });
    const timeout = TEST_CONFIG_INPUT.lambda.timeoutSeconds;
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      Role: { 'Fn::GetAtt': [roles.saga, 'Arn'] },
      Timeout: timeout,
      Environment: {
        Variables: Match.objectLike({
          [EnvNames.receiptsFunction]: { 'Fn::GetAtt': [logicalId(s.stack.functions.receipts.function), 'Arn'] },
          [EnvNames.readConnectorTimeoutMs]: String((timeout - READ_PATH_MARGIN_SECONDS) * 1000),
        }),
      },
    });
  });
});
