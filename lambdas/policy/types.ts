import type { MoneyConfig } from '../shared/money';
import type { Principal } from '../shared/principal';

/**
 * The facts about one tool call the engine decides on. The caller reads them from the
 * connector registry and the validated input; the engine never imports a connector, so it can
 * be tested with fixtures alone.
 */
export interface ToolFacts {
  /** Full tool name, `<connector>.<tool>` (the Cedar resource id). */
  tool: string;
  connector: string;
  tier: 'read' | 'draft' | 'commit';
  /** Human name of the vendor system behind the connector. */
  vendor: string;
  /** Money at stake, major units (dollars) in an ISO 4217 currency. */
  amount?: { amount: number; currency: string };
  /** Who gets paid or ordered from (supplier id, merchant id); matched against the vendor lists. */
  counterparty?: string;
  /** For IAM changes: the `sub` of the person who receives (or loses) the role. */
  grantee?: string;
  /** For IAM changes: the role granted or revoked. */
  role?: string;
}

/** One step of an action: a single call is a plan of one step. */
export interface PlanStep {
  id: string;
  facts: ToolFacts;
}

/** What the engine needs to decide an action. */
export interface DecisionRequest {
  principal: Principal;
  steps: PlanStep[];
  dryRun: boolean;
  /**
   * The spend caps (policies/limits.json) that count this principal's spend, as they stand now;
   * absent or empty when none applies. Policy sees the tightest one per step.
   */
  caps?: readonly CapContext[];
  /** The delegation the action runs under, if any: every step's context carries it as `delegation`. */
  delegation?: DelegationContext;
  now: Date;
}

/** A delegation as Cedar sees it (schema type DelegationContext); money in minor units of the base currency. */
export interface DelegationContext {
  id: string;
  agent: string;
  /** "Always ask me for commit steps". */
  askForCommit: boolean;
  /** The budget for the current period; NO_CAP (1e14) when the delegation sets none. */
  budgetLimit: number;
  /** Reserved or spent under the delegation this period. */
  budgetSpent: number;
}

/** One spend cap as it stands for the principal, minor units of the base currency. */
export interface CapContext {
  id: string;
  /** The cap. */
  limit: number;
  /** Reserved or spent against it this period. */
  used: number;
  /** Only commit steps through these connectors count toward it (undefined: all). */
  connectors?: readonly string[] | undefined;
}

export type Outcome = 'allow' | 'deny' | 'require_approval';

/** The decision for one step. */
export interface StepDecision {
  id: string;
  outcome: Outcome;
  policyIds: string[];
  reasons: string[];
  /** Distinct approvers this step needs; 0 unless require_approval. */
  quorum: number;
  approverRule: string | null;
}

/** What a shadow-mode policy file would have decided, had it been enforced. */
export interface ShadowOutcome {
  file: string;
  outcome: Outcome;
  policyIds: string[];
  reasons: string[];
  quorum: number;
}

/** The engine's answer for an action, recorded on the action and in its receipt. */
export interface Decision {
  outcome: Outcome;
  /** `@id`s of the policies that decided: the matching forbids for a deny, [] for deny-by-default. */
  policyIds: string[];
  /** `@reason`s of those policies (or the engine's own explanation), written for an LLM to act on. */
  reasons: string[];
  /** Distinct approvers needed; 0 unless require_approval. */
  quorum: number;
  /** Human-readable label of who may approve (`manager`, `role:FinanceAdmin`); the real check is `canApprove`. */
  approverRule: string | null;
  /** SHA-256 hex of the schema, the policy files and config.json. */
  policySetVersion: string;
  evaluationMicros: number;
  steps: StepDecision[];
  /** One entry per shadow-mode file: the outcome if it were enforced. Never changes `outcome`. */
  shadow: ShadowOutcome[];
}

/** Asks whether `approver` may approve `requester`'s action. */
export interface ApprovalCheckRequest {
  approver: Principal;
  requester: Principal;
  steps: PlanStep[];
  /**
   * The decision that asked for approval, if the caller stored it: its `require_approval`
   * steps are the ones the approver must be eligible for. When absent, the engine decides again.
   */
  decision?: Pick<Decision, 'steps'>;
  now?: Date;
}

export interface ApprovalCheck {
  allowed: boolean;
  policyIds: string[];
  reasons: string[];
}

/** A loaded policy set, its Cedar sets preparsed once each (on first use when compiled at synth). Build one per process and reuse it. */
export interface PolicyEngine {
  decide(req: DecisionRequest): Decision;
  canApprove(req: ApprovalCheckRequest): ApprovalCheck;
  /** SHA-256 hex of the schema, policy files and config.json. */
  readonly version: string;
  /** Every policy of the set, for tooling and docs. */
  readonly policies: readonly PolicyInfo[];
  /** The base currency and rate table of the set's config.json: how every amount is counted. */
  readonly money: MoneyConfig;
  /**
   * Whether a decision on steps of these tiers can depend on what has been spent: the spend
   * caps' standing (the `capId`, `capSpent`, `capLimit`, `capPlan` context) or the delegation's
   * (`delegation`, whose `budgetSpent` is a counter). False only when every policy that reads
   * them (shadow ones included) starts by testing for another tier (`resource.tier == "commit"
   * && …`). Absent: assume it can.
   */
  capsObservable?(tiers: ReadonlySet<string>): boolean;
}

/** What the engine knows about one policy, from its annotations. */
export interface PolicyInfo {
  id: string;
  file: string;
  effect: 'permit' | 'forbid';
  /** The action the policy's scope names, or null for any action. */
  action: string | null;
  reason: string;
  approvals: number | null;
  approvers: string | null;
  shadow: boolean;
}

/** One problem found in a policy directory, located as precisely as Cedar allows. */
export interface PolicyProblem {
  file: string;
  policyId?: string;
  message: string;
  line?: number;
  column?: number;
}

export interface PolicyValidation {
  ok: boolean;
  errors: PolicyProblem[];
  warnings: PolicyProblem[];
}
