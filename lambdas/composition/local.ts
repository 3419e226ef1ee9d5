import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { join } from 'node:path';
import { DynamoApprovalStore } from '../adapters/aws/dynamo-approvals';
import { DynamoLedger } from '../adapters/aws/dynamo-ledger';
import { DynamoRateCounters } from '../adapters/aws/dynamo-rate-counters';
import { DynamoSagaStore } from '../adapters/aws/dynamo-saga-store';
import { DynamoGuardrailStore } from '../adapters/aws/dynamo-guardrails';
import { DynamoSpendCapStore } from '../adapters/aws/dynamo-spend-caps';
import { DynamoDelegationStore } from '../adapters/aws/dynamo-delegations';
import { FileAuditStore } from '../adapters/local/file-audit-store';
import { FileEventPublisher } from '../adapters/local/file-event-publisher';
import { DEFAULT_APPROVAL_TIMEOUT_SECONDS } from '../approvals/approvals';
import { defaultIntakeConfig, type IntakeConfig } from '../intake/intake';
import { loadPolicyEngine } from '../policy/index';
import { killSwitchBudget, readLimitsFile, type LoadedLimits } from '../limits/config';
import { RateLimiter } from '../limits/rate-limiter';
import { spendAwareDecider } from '../policy/decider';
import { SpendCaps } from '../spend/caps';
import type { SecretsPort } from '../ports/secrets';
import { noMetrics, type Metrics, type MetricsReader } from '../ports/metrics';
import { boundedMetrics, vocabularyOf, type MetricRefusal } from '../observability/catalog';
import { SecretNames } from '../ports/secrets';
import type { TaskCallbacks } from '../ports/task-callbacks';
import { TokenRejectedError, type TokenVerifier } from '../ports/tokens';
import type { ToolRegistry } from '../ports/tools';
import type { WorkflowStarter } from '../ports/workflow';
import { writeDigest, type ReceiptsDeps } from '../receipts/vault';
import type { Digest } from '../receipts/schema';
import { CursorCodec } from '../shared/cursor';
import type { Logger } from '../shared/logger';
import { DEFAULT_GRANT_TTL_SECONDS, GrantKeyring } from '../steps/grants';
import type { RunStepDeps } from '../steps/run-step';
import { readPathThrough } from '../saga/read-path';
import type { ReadPath } from '../ports/workflow';
import { InvokeTimeoutError, type FunctionInvoker } from '../ports/functions';
import { toolRegistry } from '../tools/registry';
import type { ReconcileDeps } from '../reconcile/reconcile';
import { AnomalyGuard } from '../guardrails/anomaly';
import { functionGuardrails, once, type ApprovalGaugeFunctionDeps, type ApprovalsFunctionDeps, type DelegationExpiryFunctionDeps, type IntakeFunctionDeps, type ReceiptsFunctionDeps, type ReconcileFunctionDeps, type SagaFunctionDeps, type StepsFunctionDeps } from './deps';

/**
 * The composition root of the local runtime: the same functions' dependencies as aws.ts, over
 * the embedded stand-ins — the ledger on dynalite (or any DynamoDB endpoint) through the same
 * DynamoDB adapters, secrets as files, the write-once file vault, `events.log` for
 * notifications, and the local saga runner as Step Functions (starting sagas, answering task
 * tokens). local/control-plane.ts builds the handlers over what this returns.
 */

/** What the local runtime provides the composition with. */
export interface LocalInfrastructure {
  /** The state directory (AIRLOCK_HOME): the vault, events.log. */
  stateDir: string;
  dynamo: { client: DynamoDBClient; tableName: string };
  secrets: SecretsPort;
  logger: Logger;
  /** Starts sagas (the local saga runner). */
  workflow: WorkflowStarter;
  /** Answers waiting tasks (the local saga runner's callback registry). */
  callbacks: TaskCallbacks;
  /** The local name IssueGrant gives each connector's function. */
  connectorFunction: (connector: string) => string;
  /**
   * Invokes a local function by name and waits for its answer (Lambda's synchronous invoke),
   * with the receipts function's name: the read fast path calls the connector and receipts
   * functions through it. Absent: every action goes through the saga.
   */
  invoke?: { call: (functionName: string, payload: unknown) => Promise<unknown>; receiptsFunction: string; sagaFunction: string };
  /** Each connector's vendor API (the sandbox vendors). */
  vendorBaseUrls: Record<string, string>;
  /** HTTP for vendor calls (cut short when the runtime stops). */
  vendorFetch?: typeof fetch;
  tools?: ToolRegistry;
  /** Verifies bearer tokens for the routes that verify their own (the dev issuer); default: refuses every token. */
  tokens?: TokenVerifier;
  now?: () => Date;
  /** The limits in force; the shipped policies/limits.json when absent (tests inject small ones). */
  limits?: LoadedLimits;
  /** Jitters breaker resets ([0, 1)); Math.random when absent. */
  random?: () => number;
  /** The rate limiter's clock (its windows), `now` when absent: tests pin windows without moving other clocks. */
  rateLimitClock?: () => Date;
  /** The anomaly guard's clock (its buckets); the composition's clock by default. */
  anomalyClock?: () => Date;
  /** The delegation expiry sweep's clock (what "expired" means to it); the system clock by default. */
  delegationExpiryClock?: () => Date;
  /** The metrics recorder every function shares (and `GET /v1/metrics` reads); none when absent. */
  metrics?: Metrics & MetricsReader;
  /** Hears of every sample the metric catalog refused (default: a warning in the log). */
  onMetricRefused?: (refusal: MetricRefusal) => void;
}

/** Settings of the local runtime (the stack's config, for one machine). */
export interface LocalSettings {
  intake?: Partial<IntakeConfig>;
  grantTtlSeconds?: number;
  /** How long an approval waits for its quorum (the ASL's WaitForApproval timeout). */
  approvalTimeoutSeconds?: number;
  /** Per vendor call budget in ms, reconcile included. */
  vendorTimeoutMs?: number;
  /** The digest timer's period: declared in each digest as its heartbeat (unset: digests promise nothing). */
  digestIntervalMs?: number;
  /** How long the read fast path waits for a connector before the Standard saga takes the step over. */
  readPathConnectorTimeoutMs?: number;
  /** Write a digest after every receipt (default false: the control plane writes them on a timer). */
  digestAfterEachReceipt?: boolean;
  /**
   * `requireDelegation`: an action without a matching, live delegation is refused. Off by
   * default locally (a newcomer's first calls work); the deployed stack turns it on.
   */
  requireDelegation?: boolean;
  /** MCP also serves the conformance suite's `test_*` fixture tools (`npm run test:mcp-conformance` only). Default off. */
  mcpConformanceFixtures?: boolean;
}

/** The local vault's writer: digests on demand, serialized so two never chain onto one head. */
export interface LocalReceipts {
  store: FileAuditStore;
  /**
   * Writes a digest now, after any in-flight one. `closing`: the writer stops after it (the
   * control plane's shutdown), so it promises no successor.
   */
  writeDigestNow(options?: { closing?: boolean }): Promise<{ key: string; digest: Digest; sha256: string } | undefined>;
}

/** Every local function's dependencies. */
export interface LocalComposition {
  intake: IntakeFunctionDeps;
  saga: SagaFunctionDeps;
  approvals: ApprovalsFunctionDeps;
  steps: StepsFunctionDeps;
  receipts: ReceiptsFunctionDeps;
  vault: LocalReceipts;
  /** Breaker and halt items (tests and the demo read breaker states through it). */
  guardrails: DynamoGuardrailStore;
  /** Reconciliation against the vendors (the control plane's timer). */
  reconcile: ReconcileDeps;
  /** Delegation items (tests read their audit trail through it). */
  delegations: DynamoDelegationStore;
  /** The reconcile function (`POST /v1/reconciliations`, `airlock reconcile`). */
  reconciler: ReconcileFunctionDeps;
  /** The approvals gauge (the control plane's timer; the stack's schedule in AWS). */
  approvalGauge: ApprovalGaugeFunctionDeps;
  /** The delegation expiry sweep (the control plane's timer; the stack's schedule in AWS). */
  delegationExpiry: DelegationExpiryFunctionDeps;
}

/** A verifier for compositions without an issuer (tests of other capabilities): no token passes. */
export const refuseAllTokens: TokenVerifier = {
  issuer: 'none',
  verify: async () => {
    throw new TokenRejectedError('no issuer configured');
  },
};

/**
 * Lambda's synchronous invoke over the local functions: past `timeoutMs` the caller stops
 * waiting, and the callee runs on to its own end, as an invoked Lambda function does.
 */
export function localInvoker(call: (functionName: string, payload: unknown) => Promise<unknown>, defaultTimeoutMs: number): FunctionInvoker {
  return {
    invoke(functionName, payload, options = {}) {
      const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
      const work = call(functionName, payload);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new InvokeTimeoutError(functionName, timeoutMs)), timeoutMs);
      });
      // The callee's own failure after the caller gave up is the callee's to record, not unhandled.
      work.catch(() => undefined);
      return Promise.race([work, late]).finally(() => clearTimeout(timer));
    },
  };
}

/** The local saga function's own timeout (what bounds a synchronous call to it, as in Lambda). */
const READ_PATH_TIMEOUT_MS = 10_000;

/** Builds every function's dependencies for the local runtime. */
export function composeLocal(infra: LocalInfrastructure, settings: LocalSettings = {}): LocalComposition {
  const { client, tableName } = infra.dynamo;
  const now = infra.now ?? (() => new Date());
  const tools = infra.tools ?? toolRegistry;
  const ledger = new DynamoLedger({ client, tableName });
  const store = new DynamoSagaStore({ client, tableName });
  const approvals = new DynamoApprovalStore({ client, tableName });
  const engine = loadPolicyEngine();
  const limits = infra.limits ?? readLimitsFile();
  const caps = SpendCaps.from(limits.limits.spendCaps, engine.money);
  // dynalite has no transactions: the store finds out on its first reservation and goes
  // stepwise; any other endpoint (DynamoDB Local) gets all-or-none transactions.
  const capStore = new DynamoSpendCapStore({ client, tableName });
  const decider = spendAwareDecider(engine, caps, capStore, tools, limits.version);
  const keyring = new GrantKeyring(infra.secrets);
  // The same bounds as in AWS: catalog names, units, and this deployment's vocabulary only.
  const metrics: Metrics = infra.metrics
    ? boundedMetrics(
        infra.metrics,
        vocabularyOf({ tools, policies: engine.policies, limits: limits.limits }),
        infra.onMetricRefused ?? ((refusal) => infra.logger.warn('metric refused by the catalog', { ...refusal })),
      )
    : noMetrics;
  // One process, one instance: the intake and approvals routes share its leases.
  const rateLimiter = new RateLimiter({
    policies: limits.limits.rateLimits,
    killSwitch: { role: limits.limits.killSwitch.role, budget: killSwitchBudget(limits.limits) },
    counters: new DynamoRateCounters({ client, tableName }),
    now: infra.rateLimitClock ?? now,
    metrics,
    logger: infra.logger,
  });
  // One set per function, as in Lambda: each has its own caches over the shared ledger items.
  const guardrailStore = new DynamoGuardrailStore({ client, tableName });
  // Every function runs in this one process, so a halt or resume written here reaches all of
  // them at once; across Lambda instances it takes up to killSwitch.propagationSeconds.
  const haltGuards: { invalidate(): void }[] = [];
  const guardrailsFor = (actor: string) => {
    const g = functionGuardrails({
      store: guardrailStore,
      tools,
      limits,
      now,
      logger: infra.logger,
      actor,
      metrics,
      ...(infra.random ? { random: infra.random } : {}),
      onHaltChange: () => haltGuards.forEach((h) => h.invalidate()),
    });
    haltGuards.push(g.halts);
    return g;
  };
  const intakeGuardrails = guardrailsFor('intake');
  const sagaGuardrails = guardrailsFor('saga');
  const approvalsHalts = guardrailsFor('approvals').halts;
  const connectorBreakers = guardrailsFor('connector').breakers;
  // What CURSOR_KEY_SECRET names in AWS: page cursors are signed with it.
  const cursors = once(async () => new CursorCodec(await infra.secrets.getSecret(SecretNames.cursorKey)));

  const receiptsDeps: ReceiptsDeps & { metrics: Metrics } = {
    actions: ledger,
    steps: store,
    events: store,
    store: new FileAuditStore(join(infra.stateDir, 'audit')),
    secrets: infra.secrets,
    tools,
    logger: infra.logger,
    now,
    metrics,
    // One process writes both receipts and digests here, in order: no settle margin needed.
    digests: {
      settleMs: 0,
      wholeSeconds: false,
      ...(settings.digestIntervalMs ? { intervalSeconds: Math.max(1, Math.ceil(settings.digestIntervalMs / 1000)) } : {}),
    },
  };
  let queue: Promise<unknown> = Promise.resolve();
  // What this writer wrote last: lets the next digest tell a pause from removed digests.
  let lastWritten: string | undefined;
  const writeDigestNow: LocalReceipts['writeDigestNow'] = (digestOptions = {}) => {
    const next = queue.then(async () => {
      const written = await writeDigest(receiptsDeps, undefined, { ...digestOptions, ...(lastWritten ? { lastWritten } : {}) });
      if (written) lastWritten = written.key;
      return written;
    });
    queue = next.catch(() => undefined);
    return next;
  };

  const stepDeps = (connector: string): RunStepDeps & { metrics: Metrics } => ({
    connector,
    metrics,
    tools,
    steps: store,
    keyring,
    secrets: infra.secrets,
    baseUrls: infra.vendorBaseUrls,
    logger: infra.logger,
    now,
    timeoutMs: settings.vendorTimeoutMs ?? 8_000,
    breakers: connectorBreakers,
    ...(infra.vendorFetch ? { fetch: infra.vendorFetch } : {}),
  });

  const reconcile: ReconcileDeps = {
    tools,
    actions: ledger,
    steps: store,
    index: store,
    events: store,
    vault: receiptsDeps.store,
    secrets: infra.secrets,
    baseUrls: infra.vendorBaseUrls,
    logger: infra.logger,
    metrics,
    now,
    timeoutMs: settings.vendorTimeoutMs ?? 8_000,
    ...(infra.vendorFetch ? { fetch: infra.vendorFetch } : {}),
  };
  const delegationStore = new DynamoDelegationStore({ client, tableName });
  const cancel = { actions: ledger, approvals, events: store, callbacks: infra.callbacks, now, logger: infra.logger, adminRole: limits.limits.killSwitch.role };
  const saga: SagaFunctionDeps = {
    actions: ledger,
    steps: store,
    events: store,
    spendCaps: { caps, store: capStore, metrics },
    approvals,
    decider,
    tools,
    money: engine.money,
    keyring,
    connectorFunction: infra.connectorFunction,
    grantTtlSeconds: settings.grantTtlSeconds ?? DEFAULT_GRANT_TTL_SECONDS,
    now,
    logger: infra.logger,
    limits,
    guardrails: { halts: sagaGuardrails.halts, haltStore: sagaGuardrails.haltStore, breakers: sagaGuardrails.breakers, delegations: delegationStore },
    metrics,
  };
  const invoke = infra.invoke;
  // As in AWS: intake invokes the saga function's RunRead, which invokes the same connector and
  // receipts functions the saga's Task states call.
  const invoker = invoke && localInvoker(invoke.call, READ_PATH_TIMEOUT_MS);
  if (invoke && invoker) {
    saga.readPath = {
      invoker,
      receiptsFunction: invoke.receiptsFunction,
      connectorTimeoutMs: settings.readPathConnectorTimeoutMs ?? (settings.vendorTimeoutMs ?? 8_000) + 2_000,
      receiptTimeoutMs: READ_PATH_TIMEOUT_MS,
    };
  }
  const readPath: ReadPath | undefined = invoke && invoker && readPathThrough(invoker, invoke.sagaFunction, READ_PATH_TIMEOUT_MS);

  return {
    intake: {
      actions: ledger,
      accessLog: ledger,
      steps: store,
      idempotency: ledger,
      workflow: infra.workflow,
      ...(readPath ? { readPath } : {}),
      decider,
      tools,
      intake: { ...defaultIntakeConfig, ...settings.intake },
      cursors,
      limits,
      guardrails: { halts: intakeGuardrails.halts, breakers: intakeGuardrails.breakers },
      halts: intakeGuardrails.haltDeps,
      rateLimiter,
      metrics,
      ...(infra.metrics ? { metricsReader: infra.metrics } : {}),
      tokens: infra.tokens ?? refuseAllTokens,
      // On loopback, a browser page could reach the runtime through DNS rebinding: only loopback names.
      mcpAllowedHosts: ['127.0.0.1', 'localhost', '[::1]'],
      // Served by the runtime itself (local/console-site.ts), on the API's origin.
      consoleUrl: '/console/',
      ...(settings.mcpConformanceFixtures ? { mcpConformanceFixtures: true } : {}),
      ...(limits.limits.anomaly
        ? {
            anomaly: new AnomalyGuard({
              settings: limits.limits.anomaly,
              now: infra.anomalyClock ?? now,
              halts: intakeGuardrails.haltDeps,
              tools,
              money: engine.money,
              metrics,
              logger: infra.logger,
            }),
          }
        : {}),
      cancel,
      delegations: { store: delegationStore, required: settings.requireDelegation ?? false, tools, money: engine.money, spend: capStore },
      delegationRoutes: {
        store: delegationStore,
        tools,
        money: engine.money,
        vault: receiptsDeps.store,
        now,
        policySetVersion: engine.version,
        limitsVersion: limits.version,
        logger: infra.logger,
        actions: ledger,
        cancel,
      },
    },
    saga,
    approvals: {
      actions: ledger,
      approvals,
      events: store,
      callbacks: infra.callbacks,
      publisher: new FileEventPublisher(infra.stateDir),
      engine,
      tools,
      timeoutSeconds: settings.approvalTimeoutSeconds ?? DEFAULT_APPROVAL_TIMEOUT_SECONDS,
      now,
      logger: infra.logger,
      cursors,
      limits,
      halts: approvalsHalts,
      rateLimiter,
      metrics,
    },
    steps: (connector) => {
      if (connector === undefined) throw new Error('The local runtime serves every connector: name one');
      return stepDeps(connector);
    },
    receipts: {
      rateLimiter,
      deps: receiptsDeps,
      ...(settings.digestAfterEachReceipt ? { afterReceipt: async () => void (await writeDigestNow()) } : {}),
    },
    vault: { store: receiptsDeps.store as FileAuditStore, writeDigestNow },
    guardrails: guardrailStore,
    reconcile,
    delegations: delegationStore,
    reconciler: { reconcile, limits, halts: guardrailStore, rateLimiter, resume: { actions: ledger, workflow: infra.workflow, now, logger: infra.logger } },
    approvalGauge: { approvals, metrics, now },
    delegationExpiry: { store: delegationStore, actions: ledger, cancel, vault: receiptsDeps.store, now: infra.delegationExpiryClock ?? now, logger: infra.logger },
  };
}
