import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { connectors } from '../lambdas/tools/registry';
import { defaultPolicyDir, formatPolicyProblem, validatePolicyDir } from '../lambdas/policy/index';
import { type FunctionName, routes as routeTable, type RouteSpec } from '../lambdas/api/routes';
import { type AirlockConfig, sagaTimeoutConfig } from './config';
import { AirlockApi } from './constructs/api';
import { AirlockFunction } from './constructs/airlock-function';
import { AirlockConsole } from './constructs/console';
import { bindApprovalEvents } from './constructs/approval-events';
import { AuditVault } from './constructs/audit-vault';
import { Ledger } from './constructs/ledger';
import { ActionSaga } from './constructs/saga';
import { AirlockSecrets } from './constructs/secrets';
import { AirlockObservability } from './constructs/observability';
import { Reconciliation } from './constructs/reconciliation';
import { APPROVAL_GAUGE_INTERVAL, ApprovalGauge } from './constructs/approval-gauge';
import { DelegationExpiry } from './constructs/delegation-expiry';
import { bindReadPath } from './constructs/read-path';
import { DIGEST_INTERVAL } from './constructs/audit-vault';
import { EnvNames } from '../lambdas/composition/env';
import { defaultLimitsFile, type LoadedLimits, readLimitsFile } from '../lambdas/limits/config';

/** Env var with the grant lifetime, in functions that mint or verify grants. */
export const GRANT_TTL_ENV = EnvNames.grantTtlSeconds;
/** Env var with `{ connector: function ARN }` in the saga function (IssueGrant). */
export const CONNECTOR_FUNCTIONS_ENV = EnvNames.connectorFunctions;
/** Env var with a connector's vendor API base URL (config `vendorBaseUrls`). */
export const VENDOR_BASE_URL_ENV = EnvNames.vendorBaseUrl;
/** Env var naming the connector a connector function serves. */
export const CONNECTOR_NAME_ENV = EnvNames.connectorName;

/** The reconcile function's timeout: a run asks every reconciled vendor about two days of commit steps. */
export const RECONCILE_TIMEOUT_SECONDS = 300;

/** Props of {@link AirlockStack}. */
export interface AirlockStackProps extends StackProps {
  readonly config: AirlockConfig;
  /** Defaults to the route table in lambdas/api/routes.ts (tests may pass their own). */
  readonly routes?: readonly RouteSpec[];
  /** Defaults to the connector names in lambdas/tools/registry.ts. */
  readonly connectorNames?: readonly string[];
  /** The Cedar policy set to validate and ship; defaults to policies/. */
  readonly policyDir?: string;
  /** The limits file to validate at synth; defaults to policies/limits.json (what every bundle ships). */
  readonly limitsFile?: string;
}

/** The policy set failed strict validation: synth stops with Cedar's messages and locations. */
export class InvalidPolicySetError extends Error {
  constructor(lines: string[]) {
    super(`The Cedar policy set is invalid:\n${lines.map((l) => `  ${l}`).join('\n')}`);
    this.name = 'InvalidPolicySetError';
  }
}

/** `travel-desk` → `TravelDesk`, for ASL placeholders (`${ConnectorTravelDeskFunctionArn}`). */
function pascal(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('');
}

/**
 * Airlock on AWS: the HTTP API, the functions, the ledger, the audit vault, the saga and
 * the secrets, wired with least privilege. Each capability is one construct; this class
 * only composes them and decides who may do what.
 */
export class AirlockStack extends Stack {
  readonly api: AirlockApi;
  readonly ledger: Ledger;
  /** The limits file every function ships with, validated at synth. */
  readonly limits: LoadedLimits;
  readonly auditVault: AuditVault;
  readonly saga: ActionSaga;
  readonly secrets: AirlockSecrets;
  /** The API and saga functions by name (the reconciler among them: it serves POST /v1/reconciliations). */
  readonly functions: Readonly<Record<FunctionName | 'saga', AirlockFunction>>;
  /** Connector functions by connector name. */
  readonly connectorFunctions: ReadonlyMap<string, AirlockFunction>;
  /** The rotation function of the grant-signing key (invoked by Secrets Manager only). */
  readonly grantKeyRotator: AirlockFunction;
  /** The web console: S3 behind CloudFront, with the API on the same origin. */
  readonly console: AirlockConsole;
  /** The safety dashboard, the alarms and their topic. */
  readonly observability: AirlockObservability;
  /** The scheduled reconciliation against vendors and its function. */
  readonly reconciliation: Reconciliation;
  readonly reconciler: AirlockFunction;
  /** The live pending-approvals gauge: its function (Query on the status index only) and schedule. */
  readonly approvalGauge: { fn: AirlockFunction; schedule: ApprovalGauge };
  /** The delegation expiry sweep: its function (expiry queue, delegations, the actions it cancels) and schedule. */
  readonly delegationExpiry: { fn: AirlockFunction; schedule: DelegationExpiry };

  constructor(scope: Construct, id: string, props: AirlockStackProps) {
    super(scope, id, props);
    const { config } = props;
    const retain = config.removalPolicy === 'retain';
    const removalPolicy = retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const connectorNames = props.connectorNames ?? connectors.map((c) => c.name);
    // A policy that does not validate must never reach an account: fail the synth here.
    const policyDir = props.policyDir ?? defaultPolicyDir();
    const validation = validatePolicyDir(policyDir);
    if (!validation.ok) throw new InvalidPolicySetError(validation.errors.map((p) => formatPolicyProblem(p, 'error', policyDir)));
    // Nor a limits file that does not validate (InvalidLimitsError names every bad field).
    const limitsFile = props.limitsFile ?? defaultLimitsFile();
    this.limits = readLimitsFile(limitsFile);

    this.ledger = new Ledger(this, 'Ledger', { removalPolicy, deletionProtection: retain });
    this.auditVault = new AuditVault(this, 'AuditVault', { retentionDays: config.auditRetentionDays, removalPolicy });
    this.secrets = new AirlockSecrets(this, 'Secrets', { connectors: connectorNames, removalPolicy });

    const make = (id: string, entry: string, description: string, extra: { cedar?: boolean; timeoutSeconds?: number } = {}) =>
      new AirlockFunction(this, id, {
        entry,
        description,
        memoryMiB: config.lambda.memoryMiB,
        timeout: Duration.seconds(extra.timeoutSeconds ?? config.lambda.timeoutSeconds),
        logRetention: config.logRetentionDays,
        removalPolicy,
        limitsFile,
        ...(extra.cedar ? { cedar: true } : {}),
      });

    const intake = make('Intake', 'lambdas/intake/handler.ts', 'Airlock intake: validate, dedupe, decide, start the saga', {
      cedar: true,
    });
    // POST /mcp verifies its own tokens (its 401 must name the RFC 9728 metadata): the authorizer's issuer and audiences.
    intake.addEnvironment(EnvNames.jwtIssuer, config.jwt.issuer);
    intake.addEnvironment(EnvNames.jwtAudience, JSON.stringify(config.jwt.audience));
    intake.addEnvironment(EnvNames.requireDelegation, String(config.requireDelegation));
    const saga = make('Saga', 'lambdas/saga/handler.ts', 'Airlock saga tasks: run-time policy, grants and bookkeeping', {
      cedar: true,
    });
    const approvals = make('Approvals', 'lambdas/approvals/handler.ts', 'Airlock approvals: record votes, answer the saga', {
      cedar: true,
    });
    const receipts = make('Receipts', 'lambdas/receipts/handler.ts', 'Airlock receipts: write-once receipts and digests');
    // Reconciliation asks the vendors of the connectors that declare a `reconcile` operation.
    const reconciled = connectors.filter((c) => c.reconcile && connectorNames.includes(c.name)).map((c) => c.name);
    this.reconciler = make('Reconcile', 'lambdas/reconcile/handler.ts', 'Airlock reconciliation against vendors (report only)', {
      timeoutSeconds: RECONCILE_TIMEOUT_SECONDS,
    });
    this.ledger.bindReconciler(this.reconciler);
    this.auditVault.bindReconciliationWriter(this.reconciler);
    this.secrets.grantVendorCredentialsRead(reconciled, this.reconciler);
    const reconciledUrls = Object.fromEntries(reconciled.filter((c) => config.vendorBaseUrls[c]).map((c) => [c, config.vendorBaseUrls[c]!]));
    // It serves POST /v1/reconciliations too: counted like every /v1 route, refusals audited in the kill switch's trail.
    this.ledger.bindRateCounters(this.reconciler);
    this.ledger.bindHaltLog(this.reconciler);
    this.reconciler.addEnvironment(EnvNames.vendorBaseUrls, JSON.stringify(reconciledUrls));
    this.reconciliation = new Reconciliation(this, 'Reconciliation', { fn: this.reconciler });
    this.functions = { intake, saga, approvals, receipts, reconcile: this.reconciler };
    const gaugeFn = make('ApprovalGauge', 'lambdas/observability/handler.ts', 'Airlock approvals gauge: pending count and oldest age');
    this.ledger.bindApprovalGauge(gaugeFn);
    this.approvalGauge = { fn: gaugeFn, schedule: new ApprovalGauge(this, 'ApprovalGaugeSchedule', { fn: gaugeFn }) };
    // Granting and revoking delegations writes consent and revocation receipts (nothing else in the vault).
    this.auditVault.bindConsentWriter(intake);
    // Expired delegations: pending approvals cancelled, an expiry receipt each (receipts/dt=*/dlg_* only).
    const expiryFn = make('DelegationExpiry', 'lambdas/delegations/handler.ts', 'Airlock delegation expiry: cancel pending work, write expiry receipts');
    this.ledger.bindDelegationExpiry(expiryFn);
    this.auditVault.bindConsentWriter(expiryFn);
    this.delegationExpiry = { fn: expiryFn, schedule: new DelegationExpiry(this, 'DelegationExpirySchedule', { fn: expiryFn }) };

    const connectorFunctions = new Map<string, AirlockFunction>();
    for (const name of connectorNames) {
      const fn = make(`Connector-${name}`, 'lambdas/steps/handler.ts', `Airlock connector ${name}`, {
        timeoutSeconds: config.lambda.connectorTimeoutSeconds,
      });
      fn.addEnvironment(CONNECTOR_NAME_ENV, name);
      const vendorBaseUrl = config.vendorBaseUrls[name];
      if (vendorBaseUrl) fn.addEnvironment(VENDOR_BASE_URL_ENV, vendorBaseUrl);
      fn.addEnvironment(GRANT_TTL_ENV, String(config.grantTtlSeconds));
      this.ledger.bindConnector(fn, name);
      this.secrets.grantVendorCredentialRead(name, fn);
      this.secrets.grantSigningKeyRead(fn);
      connectorFunctions.set(name, fn);
    }
    this.connectorFunctions = connectorFunctions;

    // The core functions share the ledger; receipts write the audit vault (intake only its consent receipts).
    for (const fn of [intake, saga, approvals]) this.ledger.bindReadWrite(fn);
    // The two functions that serve listings sign and check their page cursors.
    for (const fn of [intake, approvals]) this.secrets.grantCursorKeyRead(fn);
    // Receipts read the ledger; they write only the rate-limit counters of their /v1 route.
    this.ledger.bindReader(receipts);
    this.ledger.bindRateCounters(receipts);
    for (const reader of config.grantKeyReaders) {
      const fn = this.functions[reader];
      fn.addEnvironment(GRANT_TTL_ENV, String(config.grantTtlSeconds));
      this.secrets.grantSigningKeyRead(fn);
    }

    this.grantKeyRotator = make('GrantKeyRotator', 'lambdas/keys/handler.ts', 'Airlock grant-signing key rotation');
    this.secrets.rotateGrantSigningKey(this.grantKeyRotator, Duration.days(config.grantKeyRotationDays));

    const sagaFunctions: Record<string, AirlockFunction> = {
      IntakeFunctionArn: intake,
      SagaFunctionArn: saga,
      ApprovalsFunctionArn: approvals,
      ReceiptsFunctionArn: receipts,
    };
    for (const [name, fn] of connectorFunctions) sagaFunctions[`Connector${pascal(name)}FunctionArn`] = fn;
    // IssueGrant names the connector function of each step; the saga invokes it by that name.
    saga.addEnvironment(
      CONNECTOR_FUNCTIONS_ENV,
      Stack.of(this).toJsonString(Object.fromEntries([...connectorFunctions].map(([name, fn]) => [name, fn.function.functionArn]))),
    );
    this.saga = new ActionSaga(this, 'ActionSaga', {
      functions: sagaFunctions,
      dynamicTargets: [...connectorFunctions.values()],
      timeouts: sagaTimeoutConfig(config),
      logRetention: config.logRetentionDays,
      removalPolicy,
      logGroupPrefix: this.stackName,
    });
    // The digest looks back as far as an action can live: the saga's execution timeout.
    this.auditVault.bindReceiptWriter(receipts, { lookbackDays: Math.ceil(this.saga.timeouts.executionSeconds / 86_400) + 1 });
    this.saga.bindStarter(intake);
    // The schedule finds actions whose workflow died (an Express run is never retried) and resumes them in the saga.
    this.saga.bindResumer(this.reconciler);
    // An allowed single read runs without a Standard execution: intake → saga function's RunRead.
    bindReadPath({ intake, saga, receipts, connectors: [...connectorFunctions.values()], sagaTimeoutSeconds: config.lambda.timeoutSeconds });
    this.saga.bindTaskResponder(approvals);
    // The cancel route (intake, also behind MCP) answers WaitForApproval for an action it cancels.
    this.saga.bindTaskResponder(intake, { failOnly: true });
    // So does the expiry sweep, for the approvals it cancels.
    this.saga.bindTaskResponder(this.delegationExpiry.fn, { failOnly: true });
    bindApprovalEvents(approvals, { approvalTimeoutSeconds: config.approvalTimeoutSeconds });


    this.api = new AirlockApi(this, 'Api', {
      routes: props.routes ?? routeTable,
      functions: { intake, approvals, receipts, reconcile: this.reconciler },
      jwtIssuer: config.jwt.issuer,
      jwtAudience: config.jwt.audience,
      throttling: config.throttling,
      logRetention: config.logRetentionDays,
      removalPolicy,
    });

    this.console = new AirlockConsole(this, 'Console', {
      apiId: this.api.httpApi.apiId,
      oidc: { issuer: config.jwt.issuer, ...config.console },
      accessLogsBucket: this.auditVault.accessLogs,
      removalPolicy,
    });

    // MCP points approvers at the console's approval pages (URL-mode elicitation).
    intake.addEnvironment(EnvNames.consoleUrl, this.console.url);
    new CfnOutput(this, 'ConsoleUrl', { value: this.console.url, description: 'The web console; register it as the redirect URI of the console client' });
    new CfnOutput(this, 'ConsoleBucketName', { value: this.console.bucket.bucketName, description: 'Where `airlock console publish` uploads the console' });
    new CfnOutput(this, 'ConsoleConfig', { value: JSON.stringify(this.console.config), description: 'The console\'s config.json (`airlock console publish --config`)' });
    this.observability = new AirlockObservability(this, 'Observability', {
      api: this.api.httpApi,
      stateMachine: this.saga.stateMachine,
      ledger: this.ledger.table,
      connectorNames,
      reconciledConnectors: reconciled,
      digestInterval: DIGEST_INTERVAL,
      approvalGaugeInterval: APPROVAL_GAUGE_INTERVAL,
      alarms: config.alarms,
      removalPolicy,
    });

    new CfnOutput(this, 'ApiUrl', { value: this.api.url, description: 'Base URL of the Airlock HTTP API' });
    new CfnOutput(this, 'LedgerTableName', { value: this.ledger.table.tableName });
    new CfnOutput(this, 'AuditBucketName', { value: this.auditVault.bucket.bucketName });
    new CfnOutput(this, 'StateMachineArn', { value: this.saga.stateMachine.stateMachineArn });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.observability.topic.topicArn, description: 'Subscribe on-call here (config alarms.email does it for one address)' });
    new CfnOutput(this, 'DashboardName', { value: this.observability.dashboard.dashboardName });
  }
}
