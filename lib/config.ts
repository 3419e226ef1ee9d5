import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { z } from 'zod';
import { MAX_PLAN_STEPS } from '../lambdas/intake/envelope';
import { DEFAULT_SAGA_TIMEOUTS, deriveSagaTimeouts, sagaTimeoutProblems, type SagaTimeoutConfig } from '../lambdas/saga/timeouts';
import { ACTION_RUN_ASL, readAsl } from './constructs/saga';

/**
 * The one typed configuration of the Airlock stack. Every value has a default that is safe
 * to deploy (fail closed), so `cdk synth` works with no configuration at all; a deployment
 * that should accept real tokens sets at least `jwt.issuer` and `jwt.audience`.
 *
 * Sources, later ones winning, merged key by key:
 *   1. the defaults below;
 *   2. a JSON file named by context `airlock:configFile` or env `AIRLOCK_CONFIG_FILE`;
 *   3. CDK context `airlock` (an object in cdk.json / cdk.context.json, or a JSON string
 *      from `cdk synth -c airlock='{"jwt":{...}}'`).
 */

/** Context key holding the config object (or its JSON text). */
export const CONFIG_CONTEXT_KEY = 'airlock';
/** Context key naming a JSON config file, relative to the working directory. */
export const CONFIG_FILE_CONTEXT_KEY = 'airlock:configFile';
/** Environment variable naming a JSON config file (used when the context key is absent). */
export const CONFIG_FILE_ENV = 'AIRLOCK_CONFIG_FILE';

/**
 * Issuer used when none is configured. `.invalid` can never resolve (RFC 2606), so the JWT
 * authorizer rejects every token: an unconfigured deployment is closed, not open.
 */
export const PLACEHOLDER_ISSUER = 'https://issuer.airlock.invalid/';

/** Functions that may be named as grant-signing-key readers (connectors always read it). */
export const GRANT_KEY_READER_CANDIDATES = ['intake', 'saga', 'approvals', 'receipts'] as const;

const retentionDays = z
  .number()
  .int()
  .refine((n) => (Object.values(RetentionDays) as unknown[]).includes(n), {
    message: 'must be a CloudWatch Logs retention value (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, ...)',
  });

/** The saga's ASL, read once: every config is checked against it. */
let sagaDefinition: unknown;
let runDefinition: unknown;

/** The zod schema of the configuration; `AirlockConfig` is its output type. */
export const AirlockConfigSchema = z
  .object({
    /** CloudFormation stack name. */
    stackName: z.string().regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/).default('Airlock'),
    jwt: z
      .object({
        /** OIDC issuer URL; API Gateway fetches `<issuer>/.well-known/openid-configuration`. */
        issuer: z.url({ protocol: /^https$/ }).default(PLACEHOLDER_ISSUER),
        /** Accepted `aud` values (API Gateway requires at least one). */
        audience: z.array(z.string().min(1)).min(1).default(['airlock']),
      })
      .strict()
      .prefault({}),
    /**
     * The web console (CloudFront + S3): how it signs people in with the issuer above,
     * authorization code flow with PKCE. Register `clientId` there as a public client (no
     * secret) whose redirect URI is the `ConsoleUrl` output. Without endpoints the console
     * reads them from `<jwt.issuer>/.well-known/openid-configuration`.
     */
    console: z
      .object({
        clientId: z.string().min(1).max(256).default('airlock-console'),
        scope: z.string().min(1).max(512).default('openid'),
        authorizationEndpoint: z.url({ protocol: /^https$/ }).optional(),
        tokenEndpoint: z.url({ protocol: /^https$/ }).optional(),
      })
      .strict()
      .prefault({}),
    /** Default COMPLIANCE-mode Object Lock retention of receipts and digests. */
    auditRetentionDays: z.number().int().min(1).max(36500).default(365),
    /**
     * `requireDelegation`: an action whose agent (the token's act.sub, azp or client_id) holds
     * no matching, live delegation from its principal is refused (403). On by default: a
     * deployment is closed to agents nobody consented to. `npm start` has it off.
     */
    requireDelegation: z.boolean().default(true),
    /**
     * How long WaitForApproval waits for a human before the saga times out. Standard
     * workflows run at most one year, and the execution must also outlast the saga's
     * worst-case run (see lambdas/saga/timeouts.ts): a value that leaves no room for it
     * is refused, with the largest value that fits.
     */
    approvalTimeoutSeconds: z.number().int().min(60).max(31_536_000).default(DEFAULT_SAGA_TIMEOUTS.approvalTimeoutSeconds),
    /** Lifetime of a signed grant. The design caps grants at five minutes. */
    grantTtlSeconds: z.number().int().min(5).max(300).default(300),
    /**
     * Days between automatic rotations of the grant-signing key (Secrets Manager rotation
     * schedule). Each rotation promotes the key published by the previous one, so verifiers
     * never meet an unknown key; the retired key keeps verifying until the next rotation.
     */
    grantKeyRotationDays: z.number().int().min(1).max(365).default(30),
    /** Retention of every CloudWatch log group the stack creates. */
    logRetentionDays: retentionDays.default(RetentionDays.THREE_MONTHS),
    /** Default-stage throttling of the HTTP API (steady requests per second and burst). */
    throttling: z
      .object({
        rateLimit: z.number().positive().max(10_000).default(50),
        burstLimit: z.number().int().positive().max(5_000).default(100),
      })
      .strict()
      .prefault({}),
    lambda: z
      .object({
        /** Memory of every function; 1 GiB also buys the CPU Cedar's wasm start-up needs. */
        memoryMiB: z.number().int().min(128).max(10_240).default(1024),
        /** Timeout of the API and saga functions. */
        timeoutSeconds: z.number().int().min(1).max(900).default(DEFAULT_SAGA_TIMEOUTS.functionTimeoutSeconds),
        /** Timeout of connector functions, which call vendors over the network. */
        connectorTimeoutSeconds: z.number().int().min(1).max(900).default(DEFAULT_SAGA_TIMEOUTS.connectorTimeoutSeconds),
      })
      .strict()
      .prefault({}),
    /**
     * Functions besides the connectors that may read the grant-signing key: the ones that
     * mint grants. Connectors always read it because they verify every grant they receive.
     */
    grantKeyReaders: z
      .array(
        // `policy` is what the saga function was called before it was named for what it does.
        z.preprocess((name) => (name === 'policy' ? 'saga' : name), z.enum(GRANT_KEY_READER_CANDIDATES)),
      )
      .min(1)
      .default(['saga']),
    /**
     * Base URL of each connector's vendor API (`{ "travel": "https://api.vendor.example" }`),
     * set as VENDOR_BASE_URL on that connector's function. A connector without one calls the
     * default in its definition (the sandbox vendor's loopback address), which only works locally.
     */
    vendorBaseUrls: z.record(z.string().regex(/^[a-z][a-z0-9_]*$/), z.url({ protocol: /^https?$/ })).default({}),
    /**
     * `retain` (default) keeps keys, table, secrets and logs when the stack is deleted and
     * turns on table deletion protection; `destroy` is for throwaway dev stacks. The audit
     * bucket is retained either way: COMPLIANCE-mode objects cannot be deleted early.
     */
    removalPolicy: z.enum(['retain', 'destroy']).default('retain'),
    /**
     * Alarms (docs/runbooks.md): `email` subscribes an address to the alarm topic (none: add
     * your own subscription to the `AlarmTopicArn` output); the thresholds of the rate alarms.
     */
    alarms: z
      .object({
        email: z.email().optional(),
        /** An approval waiting longer than this pages (ApprovalTimeToDecision maximum). */
        approvalPendingHours: z.number().int().min(1).max(8760).default(24),
        /** Share of a connector's vendor calls that fail, over 5 minutes. */
        vendorErrorRatePercent: z.number().min(1).max(100).default(20),
        /** Share of API requests answered 5xx, over 5 minutes. */
        api5xxRatePercent: z.number().min(0.1).max(100).default(1),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((config, ctx) => {
    // An execution that times out is a failure no Catch sees (no compensation, no receipt),
    // so the execution must outlast the approval wait plus the worst-case run of the saga.
    const inputs = sagaTimeoutConfig(config);
    let problems: string[];
    let runProblems: string[];
    try {
      problems = sagaTimeoutProblems(deriveSagaTimeouts((sagaDefinition ??= readAsl()), inputs), inputs);
      // One step attempt must fit in an Express run (5 minutes at most).
      runProblems = sagaTimeoutProblems(deriveSagaTimeouts((runDefinition ??= readAsl(ACTION_RUN_ASL)), inputs, { express: true }), inputs, { express: true });
    } catch (error) {
      problems = [error instanceof Error ? error.message : String(error)];
      runProblems = [];
    }
    for (const message of problems) ctx.addIssue({ code: 'custom', path: ['approvalTimeoutSeconds'], message });
    for (const message of runProblems) ctx.addIssue({ code: 'custom', path: ['lambda'], message });
  });

/** The parsed configuration. */
export type AirlockConfig = z.output<typeof AirlockConfigSchema>;

/** What the saga's timeouts are derived from, out of a parsed config. */
export function sagaTimeoutConfig(config: Pick<AirlockConfig, 'approvalTimeoutSeconds' | 'lambda'>): SagaTimeoutConfig {
  return {
    approvalTimeoutSeconds: config.approvalTimeoutSeconds,
    functionTimeoutSeconds: config.lambda.timeoutSeconds,
    connectorTimeoutSeconds: config.lambda.connectorTimeoutSeconds,
    maxSteps: MAX_PLAN_STEPS,
  };
}
/** What a user may write: every key optional. */
export type AirlockConfigInput = z.input<typeof AirlockConfigSchema>;

/** Thrown when the configuration does not parse; the message lists every problem. */
export class InvalidConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidConfigError';
  }
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Merges plain objects key by key; arrays and scalars from `override` replace. */
function deepMerge(base: JsonObject, override: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = out[key];
    out[key] = isObject(current) && isObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

function asObject(value: unknown, source: string): JsonObject {
  let parsed = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value) as unknown;
    } catch (cause) {
      throw new InvalidConfigError(`${source} is not valid JSON`, { cause });
    }
  }
  if (!isObject(parsed)) throw new InvalidConfigError(`${source} must be a JSON object`);
  return parsed;
}

/** Parses raw input into a config, or throws InvalidConfigError naming every bad key. */
export function parseConfig(input: unknown, source = 'Airlock config'): AirlockConfig {
  const result = AirlockConfigSchema.safeParse(input ?? {});
  if (!result.success) {
    throw new InvalidConfigError(`${source} is invalid:\n${z.prettifyError(result.error)}`, { cause: result.error });
  }
  return result.data;
}

/**
 * Reads the configuration for an app: file (if named), then context `airlock`, over the
 * defaults. Call it with the App (or any construct whose context is the app's).
 */
export function loadConfig(scope: Construct, env: NodeJS.ProcessEnv = process.env): AirlockConfig {
  let merged: JsonObject = {};
  const fileContext: unknown = scope.node.tryGetContext(CONFIG_FILE_CONTEXT_KEY);
  const file = typeof fileContext === 'string' && fileContext !== '' ? fileContext : env[CONFIG_FILE_ENV];
  if (file) {
    const path = resolve(file);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (cause) {
      throw new InvalidConfigError(`Cannot read config file ${path}`, { cause });
    }
    merged = deepMerge(merged, asObject(text, `Config file ${path}`));
  }
  const context: unknown = scope.node.tryGetContext(CONFIG_CONTEXT_KEY);
  if (context !== undefined) merged = deepMerge(merged, asObject(context, `Context "${CONFIG_CONTEXT_KEY}"`));
  return parseConfig(merged);
}
