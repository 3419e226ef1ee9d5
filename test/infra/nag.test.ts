import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PolicyValidationPluginReport, Stack, Validations } from 'aws-cdk-lib';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addAirlock } from '../../lib/airlock-app';
import { parseConfig } from '../../lib/config';
import { TEST_CONFIG_INPUT, testApp } from './support';

/** Every AwsSolutions finding (errors and warnings) cdk-nag reports for a construct tree. */
function findings(scope: IConstruct): string[] {
  const report: PolicyValidationPluginReport = new AwsSolutionsChecks().validateScope(scope);
  return report.violations
    .filter((v) => v.ruleName.startsWith('AwsSolutions-'))
    .flatMap((v) => v.violatingResources.map((r) => `${v.severity} ${v.ruleName} ${r.constructPath ?? ''}`));
}

/** What `cdk synth` wrote to the cloud assembly's validation report. */
function reportedRules(outdir: string): string[] {
  const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as {
    pluginReports: { violations?: { ruleName: string }[] }[];
  };
  return report.pluginReports.flatMap((p) => (p.violations ?? []).map((v) => v.ruleName));
}

const outdirs: string[] = [];
afterAll(() => {
  // Only the temporary assemblies the Apps created; never a real cdk.out.
  for (const dir of outdirs) if (dir.startsWith(tmpdir())) rmSync(dir, { recursive: true, force: true });
});

describe('cdk-nag AwsSolutions', () => {
  let airlockFindings: string[];
  let airlockSynthError: unknown;
  let outdir: string;

  beforeAll(() => {
    // Prepare: the real app, as bin/app.ts builds it, with default and test configs.
    const app = testApp();
    addAirlock(app, parseConfig(TEST_CONFIG_INPUT));
    airlockFindings = findings(app);
    outdir = app.outdir;
    outdirs.push(outdir);
    try {
      app.synth({ force: true, validateOnSynthesis: true });
    } catch (error) {
      airlockSynthError = error;
    }
  });

  it('reports no unacknowledged finding, error or warning, on the Airlock stack', () => {
    expect(airlockFindings).toEqual([]);
  });

  it('lets the registered plugin synthesize the app without a validation failure', () => {
    expect(airlockSynthError).toBeUndefined();
  });

  it('reports no unacknowledged finding with the default config either', () => {
    const app = testApp();
    addAirlock(app, parseConfig({ removalPolicy: 'destroy' }));
    expect(findings(app)).toEqual([]);
  });

  it('catches a non-compliant stack (the check above can fail)', () => {
    // Prepare: a bucket with logging and TLS enforcement missing.
    const app = testApp();
    const bad = new Stack(app, 'Bad');
    new Bucket(bad, 'Naked');
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    // Act
    const direct = findings(app);
    let synthError: unknown;
    try {
      app.synth({ force: true });
    } catch (error) {
      synthError = error;
    }
    // Assess: the same helper sees it, and a real synth with the plugin fails on it.
    expect(direct).toEqual(expect.arrayContaining([expect.stringMatching(/^error AwsSolutions-S1 Bad\/Naked/)]));
    expect(direct).toEqual(expect.arrayContaining([expect.stringMatching(/^error AwsSolutions-S10 Bad\/Naked/)]));
    expect(String(synthError)).toMatch(/AwsSolutions-S1/);
  });

  it('stops reporting a finding once it is acknowledged with a reason', () => {
    const app = testApp();
    const stack = new Stack(app, 'Acked');
    const bucket = new Bucket(stack, 'Naked', { enforceSSL: true });
    expect(findings(app)).toEqual([expect.stringMatching(/AwsSolutions-S1 /)]);
    Validations.of(bucket).acknowledge({ id: 'AwsSolutions-S1', reason: 'test fixture' });
    expect(findings(app)).toEqual([]);
  });

  it('leaves no AwsSolutions violation in the synthesized validation report', () => {
    expect(reportedRules(outdir).filter((r) => r.includes('AwsSolutions'))).toEqual([]);
  });
});
