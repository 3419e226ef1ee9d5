import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultPolicyDir } from '../../lambdas/policy/index';
import { addAirlock } from '../../lib/airlock-app';
import { parseConfig } from '../../lib/config';
import { InvalidPolicySetError } from '../../lib/airlock-stack';
import { TEST_CONFIG_INPUT, testApp } from './support';

const dir = mkdtempSync(join(tmpdir(), 'airlock-bad-policies-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('synth validates the Cedar policy set', () => {
  it('fails with the Cedar error and its location when a policy is invalid', () => {
    // Prepare: the shipped set plus a policy that reads an attribute the schema does not have.
    cpSync(defaultPolicyDir(), dir, { recursive: true });
    writeFileSync(
      join(dir, 'travel.cedar'),
      '@id("travel.broken")\n@reason("broken on purpose")\npermit (principal, action == Airlock::Action::"request", resource)\nwhen { resource.nonexistent == "x" };\n',
    );
    // Act + Assess
    const synth = () => addAirlock(testApp(), parseConfig(TEST_CONFIG_INPUT), { policyDir: dir });
    expect(synth).toThrow(InvalidPolicySetError);
    expect(synth).toThrow(/travel\.cedar:4:\d+: error/);
  });
});
