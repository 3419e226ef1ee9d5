import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { type IGrantable, type IPrincipal, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, LoggingFormat, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { type ICommandHooks, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { EnvNames } from '../../lambdas/composition/env';
import { defaultLimitsFile, LIMITS_FILE } from '../../lambdas/limits/config';
import { COMPILED_POLICY_SET_FILE, compilePolicySet, defaultPolicyDir, readPolicyDir } from '../../lambdas/policy/index';

/** The repository root: NodejsFunction bundles from here, with package-lock.json as the lock file. */
export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Cedar's wasm package: too big to inline (4.3 MB), so it ships beside the bundle. */
export const CEDAR_WASM_PACKAGE = '@cedar-policy/cedar-wasm';

/**
 * The runtime every function uses. cdk-nag's AwsSolutions-L1 demands the newest Node.js
 * runtime this aws-cdk-lib knows; bump it together with aws-cdk-lib.
 */
export const FUNCTION_RUNTIME = Runtime.NODEJS_24_X;

/**
 * Lets bundled ESM call `require` for Node built-ins that CommonJS dependencies pull in
 * (esbuild's ESM output otherwise throws "Dynamic require of ... is not supported").
 */
const ESM_REQUIRE_BANNER =
  "import { createRequire as __airlockCreateRequire } from 'node:module'; const require = __airlockCreateRequire(import.meta.url);";

/** Where a Lambda zip is unpacked (LAMBDA_TASK_ROOT). */
const LAMBDA_TASK_ROOT = '/var/task';
/** Env var the policy engine reads its directory from (lambdas/policy/files.ts). */
export const POLICY_DIR_ENV = EnvNames.policyDir;

/**
 * Linux refuses a single argument over 128 KiB (MAX_ARG_STRLEN), and NodejsFunction hands
 * esbuild's command and every hook to `bash -c` as one: the compiled set must stay well under.
 */
const MAX_COMPILED_ARGUMENT_CHARS = 64 * 1024;

/**
 * The shipped policy set analysed once per synth (policy/compiled.ts), gzipped and base64
 * for the shell: a cold start reads it instead of running Cedar's validator.
 */
let compiledPolicySet: string | undefined;
function compiledPolicySetArgument(): string {
  compiledPolicySet ??= gzipSync(JSON.stringify(compilePolicySet(readPolicyDir(defaultPolicyDir())))).toString('base64');
  if (compiledPolicySet.length > MAX_COMPILED_ARGUMENT_CHARS) {
    throw new Error(`The compiled policy set is ${compiledPolicySet.length} characters gzipped; ship it as a file instead (lib/constructs/airlock-function.ts).`);
  }
  return compiledPolicySet;
}

/**
 * Puts the limits file beside every bundle, and beside those that evaluate policy what the
 * policy engine loads at run time: Cedar's Node.js entry
 * (with its package.json, for the `exports` map), copied from the local node_modules, and
 * the policy set (top-level *.cedar, schema.cedarschema, config.json; not the fixtures) with
 * its analysis compiled at synth.
 * Chosen over `nodeModules: [...]`, which runs `npm install` inside the asset and so needs
 * the network.
 */
function commandHooks(cedar: boolean, limitsFile: string): ICommandHooks {
  return {
    beforeBundling: () => [],
    beforeInstall: () => [],
    afterBundling: (inputDir: string, outputDir: string) => {
      // Every function reads the limits file (rate limits, caps, breakers, the kill switch).
      const limits = [`mkdir -p "${outputDir}/policies"`, `cp "${limitsFile}" "${outputDir}/policies/${LIMITS_FILE}"`];
      if (!cedar) return limits;
      const from = `${inputDir}/node_modules/${CEDAR_WASM_PACKAGE}`;
      const to = `${outputDir}/node_modules/${CEDAR_WASM_PACKAGE}`;
      return [
        ...limits,
        `mkdir -p "${to}"`,
        `cp "${from}/package.json" "${to}/package.json"`,
        `cp -R "${from}/nodejs" "${to}/nodejs"`,
        `cp "${inputDir}"/policies/*.cedar "${inputDir}/policies/schema.cedarschema" "${inputDir}/policies/config.json" "${outputDir}/policies/"`,
        `node -e "require('node:fs').writeFileSync(process.argv[1], require('node:zlib').gunzipSync(Buffer.from(process.argv[2], 'base64')))" "${outputDir}/policies/${COMPILED_POLICY_SET_FILE}" ${compiledPolicySetArgument()}`,
      ];
    },
  };
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
 * The one way Airlock builds a Lambda function: NodejsFunction bundled by the local esbuild
 * (never Docker), ARM64, the current Node.js runtime, X-Ray active tracing, explicit memory
 * and timeout, its own log group with retention, ESM with source maps, and a role of its
 * own that starts empty, so every permission is one a construct granted on purpose.
 */
export class AirlockFunction extends Construct implements IGrantable {
  readonly function: NodejsFunction;
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

    this.function = new NodejsFunction(this, 'Function', {
      entry: join(PROJECT_ROOT, props.entry),
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: join(PROJECT_ROOT, 'package-lock.json'),
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
      bundling: {
        format: OutputFormat.ESM,
        target: 'node24',
        mainFields: ['module', 'main'],
        minify: true,
        // Error names are the ErrorEquals contract with the ASL: keep class names intact.
        keepNames: true,
        sourceMap: true,
        // Stack traces still map to file:line:col; without the sources' text inside, the map
        // read on the first error (middleware/source-maps.ts) is a third the size.
        sourcesContent: false,
        banner: ESM_REQUIRE_BANNER,
        // The SDK is bundled so the deployed version is the pinned one the tests ran with,
        // not whatever the runtime happens to ship.
        bundleAwsSDK: true,
        externalModules: props.cedar ? [CEDAR_WASM_PACKAGE] : [],
        commandHooks: commandHooks(props.cedar ?? false, props.limitsFile ?? defaultLimitsFile()),
        forceDockerBundling: false,
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
