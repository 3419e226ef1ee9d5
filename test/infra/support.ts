import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, type CfnResource, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { addAirlock } from '../../lib/airlock-app';
import type { AirlockStack } from '../../lib/airlock-stack';
import { type AirlockConfig, type AirlockConfigInput, parseConfig } from '../../lib/config';
import { PROJECT_ROOT } from '../../lib/constructs/airlock-function';

/**
 * Shared synth for test/infra: the feature flags from cdk.json (so tests build what
 * `cdk synth` builds), bundling skipped, and the built-in CloudFormation validation off
 * (it costs seconds and cdk-nag is what we assert on).
 */

/** A config that differs from every default, so assertions prove the config is used. */
export const TEST_CONFIG_INPUT = {
  stackName: 'AirlockTest',
  jwt: { issuer: 'https://auth.example.com/', audience: ['airlock-api', 'airlock-cli'] },
  auditRetentionDays: 400,
  approvalTimeoutSeconds: 7200,
  grantTtlSeconds: 120,
  grantKeyRotationDays: 7,
  logRetentionDays: 30,
  throttling: { rateLimit: 25, burstLimit: 40 },
  lambda: { memoryMiB: 768, timeoutSeconds: 12, connectorTimeoutSeconds: 20 },
  grantKeyReaders: ['saga'],
  vendorBaseUrls: { travel: 'https://travel.vendor.example/api' },
} satisfies AirlockConfigInput;

const cdkJson = JSON.parse(readFileSync(join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context?: Record<string, unknown> };

/** A fresh App configured like `cdk synth`, minus bundling. */
export function testApp(): App {
  return new App({
    context: { ...(cdkJson.context ?? {}), 'aws:cdk:bundling-stacks': [] },
    builtinCloudFormationValidation: false,
  });
}

export interface Synthesized {
  app: App;
  stack: AirlockStack;
  config: AirlockConfig;
  template: Template;
}

/** Builds the Airlock app (with cdk-nag registered, as bin/app.ts does) and synthesizes it. */
export function synthAirlock(input: AirlockConfigInput = TEST_CONFIG_INPUT): Synthesized {
  const app = testApp();
  const config = parseConfig(input);
  const stack = addAirlock(app, config);
  // Synthesizing the app runs the registered validation plugins; in vitest (NODE_ENV=test)
  // CDK throws on any cdk-nag error, so reaching the next line already means none.
  const template = Template.fromStack(stack);
  return { app, stack, config, template };
}

/** The logical id a construct's CloudFormation resource has in its stack. */
export function logicalId(construct: IConstruct): string {
  const resource = (construct.node.defaultChild ?? construct) as CfnResource;
  const stack = Stack.of(construct);
  return stack.resolve(stack.getLogicalId(resource)) as string;
}

/** An IAM policy statement as it appears in the template. */
export interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

interface PolicyResource {
  Properties: { PolicyDocument: { Statement: Statement[] }; Roles?: { Ref: string }[] };
}

interface RoleResource {
  Properties: { Policies?: { PolicyDocument: { Statement: Statement[] } }[]; ManagedPolicyArns?: unknown[] };
}

/** Every identity-policy statement of every role, by role logical id. */
export function statementsByRole(template: Template): Map<string, Statement[]> {
  const out = new Map<string, Statement[]>();
  const add = (role: string, statements: Statement[]) => out.set(role, [...(out.get(role) ?? []), ...statements]);
  for (const [id, role] of Object.entries(template.findResources('AWS::IAM::Role') as Record<string, RoleResource>)) {
    add(id, (role.Properties.Policies ?? []).flatMap((p) => p.PolicyDocument.Statement));
  }
  for (const policy of Object.values(template.findResources('AWS::IAM::Policy') as Record<string, PolicyResource>)) {
    for (const role of policy.Properties.Roles ?? []) add(role.Ref, policy.Properties.PolicyDocument.Statement);
  }
  return out;
}

/** A statement's actions as an array. */
export function actionsOf(statement: Statement): string[] {
  return Array.isArray(statement.Action) ? statement.Action : [statement.Action];
}

/** A statement's resources as an array. */
export function resourcesOf(statement: Statement): unknown[] {
  return Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource];
}

/** True when a (resolved) resource value mentions the logical id (Ref or GetAtt, at any depth). */
export function mentions(resource: unknown, id: string): boolean {
  return JSON.stringify(resource).includes(`"${id}"`);
}
