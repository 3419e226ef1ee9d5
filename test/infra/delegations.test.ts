import { beforeAll, describe, expect, it } from 'vitest';
import { CONSENT_RECEIPTS, RECONCILIATION_OBJECT_ACTIONS } from '../../lib/constructs/audit-vault';
import { EnvNames } from '../../lambdas/composition/env';
import { actionsOf, logicalId, resourcesOf, statementsByRole, synthAirlock, TEST_CONFIG_INPUT, type Statement, type Synthesized } from './support';

/**
 * Delegations in the deployed stack: `requireDelegation` is on unless the config turns it off
 * (secure by default), and the intake function may write consent and revocation receipts to
 * the vault — only those (receipts/dt=…/dlg_…), not action receipts or digests — with cdk-nag
 * clean (synthAirlock throws on any unacknowledged finding).
 */

let s: Synthesized;
let statements: Statement[];

beforeAll(() => {
  s = synthAirlock();
  statements = (statementsByRole(s.template).get(logicalId(s.stack.functions.intake.role)) ?? []).filter((st) => st.Effect === 'Allow');
});

function intakeEnv(synth: Synthesized): Record<string, unknown> {
  const id = logicalId(synth.stack.functions.intake.function);
  const fn = synth.template.toJSON().Resources[id] as { Properties: { Environment: { Variables: Record<string, unknown> } } };
  return fn.Properties.Environment.Variables;
}

describe('delegations on AWS', () => {
  it('requires a delegation by default, and only the config turns it off', () => {
    expect(s.config.requireDelegation).toBe(true);
    expect(intakeEnv(s)[EnvNames.requireDelegation]).toBe('true');
    expect(intakeEnv(synthAirlock({ ...TEST_CONFIG_INPUT, requireDelegation: false }))[EnvNames.requireDelegation]).toBe('false');
  });

  it('lets intake put and read back consent receipts only: one object pattern under receipts/, no List, no digests', () => {
    const s3 = statements.filter((st) => actionsOf(st).some((a) => a.startsWith('s3:')));
    expect(s3).toHaveLength(1);
    expect(actionsOf(s3[0]!).sort()).toEqual([...RECONCILIATION_OBJECT_ACTIONS].sort());
    const resources = JSON.stringify(s3.flatMap(resourcesOf));
    expect(resources).toContain(`/${CONSENT_RECEIPTS}`);
    expect(resources).not.toMatch(/digests|reconciliations|receipts\/\*/);
    expect(intakeEnv(s)[EnvNames.auditBucket]).toBeDefined();
    expect(intakeEnv(s)[EnvNames.auditRetentionDays]).toBe(String(TEST_CONFIG_INPUT.auditRetentionDays));
  });

  it('uses the vault key only through S3', () => {
    const kms = statements.filter((st) => actionsOf(st).some((a) => a.startsWith('kms:')));
    expect(kms.length).toBeGreaterThan(0);
    for (const st of kms.filter((x) => actionsOf(x).includes('kms:GenerateDataKey'))) expect(JSON.stringify(st.Condition)).toContain('kms:ViaService');
  });
});
