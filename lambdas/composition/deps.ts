import type { ApprovalsDeps } from '../approvals/approvals';
import type { Decider, IntakeConfig } from '../intake/intake';
import type { AccessLog, ActionStore, IdempotencyStore } from '../ports/ledger';
import type { StepStore } from '../ports/steps';
import type { TokenVerifier } from '../ports/tokens';
import type { ToolRegistry } from '../ports/tools';
import type { ReadPath, WorkflowStarter } from '../ports/workflow';
import type { ResumeDeps } from '../saga/resume';
import type { FunctionInvoker } from '../ports/functions';
import type { ReceiptsDeps, WriteReceiptResult } from '../receipts/vault';
import type { SagaDeps } from '../saga/tasks';
import type { CursorCodec } from '../shared/cursor';
import type { RunStepDeps } from '../steps/run-step';
import type { LoadedLimits } from '../limits/config';
import type { IntakeGuardrails } from '../guardrails/intake-guard';
import { HaltGuard, type HaltDeps } from '../guardrails/halts';
import { Breakers } from '../guardrails/breakers';
import type { BreakerStore, HaltStore } from '../ports/guardrails';
import { noMetrics, type Metrics, type MetricsReader } from '../ports/metrics';
import type { Logger } from '../shared/logger';
import type { RateLimiter } from '../limits/rate-limiter';
import type { OperatorReconcileDeps } from '../reconcile/operator';
import type { AnomalyGuard } from '../guardrails/anomaly';
import type { CancelDeps } from '../actions/cancel';
import type { PendingApprovalsGaugeDeps } from '../observability/pending-approvals';
import type { DelegationGate } from '../delegations/gate';
import type { RevocationDeps } from '../delegations/delegations';
import type { ExpirySweepDeps } from '../delegations/expiry';

/**
 * What each function receives from the composition root (aws.ts in Lambda, local.ts in the
 * local runtime): one interface per function, so a handler's dependencies are read in one
 * place. Handlers take a {@link Lazy} of theirs: built on the first invocation, once per cold
 * start, and shared by every later one.
 */

/** A value built on first use and then shared; a failed build is retried on the next call. */
export type Lazy<T> = () => Promise<T>;

/** Memoizes `build` (once per cold start); a rejected build is forgotten so the next call retries. */
export function once<T>(build: () => T | Promise<T>): Lazy<T> {
  let value: Promise<T> | undefined;
  return () => {
    if (!value) {
      const pending = Promise.resolve().then(build);
      value = pending;
      pending.catch(() => {
        if (value === pending) value = undefined;
      });
    }
    return value;
  };
}

/** The intake function: tools, actions, decisions. */
export interface IntakeFunctionDeps {
  actions: ActionStore;
  steps: StepStore;
  idempotency: IdempotencyStore;
  workflow: WorkflowStarter;
  /** An allowed single read call without the saga (issue 17); absent: every action starts the saga. */
  readPath?: ReadPath;
  decider: Decider;
  /** The tools agents may call (the registry port). */
  tools: ToolRegistry;
  intake: IntakeConfig;
  /** Page cursors; its key is read on the first listing, not at cold start. */
  cursors: Lazy<CursorCodec>;
  /** The limits file in force, read once per cold start. */
  limits: LoadedLimits;
  /** Halts and circuit breakers new actions meet. */
  guardrails: IntakeGuardrails;
  /** The kill switch's routes (`/v1/halts`). */
  halts: HaltDeps;
  /** This instance's rate limiter (its leases live as long as the instance). */
  rateLimiter: RateLimiter;
  /** Safety KPIs (bounded by the metric catalog). */
  metrics: Metrics;
  /** Recorded KPIs for `GET /v1/metrics`: the local recorder; absent in AWS (CloudWatch has them). */
  metricsReader?: MetricsReader;
  /** Bearer tokens of the routes that verify their own (MCP): same issuer and audience as the authorizer. */
  tokens: TokenVerifier;
  /** Host names MCP accepts in the Host header (the local runtime: loopback only); unset in AWS. */
  mcpAllowedHosts?: readonly string[];
  /** MCP also serves the conformance suite's `test_*` fixture tools: the local runtime of `npm run test:mcp-conformance` only; never set in AWS. */
  mcpConformanceFixtures?: boolean;
  /** The web console (absolute, or a path on the API's origin): MCP points approvers at its approval pages. */
  consoleUrl?: string;
  /** Per-agent baselines of this instance (absent when limits.json has no `anomaly`). */
  anomaly?: AnomalyGuard;
  /** `POST /v1/actions/{id}/cancel` (and MCP's cancel tool): closes approvals and answers the waiting saga. */
  cancel: CancelDeps;
  /** The access trail: refused role-only reads (`GET /v1/actions?scope=all` by a non-auditor). */
  accessLog: AccessLog;
  /** The delegation each action runs under, and whether one is required (`requireDelegation`). */
  delegations: DelegationGate;
  /** `/v1/delegations`: grants (consent receipts), listings and revocations that stop work in flight. */
  delegationRoutes: RevocationDeps;
}

/** How the saga function's RunRead reaches the connector and receipts functions (synchronous invokes). */
export interface ReadPathCalls {
  invoker: FunctionInvoker;
  receiptsFunction: string;
  /** A connector that has not answered by then leaves its step in doubt (the Standard saga takes over). */
  connectorTimeoutMs: number;
  receiptTimeoutMs: number;
}

/** The saga function: EvaluatePolicy, IssueGrant, the saga's bookkeeping tasks, and RunRead (issue 17). */
export type SagaFunctionDeps = SagaDeps & { limits: LoadedLimits; metrics: Metrics; readPath?: ReadPathCalls };

/** The approvals function: the saga's RequestApproval task and the approvers' routes. */
export interface ApprovalsFunctionDeps extends ApprovalsDeps {
  cursors: Lazy<CursorCodec>;
  limits: LoadedLimits;
  rateLimiter: RateLimiter;
  metrics: Metrics;
}

/**
 * A connector function's step runner, per connector: in Lambda the one it serves (undefined
 * asks for that one); locally one per connector.
 */
export type StepsFunctionDeps = (connector?: string) => RunStepDeps & { metrics: Metrics };

/** The receipts function: WriteReceipt and WriteDigest. */
export interface ReceiptsFunctionDeps {
  deps: ReceiptsDeps & { metrics: Metrics };
  /** This instance's rate limiter: GET /v1/actions/{id}/receipt counts like every /v1 route. */
  rateLimiter: RateLimiter;
  /** Runs after every stored receipt (locally, optionally: a digest right away). */
  afterReceipt?: (result: WriteReceiptResult) => Promise<void>;
}

/** The approvals gauge function: the pending partition of the status index, and the metrics it emits. */
export type ApprovalGaugeFunctionDeps = PendingApprovalsGaugeDeps;

/** The delegation expiry function (the schedule's target): ends expired delegations, with their receipts. */
export type DelegationExpiryFunctionDeps = ExpirySweepDeps;

/** The reconcile function: the scheduled run's dependencies, and what `POST /v1/reconciliations` adds. */
export interface ReconcileFunctionDeps extends OperatorReconcileDeps {
  /** This instance's rate limiter: the route counts like every /v1 route. */
  rateLimiter: RateLimiter;
  /** The schedule's other job: hand actions a dead workflow left unfinished to the saga (absent: not this deployment's). */
  resume?: ResumeDeps;
}

/** One function's guardrails: its breaker view, its halt cache and the kill switch's use cases. */
export interface FunctionGuardrails {
  breakers: Breakers;
  halts: HaltGuard;
  haltStore: HaltStore;
  haltDeps: HaltDeps;
}

/**
 * Builds a function's guardrails over the ledger's breaker and halt items. One per function
 * instance: its caches are what bound how late it sees a breaker move or a halt.
 */
export function functionGuardrails(options: {
  store: BreakerStore & HaltStore;
  tools: ToolRegistry;
  limits: LoadedLimits;
  now: () => Date;
  logger: Logger;
  /** Who records breaker moves, for their audit trail. */
  actor: string;
  metrics?: Metrics;
  random?: () => number;
  /** After this function writes a halt or a resume (see HaltDeps.onChange). */
  onHaltChange?: () => void;
}): FunctionGuardrails {
  const metrics = options.metrics ?? noMetrics;
  const haltDeps: HaltDeps = {
    halts: options.store,
    tools: options.tools,
    limits: options.limits,
    now: options.now,
    metrics,
    logger: options.logger,
    ...(options.onHaltChange ? { onChange: options.onHaltChange } : {}),
  };
  return {
    breakers: new Breakers({
      store: options.store,
      limits: options.limits,
      now: options.now,
      metrics,
      logger: options.logger,
      actor: options.actor,
      ...(options.random ? { random: options.random } : {}),
    }),
    halts: new HaltGuard(haltDeps),
    haltStore: options.store,
    haltDeps,
  };
}
