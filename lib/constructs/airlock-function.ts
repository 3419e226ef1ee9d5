import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AssetHashType, DockerImage, Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { type IGrantable, type IPrincipal, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Code, Function as LambdaFunction, LoggingFormat, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { EnvNames } from '../../lambdas/composition/env';
import { LIMITS_FILE } from '../../lambdas/limits/config';
import type { FunctionBundleInput } from './function-bundle';

export { CEDAR_WASM_PACKAGE } from './function-bundle';

/** The repository root: functions are bundled from here. */
export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The runtime every function uses. cdk-nag's AwsSolutions-L1 demands the newest Node.js
 * runtime this aws-cdk-lib knows; bump it together with aws-cdk-lib.
 */
export const FUNCTION_RUNTIME = Runtime.NODEJS_24_X;

/** Where a Lambda zip is unpacked (LAMBDA_TASK_ROOT). */
const LAMBDA_TASK_ROOT = '/var/task';
/** Env var the policy engine reads its directory from (lambdas/policy/files.ts). */
export const POLICY_DIR_ENV = EnvNames.policyDir;

/**
 * The function's asset: bundled on this machine by lib/constructs/function-bundle.ts (esbuild
 * with code splitting, the limits file, and Cedar with the compiled policy set where the
 * function evaluates policy). A synth is synchronous and esbuild's plugins are not, so the
 * bundler runs as a child process, on the Node that runs the synth. Never Docker: the image
 * is only named because CDK's bundling options require one.
 */
function functionCode(input: Omit<FunctionBundleInput, 'outdir'>): Code {
  const script = join('lib', 'constructs', 'function-bundle.ts');
  return Code.fromAsset(PROJECT_ROOT, {
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      image: DockerImage.fromRegistry('scratch'),
      // What the bundling runs, per function. CDK keys its bundling cache on these options
      // (not on the local bundler, a function): without the entry here every function of a
      // stack would get the first one's asset.
      command: ['node', '--import', 'tsx', script, JSON.stringify({ ...input, outdir: '/asset-output' })],
      local: {
        tryBundle(outdir: string): boolean {
          const run = spawnSync(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, script), JSON.stringify({ ...input, outdir })], {
            cwd: PROJECT_ROOT,
            stdio: ['ignore', 'inherit', 'inherit'],
          });
          if (run.status !== 0) throw new Error(`Bundling ${input.entry} failed (exit ${run.status ?? run.signal}); esbuild's messages are above.`);
          return true;
        },
      },
    },
  });
}

/** Props of {@link AirlockFunction}. */
export interface AirlockFunctionProps {
  /** Handler file, relative to the repository root (`lambdas/intake/handler.ts`). */
  readonly entry: string;
  readonly description: string;
  readonly memoryMiB: number;
  readonly timeout: Duration;
  readonly logRetention: RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  readonly environment?: Record<string, string>;
  /**
   * Ship `@cedar-policy/cedar-wasm` and the policy set beside the bundle, and point
   * AIRLOCK_POLICY_DIR at it (functions that evaluate policy).
   */
  readonly cedar?: boolean;
  /** The limits file to ship (validated by the stack); policies/limits.json by default. */
  readonly limitsFile?: string;
}

/**
 * The one way Airlock builds a Lambda function: bundled by the local esbuild (never Docker;
 * lib/constructs/function-bundle.ts), ARM64, the current Node.js runtime, X-Ray active tracing, explicit memory
 * and timeout, its own log group with retention, ESM with source maps, and a role of its
 * own that starts empty, so every permission is one a construct granted on purpose.
 */
export class AirlockFunction extends Construct implements IGrantable {
  readonly function: LambdaFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;
  readonly grantPrincipal: IPrincipal;

  constructor(scope: Construct, id: string, props: AirlockFunctionProps) {
    super(scope, id);

    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });

    // A role per function instead of the default one: the default attaches the AWS managed
    // AWSLambdaBasicExecutionRole (AwsSolutions-IAM4), which may write to any log group.
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${id}`,
    });
    this.grantPrincipal = this.role;
    this.logGroup.grantWrite(this.role);

    this.function = new LambdaFunction(this, 'Function', {
      code: functionCode({ entry: props.entry, cedar: props.cedar ?? false, ...(props.limitsFile ? { limitsFile: props.limitsFile } : {}) }),
      handler: 'index.handler',
      description: props.description,
      runtime: FUNCTION_RUNTIME,
      architecture: Architecture.ARM_64,
      memorySize: props.memoryMiB,
      timeout: props.timeout,
      tracing: Tracing.ACTIVE,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: LoggingFormat.JSON,
      // No NODE_OPTIONS=--enable-source-maps: Node would read and parse the map at every cold
      // start. Stacks are mapped on the first error instead (lambdas/middleware/source-maps.ts).
      environment: {
        [EnvNames.limitsFile]: `${LAMBDA_TASK_ROOT}/policies/${LIMITS_FILE}`,
        ...(props.cedar ? { [POLICY_DIR_ENV]: `${LAMBDA_TASK_ROOT}/policies` } : {}),
        ...props.environment,
      },
    });

    // Tracing.ACTIVE adds xray:PutTraceSegments / xray:PutTelemetryRecords on "*" to this
    // policy; it is the only wildcard statement the base construct creates.
    const defaultPolicy = this.role.node.tryFindChild('DefaultPolicy');
    if (defaultPolicy) {
      Validations.of(defaultPolicy).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions (the X-Ray service authorization reference lists no resource types), so Resource must be "*". Other wildcard statements are kept out of this policy and test/infra checks that every "*" statement is on an allow-list.',
      });
    }
  }

  /** Sets an environment variable on the function. */
  addEnvironment(name: string, value: string): void {
    this.function.addEnvironment(name, value);
  }
}
