import './untraced';
import { mcpPushFixtures } from './mcp-push-fixtures';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DynamoLedger, toAction } from '../lambdas/adapters/aws/dynamo-ledger';
import { DynamoSagaStore } from '../lambdas/adapters/aws/dynamo-saga-store';
import { FileMetrics } from '../lambdas/adapters/local/file-metrics';
import type { MetricRefusal } from '../lambdas/observability/catalog';
import { TerminalStatuses, type ActionStatus } from '../lambdas/actions/action';
import { createApprovalsHandler } from '../lambdas/approvals/handler';
import type { Lazy } from '../lambdas/composition/deps';
import type { LoadedLimits } from '../lambdas/limits/config';
import { composeLocal, type LocalComposition, type LocalReceipts } from '../lambdas/composition/local';
import type { IntakeConfig } from '../lambdas/intake/intake';
import { createIntakeHandler } from '../lambdas/intake/handler';
import { SecretNames } from '../lambdas/ports/secrets';
import { TokenRejectedError, type TokenVerifier } from '../lambdas/ports/tokens';
import { InvalidTokenError, type DevIssuer } from './dev-issuer';
import { createReceiptsHandler } from '../lambdas/receipts/handler';
import { latestDigest } from '../lambdas/receipts/vault';
import { createSagaHandler } from '../lambdas/saga/handler';
import { createStepsHandler } from '../lambdas/steps/handler';
import { connectors } from '../lambdas/tools/registry';
import { reconcile } from '../lambdas/reconcile/reconcile';
import { resumeStalledActions } from '../lambdas/saga/resume';
import { createReconcileHandler } from '../lambdas/reconcile/handler';
import { LOCAL_PENDING_APPROVALS_SAMPLE_MS, measurePendingApprovals } from '../lambdas/observability/pending-approvals';
import { sweepExpiredDelegations } from '../lambdas/delegations/expiry';
import type { LambdaHandler } from './handler-loader';
import type { WorkflowKind } from '../lambdas/ports/workflow';
import { LocalSagaRunner, localFunctionArn, type LocalFunction } from './saga-runner';
import { startLocalRuntime, type LocalRuntime, type LocalRuntimeOptions, type LocalService, type LocalServiceContext } from './server';
import { SANDBOX_CONNECTORS, startSandboxVendors, type SandboxVendors, type StartSandboxVendorsOptions } from './vendors/index';

/**
 * The whole control plane on one machine: the API server (server.ts) plus the services that
 * stand in for the rest of AWS — the saga runner for Step Functions, sandbox vendors for the
 * outside world — wired to the same handlers, ASL and policies the stack deploys.
 */

export interface ControlPlaneOptions {
  /** Run allowed single read calls without the saga (issue 17's fast path); default true. */
  readFastPath?: boolean;
  /** Vendor options (faults at start, clock, hold TTL). */
  vendors?: Omit<StartSandboxVendorsOptions, 'credentials'>;
  /**
   * Vendors that outlive this control plane (real vendors do): used instead of starting
   * sandbox vendors, and left running on stop. They must accept the state dir's credentials.
   */
  externalVendors?: SandboxVendors;
  /** Shortens saga Retry intervals to this many ms (tests). */
  retryIntervalMs?: number;
  /** With retryIntervalMs: the interval of the retriers that wait out a pause halt (LocalSagaRunnerOptions). */
  pauseRetryIntervalMs?: number;
  intake?: Partial<IntakeConfig>;
  grantTtlSeconds?: number;
  /** How often a receipts digest is written (the stack's schedule is hourly). */
  digestIntervalMs?: number;
  /** How long an approval waits for its quorum (the ASL's WaitForApproval timeout). */
  approvalTimeoutSeconds?: number;
  /** Per vendor call budget in ms, reconcile included. */
  vendorTimeoutMs?: number;
  /** The limits in force instead of policies/limits.json (tests inject small rate limits). */
  limits?: LoadedLimits;
  /** The rate limiter's clock (its windows); the system clock by default. */
  rateLimitClock?: () => Date;
  /** The anomaly guard's clock (its buckets); the system clock by default. */
  anomalyClock?: () => Date;
  /** Hears of every metric sample the catalog refused (tests fail on any). */
  onMetricRefused?: (refusal: MetricRefusal) => void;
  /** Jitters circuit-breaker resets ([0, 1)); Math.random when absent. */
  random?: () => number;
  /**
   * How often reconciliation against the vendors runs (the stack's EventBridge schedule);
   * 15 minutes unless given, 0 turns the timer off (`airlock reconcile` still runs it).
   */
  reconcileIntervalMs?: number;
  /**
   * How often actions a dead workflow left unfinished are handed to the saga again
   * (saga/resume.ts), on a timer of their own: without it they are resumed with each
   * reconcile run and at start. The chaos storm sets it, so a run that stopped at
   * CompensationOwed settles within its bound. 0 or absent: no timer of its own.
   */
  resumeIntervalMs?: number;
  /** With resumeIntervalMs: how long an action must not have moved to count as stalled (default STALLED_AFTER_MS). */
  resumeStalledAfterMs?: number;
  /**
   * How often the pending approvals are sampled (the stack's 5-minute schedule); every
   * minute unless given, and once at start. 0 turns the timer off.
   */
  approvalGaugeIntervalMs?: number;
  /**
   * How often expired delegations are swept (the stack's one-minute schedule): every minute
   * unless given, and once at start. 0 turns the timer off.
   */
  delegationExpiryIntervalMs?: number;
  /** The delegation expiry sweep's clock; the system clock by default. */
  delegationExpiryClock?: () => Date;
  /**
   * `requireDelegation` (the deployed stack's default): an action without a matching, live
   * delegation is refused. Off unless asked for (`airlock dev --require-delegation`, or
   * AIRLOCK_REQUIRE_DELEGATION=1), so a newcomer's first calls work.
   */
  requireDelegation?: boolean;
  /**
   * MCP also serves the official conformance suite's `test_*` fixture tools
   * (lambdas/mcp/conformance-fixtures.ts): only `npm run test:mcp-conformance` turns this on
   * (AIRLOCK_MCP_CONFORMANCE_FIXTURES=1); off for `npm start`, absent from the deployed stack.
   */
  mcpConformanceFixtures?: boolean;
}

/** What the control plane service exposes once started. */
export interface ControlPlane {
  runner: LocalSagaRunner;
  /** Every function's dependencies, as the handlers read them on each invocation. */
  composition: LocalComposition;
  vendors: SandboxVendors;
  ledger: DynamoLedger;
  store: DynamoSagaStore;
  receipts: LocalReceipts;
  /** The metrics recorder (`<AIRLOCK_HOME>/metrics.jsonl`) every function writes to. */
  metrics: FileMetrics;
}

/**
 * File in the state dir listing the sandbox vendors' URLs and admin tokens (mode 0600), so
 * local tools that share AIRLOCK_HOME (`airlock demo` against `npm start`) can read their
 * side-effect counters and inject faults; removed when the control plane stops.
 */
export const SANDBOX_VENDORS_FILE = 'sandbox-vendors.json';

/** Folder in the state dir where the sandbox vendors keep their state (one file each). */
export const SANDBOX_VENDOR_STATE_DIR = 'vendors';

/** The dev issuer as the token port: what the local API Gateway checks, for routes that check their own. */
function devIssuerTokens(issuer: DevIssuer): TokenVerifier {
  return {
    issuer: issuer.issuer,
    verify: async (token) => {
      try {
        return await issuer.verify(token);
      } catch (error) {
        if (error instanceof InvalidTokenError) throw new TokenRejectedError(error.reason, { cause: error });
        throw error;
      }
    },
  };
}

/** Why a vendor call was cut short: the control plane is stopping (the step's outcome is unknown). */
export class RuntimeStoppingError extends Error {
  constructor() {
    super('the local control plane is stopping');
    this.name = 'RuntimeStoppingError';
  }
}

/**
 * Global fetch, cut short when `signal` aborts: a vendor call in flight at shutdown ends at
 * once (as if the process had died) instead of holding close() open for its whole timeout.
 */
function stoppableFetch(signal: AbortSignal): typeof fetch {
  return (input, init) => fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, signal]) : signal });
}

/** Whether a stored action item names its receipt (set once the receipt is in the vault). */
function hasReceipt(item: Record<string, import('@aws-sdk/client-dynamodb').AttributeValue>): boolean {
  try {
    // The record is in `body` (compressed) or, on items no write touched since, `doc` (JSON).
    return typeof toAction(item)?.receiptKey === 'string';
  } catch {
    return false;
  }
}

/**
 * Actions a previous run left unfinished: mid-flight (resumed or compensated on start), or
 * settled without their receipt (a crash between SettleAction and the receipt write), whose
 * saga run again only writes the receipt.
 */
export async function unfinishedActions(dynamo: Pick<LocalServiceContext['dynamo'], 'client' | 'tableName'>): Promise<string[]> {
  const ids: string[] = [];
  let start: Record<string, import('@aws-sdk/client-dynamodb').AttributeValue> | undefined;
  do {
    const out = await dynamo.client.send(
      new ScanCommand({
        TableName: dynamo.tableName,
        FilterExpression: 'sk = :action',
        ExpressionAttributeValues: { ':action': { S: 'ACTION' } },
        ProjectionExpression: 'pk, #status, body, doc',
        ExpressionAttributeNames: { '#status': 'status' },
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    for (const item of out.Items ?? []) {
      const status = item.status?.S as ActionStatus | undefined;
      const pk = item.pk?.S ?? '';
      const unfinished = status !== undefined && (!TerminalStatuses.has(status) || !hasReceipt(item));
      if (unfinished && pk.startsWith('ACTION#')) ids.push(pk.slice('ACTION#'.length));
    }
    start = out.LastEvaluatedKey;
  } while (start);
  return ids.sort();
}

/** The service that plugs the saga runner, vendors and adapters into the local runtime. */
export function controlPlaneService(options: ControlPlaneOptions = {}, onStarted?: (cp: ControlPlane) => void): LocalService {
  return {
    name: 'control-plane',
    async start(ctx) {
      const credentials: Record<string, string> = {};
      for (const name of SANDBOX_CONNECTORS) credentials[name] = await ctx.secrets.getSecret(SecretNames.vendorCredential(name));
      // Vendors keep their state beside the ledger, so a restarted runtime resumes or
      // compensates steps against vendors that still know what they did.
      const vendors =
        options.externalVendors ?? (await startSandboxVendors({ stateDir: join(ctx.stateDir, SANDBOX_VENDOR_STATE_DIR), ...options.vendors, credentials }));
      const ledger = new DynamoLedger({ client: ctx.dynamo.client, tableName: ctx.dynamo.tableName });
      const store = new DynamoSagaStore({ client: ctx.dynamo.client, tableName: ctx.dynamo.tableName });

      // The same handlers the stack deploys, over the local composition (built just below:
      // the saga runner they run in is part of it).
      let composition: LocalComposition | undefined;
      const part =
        <K extends keyof LocalComposition>(key: K): Lazy<LocalComposition[K]> =>
        async () => {
          if (!composition) throw new Error('the local control plane is not composed yet');
          return composition[key];
        };
      const functions = new Map<string, LocalFunction>();
      functions.set(localFunctionArn('saga'), createSagaHandler(part('saga')) as LocalFunction);
      functions.set(localFunctionArn('approvals'), createApprovalsHandler(part('approvals')) as LocalFunction);
      functions.set(localFunctionArn('receipts'), createReceiptsHandler(part('receipts')) as LocalFunction);
      for (const c of connectors) functions.set(localFunctionArn(`connector-${c.name}`), createStepsHandler(part('steps'), c.name) as LocalFunction);

      const runner = new LocalSagaRunner({
        functions,
        substitutions: {
          SagaFunctionArn: localFunctionArn('saga'),
          ApprovalsFunctionArn: localFunctionArn('approvals'),
          ReceiptsFunctionArn: localFunctionArn('receipts'),
        },
        logger: ctx.logger,
        ...(options.retryIntervalMs !== undefined ? { retryIntervalMs: options.retryIntervalMs } : {}),
        ...(options.pauseRetryIntervalMs !== undefined ? { pauseRetryIntervalMs: options.pauseRetryIntervalMs } : {}),
        // The same derivation as the stack's: WaitForApproval waits as long as the approval lives.
        ...(options.approvalTimeoutSeconds !== undefined ? { timeouts: { approvalTimeoutSeconds: options.approvalTimeoutSeconds } } : {}),
      });

      // Every digest declares this schedule, so `audit verify` can tell a vault that stops early.
      const digestIntervalMs = options.digestIntervalMs ?? 60_000;
      const stopping = new AbortController();
      const metrics = new FileMetrics(ctx.stateDir);
      composition = composeLocal(
        {
          stateDir: ctx.stateDir,
          dynamo: { client: ctx.dynamo.client, tableName: ctx.dynamo.tableName },
          secrets: ctx.secrets,
          logger: ctx.logger,
          tokens: devIssuerTokens(ctx.issuer),
          workflow: runner,
          callbacks: runner,
          connectorFunction: (connector: string) => localFunctionArn(`connector-${connector}`),
          ...(options.readFastPath === false
            ? {}
            : {
                invoke: {
                  call: (fn: string, payload: unknown) => runner.invokeFunction(fn, payload),
                  receiptsFunction: localFunctionArn('receipts'),
                  sagaFunction: localFunctionArn('saga'),
                },
              }),
          vendorBaseUrls: vendors.baseUrls,
          vendorFetch: stoppableFetch(stopping.signal),
          ...(options.limits ? { limits: options.limits } : {}),
          ...(options.random ? { random: options.random } : {}),
          ...(options.rateLimitClock ? { rateLimitClock: options.rateLimitClock } : {}),
          ...(options.anomalyClock ? { anomalyClock: options.anomalyClock } : {}),
          ...(options.delegationExpiryClock ? { delegationExpiryClock: options.delegationExpiryClock } : {}),
          metrics,
          ...(options.onMetricRefused ? { onMetricRefused: options.onMetricRefused } : {}),
        },
        {
          ...(options.intake ? { intake: options.intake } : {}),
          ...(options.grantTtlSeconds !== undefined ? { grantTtlSeconds: options.grantTtlSeconds } : {}),
          ...(options.approvalTimeoutSeconds !== undefined ? { approvalTimeoutSeconds: options.approvalTimeoutSeconds } : {}),
          ...(options.vendorTimeoutMs !== undefined ? { vendorTimeoutMs: options.vendorTimeoutMs } : {}),
          // A digest per receipt would re-list the vault every time; like the hourly schedule
          // in AWS, digests are written on a timer here (and on demand, and at shutdown).
          digestIntervalMs,
          ...(options.requireDelegation ? { requireDelegation: true } : {}),
          ...(options.mcpConformanceFixtures ? { mcpConformanceFixtures: true } : {}),
        },
      );
      const receipts = composition.vault;
      // A writer that died (SIGKILL, a crash) left a head that still promises a successor: its
      // successor is written now, not a whole interval after the restart, so the GAP the
      // verifier reports for the outage spans the outage, not the outage plus an interval.
      const head = await latestDigest(receipts.store, new Date()).catch((error: unknown) => void ctx.logger.error('digest failed', { error }));
      if (head?.digest.heartbeat && !head.digest.heartbeat.stopped) {
        await receipts.writeDigestNow().catch((error: unknown) => ctx.logger.error('digest failed', { error }));
      }
      const digestTimer = setInterval(() => {
        receipts.writeDigestNow().catch((error: unknown) => ctx.logger.error('digest failed', { error }));
      }, digestIntervalMs);
      digestTimer.unref();
      const reconcileIntervalMs = options.reconcileIntervalMs ?? 15 * 60_000;
      let reconciling: Promise<unknown> = Promise.resolve();
      // A workflow still running in this process is not stalled, however long its action has
      // not moved (a pause being waited out): only runs that died are started again.
      const resumeDeps = () => ({
        ...composition!.reconciler.resume!,
        workflow: { start: async (id: string, input: { actionId: string }, kind?: WorkflowKind) => (runner.isRunning(id) ? undefined : runner.start(id, input, kind)) },
      });
      const reconcileTimer =
        reconcileIntervalMs > 0
          ? setInterval(() => {
              // One run at a time: a slow vendor never stacks runs up.
              // Like the scheduled function: actions a dead workflow left unfinished first.
              reconciling = reconciling.then(() =>
                resumeStalledActions(resumeDeps())
                  .then(() => reconcile(composition!.reconcile))
                  .catch((error: unknown) => ctx.logger.error('reconcile failed', { error: error instanceof Error ? error.name : 'unknown' })),
              );
            }, reconcileIntervalMs)
          : undefined;
      reconcileTimer?.unref();
      const resumeTimer =
        options.resumeIntervalMs && options.resumeIntervalMs > 0
          ? setInterval(() => {
              // On the reconcile chain: one resume or reconcile at a time.
              reconciling = reconciling.then(() =>
                resumeStalledActions(resumeDeps(), options.resumeStalledAfterMs !== undefined ? { stalledAfterMs: options.resumeStalledAfterMs } : {}).catch((error: unknown) =>
                  ctx.logger.error('resume of stalled actions failed', { error: error instanceof Error ? error.name : 'unknown' }),
                ),
              );
            }, options.resumeIntervalMs)
          : undefined;
      resumeTimer?.unref();
      const gaugeIntervalMs = options.approvalGaugeIntervalMs ?? LOCAL_PENDING_APPROVALS_SAMPLE_MS;
      let gauging: Promise<unknown> = Promise.resolve();
      const sampleApprovals = () => {
        // One sample at a time; a failed one is logged and the next tries again.
        gauging = gauging.then(() =>
          measurePendingApprovals(composition!.approvalGauge).catch((error: unknown) => ctx.logger.error('approvals gauge failed', { error: error instanceof Error ? error.name : 'unknown' })),
        );
      };
      const gaugeTimer = gaugeIntervalMs > 0 ? setInterval(sampleApprovals, gaugeIntervalMs) : undefined;
      gaugeTimer?.unref();
      if (gaugeTimer) sampleApprovals();
      const expiryIntervalMs = options.delegationExpiryIntervalMs ?? 60_000;
      let sweeping: Promise<unknown> = Promise.resolve();
      const sweepExpiries = () => {
        // One sweep at a time here (in AWS concurrent ones are safe too: expiry.ts says why).
        sweeping = sweeping.then(() =>
          sweepExpiredDelegations(composition!.delegationExpiry).catch((error: unknown) =>
            ctx.logger.error('delegation expiry sweep failed', { error: error instanceof Error ? error.name : 'unknown' }),
          ),
        );
      };
      const expiryTimer = expiryIntervalMs > 0 ? setInterval(sweepExpiries, expiryIntervalMs) : undefined;
      expiryTimer?.unref();
      if (expiryTimer) sweepExpiries();
      const handlers: Record<string, LambdaHandler> = {
        intake: createIntakeHandler(part('intake')) as LambdaHandler,
        approvals: createApprovalsHandler(part('approvals')) as LambdaHandler,
        receipts: createReceiptsHandler(part('receipts')) as LambdaHandler,
        reconcile: createReconcileHandler(part('reconciler')) as LambdaHandler,
      };

      // Everything a previous run left unfinished: every step is idempotent, so running the
      // saga again either resumes it, compensates it or just writes its receipt.
      const unfinished = await unfinishedActions(ctx.dynamo);
      for (const id of unfinished) await runner.start(id, { actionId: id });
      if (unfinished.length > 0) ctx.logger.info('resumed unfinished actions', { count: unfinished.length });

      const vendorsFile = join(ctx.stateDir, SANDBOX_VENDORS_FILE);
      await writeFile(vendorsFile, JSON.stringify({ baseUrls: vendors.baseUrls, adminTokens: vendors.adminTokens }), { mode: 0o600 });

      onStarted?.({ runner, composition, vendors, ledger, store, receipts, metrics });
      return {
        async stop() {
          await rm(vendorsFile, { force: true });
          clearInterval(digestTimer);
          if (reconcileTimer) clearInterval(reconcileTimer);
          if (resumeTimer) clearInterval(resumeTimer);
          if (gaugeTimer) clearInterval(gaugeTimer);
          if (expiryTimer) clearInterval(expiryTimer);
          await reconciling;
          await gauging;
          await sweeping;
          // Vendor calls in flight end now (their steps are retried on the next start, with
          // the same idempotency keys); close() then waits for their handlers to record that.
          stopping.abort(new RuntimeStoppingError());
          await runner.close();
          // The closing digest says the writer stopped here, so a stopped vault still verifies.
          await receipts.writeDigestNow({ closing: true }).catch((error: unknown) => ctx.logger.error('digest failed', { error }));
          metrics.flush();
          if (!options.externalVendors) await vendors.close();
        },
        handlers,
        ...(options.mcpConformanceFixtures ? { mcpInterceptor: mcpPushFixtures((token) => ctx.issuer.verify(token)) } : {}),
        info: {
          ...(options.mcpConformanceFixtures ? { 'MCP fixtures': 'the conformance suite\'s test_* tools are served (conformance run only)' } : {}),
          ...Object.fromEntries(Object.entries(vendors.baseUrls).map(([name, url]) => [`${name} vendor`, url])),
          delegations: options.requireDelegation
            ? 'required (requireDelegation on: an agent needs a live delegation, POST /v1/delegations)'
            : 'not required (turn on: npm start -- --require-delegation, or AIRLOCK_REQUIRE_DELEGATION=1)',
        },
      };
    },
  };
}

/** Starts the local runtime with the whole control plane plugged in. */
export async function startControlPlane(
  options: LocalRuntimeOptions & { controlPlane?: ControlPlaneOptions } = {},
): Promise<LocalRuntime & { controlPlane: ControlPlane }> {
  let cp: ControlPlane | undefined;
  const { controlPlane, services, ...rest } = options;
  const runtime = await startLocalRuntime({
    ...rest,
    services: [controlPlaneService(controlPlane, (started) => (cp = started)), ...(services ?? [])],
  });
  if (!cp) throw new Error('the control plane did not start');
  return Object.assign(runtime, { controlPlane: cp });
}
