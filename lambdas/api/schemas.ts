import * as z from 'zod';
import { FunctionCallingFormats } from '../tools/function-calling';
import { ActionIdPattern } from '../shared/ids';
import { ActorSchema } from '../shared/principal';
import { ApprovalIdPattern } from '../shared/ids';
import { MetricGroups } from '../observability/catalog';
import { ActionStatusSchema, ApprovalStatusSchema } from './requests';

export {
  ActionListQuerySchema,
  ActionStatusSchema,
  ApprovalListQuerySchema,
  ApprovalStatusSchema,
  CancelBodySchema,
  DecisionBodySchema,
  LimitsQuerySchema,
  MetricsQuerySchema,
  ToolsQuerySchema,
} from './requests';

/**
 * The wire shapes of the HTTP API as zod schemas: the bodies the handlers answer with, and
 * (re-exported from requests.ts, which handlers import directly) the query strings and bodies
 * they parse. The OpenAPI document (openapi.ts) is generated
 * from these, and the view functions are typed with `z.infer` of them (or checked against
 * them below), so the published contract and the code cannot drift apart silently.
 *
 * `.meta({ id })` names a schema as a reusable component (`#/components/schemas/<id>`).
 */

// ── shared ──────────────────────────────────────────────────────────────────

/** An instant as `Date.toISOString()` writes it (UTC, milliseconds). */
const TimestampSchema = z.iso.datetime().meta({ id: 'Timestamp' });
const ActionIdSchema = z.string().regex(ActionIdPattern).meta({ id: 'ActionId', description: '`act_` + ULID.' });
const ApprovalIdSchema = z.string().regex(ApprovalIdPattern).meta({ id: 'ApprovalId', description: '`apr_` + ULID.' });
const PlanHashSchema = z
  .string()
  .regex(/^[0-9a-f]{64}$/)
  .meta({ id: 'PlanHash', description: 'SHA-256 (hex) of the canonical plan: what approvals bind to.' });

export const VoteSchema = z
  .object({ voter: z.string(), decision: z.enum(['approve', 'reject']), comment: z.string().optional(), at: TimestampSchema })
  .meta({ id: 'Vote' });
export type VoteView = z.infer<typeof VoteSchema>;

// ── errors ──────────────────────────────────────────────────────────────────

/** One thing wrong with a request (see problem.ts `Violation`). */
export const ViolationSchema = z
  .object({
    path: z.string().meta({ description: 'JSON pointer into the body (`/plan/0/arguments/to`), or `header:<Name>` / `query:<name>`.' }),
    message: z.string(),
  })
  .meta({ id: 'Violation' });

/** Which spend cap refused, and by how much (spend/caps.ts `CapExceeded`); money in minor units of `currency`. */
export const SpendCapExceededSchema = z
  .object({
    capId: z.string().meta({ description: 'The cap\'s id in policies/limits.json (`spendCaps`).' }),
    scope: z.enum(['principal', 'department', 'tenant']),
    period: z.enum(['day', 'month']).meta({ description: 'UTC day or month.' }),
    limit: z.number().int().min(0).meta({ description: 'The cap, minor units of the base currency.' }),
    used: z.number().int().min(0).meta({ description: 'Already reserved or spent against it this period.' }),
    requested: z.number().int().min(0).meta({ description: 'What this plan or step needed.' }),
    currency: z.string().meta({ description: 'The base currency (ISO 4217) the figures are in.' }),
    declared: z
      .object({ amount: z.number(), currency: z.string() })
      .optional()
      .meta({ description: 'The cap as the limits file states it, when that is another currency (converted with the configured rates).' }),
  })
  .meta({ id: 'SpendCapExceeded' });

/** RFC 9457 problem document; extension members vary by `type`. */
export const ProblemSchema = z
  .object({
    type: z.string().meta({ description: 'Stable URN (`urn:airlock:problem:<name>`); switch on this, never on `title`.' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().meta({ description: 'What went wrong and what to do about it, written for a human or an LLM.' }),
    instance: z.string().optional(),
    violations: z.array(ViolationSchema).optional().meta({ description: 'Every violation found (`validation`).' }),
    retryAfter: z.number().int().min(0).optional().meta({ description: 'Seconds to wait before retrying, also in the Retry-After header (`idempotency-in-progress`, `unavailable`, `quota-exceeded`, `circuit-open`).' }),
    requestId: z.string().optional().meta({ description: 'Correlates a 5xx with the server logs (`internal`, `unavailable`).' }),
    policyIds: z.array(z.string()).optional().meta({ description: 'The Cedar policies behind a refusal (`approval-forbidden`).' }),
    limit: z.number().int().optional().meta({ description: 'The body size limit in bytes (`payload-too-large`); the delegation\'s budget for the period, minor units of `currency` (`delegation-budget-exceeded`).' }),
    allow: z.array(z.string()).optional().meta({ description: 'The methods the path accepts (`method-not-allowed`).' }),
    approvalStatus: ApprovalStatusSchema.optional().meta({ description: 'Where the approval stands (`approval-closed`).' }),
    actionStatus: ActionStatusSchema.optional().meta({ description: 'Where the action stands (`approval-closed`).' }),
    reason: z
      .union([z.enum(['invalid', 'timed_out', 'gone']), z.string().max(500)])
      .optional()
      .meta({ description: 'Why the workflow no longer waits: `invalid`, `timed_out` or `gone` (`approval-closed`); the reason the halt gives (`halted`).' }),
    haltId: z.string().optional().meta({ description: 'The halt that refuses the work (`halted`); `hlt_` + ULID.' }),
    haltScope: z.enum(['all', 'connector', 'tool', 'agent', 'principal']).optional().meta({ description: 'What the halt covers (`halted`).' }),
    haltTarget: z.string().nullable().optional().meta({ description: 'The connector, tool, agent or principal halted; null for `all` (`halted`).' }),
    haltMode: z.enum(['stop', 'pause']).optional().meta({ description: 'Whether running work is stopped and compensated or held (`halted`).' }),
    connector: z.string().optional().meta({ description: 'The connector whose circuit breaker is open (`circuit-open`).' }),
    requiredRole: z.string().optional().meta({ description: 'The role the kill switch needs (`forbidden`).' }),
    expiresAt: TimestampSchema.optional().meta({ description: 'When the approval expired (`approval-expired`).' }),
    planHash: PlanHashSchema.optional().meta({ description: 'The plan waiting for approval (`plan-mismatch`).' }),
    vote: VoteSchema.optional().meta({ description: 'The vote already cast (`vote-conflict`).' }),
    spendCap: SpendCapExceededSchema.optional().meta({ description: 'The cap the plan would cross (`spend-cap-exceeded`).' }),
    missing: z.enum(['no-agent', 'no-delegation', 'tools-not-covered']).optional().meta({ description: 'What is missing (`delegation-required`): the token names no agent, the agent holds no live delegation from the principal, or its live delegations do not cover every tool.' }),
    agent: z.string().nullable().optional().meta({ description: 'The verified agent (act.sub, else azp, else client_id); null when the token names none (`delegation-required`).' }),
    tools: z.array(z.string()).optional().meta({ description: 'The tools no live delegation of the agent covers (`delegation-required`).' }),
    delegationId: z.string().optional().meta({ description: 'The delegation whose budget would be passed (`delegation-budget-exceeded`).' }),
    used: z.number().int().optional().meta({ description: 'Reserved or spent under the delegation this period, minor units of `currency` (`delegation-budget-exceeded`).' }),
    requested: z.number().int().optional().meta({ description: 'What the action\'s known commit steps need, minor units of `currency` (`delegation-budget-exceeded`).' }),
    currency: z.string().optional().meta({ description: 'ISO 4217 code of `limit`, `used` and `requested` (`delegation-budget-exceeded`).' }),
    'violated-policies': z.array(z.string()).optional().meta({ description: 'The rate-limit policies the request would exceed (`quota-exceeded`).' }),
  })
  .meta({
    id: 'Problem',
    description: 'RFC 9457 problem details (application/problem+json). Each extension member names the problem types that carry it; a new member is added here before any response carries it.',
  });

/** The 403 answer to POST /v1/actions when policy denies the action (it is recorded and receipted). */
export const PolicyDeniedProblemSchema = ProblemSchema.extend({
  actionId: ActionIdSchema,
  policyIds: z.array(z.string()),
  reasons: z.array(z.string()),
  policySetVersion: z.string().nullable(),
}).meta({
  id: 'PolicyDeniedProblem',
  description: 'Denied by policy or by a spend cap: the recorded action, the deciding policies (none for a cap) and their reasons; `spendCap` names the cap.',
});

// ── actions ─────────────────────────────────────────────────────────────────

const DecisionOutcomeSchema = z.enum(['allow', 'deny', 'require_approval']).meta({ id: 'DecisionOutcome' });

/** The decision for one step of the plan (policy/types.ts `StepDecision`). */
export const StepDecisionSchema = z
  .object({
    id: z.string(),
    outcome: DecisionOutcomeSchema,
    policyIds: z.array(z.string()),
    reasons: z.array(z.string()),
    quorum: z.number().int().min(0).meta({ description: 'Distinct approvers this step needs; 0 unless require_approval.' }),
    approverRule: z.string().nullable().meta({ description: 'Who may approve this step (`manager`, `role:<Role>`, joined by ` and `); null unless require_approval.' }),
  })
  .meta({ id: 'StepDecision' });

/** What a shadow-mode policy file would have decided (policy/types.ts `ShadowOutcome`). */
export const ShadowOutcomeSchema = z
  .object({
    file: z.string().meta({ description: 'The shadow-mode policy file.' }),
    outcome: DecisionOutcomeSchema,
    policyIds: z.array(z.string()),
    reasons: z.array(z.string()),
    quorum: z.number().int().min(0),
  })
  .meta({ id: 'ShadowOutcome', description: 'What a shadow-mode policy file would have decided, had it been enforced; never changes the outcome.' });

/** What policy decided, as stored on the action. */
export const DecisionSchema = z
  .object({
    outcome: DecisionOutcomeSchema,
    policyIds: z.array(z.string()),
    reasons: z.array(z.string()),
    quorum: z.number().int().min(0),
    approverRule: z.string().nullable(),
    policySetVersion: z.string(),
    limitsVersion: z.string().optional().meta({ description: 'SHA-256 of the limits file (policies/limits.json) in force when decided.' }),
    evaluationMicros: z.number(),
    spendCap: SpendCapExceededSchema.optional().meta({ description: 'Set when the plan\'s known amounts would cross a spend cap: the deny names it.' }),
    steps: z.array(StepDecisionSchema).optional(),
    shadow: z.array(ShadowOutcomeSchema).optional(),
    decidedAt: TimestampSchema,
  })
  .meta({ id: 'Decision' });

/** POST /v1/decisions: the decision policy would make now, and the plan hash it covers. */
export const DecisionPreviewSchema = z.object({ decision: DecisionSchema, planHash: PlanHashSchema }).meta({ id: 'DecisionPreview' });

const StepStatusSchema = z.enum(['pending', 'running', 'completed', 'failed']);

/** A step of an action as its owner sees it; run-time details appear once the saga ran it. */
export const ActionStepSchema = z
  .object({
    id: z.string(),
    tool: z.string(),
    status: StepStatusSchema,
    attempts: z.number().int().optional(),
    output: z.unknown().optional(),
    error: z.object({ name: z.string(), message: z.string() }).optional(),
    startedAt: TimestampSchema.optional(),
    finishedAt: TimestampSchema.optional(),
    compensation: z
      .object({ tool: z.string(), status: z.enum(['running', 'completed', 'failed']), finishedAt: TimestampSchema.optional() })
      .optional()
      .meta({ description: 'The compensating call that undid this step, once the saga ran it.' }),
  })
  .meta({ id: 'ActionStep' });

/** GET /v1/actions/{id}, listings, and the 200 of POST /v1/actions. */
export const ActionViewSchema = z
  .object({
    id: ActionIdSchema,
    status: ActionStatusSchema,
    statusReason: z.string().optional(),
    kind: z.enum(['single', 'plan']),
    mode: z.enum(['execute', 'dry_run']),
    principal: z.object({ sub: z.string() }),
    actor: ActorSchema,
    reason: z.string().optional(),
    planHash: PlanHashSchema,
    steps: z.array(ActionStepSchema),
    decision: DecisionSchema.nullable(),
    approvals: z.array(ApprovalIdSchema).meta({ description: 'Approval ids (GET /v1/approvals/{id}).' }),
    receipt: z.string().nullable().meta({ description: 'Object key of the receipt once written.' }),
    result: z.unknown(),
    createdAt: TimestampSchema,
    updatedAt: TimestampSchema,
    links: z.object({ self: z.string() }),
  })
  .meta({ id: 'Action' });
export type ActionView = z.infer<typeof ActionViewSchema>;

/** The 202 body of POST /v1/actions: accepted, still running or waiting for approval. */
export const AcceptedActionSchema = z
  .object({
    id: ActionIdSchema,
    status: ActionStatusSchema,
    decision: z
      .object({ outcome: DecisionOutcomeSchema, policyIds: z.array(z.string()), reasons: z.array(z.string()), quorum: z.number().int().min(0) })
      .nullable(),
    planHash: PlanHashSchema,
    links: z.object({ self: z.string() }),
  })
  .meta({ id: 'AcceptedAction' });
export type AcceptedAction = z.infer<typeof AcceptedActionSchema>;

export const ActionPageSchema = z
  .object({ items: z.array(ActionViewSchema), nextCursor: z.string().nullable() })
  .meta({ id: 'ActionPage', description: 'Newest first; pass nextCursor as `cursor` for the next page (null on the last).' });
export type ActionPage = z.infer<typeof ActionPageSchema>;

// ── tools ───────────────────────────────────────────────────────────────────

export const ToolSchema = z
  .object({
    name: z.string().meta({ description: '`<connector>.<tool>`, the `tool` of an envelope.' }),
    connector: z.string(),
    description: z.string(),
    tier: z.enum(['read', 'draft', 'commit']),
    inputSchema: z.record(z.string(), z.unknown()).meta({ description: 'JSON Schema (2020-12) of `arguments`.' }),
    outputSchema: z.record(z.string(), z.unknown()).meta({ description: 'JSON Schema (2020-12) of the output `$ref`s may read.' }),
    compensation: z.string().nullable().meta({ description: 'The tool that undoes this one, if any.' }),
    pii: z.object({ input: z.array(z.string()), output: z.array(z.string()) }),
  })
  .meta({ id: 'Tool' });

export const ToolCatalogSchema = z.object({ tools: z.array(ToolSchema) }).meta({ id: 'ToolCatalog' });

export const FunctionToolExportSchema = z
  .object({
    format: z.enum(FunctionCallingFormats),
    tools: z
      .array(z.record(z.string(), z.unknown()))
      .meta({ description: 'The value of the vendor request\'s `tools` field, as is. Names are the safe names (`travel-hold_seat`); a call maps to POST /v1/actions `{"tool": name, "arguments": args}` (for OpenAI, `null` arguments mean absent).' }),
    caveats: z
      .array(z.object({ tool: z.string(), detail: z.string() }))
      .meta({ description: 'Tools the format could not carry whole (exported with `strict: false`, or left out), and why. Empty for the shipped catalog.' }),
  })
  .meta({ id: 'FunctionToolExport' });

// ── approvals ───────────────────────────────────────────────────────────────

const MoneySchema = z.object({ amount: z.number(), currency: z.string() });

const approvalSummaryShape = {
  id: ApprovalIdSchema,
  actionId: ActionIdSchema,
  status: ApprovalStatusSchema,
  planHash: PlanHashSchema.meta({ description: 'Send this back with the decision: it binds the vote to this plan.' }),
  quorum: z.number().int().min(1),
  approverRule: z.string().nullable(),
  requester: z.string(),
  approvalsSoFar: z.number().int().min(0),
  expiresAt: TimestampSchema,
  expired: z.boolean(),
  createdAt: TimestampSchema,
  outcome: z.object({ by: z.string(), reason: z.string(), at: TimestampSchema }).optional(),
  links: z.object({ self: z.string(), decision: z.string(), action: z.string() }),
};

/** The short form of an approval (approval-preview.ts `approvalSummary`). */
export const ApprovalSummarySchema = z.object(approvalSummaryShape);
export type ApprovalSummary = z.infer<typeof ApprovalSummarySchema>;

const requestedByShape = {
  requestedBy: z.object({
    principal: z.string(),
    agent: ActorSchema.meta({ description: 'The agent as the request body named itself (not verified).' }),
    verifiedAgent: z.string().nullable().meta({ description: 'The agent the verified token named (act.sub, else azp, else client_id); null when it named none. This is the agent grants and delegations name.' }),
    delegationId: z.string().nullable().meta({ description: 'The delegation the action runs under (its consent receipt is in the vault); null when none.' }),
  }),
  reason: z.string().nullable(),
};

export const ApprovalListItemSchema = z
  .object({ ...approvalSummaryShape, ...requestedByShape, tools: z.array(z.string()), canDecide: z.boolean() })
  .meta({ id: 'ApprovalListItem' });

export const ApprovalPageSchema = z
  .object({ items: z.array(ApprovalListItemSchema), nextCursor: z.string().nullable() })
  .meta({ id: 'ApprovalPage' });
export type ApprovalPage = z.infer<typeof ApprovalPageSchema>;

export const PreviewStepSchema = z
  .object({
    index: z.number().int(),
    id: z.string(),
    tool: z.string(),
    tier: z.string(),
    vendor: z.string(),
    plain: z.string().meta({ description: 'One sentence: what this step does, to whom, for how much.' }),
    arguments: z.unknown().meta({ description: 'The exact arguments that will be sent (PII masked unless the viewer may decide).' }),
    piiMasked: z.boolean(),
    amount: MoneySchema.nullable(),
    compensation: z.object({ tool: z.string(), description: z.string() }).nullable(),
  })
  .meta({ id: 'PreviewStep' });

export const PreviewViewerSchema = z.object({
  canDecide: z.boolean(),
  refusal: z.string().optional(),
  vote: z.object({ decision: z.string(), at: TimestampSchema }).optional(),
});

export const ApprovalPreviewSchema = z
  .object({
    ...approvalSummaryShape,
    ...requestedByShape,
    mode: z.enum(['execute', 'dry_run']),
    steps: z.array(PreviewStepSchema),
    amountAtStake: z.array(MoneySchema),
    policies: z.object({
      policyIds: z.array(z.string()),
      reasons: z.array(z.string()),
      policySetVersion: z.string().nullable(),
      steps: z.array(StepDecisionSchema).meta({ description: 'The steps that asked for a human, with their quorum and approver rule.' }),
    }),
    votes: z.array(VoteSchema),
    viewer: PreviewViewerSchema,
  })
  .meta({ id: 'ApprovalPreview', description: 'Everything an approver must see before deciding.' });
export type ApprovalPreview = z.infer<typeof ApprovalPreviewSchema>;

export const DecisionResultSchema = z
  .object({
    approvalId: ApprovalIdSchema,
    status: ApprovalStatusSchema,
    vote: VoteSchema,
    recorded: z.boolean().meta({ description: 'False when this repeated a vote already counted.' }),
    approvalsSoFar: z.number().int().min(0),
    quorum: z.number().int().min(1),
  })
  .meta({ id: 'ApprovalDecisionResult' });

// ── receipts ────────────────────────────────────────────────────────────────

/** GET /v1/actions/{id}/receipt: the stored receipt and how far it checks out (receipts/read.ts). */
export const ReceiptViewSchema = z
  .object({
    actionId: ActionIdSchema,
    key: z.string().meta({ description: 'Object key in the audit vault (`receipts/dt=YYYY-MM-DD/<actionId>.json`).' }),
    sha256: z.string().regex(/^[0-9a-f]{64}$/).meta({ description: 'SHA-256 (hex) of `body` as stored.' }),
    size: z.number().int().min(0),
    body: z.string().meta({ description: 'The stored bytes as text (canonical JSON and a newline, docs/receipt.schema.json): save it as is to check the SHA-256.' }),
    verification: z
      .object({
        status: z.enum(['verified', 'pending', 'failed']).meta({ description: '`verified`: listed with this SHA-256 by a digest whose signature is valid; `pending`: no digest covers it yet; `failed`: it does not check out.' }),
        checksum: z.enum(['match', 'mismatch', 'not-listed']),
        signature: z.enum(['valid', 'invalid', 'not-checked']),
        digest: z.object({ key: z.string(), endTime: TimestampSchema, keyId: z.string() }).nullable().meta({ description: 'The digest that covers the receipt\'s write time.' }),
        latestDigest: z.string().nullable().meta({ description: 'The newest digest in the vault (the chain head).' }),
        detail: z.string(),
      })
      .meta({ id: 'ReceiptVerification' }),
  })
  .meta({ id: 'Receipt', description: 'A receipt as stored, and its check against the signed digests.' });
export type ReceiptViewBody = z.infer<typeof ReceiptViewSchema>;
// ── limits ──────────────────────────────────────────────────────────────────

export const QuotaSchema = z
  .object({
    id: z.string().meta({ description: 'The policy id, as in `RateLimit-Policy` and `violated-policies`.' }),
    scope: z.enum(['global', 'principal', 'agent', 'tool', 'connector']),
    subject: z.string().nullable().meta({ description: 'The agent, tool or connector counted; null for global and principal policies (the caller).' }),
    limit: z.number().int().min(1).meta({ description: 'Requests admitted per window (`q`).' }),
    windowSeconds: z.number().int().min(1).meta({ description: 'The fixed window (`w`); windows start at whole multiples of it since the epoch.' }),
    remaining: z.number().int().min(0).meta({ description: 'Left in the current window (`r`), blocks leased by function instances counted as used.' }),
    resetSeconds: z.number().int().min(1).meta({ description: 'Seconds until the window resets (`t`).' }),
    resetAt: TimestampSchema,
  })
  .meta({ id: 'Quota' });

export const LimitsViewSchema = z
  .object({ policies: z.array(QuotaSchema) })
  .meta({ id: 'Limits', description: 'Every rate limit the caller (and, when named, the agent and tool) is counted by.' });

// ── misc ────────────────────────────────────────────────────────────────────

export const HealthSchema = z.object({ status: z.literal('ok') }).meta({ id: 'Health' });

// ── the kill switch ─────────────────────────────────────────────────────────

export { HaltRequestSchema, ResumeRequestSchema } from '../guardrails/halts';

/** A halt as GET/POST/DELETE /v1/halts show it (guardrails/halts.ts `haltView`). */
export const HaltViewSchema = z
  .object({
    id: z.string().meta({ description: '`hlt_` + ULID.' }),
    scope: z.enum(['all', 'connector', 'tool', 'agent', 'principal']),
    target: z.string().nullable().meta({ description: 'The connector, tool, agent or principal `sub`; null for `all`. An agent target covers actions whose token names that verified agent (act.sub, azp, client_id) and those whose envelope declares that `agent.name`.' }),
    mode: z.enum(['stop', 'pause']).meta({ description: '`stop`: running sagas stop before their next step and compensate; `pause`: they wait until resumed.' }),
    reason: z.string(),
    status: z.enum(['active', 'resumed']),
    createdBy: z.string().meta({ description: 'The verified `sub` who halted.' }),
    createdAt: TimestampSchema,
    resumedBy: z.string().nullable(),
    resumedAt: TimestampSchema.nullable(),
    resumeReason: z.string().nullable(),
  })
  .strict()
  .meta({ id: 'Halt' });

export const HaltListSchema = z.object({ items: z.array(HaltViewSchema) }).strict().meta({ id: 'HaltList' });

// ── delegations ─────────────────────────────────────────────────────────────

export { CreateDelegationSchema, RevokeDelegationSchema } from '../delegations/schemas';

/** A delegation as GET/POST/DELETE /v1/delegations show it (delegations/delegations.ts `delegationView`). */
export const DelegationViewSchema = z
  .object({
    id: z.string().meta({ description: '`dlg_` + ULID.' }),
    agent: z.string().meta({ description: 'The agent it was granted to: its tokens\' act.sub, else azp, else client_id.' }),
    tools: z.array(z.string()),
    connectors: z.array(z.string()),
    budget: z
      .object({ amount: z.number(), currency: z.string(), period: z.enum(['day', 'month', 'total']) })
      .strict()
      .nullable()
      .meta({ description: 'What commit steps under it may spend per period (major units); null: no budget of its own.' }),
    rules: z.object({ askForCommit: z.boolean() }).strict(),
    purpose: z.string().nullable(),
    createdAt: TimestampSchema,
    expiresAt: TimestampSchema,
    state: z.enum(['active', 'expired', 'revoked']),
    revokedAt: TimestampSchema.nullable(),
    revokeReason: z.string().nullable(),
    policySetVersion: z.string().meta({ description: 'The policy set in force when it was granted (named in the consent receipt).' }),
    limitsVersion: z.string().meta({ description: 'The limits file in force when it was granted.' }),
    consentReceiptKey: z.string().meta({ description: 'Vault key of the consent receipt (`receipts/dt=YYYY-MM-DD/<id>.consent.json`).' }),
    revocationReceiptKey: z.string().nullable().meta({ description: 'Vault key of the revocation receipt, once revoked.' }),
    expiryReceiptKey: z
      .string()
      .nullable()
      .meta({ description: 'Vault key of the expiry receipt (`receipts/dt=<day it expired>/<id>.expiry.json`), once the expiry sweep has ended it: pending approvals under it cancelled, running work stopped.' }),
  })
  .strict()
  .meta({ id: 'Delegation' });

export const DelegationListSchema = z.object({ items: z.array(DelegationViewSchema) }).strict().meta({ id: 'DelegationList' });

/** DELETE /v1/delegations/{id}: the delegation, revoked, and what happened to the agent's work in flight. */
export const RevokedDelegationSchema = DelegationViewSchema.extend({
  stopped: z
    .object({
      cancelled: z.array(z.string()).meta({ description: 'Actions ended `cancelled` at once (not started, or waiting for approval: the approval is closed).' }),
      stopping: z.array(z.string()).meta({ description: 'Running actions: each stops before its next step, compensates, and ends `cancelled`.' }),
    })
    .strict(),
})
  .strict()
  .meta({ id: 'RevokedDelegation' });
// ── reconciliation ──────────────────────────────────────────────────────────

export { ReconcileRequestSchema } from '../reconcile/operator';

const FindingFixSchema = z.union([
  z.object({ tool: z.string(), outcome: z.enum(['compensated', 'failed']), error: z.string().optional() }).strict(),
  z.object({ skipped: z.string().meta({ description: 'Why nothing was run (no ledger step, no compensation, no longer live at the vendor, ...).' }) }).strict(),
]);

/** A run's report as POST /v1/reconciliations returns it (lambdas/reconcile/reconcile.ts `ReconciliationReport`). */
export const ReconciliationReportSchema = z
  .object({
    type: z.literal('airlock.reconciliation'),
    runId: z.string().meta({ description: '`rec_` + ULID.' }),
    startedAt: TimestampSchema,
    finishedAt: TimestampSchema,
    days: z.array(z.string()).meta({ description: 'The UTC days of ledger steps examined.' }),
    fix: z.boolean(),
    checked: z.record(z.string(), z.object({ steps: z.number().int(), vendorRecords: z.number().int() }).strict()).meta({ description: 'Per connector: steps compared, vendor records listed.' }),
    unreachable: z.array(z.object({ connector: z.string(), error: z.string() }).strict()),
    findings: z.array(
      z
        .object({
          kind: z.enum(['orphan', 'compensated_live', 'duplicate', 'unknown']),
          connector: z.string(),
          tool: z.string(),
          vendorId: z.string(),
          actionId: z.string().optional(),
          stepId: z.string().optional(),
          detail: z.string().meta({ description: 'A sentence naming ids only, never personal data.' }),
          fix: FindingFixSchema.optional().meta({ description: 'With `fix`: what was done about this finding.' }),
        })
        .strict(),
    ),
    receiptKey: z.string().meta({ description: 'Where the report is in the audit vault (`reconciliations/dt=<day>/<runId>.json`).' }),
  })
  .strict()
  .meta({ id: 'ReconciliationReport' });

// ── metrics (local runtime) ─────────────────────────────────────────────────

export const KpiRowSchema = z
  .object({
    name: z.string().meta({ description: 'The metric (docs/runbooks.md lists them).' }),
    group: z.enum(MetricGroups),
    unit: z.enum(['Count', 'Milliseconds', 'Seconds', 'None']),
    dimensions: z.record(z.string(), z.string()).meta({ description: 'Low-cardinality dimensions only (tool, connector, outcome, policy id, reason).' }),
    samples: z.number().int().min(1),
    sum: z.number(),
    min: z.number(),
    max: z.number(),
    avg: z.number(),
    last: z.number().meta({ description: "The newest sample's value: where a gauge (ApprovalsPending, ApprovalOldestPendingAge, HaltsActive) stands." }),
    lastAt: TimestampSchema,
  })
  .meta({ id: 'KpiRow' });

export const KpiSummarySchema = z
  .object({ since: TimestampSchema, until: TimestampSchema, rows: z.array(KpiRowSchema) })
  .meta({ id: 'KpiSummary', description: 'The safety KPIs recorded in the window, one row per metric and dimension set.' });
export type KpiSummaryView = z.infer<typeof KpiSummarySchema>;
