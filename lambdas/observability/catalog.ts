import { TERMINAL_STATUSES } from '../actions/action';
import { VoteRefusalReasons } from '../ports/approvals';
import type { MetricDimensions, MetricUnit, Metrics } from '../ports/metrics';
import type { ToolRegistry } from '../ports/tools';

/**
 * The metric catalog: every metric Airlock emits, its unit, the dashboard group it belongs
 * to and the dimensions it may carry. Nothing outside this list reaches CloudWatch or the
 * local recorder: {@link boundedMetrics} drops unknown names and keys, and replaces any
 * dimension value outside its closed vocabulary with `other`, so a principal id, an amount or
 * anything else a caller chose can never become a dimension (a CloudWatch metric per value).
 */

/** The CloudWatch namespace every Airlock metric is in. */
export const METRICS_NAMESPACE = 'Airlock';

/** The `service` dimension Powertools puts on every metric (its service name). */
export const METRICS_SERVICE = 'airlock';

/** What a dimension value outside its vocabulary is recorded as. */
export const OTHER = 'other';

/** Dashboard groups, in the order the dashboard shows them. */
export const MetricGroups = ['agent traffic', 'safety outcomes', 'approvals', 'vendors', 'audit', 'guardrails'] as const;
export type MetricGroup = (typeof MetricGroups)[number];

/**
 * Where a dimension's allowed values come from: a fixed list, or a set the deployment
 * defines (tools and connectors from the registry, policy ids from the Cedar policy set,
 * rate-limit and spend-cap ids from the limits file). Each is bounded by configuration,
 * never by traffic.
 */
export type Vocabulary = readonly string[] | 'tool' | 'connector' | 'policy' | 'rateLimit' | 'spendCap';

/** One catalog entry. */
export interface MetricDefinition {
  unit: MetricUnit;
  group: MetricGroup;
  /** Allowed dimension keys and their vocabularies (none: the metric has no dimensions). */
  dimensions: Readonly<Record<string, Vocabulary>>;
  /** What one data point means. */
  description: string;
  /** Emitted by the guardrails (rate limits, spend caps, breakers, kill switch). */
  guardrail?: true;
  /**
   * A level sampled from time to time (pending approvals, halts in force), not a count of
   * events: summing its samples means nothing, its latest value is what stands.
   */
  gauge?: true;
}

const ActionKinds = ['single', 'plan'] as const;
const DecisionOutcomes = ['allow', 'deny', 'require_approval'] as const;
const DecisionStages = ['intake', 'run'] as const;
const StepKinds = ['forward', 'compensate'] as const;
const ApprovalOutcomes = ['approved', 'rejected', 'expired'] as const;
const GrantRefusals = ['wrong_connector', 'invalid', 'replayed'] as const;
const IdempotencyConflicts = ['payload_mismatch', 'in_progress'] as const;
const BreakerStates = ['open', 'half_open', 'closed'] as const;
const HaltScopes = ['all', 'connector', 'tool', 'agent', 'principal'] as const;

/** Every metric, by name. */
export const MetricCatalog = {
  // ── agent traffic ──
  ActionRequested: { unit: 'Count', group: 'agent traffic', dimensions: { kind: ActionKinds }, description: 'A new action accepted for a decision (replays excluded).' },
  Decision: { unit: 'Count', group: 'agent traffic', dimensions: { outcome: DecisionOutcomes, stage: DecisionStages }, description: 'A policy decision, at intake or re-checked at run time.' },
  IdempotentReplay: { unit: 'Count', group: 'agent traffic', dimensions: {}, description: 'A retried POST answered from the stored response (Idempotent-Replayed: true).' },
  IdempotencyConflict: { unit: 'Count', group: 'agent traffic', dimensions: { kind: IdempotencyConflicts }, description: 'A key reused with another payload (422) or still in progress (409).' },
  // ── safety outcomes ──
  ActionEnded: { unit: 'Count', group: 'safety outcomes', dimensions: { outcome: TERMINAL_STATUSES }, description: 'An action reached a terminal status (counted once, when its receipt is first stored).' },
  ActionDuration: { unit: 'Milliseconds', group: 'safety outcomes', dimensions: { outcome: TERMINAL_STATUSES }, description: 'Creation to receipt of an ended action.' },
  PolicyDenied: { unit: 'Count', group: 'safety outcomes', dimensions: { policy: 'policy' }, description: 'A deny, once per deciding Cedar policy id (`default` when none matched).' },
  GrantRefused: { unit: 'Count', group: 'safety outcomes', dimensions: { reason: GrantRefusals }, description: 'A connector refused a step grant.' },
  CompensationExecuted: { unit: 'Count', group: 'safety outcomes', dimensions: { connector: 'connector' }, description: 'A compensating call completed (a committed step undone).' },
  CompensationFailed: { unit: 'Count', group: 'safety outcomes', dimensions: { connector: 'connector' }, description: 'A compensation still failing after its retries: a side effect NOT undone.' },
  StepRetried: { unit: 'Count', group: 'safety outcomes', dimensions: { connector: 'connector', kind: StepKinds }, description: 'A step call attempted again (a retry of the same idempotency key).' },
  // ── approvals ──
  ApprovalRequested: { unit: 'Count', group: 'approvals', dimensions: {}, description: 'An approval opened for an action.' },
  ApprovalDecided: { unit: 'Count', group: 'approvals', dimensions: { outcome: ApprovalOutcomes }, description: 'An approval closed: quorum reached, rejected or expired.' },
  ApprovalTimeToDecision: { unit: 'Seconds', group: 'approvals', dimensions: {}, description: 'Request to outcome of a closed approval.' },
  ApprovalsPending: { unit: 'Count', group: 'approvals', dimensions: {}, description: 'Approvals waiting for a decision, sampled by the scheduled approvals gauge.', gauge: true },
  ApprovalOldestPendingAge: { unit: 'Seconds', group: 'approvals', dimensions: {}, description: 'How long the oldest pending approval has waited (0 when none waits), sampled with ApprovalsPending (alarmed).', gauge: true },
  ApprovalVoteRefused: { unit: 'Count', group: 'approvals', dimensions: { reason: VoteRefusalReasons }, description: 'A vote refused (own action, grantee, not permitted, stale plan, …).' },
  // ── vendors ──
  VendorCall: { unit: 'Count', group: 'vendors', dimensions: { connector: 'connector' }, description: 'A call to a vendor API (one step attempt).' },
  VendorError: { unit: 'Count', group: 'vendors', dimensions: { connector: 'connector' }, description: 'A vendor call that failed (retryable or not).' },
  VendorLatency: { unit: 'Milliseconds', group: 'vendors', dimensions: { connector: 'connector' }, description: 'Duration of one vendor call, reconcile included.' },
  // ── audit ──
  ReceiptWritten: { unit: 'Count', group: 'audit', dimensions: {}, description: 'A receipt stored in the vault (first write only).' },
  ReceiptFailed: { unit: 'Count', group: 'audit', dimensions: {}, description: 'A receipt write that failed (the saga retries; ReceiptFailed in the ASL when it gives up).' },
  DigestWritten: { unit: 'Count', group: 'audit', dimensions: {}, description: 'A signed digest stored (the heartbeat of the vault).' },
  DigestAge: { unit: 'Seconds', group: 'audit', dimensions: {}, description: 'Age of the previous digest when a new one is written.' },
  // ── guardrails (issue 15; emitted once those land) ──
  RateLimitRejected: { unit: 'Count', group: 'guardrails', dimensions: { policy: 'rateLimit' }, description: 'A request refused with 429 by a rate-limit policy.', guardrail: true },
  SpendReserved: { unit: 'Count', group: 'guardrails', dimensions: { connector: 'connector' }, description: 'Spend reserved against the caps before a vendor call.', guardrail: true },
  SpendCapRefused: { unit: 'Count', group: 'guardrails', dimensions: { cap: 'spendCap' }, description: 'An action refused because it would cross a spend cap.', guardrail: true },
  BreakerTransition: { unit: 'Count', group: 'guardrails', dimensions: { connector: 'connector', to: BreakerStates }, description: 'A connector circuit breaker changed state.', guardrail: true },
  BreakerRejected: { unit: 'Count', group: 'guardrails', dimensions: { connector: 'connector' }, description: 'New work refused (503) because a connector breaker is open.', guardrail: true },
  ReconcileRun: { unit: 'Count', group: 'vendors', dimensions: { outcome: ['clean', 'findings', 'partial'] }, description: 'A reconciliation run against the vendors finished (partial: a vendor could not be asked).' },
  ReconcileFinding: { unit: 'Count', group: 'vendors', dimensions: { kind: ['orphan', 'compensated_live', 'duplicate', 'unknown'], connector: 'connector' }, description: 'A divergence between the ledger and a vendor found by reconciliation (alarmed).' },
  ReconcileFixed: { unit: 'Count', group: 'vendors', dimensions: { connector: 'connector', outcome: ['compensated', 'failed'] }, description: 'A missing compensation run by `airlock reconcile --fix`.' },
  AnomalyDetected: { unit: 'Count', group: 'guardrails', dimensions: { signal: ['requests', 'denials', 'retries', 'spend'], action: ['alert', 'halt'] }, description: 'An agent departed sharply from its rolling baseline (alarmed); action says whether the guard halted it.', guardrail: true },
  HaltsActive: { unit: 'Count', group: 'guardrails', dimensions: {}, description: 'Kill-switch halts in force, as a function last read them (sampled on each read).', guardrail: true, gauge: true },
  HaltsEverythingActive: { unit: 'Count', group: 'guardrails', dimensions: {}, description: 'Kill-switch halts on everything (scope all) in force, as a function last read them (alarmed: nothing new runs).', guardrail: true, gauge: true },
  HaltRefused: { unit: 'Count', group: 'guardrails', dimensions: { scope: HaltScopes }, description: 'Work refused or stopped by a kill-switch halt.', guardrail: true },
} as const satisfies Record<string, MetricDefinition>;

export type MetricName = keyof typeof MetricCatalog;

/** Whether `name` is in the catalog. */
export function isMetricName(name: string): name is MetricName {
  return Object.prototype.hasOwnProperty.call(MetricCatalog, name);
}

/** The catalog entry of `name` (typed as the general shape). */
export function definitionOf(name: MetricName): MetricDefinition {
  return MetricCatalog[name];
}

/** The deployment's sets behind the named vocabularies. */
export interface MetricVocabulary {
  tools: Iterable<string>;
  connectors: Iterable<string>;
  policies: Iterable<string>;
  rateLimits?: Iterable<string>;
  spendCaps?: Iterable<string>;
}

/** The `policy` value of a deny no Cedar policy decided (default deny). */
export const DEFAULT_DENY_POLICY = 'default';

type Resolved = Record<'tool' | 'connector' | 'policy' | 'rateLimit' | 'spendCap', ReadonlySet<string>>;

function resolve(vocabulary: MetricVocabulary): Resolved {
  return {
    tool: new Set(vocabulary.tools),
    connector: new Set(vocabulary.connectors),
    policy: new Set([...vocabulary.policies, DEFAULT_DENY_POLICY]),
    rateLimit: new Set(vocabulary.rateLimits ?? []),
    spendCap: new Set(vocabulary.spendCaps ?? []),
  };
}

/**
 * The dimensions `name` may carry, taken from `dimensions`: unknown keys are dropped and a
 * value outside its vocabulary becomes {@link OTHER}. Undefined when `name` is not in the
 * catalog (the sample is dropped).
 */
export function boundDimensions(name: string, dimensions: MetricDimensions | undefined, vocabulary: MetricVocabulary): Record<string, string> | undefined {
  return bound(name, dimensions, resolve(vocabulary));
}

function bound(name: string, dimensions: MetricDimensions | undefined, sets: Resolved): Record<string, string> | undefined {
  if (!isMetricName(name)) return undefined;
  const out: Record<string, string> = {};
  for (const [key, allowed] of Object.entries(definitionOf(name).dimensions)) {
    const value = dimensions?.[key];
    if (value === undefined) continue;
    const ok = typeof allowed === 'string' ? sets[allowed].has(value) : allowed.includes(value);
    out[key] = ok ? value : OTHER;
  }
  return out;
}

/** A sample refused by the catalog: what {@link boundedMetrics} reports instead of recording it. */
export interface MetricRefusal {
  name: string;
  why: 'unknown metric' | 'wrong unit' | 'bad value';
}

/**
 * Wraps a metrics adapter so only catalogued names, units and bounded dimensions reach it,
 * and a failing adapter never fails the caller (metrics are best effort by contract).
 * `onRefused` hears of every dropped sample (tests fail on it; production logs it).
 */
export function boundedMetrics(inner: Metrics, vocabulary: MetricVocabulary, onRefused: (refusal: MetricRefusal) => void = () => undefined): Metrics {
  const sets = resolve(vocabulary);
  const guard = (name: string, unit: MetricUnit, value: number, dimensions: MetricDimensions | undefined, emit: (dims: Record<string, string>) => void) => {
    try {
      const dims = bound(name, dimensions, sets);
      if (!dims) return onRefused({ name, why: 'unknown metric' });
      if (definitionOf(name as MetricName).unit !== unit) return onRefused({ name, why: 'wrong unit' });
      if (!Number.isFinite(value) || value < 0) return onRefused({ name, why: 'bad value' });
      emit(dims);
    } catch {
      // Best effort: a metric never fails the request that produced it.
    }
  };
  return {
    count: (name, dimensions, value = 1) => guard(name, 'Count', value, dimensions, (dims) => inner.count(name, dims, value)),
    observe: (name, value, unit, dimensions) => guard(name, unit, value, dimensions, (dims) => inner.observe(name, value, unit, dims)),
  };
}

/** The vocabulary of a deployment: its tools and connectors, policy ids, rate-limit and cap ids. */
export function vocabularyOf(sources: {
  tools: ToolRegistry;
  policies?: readonly { id: string }[];
  limits?: { rateLimits: readonly { id: string }[]; spendCaps: readonly { id: string }[] };
}): MetricVocabulary {
  const tools = sources.tools.all();
  return {
    tools: tools.map((t) => t.fullName),
    connectors: tools.map((t) => t.connector.name),
    policies: (sources.policies ?? []).map((p) => p.id),
    rateLimits: (sources.limits?.rateLimits ?? []).map((r) => r.id),
    spendCaps: (sources.limits?.spendCaps ?? []).map((c) => c.id),
  };
}
