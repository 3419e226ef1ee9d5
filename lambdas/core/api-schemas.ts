import { z } from 'zod';
import { ActionStatuses } from './action';
import { ActorSchema } from './principal';
import { ApprovalStatuses } from '../ports/approvals';
import type { CatalogEntry } from './catalog';
import type { PreviewStep, PreviewViewer } from './approval-preview';
import type { DecisionResult } from './approvals';
import type { StoredDecision } from './action';

/**
 * The wire shapes of the HTTP API as zod schemas: query strings and bodies the handlers
 * parse, and the bodies they answer with. The OpenAPI document (openapi.ts) is generated
 * from these, and the view functions are typed with `z.infer` of them (or checked against
 * them below), so the published contract and the code cannot drift apart silently.
 *
 * `.meta({ id })` names a schema as a reusable component (`#/components/schemas/<id>`).
 */

// ── errors ──────────────────────────────────────────────────────────────────

/** One thing wrong with a request (see problem.ts `Violation`). */
export const ViolationSchema = z
  .object({
    path: z.string().meta({ description: 'JSON pointer into the body (`/plan/0/arguments/to`), or `header:<Name>` / `query:<name>`.' }),
    message: z.string(),
  })
  .meta({ id: 'Violation' });

/** RFC 9457 problem document; extension members vary by `type`. */
export const ProblemSchema = z
  .object({
    type: z.string().meta({ description: 'Stable URN (`urn:airlock:problem:<name>`); switch on this, never on `title`.' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().meta({ description: 'What went wrong and what to do about it, written for a human or an LLM.' }),
    instance: z.string().optional(),
    violations: z.array(ViolationSchema).optional().meta({ description: 'Every violation found (validation problems).' }),
    retryAfter: z.number().int().optional().meta({ description: 'Seconds to wait before retrying (also in the Retry-After header).' }),
    requestId: z.string().optional().meta({ description: 'Correlates a 5xx with the server logs.' }),
    policyIds: z.array(z.string()).optional().meta({ description: 'The Cedar policies behind a denial.' }),
  })
  .loose()
  .meta({ id: 'Problem', description: 'RFC 9457 problem details (application/problem+json).' });

/** The 403 answer to POST /v1/actions when policy denies the action (it is recorded and receipted). */
export const PolicyDeniedProblemSchema = ProblemSchema.extend({
  actionId: z.string(),
  policyIds: z.array(z.string()),
  reasons: z.array(z.string()),
  policySetVersion: z.string().nullable(),
}).meta({ id: 'PolicyDeniedProblem', description: 'Denied by policy: the recorded action, the deciding policies and their reasons.' });

// ── actions ─────────────────────────────────────────────────────────────────

export const ActionStatusSchema = z.enum(ActionStatuses).meta({
  id: 'ActionStatus',
  description: 'received → awaiting_approval → running → completed, or a terminal denied / rejected / expired / failed / compensated / cancelled.',
});

const DecisionOutcomeSchema = z.enum(['allow', 'deny', 'require_approval']);

/** What policy decided, as stored on the action. */
export const DecisionSchema = z
  .object({
    outcome: DecisionOutcomeSchema,
    policyIds: z.array(z.string()),
    reasons: z.array(z.string()),
    quorum: z.number().int(),
    approverRule: z.string().nullable(),
    policySetVersion: z.string(),
    evaluationMicros: z.number(),
    steps: z.array(z.object({ id: z.string(), outcome: z.string(), policyIds: z.array(z.string()), reasons: z.array(z.string()) })).optional(),
    shadow: z.array(z.object({ policyIds: z.array(z.string()), outcome: z.string() })).optional(),
    decidedAt: z.string(),
  })
  .meta({ id: 'Decision' });

/** POST /v1/decisions: the decision policy would make now, and the plan hash it covers. */
export const DecisionPreviewSchema = z
  .object({ decision: DecisionSchema, planHash: z.string().regex(/^[0-9a-f]{64}$/) })
  .meta({ id: 'DecisionPreview' });

/** A step of an action as its owner sees it; run-time details appear once the saga ran it. */
export const ActionStepSchema = z
  .object({
    id: z.string(),
    tool: z.string(),
    status: z.string(),
    attempts: z.number().int().optional(),
    output: z.unknown().optional(),
    error: z.object({ name: z.string(), message: z.string() }).optional(),
    startedAt: z.string().optional(),
    finishedAt: z.string().optional(),
  })
  .loose()
  .meta({ id: 'ActionStep' });

/** GET /v1/actions/{id}, listings, and the 200 of POST /v1/actions. */
export const ActionViewSchema = z
  .object({
    id: z.string(),
    status: ActionStatusSchema,
    statusReason: z.string().optional(),
    kind: z.enum(['single', 'plan']),
    mode: z.enum(['execute', 'dry_run']),
    principal: z.object({ sub: z.string() }),
    actor: ActorSchema,
    reason: z.string().optional(),
    planHash: z.string().meta({ description: 'SHA-256 of the canonical plan: what approvals bind to.' }),
    steps: z.array(ActionStepSchema),
    decision: DecisionSchema.nullable(),
    approvals: z.array(z.string()).meta({ description: 'Approval ids (GET /v1/approvals/{id}).' }),
    receipt: z.string().nullable().meta({ description: 'Object key of the receipt once written.' }),
    result: z.unknown(),
    createdAt: z.string(),
    updatedAt: z.string(),
    links: z.object({ self: z.string() }),
  })
  .meta({ id: 'Action' });
export type ActionView = z.infer<typeof ActionViewSchema>;

/** The 202 body of POST /v1/actions: accepted, still running or waiting for approval. */
export const AcceptedActionSchema = z
  .object({
    id: z.string(),
    status: ActionStatusSchema,
    decision: z
      .object({ outcome: DecisionOutcomeSchema, policyIds: z.array(z.string()), reasons: z.array(z.string()), quorum: z.number().int() })
      .nullable(),
    planHash: z.string(),
    links: z.object({ self: z.string() }),
  })
  .meta({ id: 'AcceptedAction' });
export type AcceptedAction = z.infer<typeof AcceptedActionSchema>;

export const ActionPageSchema = z
  .object({ items: z.array(ActionViewSchema), nextCursor: z.string().nullable() })
  .meta({ id: 'ActionPage', description: 'Newest first; pass nextCursor as `cursor` for the next page (null on the last).' });
export type ActionPage = z.infer<typeof ActionPageSchema>;

/** GET /v1/actions query string. */
export const ActionListQuerySchema = z
  .object({
    status: ActionStatusSchema.optional(),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().min(1).max(2048).optional(),
  })
  .strict();

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

// ── approvals ───────────────────────────────────────────────────────────────

export const ApprovalStatusSchema = z.enum(ApprovalStatuses).meta({ id: 'ApprovalStatus' });

export const VoteSchema = z
  .object({ voter: z.string(), decision: z.enum(['approve', 'reject']), comment: z.string().optional(), at: z.string() })
  .meta({ id: 'Vote' });
export type VoteView = z.infer<typeof VoteSchema>;

const MoneySchema = z.object({ amount: z.number(), currency: z.string() });

const approvalSummaryShape = {
  id: z.string(),
  actionId: z.string(),
  status: ApprovalStatusSchema,
  planHash: z.string().meta({ description: 'Send this back with the decision: it binds the vote to this plan.' }),
  quorum: z.number().int(),
  approverRule: z.string().nullable(),
  requester: z.string(),
  approvalsSoFar: z.number().int(),
  expiresAt: z.string(),
  expired: z.boolean(),
  createdAt: z.string(),
  outcome: z.object({ by: z.string(), reason: z.string(), at: z.string() }).optional(),
  links: z.object({ self: z.string(), decision: z.string(), action: z.string() }),
};

/** The short form of an approval (approval-preview.ts `approvalSummary`). */
export const ApprovalSummarySchema = z.object(approvalSummaryShape);
export type ApprovalSummary = z.infer<typeof ApprovalSummarySchema>;

const requestedByShape = {
  requestedBy: z.object({ principal: z.string(), agent: ActorSchema }),
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

const PreviewViewerSchema = z.object({
  canDecide: z.boolean(),
  refusal: z.string().optional(),
  vote: z.object({ decision: z.string(), at: z.string() }).optional(),
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
      steps: z.array(z.object({ id: z.string(), outcome: z.string(), policyIds: z.array(z.string()), reasons: z.array(z.string()) })),
    }),
    votes: z.array(VoteSchema),
    viewer: PreviewViewerSchema,
  })
  .meta({ id: 'ApprovalPreview', description: 'Everything an approver must see before deciding.' });
export type ApprovalPreview = z.infer<typeof ApprovalPreviewSchema>;

/** GET /v1/approvals query string. */
export const ApprovalListQuerySchema = z
  .object({
    status: ApprovalStatusSchema.default('pending'),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().min(1).max(2048).optional(),
  })
  .strict();

/** POST /v1/approvals/{id}/decision body. */
export const DecisionBodySchema = z
  .object({
    decision: z.enum(['approve', 'reject']),
    planHash: z.string().regex(/^[0-9a-f]{64}$/, 'the planHash shown in the preview (64 hex characters)'),
    comment: z.string().trim().min(1).max(1000).optional(),
  })
  .strict()
  .meta({ id: 'ApprovalDecision' });

export const DecisionResultSchema = z
  .object({
    approvalId: z.string(),
    status: ApprovalStatusSchema,
    vote: VoteSchema,
    recorded: z.boolean().meta({ description: 'False when this repeated a vote already counted.' }),
    approvalsSoFar: z.number().int(),
    quorum: z.number().int(),
  })
  .meta({ id: 'ApprovalDecisionResult' });

// ── misc ────────────────────────────────────────────────────────────────────

export const HealthSchema = z.object({ status: z.literal('ok') }).meta({ id: 'Health' });

// ── compile-time agreement with interfaces owned elsewhere ──────────────────
// These shapes are declared as interfaces in their own modules; a change on either side
// that makes them disagree fails `tsc` here instead of silently changing the contract.

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;

/** Never used at run time: the type checker evaluates it. */
export type ApiSchemaChecks = [
  Assert<Same<CatalogEntry, z.infer<typeof ToolSchema>>>,
  Assert<Same<PreviewStep, z.infer<typeof PreviewStepSchema>>>,
  Assert<Same<PreviewViewer, z.infer<typeof PreviewViewerSchema>>>,
  Assert<Same<DecisionResult, z.infer<typeof DecisionResultSchema>>>,
  Assert<Same<StoredDecision, z.infer<typeof DecisionSchema>>>,
];
