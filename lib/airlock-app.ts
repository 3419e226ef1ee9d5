import { type App, Annotations, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { AirlockStack, type AirlockStackProps } from './airlock-stack';
import { type AirlockConfig, PLACEHOLDER_ISSUER } from './config';

/**
 * Adds the Airlock stack to an app and registers cdk-nag's AwsSolutions pack, so every
 * synth (CLI or test) is checked. The stack is environment-agnostic: no account or region
 * is looked up, so synth needs no credentials and no network.
 */
export function addAirlock(
  app: App,
  config: AirlockConfig,
  overrides: Omit<AirlockStackProps, 'config'> = {},
): AirlockStack {
  const stack = new AirlockStack(app, config.stackName, {
    description: 'Airlock: the control plane between AI agents and the systems they act on',
    ...overrides,
    config,
  });
  if (config.jwt.issuer === PLACEHOLDER_ISSUER) {
    Annotations.of(stack).addWarningV2(
      'airlock:placeholderIssuer',
      `jwt.issuer is the placeholder ${PLACEHOLDER_ISSUER}: the API will reject every token. Set context "airlock" or a config file (see lib/config.ts).`,
    );
  }
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return stack;
}
