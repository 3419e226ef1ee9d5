import * as z from 'zod';
import { MAX_BODY_BYTES } from '../middleware/http';
import { routes as routeTable, routeKey, type RouteSpec } from './routes';
import { ApprovalIdPattern } from '../shared/ids';
import { HaltIdPattern } from '../guardrails/halts';
import {
  AcceptedActionSchema,
  ActionListQuerySchema,
  ActionPageSchema,
  ActionViewSchema,
  ApprovalListQuerySchema,
  KpiSummarySchema,
  MetricsQuerySchema,
  ApprovalPageSchema,
  ApprovalPreviewSchema,
  ReceiptViewSchema,
  DecisionBodySchema,
  DecisionResultSchema,
  HealthSchema,
  LimitsQuerySchema,
  LimitsViewSchema,
  PolicyDeniedProblemSchema,
  ProblemSchema,
  ToolCatalogSchema,
  ToolsQuerySchema,
  FunctionToolExportSchema,
  DecisionPreviewSchema,
  HaltListSchema,
  ReconcileRequestSchema,
  ReconciliationReportSchema,
  HaltRequestSchema,
  HaltViewSchema,
  ResumeRequestSchema,
  CancelBodySchema,
  CreateDelegationSchema,
  RevokeDelegationSchema,
  DelegationViewSchema,
  DelegationListSchema,
  RevokedDelegationSchema,
} from './schemas';
import { DelegationIdPattern } from '../receipts/consent';
import { toolCatalog } from '../tools/catalog';
import { toolRegistry } from '../tools/registry';
import { EnvelopeSchema, MAX_PLAN_STEPS } from '../intake/envelope';
import { ActionIdPattern } from '../shared/ids';
import { defaultIntakeConfig } from '../intake/intake';
import { ProblemType, type ProblemTypeName } from '../shared/problem';

/**
 * The OpenAPI 3.1 document of the HTTP API, generated from the zod schemas the handlers
 * use (api-schemas.ts, envelope.ts) and from the route table (routes.ts). Nothing here is
 * hand-written JSON Schema: a shape changes in one place and the document follows. The
 * operations below only add what zod cannot know: prose, headers and which errors each
 * route can answer. `npm run openapi` writes it to docs/openapi.json; the intake function
 * serves it at GET /openapi.json.
 */

/** A JSON object (a schema, an operation, the whole document). */
export type JsonObject = { [key: string]: unknown };

/** Version of the API contract (`info.version`); bump it when the contract changes. */
export const API_VERSION = '1.0.0';

const DIALECT = 'https://json-schema.org/draft/2020-12/schema';
/** The local runtime's default port (local/server.ts `DEFAULT_PORT`; a unit test keeps them equal without core importing the server). */
export const LOCAL_PORT = 8787;
const ref = (kind: 'schemas' | 'parameters' | 'headers' | 'responses', name: string) => ({ $ref: `#/components/${kind}/${name}` });

// ── zod → JSON Schema ───────────────────────────────────────────────────────

/** Rewrites zod's `#/$defs/<id>` references to OpenAPI components, in place. */
function relocateRefs(node: unknown): void {
  if (Array.isArray(node)) {
    node.forEach(relocateRefs);
  } else if (node !== null && typeof node === 'object') {
    const obj = node as JsonObject;
    if (typeof obj.$ref === 'string' && obj.$ref.startsWith('#/$defs/')) obj.$ref = `#/components/schemas/${obj.$ref.slice('#/$defs/'.length)}`;
    for (const value of Object.values(obj)) relocateRefs(value);
  }
}

/**
 * Converts named zod schemas in one pass, so every schema with `.meta({ id })` becomes one
 * shared definition. Returns each entry's schema (a `$ref` when it has an id) and the
 * definitions, with references already pointing at `#/components/schemas`.
 */
function convert(entries: Record<string, z.ZodType>, io: 'input' | 'output'): { entries: Record<string, JsonObject>; defs: Record<string, JsonObject> } {
  const json = z.toJSONSchema(z.object(entries), { target: 'draft-2020-12', io, unrepresentable: 'any', cycles: 'ref', reused: 'inline' }) as JsonObject;
  relocateRefs(json);
  return {
    entries: (json.properties ?? {}) as Record<string, JsonObject>,
    defs: (json.$defs ?? {}) as Record<string, JsonObject>,
  };
}

// Request shapes are documented as clients send them (before defaults); responses as sent.
const requests = {
  ActionEnvelope: EnvelopeSchema,
  ApprovalDecision: DecisionBodySchema,
  ActionListQuery: ActionListQuerySchema,
  ApprovalListQuery: ApprovalListQuerySchema,
  HaltRequest: HaltRequestSchema,
  DelegationRequest: CreateDelegationSchema,
  RevokeDelegationRequest: RevokeDelegationSchema,
  ResumeRequest: ResumeRequestSchema,
  ReconcileRequest: ReconcileRequestSchema,
  CancelRequest: CancelBodySchema,
  LimitsQuery: LimitsQuerySchema,
  ToolsQuery: ToolsQuerySchema,
  MetricsQuery: MetricsQuerySchema,
} satisfies Record<string, z.ZodType>;

const responses = {
  Problem: ProblemSchema,
  PolicyDeniedProblem: PolicyDeniedProblemSchema,
  Health: HealthSchema,
  ToolCatalog: ToolCatalogSchema,
  FunctionToolExport: FunctionToolExportSchema,
  Action: ActionViewSchema,
  AcceptedAction: AcceptedActionSchema,
  ActionPage: ActionPageSchema,
  ApprovalPage: ApprovalPageSchema,
  ApprovalPreview: ApprovalPreviewSchema,
  ApprovalDecisionResult: DecisionResultSchema,
  DecisionPreview: DecisionPreviewSchema,
  Halt: HaltViewSchema,
  HaltList: HaltListSchema,
  Delegation: DelegationViewSchema,
  DelegationList: DelegationListSchema,
  RevokedDelegation: RevokedDelegationSchema,
  ReconciliationReport: ReconciliationReportSchema,
  Receipt: ReceiptViewSchema,
  Limits: LimitsViewSchema,
  KpiSummary: KpiSummarySchema,
} satisfies Record<string, z.ZodType>;

type RequestName = keyof typeof requests;
type ResponseName = keyof typeof responses;

function sortKeys<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

// ── what each route answers ─────────────────────────────────────────────────

interface ErrorSpec {
  status: number;
  types: ProblemTypeName[];
  /** When it happens, in a sentence. */
  when: string;
  headers?: string[];
  /** A problem schema with extra members (default: Problem). */
  schema?: ResponseName;
}

interface SuccessSpec {
  status: number;
  description: string;
  schema: ResponseName | JsonObject;
  headers?: string[];
}

interface OperationSpec {
  operationId: string;
  tag: string;
  summary: string;
  description: string;
  parameters?: JsonObject[];
  query?: RequestName;
  body?: RequestName;
  /** The body may be left out (an empty POST). */
  bodyOptional?: true;
  success: SuccessSpec[];
  errors: ErrorSpec[];
  /** Answers in another format than problem+json (MCP's JSON-RPC errors), by status; merged into that status's content. */
  otherResponses?: Record<string, JsonObject>;
}

const HOURS = 3_600_000;

const idempotencyText = [
  '**Idempotency** (draft-ietf-httpapi-idempotency-key-header, with Stripe\'s replay behaviour):',
  '- `Idempotency-Key` is required, once: 1–255 printable ASCII characters (a UUID is a good choice), bare or as a quoted structured-field string (RFC 8941). Missing → 400 `urn:airlock:problem:idempotency-key-missing`. A repeated header, or a comma in a bare key (what a repeated header becomes once joined), → 400 `urn:airlock:problem:validation`; quote a key that contains a comma.',
  '- Keys are scoped to the authenticated principal (`sub`): two people may use the same key without meeting.',
  `- Keys are kept **at least 24 hours** after the request completes (configurable per deployment, ${defaultIntakeConfig.idempotencyRetentionMs / HOURS} h by default, never less than 24 h).`,
  '- Same key, same body (compared as a SHA-256 fingerprint of canonical JSON) → the original status, headers and body are replayed with `Idempotent-Replayed: true`; nothing runs a second time. This includes a 403 denial.',
  '- Same key, different body → 422 `urn:airlock:problem:idempotency-key-reused`. Use a new key for a new request.',
  `- Same key while the first request is still being accepted → 409 \`urn:airlock:problem:idempotency-in-progress\` with \`Retry-After\`; retry with the same key. A request that crashed mid-way stops blocking its key after ${defaultIntakeConfig.idempotencyLockMs / 1000} s.`,
  '- A request rejected by validation (400) stores nothing under its key.',
  '- After a 5xx or a timeout, retry with the same key: the action is created at most once.',
].join('\n');

const preferText = [
  '**Waiting for the result** (`Prefer`, RFC 7240):',
  `- Without \`Prefer\`, an allowed action is awaited up to ${defaultIntakeConfig.syncWaitMs / 1000} s.`,
  `- \`Prefer: wait=N\` waits up to N seconds (at most ${defaultIntakeConfig.maxSyncWaitMs / 1000}).`,
  '- `Prefer: respond-async` answers 202 at once.',
  '- 200 carries the finished action and `Preference-Applied`; otherwise 202 carries the accepted action and `Location` (poll GET /v1/actions/{id}). Actions that need approval always answer 202 with status `awaiting_approval`.',
].join('\n');

function toolsText(): string {
  const lines = toolCatalog(toolRegistry).map((t) => `| \`${t.name}\` | ${t.tier} | ${t.compensation ? `\`${t.compensation}\`` : '—'} |`);
  return [
    '**Tools** (GET /v1/tools has each tool\'s input and output JSON Schema; tiers: `read` changes nothing, `draft` prepares without committing, `commit` changes something outside and, where a compensation is listed, can be undone by it):',
    '',
    '| tool | tier | compensation |',
    '| --- | --- | --- |',
    ...lines,
  ].join('\n');
}

const cursorNote =
  'Pass `nextCursor` from the previous page as `cursor`. Cursors are opaque and signed, and valid only for the caller and the `status` they were issued with (`limit` may change); any other cursor is a 400 with a `query:cursor` violation.';

const operations: Record<string, OperationSpec> = {
  'GET /healthz': {
    operationId: 'getHealth',
    tag: 'meta',
    summary: 'Liveness check',
    description: 'Answers 200 while the function is up. Needs no token and touches no data.',
    success: [{ status: 200, description: 'Up.', schema: 'Health' }],
    errors: [],
  },
  'GET /openapi.json': {
    operationId: 'getOpenApi',
    tag: 'meta',
    summary: 'This OpenAPI document',
    description: 'The OpenAPI 3.1 description of this API, generated from the same zod schemas the handlers validate with. Needs no token.',
    success: [{ status: 200, description: 'The document (also checked in as docs/openapi.json).', schema: { type: 'object', description: 'An OpenAPI 3.1 document.' } }],
    errors: [],
  },
  'GET /v1/tools': {
    operationId: 'listTools',
    tag: 'tools',
    summary: 'The tool catalog',
    description:
      'Every tool an agent may name in an envelope, with its tier, compensation, PII fields and input/output JSON Schemas. ' +
      'With `format=openai|anthropic|gemini`, the same tools as that API\'s tool definitions, ready to paste into a request\'s `tools`: safe names (`travel-hold_seat`, which POST /v1/actions accepts), and for OpenAI schemas in strict mode\'s subset (every object closed, every property required, optional ones nullable, unsupported keywords moved into descriptions); POST /v1/actions reads a `null` optional argument as absent.',
    query: 'ToolsQuery',
    success: [{ status: 200, description: 'The catalog, or the catalog rendered for `format`.', schema: { anyOf: [{ $ref: '#/components/schemas/ToolCatalog' }, { $ref: '#/components/schemas/FunctionToolExport' }] } }],
    errors: [{ status: 400, types: ['validation'], when: 'the query string is invalid (unknown parameter, or a format other than openai, anthropic, gemini)' }],
  },
  'POST /v1/actions': {
    operationId: 'createAction',
    tag: 'actions',
    summary: 'Ask Airlock to do something',
    description: '',
    parameters: [ref('parameters', 'IdempotencyKey'), ref('parameters', 'Prefer')],
    body: 'ActionEnvelope',
    success: [
      {
        status: 200,
        description: 'The action was allowed and finished within the wait: its final state (check `status`: completed, failed, compensated…).',
        schema: 'Action',
        headers: ['Location', 'PreferenceApplied', 'IdempotentReplayed'],
      },
      {
        status: 202,
        description: 'Accepted: still running, or waiting for approval. Poll `Location`.',
        schema: 'AcceptedAction',
        headers: ['Location', 'IdempotentReplayed'],
      },
    ],
    errors: [
      { status: 400, types: ['validation'], when: `the envelope is invalid: unknown tool, arguments failing the tool's schema, unknown fields, a \`$ref\` to a later or missing step, more than ${MAX_PLAN_STEPS} steps, a commit step without compensation before the last step, or a bad Idempotency-Key; \`violations\` lists every problem` },
      { status: 400, types: ['idempotencyKeyMissing'], when: 'the Idempotency-Key header is missing' },
      { status: 403, types: ['policyDenied'], when: 'policy denies the action; it is recorded (`actionId`) and receipted', schema: 'PolicyDeniedProblem', headers: ['IdempotentReplayed'] },
      { status: 403, types: ['halted'], when: 'a kill-switch halt covers the action (everything, one of its connectors or tools, its agent or its principal); `haltId` and `reason` say which and why; nothing is recorded' },
      { status: 403, types: ['delegationRequired'], when: 'the deployment requires a delegation (`requireDelegation`) and the token\'s agent (act.sub, else azp, else client_id) holds no live delegation from this principal covering every tool; `missing` (`no-agent`, `no-delegation`, `tools-not-covered`), `agent` and `tools` say what is missing; the refusal is audited, nothing else is recorded' },
      { status: 403, types: ['delegationBudgetExceeded'], when: 'the plan\'s known commit-tier money would take its delegation past its budget for the period; `delegationId`, `limit`, `used`, `requested` (minor units of `currency`) say by how much; audited, nothing else recorded' },
      { status: 403, types: ['spendCapExceeded'], when: 'the plan\'s known amounts would take a spend cap (policies/limits.json `spendCaps`) past its amount; recorded as denied and receipted, `spendCap` names the cap, how full it is and what the plan needs', schema: 'PolicyDeniedProblem', headers: ['IdempotentReplayed'] },
      { status: 409, types: ['idempotencyInProgress'], when: 'a request with this key is still being accepted', headers: ['RetryAfter'] },
      { status: 422, types: ['idempotencyKeyReused'], when: 'the key was used before with a different body' },
      { status: 503, types: ['circuitOpen'], when: 'the circuit breaker of a connector the action needs is open (its vendor kept failing); `connector` names it; nothing is recorded; retry after the delay', headers: ['RetryAfter'] },
    ],
  },
  'GET /v1/actions': {
    operationId: 'listActions',
    tag: 'actions',
    summary: 'Your actions (or, for auditors, everyone\'s), newest first',
    description: `The caller's own actions, optionally in one status. With \`scope=all\`, auditors (role \`Auditor\`) list every principal's actions created in a time range (\`since\`..\`until\`, default the last 7 days, at most 31), filtered by \`status\`, \`tool\` and \`principal\`; others' outputs show the tools' declared PII fields as \`[pii hidden]\`. A page may hold fewer than \`limit\` items while \`nextCursor\` is set. Anyone else asking for \`scope=all\` gets 403, recorded on the access trail. ${cursorNote}`,
    query: 'ActionListQuery',
    success: [{ status: 200, description: 'One page.', schema: 'ActionPage' }],
    errors: [
      { status: 400, types: ['validation'], when: 'the query string is invalid (unknown parameter, bad status, tool, time or limit, a range over 31 days or reversed, a filter without scope=all, invalid cursor)' },
      { status: 403, types: ['forbidden'], when: 'scope=all without the Auditor role' },
    ],
  },
  'GET /v1/actions/{id}': {
    operationId: 'getAction',
    tag: 'actions',
    summary: 'One action',
    description: `Status, steps, decision, approvals, receipt and timestamps. Visible to its principal, its approvers and auditors; anyone else gets 404 (never 403, so ids cannot be probed). **Waiting for a change** (a long poll): with \`Prefer: wait=N\` (RFC 7240; at most ${defaultIntakeConfig.maxSyncWaitMs / 1000} s) an action that has not finished is answered when its status changes (to \`running\` or \`awaiting_approval\`), when it has ended and its receipt is written (so an end is always answered with its receipt), or after N seconds as it then is; the answer carries \`Preference-Applied\`. One waiting request counts once against the rate limits: wait instead of polling.`,
    parameters: [ref('parameters', 'ActionId'), ref('parameters', 'PreferWait')],
    success: [{ status: 200, description: 'The action (after the wait asked for, if any).', schema: 'Action', headers: ['WaitApplied'] }],
    errors: [{ status: 404, types: ['notFound'], when: 'no such action, or the caller may not see it' }],
  },
  'POST /v1/actions/{id}/cancel': {
    operationId: 'cancelAction',
    tag: 'actions',
    summary: 'Cancel an action',
    description:
      'Withdraws an action that has not finished. Only its principal, or someone with the kill-switch role (limits.json `killSwitch.role`), may cancel it. Received or waiting for approval: it ends `cancelled` at once (200), its approval is closed and leaves the approvers\' inbox, and the waiting workflow is answered. Running: it stops before its next step, what it did is compensated, and it ends `cancelled` (202; poll the action; a last step already under way finishes first, and the action may then end `completed`). Already cancelled: the same answer again (idempotent). Otherwise finished: 409. Who cancelled and why are on the audit chain (`action.cancelled`) and in the receipt.',
    parameters: [ref('parameters', 'ActionId')],
    body: 'CancelRequest',
    bodyOptional: true,
    success: [
      { status: 200, description: 'The action, ended `cancelled`.', schema: 'Action' },
      { status: 202, description: 'The action, still running: it stops before its next step and compensates.', schema: 'Action' },
    ],
    errors: [
      { status: 400, types: ['validation'], when: 'the body is invalid; `violations` lists every problem' },
      { status: 403, types: ['forbidden'], when: 'the caller may see the action but is neither its principal nor holds the kill-switch role (`requiredRole`)' },
      { status: 404, types: ['notFound'], when: 'no such action, or the caller may not see it' },
      { status: 409, types: ['conflict'], when: 'the action already finished otherwise (`actionStatus`)' },
    ],
  },
  'GET /v1/actions/{id}/receipt': {
    operationId: 'getReceipt',
    tag: 'actions',
    summary: 'An action\'s receipt, verified',
    description:
      'The receipt exactly as stored in the audit vault, its SHA-256, and its check against the signed digests: the digest that covers its write time must list it with that SHA-256, and that digest\'s Ed25519 signature must verify with the key published in the vault. Visible to whoever may see the action. The whole vault (chain, gaps, pinned keys) is checked by `airlock audit verify`.',
    parameters: [ref('parameters', 'ActionId')],
    success: [{ status: 200, description: 'The receipt and its verification.', schema: 'Receipt' }],
    errors: [{ status: 404, types: ['notFound'], when: 'no such action, the caller may not see it, or its receipt is not written yet' }],
  },
  'POST /v1/decisions': {
    operationId: 'previewDecision',
    tag: 'actions',
    summary: 'What policy would decide, without acting',
    description:
      'Validates an envelope exactly as POST /v1/actions does and returns the Cedar decision (outcome, policy ids, reasons, quorum, approver rule, policy-set version, shadow outcomes) and the plan hash. The delegation is matched as POST /v1/actions matches it (the token\'s verified agent): Cedar sees the same `context.delegation` (its rules, budget and what is spent of it so far), and an action that POST /v1/actions would refuse for its delegation is refused here with the same problem. Nothing is recorded (refusals included) and no Idempotency-Key is needed: a preview for agents and policy authors.',
    body: 'ActionEnvelope',
    success: [{ status: 200, description: 'The decision policy would make now.', schema: 'DecisionPreview' }],
    errors: [
      { status: 400, types: ['validation'], when: 'the envelope is invalid; `violations` lists every problem' },
      { status: 403, types: ['delegationRequired'], when: 'the deployment requires a delegation (`requireDelegation`) and the token\'s agent holds no live delegation from this principal covering every tool (as POST /v1/actions would refuse it); `missing`, `agent` and `tools` say what is missing; nothing is recorded' },
      { status: 403, types: ['delegationBudgetExceeded'], when: 'the plan\'s known commit-tier money would take its delegation past its budget for the period (as POST /v1/actions would refuse it); nothing is recorded' },
    ],
  },
  'GET /v1/limits': {
    operationId: 'getLimits',
    tag: 'limits',
    summary: 'Your rate limits',
    description:
      'Every rate limit the caller is counted by (global and per principal; with `agent`, that agent\'s; with `tool`, that tool\'s and its connector\'s), with the limit, the window, what is left of it and when it resets. This request itself counts like any other.',
    query: 'LimitsQuery',
    success: [{ status: 200, description: 'The quotas.', schema: 'Limits' }],
    errors: [{ status: 400, types: ['validation'], when: 'the query string is invalid (unknown parameter, an agent name over 128 characters, an unknown tool)' }],
  },
  'GET /v1/approvals': {
    operationId: 'listApprovals',
    tag: 'approvals',
    summary: 'Approvals inbox',
    description: `With \`status=pending\` (the default): the unexpired approvals the caller may decide. Other statuses: those the caller may view (requester, eligible approvers, auditors). Newest first. ${cursorNote}`,
    query: 'ApprovalListQuery',
    success: [{ status: 200, description: 'One page.', schema: 'ApprovalPage' }],
    errors: [{ status: 400, types: ['validation'], when: 'the query string is invalid (unknown parameter, bad status or limit, invalid cursor)' }],
  },
  'GET /v1/approvals/{id}': {
    operationId: 'getApproval',
    tag: 'approvals',
    summary: 'Preview what would be approved',
    description: 'Who asked and why, every step in plain words with the exact arguments, the money at stake, the policies that asked for a human, how each step is undone, the votes so far, and the `planHash` a decision must carry. PII is masked for viewers who may not decide.',
    parameters: [ref('parameters', 'ApprovalId')],
    success: [{ status: 200, description: 'The preview.', schema: 'ApprovalPreview' }],
    errors: [{ status: 404, types: ['notFound'], when: 'no such approval, or the caller may not see it' }],
  },
  'POST /v1/approvals/{id}/decision': {
    operationId: 'decideApproval',
    tag: 'approvals',
    summary: 'Approve or reject',
    description:
      'Records the caller\'s vote on the plan identified by `planHash` (from the preview). Nobody approves their own action or one that grants them something; quorum counts distinct people. Repeating the same vote is harmless (200, `recorded: false`); changing it is a 409.',
    parameters: [ref('parameters', 'ApprovalId')],
    body: 'ApprovalDecision',
    success: [{ status: 200, description: 'The vote and where the approval stands.', schema: 'ApprovalDecisionResult' }],
    errors: [
      { status: 400, types: ['validation'], when: 'the body is invalid; `violations` lists every problem' },
      { status: 403, types: ['approvalForbidden'], when: 'the caller may not decide this approval (requester, grantee, or not an eligible approver); `policyIds` says why' },
      { status: 404, types: ['notFound'], when: 'no such approval, or the caller may not see it' },
      { status: 409, types: ['approvalClosed'], when: 'the approval is already decided, or the action ended or no longer waits' },
      { status: 409, types: ['approvalExpired'], when: 'the approval expired' },
      { status: 409, types: ['planMismatch'], when: 'the `planHash` sent is not the plan waiting for approval; fetch the preview again' },
      { status: 409, types: ['voteConflict'], when: 'the caller already voted the other way' },
      { status: 403, types: ['halted'], when: 'a kill-switch halt covers the action; the refused vote is recorded' },
    ],
  },
  'GET /v1/halts': {
    operationId: 'listHalts',
    tag: 'halts',
    summary: 'The kill switch: every halt',
    description: 'Every halt, active and resumed, newest first. Only principals with the role named in limits.json `killSwitch.role` may list, halt or resume; a refusal is audited.',
    success: [{ status: 200, description: 'The halts.', schema: 'HaltList' }],
    errors: [{ status: 403, types: ['forbidden'], when: 'the caller lacks the kill-switch role (`requiredRole`); the attempt is audited' }],
  },
  'POST /v1/halts': {
    operationId: 'createHalt',
    tag: 'halts',
    summary: 'Halt everything, a connector, a tool, an agent or a principal',
    description:
      'Records a halt, in force on every function within `killSwitch.propagationSeconds` (limits.json). New actions it covers get 403 `urn:airlock:problem:halted`; running sagas stop before their next step and compensate what they did (`mode: stop`, the default) or wait until the halt is resumed (`mode: pause`); votes on halted work are refused. An `agent` halt covers work whose token names that verified agent (`act.sub`, `azp`, `client_id`) or whose envelope declares that `agent.name`: renaming itself never takes an agent out of a halt. Halts survive restarts and are audited with who and why; the actions they met show it in their receipts.',
    body: 'HaltRequest',
    success: [{ status: 201, description: 'The halt, in force.', schema: 'Halt', headers: ['HaltLocation'] }],
    errors: [
      { status: 400, types: ['validation'], when: 'the body is invalid, a target is missing or given for `all`, or the connector or tool is not in the registry; `violations` lists every problem' },
      { status: 403, types: ['forbidden'], when: 'the caller lacks the kill-switch role (`requiredRole`); the attempt is audited' },
    ],
  },
  'DELETE /v1/halts/{id}': {
    operationId: 'resumeHalt',
    tag: 'halts',
    summary: 'Resume: end a halt, with a reason',
    description: 'Ends the halt: new work is accepted again and paused sagas continue (each function notices within `killSwitch.propagationSeconds`). The body says why; who and why are audited.',
    parameters: [ref('parameters', 'HaltId')],
    body: 'ResumeRequest',
    success: [{ status: 200, description: 'The halt, resumed.', schema: 'Halt' }],
    errors: [
      { status: 400, types: ['validation'], when: 'the body is invalid; `violations` lists every problem' },
      { status: 403, types: ['forbidden'], when: 'the caller lacks the kill-switch role (`requiredRole`); the attempt is audited' },
      { status: 404, types: ['notFound'], when: 'no such halt' },
      { status: 409, types: ['conflict'], when: 'the halt was already resumed' },
    ],
  },
  'GET /v1/delegations': {
    operationId: 'listDelegations',
    tag: 'delegations',
    summary: 'Your delegations',
    description: 'Every delegation the caller granted (active, expired and revoked), newest first. Only the caller\'s own: a principal never sees another\'s.',
    success: [{ status: 200, description: 'The delegations.', schema: 'DelegationList' }],
    errors: [],
  },
  'POST /v1/delegations': {
    operationId: 'createDelegation',
    tag: 'delegations',
    summary: 'Delegate to an agent: tools, budget, expiry, stricter rules',
    description:
      'The caller (the principal, from the verified token) grants an agent an execution envelope: the tools and/or connectors it may use for the caller, a spend budget per period (day, month, or the whole delegation), an expiry, and optional stricter rules (`askForCommit`: every commit step needs approval). The agent is identified by the claims of its tokens: `act.sub` (RFC 8693), else `azp`, else `client_id`. A consent receipt (who, which agent, the scope, when, the expiry, the policy-set and limits versions) is written to the audit vault first and covered by the signed digests like any receipt. Only the principal themself may grant: a token that names an agent is refused (403, audited). Actions of that agent for the caller then run under it: Cedar sees it as `context.delegation`, its budget is held with every commit step, and each action\'s receipt names it. With `requireDelegation` (on in the deployed stack) an action without one is refused.',
    body: 'DelegationRequest',
    success: [{ status: 201, description: 'The delegation, in force.', schema: 'Delegation', headers: ['DelegationLocation'] }],
    errors: [
      { status: 400, types: ['validation'], when: 'the body is invalid, names no tool or connector, an unknown tool or connector, a negative budget or one in a currency without a rate, or an expiry not in the future (or more than 366 days ahead); `violations` lists every problem; nothing is recorded' },
      { status: 403, types: ['forbidden'], when: 'the token acts for an agent (it carries act, azp or client_id): only the principal themself grants; audited' },
    ],
  },
  'DELETE /v1/delegations/{id}': {
    operationId: 'revokeDelegation',
    tag: 'delegations',
    summary: 'Revoke a delegation: stops the agent\'s work in flight',
    description:
      'Revokes one of the caller\'s delegations. The agent\'s next action under it is refused at once; its actions for the caller that are waiting for approval end `cancelled` (the approval is closed and leaves the inbox); running ones stop before their next step, compensate what they did and end `cancelled` (`stopped` lists both). A revocation receipt is written to the audit vault. Repeating it answers the same (and sweeps again). Another principal\'s delegation id is a 404, like an unknown one, so ids cannot be probed.',
    parameters: [ref('parameters', 'DelegationId')],
    body: 'RevokeDelegationRequest',
    bodyOptional: true,
    success: [{ status: 200, description: 'The delegation, revoked, and the work it stopped.', schema: 'RevokedDelegation' }],
    errors: [
      { status: 400, types: ['validation'], when: 'the body is invalid (only `reason`, 1–500 characters); `violations` lists every problem' },
      { status: 403, types: ['forbidden'], when: 'the token acts for an agent: only the principal themself revokes; audited' },
      { status: 404, types: ['notFound'], when: 'no such delegation among the caller\'s own' },
    ],
  },
  'POST /v1/reconciliations': {
    operationId: 'runReconciliation',
    tag: 'reconciliations',
    summary: 'Reconcile recent commit steps against the vendors (and fix, if asked)',
    description:
      'Asks each reconciled connector\'s vendor what it holds for the commit steps of the last `days` UTC days (2 by default) and for our credential, and compares with the ledger: `orphan`, `compensated_live`, `duplicate`, `unknown`. Every finding is a `reconcile.finding` event on its action and a `ReconcileFinding` metric; the report is written once to the audit vault. With `fix: true` the missing compensation runs where that is safe (a known step whose tool has a compensation, still live at the vendor) and each finding says what was done. Same role as the kill switch (limits.json `killSwitch.role`); a refusal is audited. The scheduled run (every 15 minutes) never fixes.',
    body: 'ReconcileRequest',
    success: [{ status: 200, description: 'The run\'s report.', schema: 'ReconciliationReport' }],
    errors: [
      { status: 400, types: ['validation'], when: 'the body is invalid (`fix` boolean, `days` 1–31, nothing else); `violations` lists every problem' },
      { status: 403, types: ['forbidden'], when: 'the caller lacks the kill-switch role (`requiredRole`); the attempt is audited' },
    ],
  },
  'GET /v1/metrics': {
    operationId: 'getMetrics',
    tag: 'metrics',
    summary: 'Safety KPIs (local runtime)',
    description:
      'The safety KPIs the local runtime recorded in the window (`since`, default 1h): actions by outcome, denials by policy, approvals and time to decision, compensations, idempotency replays and conflicts, grant refusals, vendor calls, errors and latency, receipts and digests, and the guardrails\' counters. One row per metric and dimension set. For auditors and admins (roles `Auditor`, `Admin`). **Local runtime only**: on AWS the same metrics are in CloudWatch (namespace `Airlock`, the `Airlock` dashboard) and API Gateway has no such route.',
    query: 'MetricsQuery',
    success: [{ status: 200, description: 'The KPIs.', schema: 'KpiSummary' }],
    errors: [
      { status: 400, types: ['validation'], when: 'the query string is invalid (unknown parameter, or `since` is not a window such as 30m, 1h, 7d)' },
      { status: 403, types: ['forbidden'], when: 'the caller is neither an auditor nor an admin' },
    ],
  },
  'POST /mcp': {
    operationId: 'mcp',
    tag: 'mcp',
    summary: 'MCP server (Streamable HTTP, stateless)',
    description: [
      'The Model Context Protocol endpoint: one JSON-RPC message per POST, answered with one JSON body (an event stream only for the conformance run\'s fixture tools, below). Serves the 2026-07-28 revision (stateless: every request carries its `_meta` envelope; `server/discover`) and 2025-era clients (`initialize`, served without a session). No GET stream and no session id.',
      '`tools/list` lists every catalog tool under a name every function-calling API accepts (`travel.hold_seat` → `travel-hold_seat`) with `inputSchema`, `outputSchema` and truthful annotations, plus `airlock-submit_plan`, `airlock-get_action`, `airlock-approvals_status` and `airlock-cancel_action` (not supported yet: always an error result).',
      '`tools/call` runs exactly POST /v1/actions (validation, policy, limits, saga, receipt). Idempotency: `_meta["io.airlock/idempotency-key"]` has the Idempotency-Key header\'s semantics; without it the key is derived from the client, the JSON-RPC id, the tool and the arguments, so a retried request is answered from the first. Problems (denials, violations, halts, limits) are `isError` results carrying the problem document. An action that needs approval returns at once with `status: awaiting_approval`, who approves and how to follow it.',
      'Tasks (2026-07-28 extension `io.modelcontextprotocol/tasks`, declared in the request\'s client capabilities): a call whose action has not ended answers a task (`resultType: "task"`) whose `taskId` is the action id; `tasks/get` follows the action, `tasks/update` is acknowledged, `tasks/cancel` is a JSON-RPC error (no cancel API yet).',
      'Authentication: the same bearer JWT as the other routes, verified by the function so that a missing or invalid token gets 401 with `WWW-Authenticate: Bearer resource_metadata="<base>/.well-known/oauth-protected-resource/mcp"` (RFC 9728).',
    ].join('\n\n'),
    success: [
      { status: 200, description: 'The JSON-RPC response (a result, or a JSON-RPC error such as -32601 method not found or -32602 invalid params).', schema: { $ref: '#/components/schemas/JsonRpcMessage' } },
    ],
    errors: [
      { status: 401, types: ['unauthorized'], when: 'the bearer token is missing, invalid or expired; `WWW-Authenticate` names the protected resource metadata', headers: ['WWWAuthenticateResourceMetadata'] },
    ],
    otherResponses: Object.fromEntries([
      [
        '200',
        {
          description:
            'As a Server-Sent Events stream instead, only when a call sends notifications before its result: the conformance run\'s fixture tools (progress, log messages; `npm run test:mcp-conformance` only). Each event\'s data is one JSON-RPC message (the schema below); the last is the response. Airlock\'s own tools always answer JSON.',
          content: { 'text/event-stream': { schema: { $ref: '#/components/schemas/JsonRpcMessage' } } },
        },
      ],
      ['202', { description: 'A notification (or a client\'s response) was accepted; no body.' }],
      ...[
        [400, 'A JSON-RPC error: the body is not JSON (-32700), a batch or not a JSON-RPC message (-32600), an unsupported protocol version or a bad `_meta` envelope.'],
        [403, 'A JSON-RPC error: the Host or Origin header is not one this server answers (DNS-rebinding protection on the local runtime).'],
        [406, 'A JSON-RPC error: the Accept header does not accept application/json.'],
        [413, 'A JSON-RPC error (-32600) for a message over the limit that reached the function.'],
        [415, 'A JSON-RPC error: the body is not sent as application/json.'],
      ].map(([status, description]) => [String(status), { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/JsonRpcMessage' } } } }]),
    ]),
  },
  'GET /.well-known/oauth-protected-resource': {
    operationId: 'getProtectedResourceMetadata',
    tag: 'mcp',
    summary: 'OAuth 2.0 Protected Resource Metadata (RFC 9728)',
    description: 'The MCP resource (`<base>/mcp`), the issuer of its tokens (`authorization_servers`) and how to send them. Needs no token.',
    success: [{ status: 200, description: 'The metadata.', schema: { $ref: '#/components/schemas/ProtectedResourceMetadata' } }],
    errors: [],
  },
  'GET /.well-known/oauth-protected-resource/mcp': {
    operationId: 'getMcpProtectedResourceMetadata',
    tag: 'mcp',
    summary: 'OAuth 2.0 Protected Resource Metadata of /mcp (RFC 9728 §3.1 path form)',
    description: 'The same document at the path RFC 9728 derives from the resource `<base>/mcp`; the URL the 401 of POST /mcp names.',
    success: [{ status: 200, description: 'The metadata.', schema: { $ref: '#/components/schemas/ProtectedResourceMetadata' } }],
    errors: [],
  },
};

/** Schemas of the MCP routes that are not zod wire shapes of the HTTP API. */
const mcpSchemas: Record<string, JsonObject> = {
  JsonRpcMessage: {
    type: 'object',
    description: 'One JSON-RPC 2.0 message (MCP).',
    properties: {
      jsonrpc: { const: '2.0' },
      id: { anyOf: [{ type: 'string' }, { type: 'integer' }, { type: 'null' }] },
      result: { type: 'object' },
      error: {
        type: 'object',
        properties: { code: { type: 'integer' }, message: { type: 'string' }, data: {} },
        required: ['code', 'message'],
      },
    },
    required: ['jsonrpc'],
  },
  ProtectedResourceMetadata: {
    type: 'object',
    description: 'RFC 9728 protected resource metadata.',
    properties: {
      resource: { type: 'string' },
      authorization_servers: { type: 'array', items: { type: 'string' } },
      bearer_methods_supported: { type: 'array', items: { const: 'header' } },
      resource_name: { type: 'string' },
      resource_documentation: { type: 'string' },
    },
    required: ['resource', 'authorization_servers', 'bearer_methods_supported'],
  },
};

/**
 * Errors every route gets from the shared edge: the local server / API Gateway stand-in
 * (server.ts) and the HTTP middleware (http.ts). Derived from their code paths: the server
 * caps every request body, checks the token on authenticated routes, and answers 503 while it
 * shuts down or when a handler times out; http.ts parses the body of every route that takes
 * one (it ignores a GET's) and turns anything unexpected into a 500.
 */
function edgeErrors(route: RouteSpec, spec: OperationSpec): ErrorSpec[] {
  const errors: ErrorSpec[] = [];
  if (route.auth) errors.push({ status: 401, types: ['unauthorized'], when: 'the bearer token is missing, invalid or expired, sent in more than one Authorization header, or carries `sub`, `roles`, `manager` or `department` in another shape than documented', headers: ['WWWAuthenticate'] });
  if (spec.body) {
    errors.push({ status: 400, types: ['malformedJson'], when: 'the body is not JSON' });
    errors.push({ status: 415, types: ['unsupportedMediaType'], when: 'the body is not sent as application/json' });
  }
  errors.push({ status: 413, types: ['payloadTooLarge'], when: `the request body exceeds ${MAX_BODY_BYTES} bytes` });
  if (counted(route)) {
    errors.push({
      status: 429,
      types: ['quotaExceeded'],
      when: 'the request would exceed a rate limit (`violated-policies` names them; nothing was recorded or run); retry after `Retry-After` seconds',
      headers: ['RetryAfter', 'RateLimitPolicy', 'RateLimit'],
    });
  }
  // Every authenticated route reads the ledger except the catalog, which is static.
  const ledger = route.auth && route.path !== '/v1/tools' && route.path !== '/v1/metrics';
  // Only a listing hands the ledger something a client shaped (its cursor position and filter).
  if (ledger && spec.query) errors.push({ status: 400, types: ['validation'], when: 'the ledger refused the listing as malformed (input that got past validation; never a 500)' });
  errors.push({
    status: 503,
    types: ['unavailable'],
    when: `${ledger ? 'the ledger is throttling, ' : ''}the request timed out, or the server is shutting down; retry after the delay`,
    headers: ['RetryAfter'],
  });
  errors.push({ status: 500, types: ['internal'], when: 'something failed on the server; nothing internal is disclosed (`requestId` correlates with logs)' });
  return errors;
}

/** Routes the rate limits count (every authenticated /v1 route): their answers carry the RateLimit fields. */
const counted = (route: RouteSpec) => route.auth && route.path.startsWith('/v1/');

/** The problem+json response for one status: the problem schema narrowed to its types and status. */
function problemResponse(errors: ErrorSpec[]): JsonObject {
  const headers = [...new Set(errors.flatMap((e) => e.headers ?? []))];
  const status = errors[0]!.status;
  // Types that share a schema are one alternative; types with their own members (a policy
  // denial's actionId) are another, so each document is checked against its own shape.
  const bySchema = new Map<string, string[]>();
  for (const e of errors) {
    const name = e.schema ?? 'Problem';
    bySchema.set(name, [...new Set([...(bySchema.get(name) ?? []), ...e.types.map((t) => ProblemType[t])])]);
  }
  const alternatives = [...bySchema].map(([schemaName, types]) => ({
    allOf: [ref('schemas', schemaName), { type: 'object', properties: { type: { enum: types }, status: { const: status } } }],
  }));
  return {
    description: errors.map((e) => `\`${e.types.map((t) => ProblemType[t]).join('`, `')}\`: ${e.when}.`).join('\n'),
    ...(headers.length ? { headers: Object.fromEntries(headers.map((h) => [headerName(h), ref('headers', h)])) } : {}),
    content: {
      'application/problem+json': {
        schema: alternatives.length === 1 ? alternatives[0] : { oneOf: alternatives },
      },
    },
  };
}

/** Response headers; `required` when every response that lists one always sends it. */
const headerDocs: Record<string, { name: string; description: string; required: boolean; schema: JsonObject }> = {
  Location: { name: 'Location', description: 'Where to read the action.', required: true, schema: { type: 'string', pattern: `^/v1/actions/${ActionIdPattern.source.slice(1)}` } },
  PreferenceApplied: { name: 'Preference-Applied', description: 'The wait that was honoured (RFC 7240), e.g. `wait=5`.', required: true, schema: { type: 'string', pattern: '^wait=\\d+$' } },
  WaitApplied: { name: 'Preference-Applied', description: 'Sent when the request asked to wait (`Prefer: wait=N`): the wait honoured (RFC 7240), e.g. `wait=20`.', required: false, schema: { type: 'string', pattern: '^wait=\\d+$' } },
  IdempotentReplayed: {
    name: 'Idempotent-Replayed',
    description: '`true` when this is the stored answer to an earlier request with the same Idempotency-Key.',
    required: false,
    schema: { type: 'string', enum: ['true'] },
  },
  HaltLocation: { name: 'Location', description: 'Where the halt is listed.', required: true, schema: { type: 'string', pattern: '^/v1/halts/hlt_[0-9A-HJKMNP-TV-Z]{26}$' } },
  DelegationLocation: { name: 'Location', description: 'Where the delegation is revoked.', required: true, schema: { type: 'string', pattern: '^/v1/delegations/dlg_[0-9A-HJKMNP-TV-Z]{26}$' } },
  RetryAfter: { name: 'Retry-After', description: 'Seconds to wait before retrying.', required: true, schema: { type: 'integer', minimum: 0 } },
  RateLimitPolicy: {
    name: 'RateLimit-Policy',
    description:
      'The tightest rate limit that counted this request (draft-ietf-httpapi-ratelimit-headers): its id, quota `q` and window `w` in seconds, e.g. `"principal-burst";q=600;w=60`. Absent when no limit applies.',
    required: false,
    schema: { type: 'string', pattern: '^"[a-z][a-z0-9-]*";q=[1-9][0-9]*;w=[1-9][0-9]*$' },
  },
  RateLimit: {
    name: 'RateLimit',
    description:
      'Where that limit stands: its id, the requests `r` left in the window and the seconds `t` until it resets, e.g. `"principal-burst";r=42;t=17`. `r` is this server instance\'s estimate (GET /v1/limits reads the counters).',
    required: false,
    schema: { type: 'string', pattern: '^"[a-z][a-z0-9-]*";r=[0-9]+;t=[1-9][0-9]*$' },
  },
  WWWAuthenticate: { name: 'WWW-Authenticate', description: '`Bearer`.', required: true, schema: { type: 'string', enum: ['Bearer'] } },
  WWWAuthenticateResourceMetadata: {
    name: 'WWW-Authenticate',
    description: '`Bearer resource_metadata="…"` naming the RFC 9728 metadata, with `error="invalid_token"` when a token was sent.',
    required: true,
    schema: { type: 'string', pattern: '^Bearer resource_metadata="[^"]+"(, error="invalid_token")?$' },
  },
  Allow: { name: 'Allow', description: 'The methods the path accepts (RFC 9110), e.g. `GET, POST`.', required: true, schema: { type: 'string' } },
};

const headerName = (key: string) => headerDocs[key]!.name;

function queryParameters(schema: JsonObject): JsonObject[] {
  const props = (schema.properties ?? {}) as Record<string, JsonObject>;
  const required = new Set((schema.required ?? []) as string[]);
  return Object.entries(props).map(([name, s]) => {
    const { description, ...rest } = s;
    return {
      name,
      in: 'query',
      required: required.has(name),
      ...(typeof description === 'string' ? { description } : {}),
      schema: rest,
    };
  });
}

function operation(route: RouteSpec, spec: OperationSpec, schemas: Record<string, JsonObject>): JsonObject {
  const byStatus = new Map<number, ErrorSpec[]>();
  for (const e of [...spec.errors, ...edgeErrors(route, spec)]) byStatus.set(e.status, [...(byStatus.get(e.status) ?? []), e]);
  const responses: Record<string, JsonObject> = {};
  for (const s of spec.success) {
    responses[String(s.status)] = {
      description: s.description,
      ...(s.headers ? { headers: Object.fromEntries(s.headers.map((h) => [headerName(h), ref('headers', h)])) } : {}),
      content: { 'application/json': { schema: typeof s.schema === 'string' ? ref('schemas', s.schema) : s.schema } },
    };
  }
  for (const status of [...byStatus.keys()].sort((a, b) => a - b)) responses[String(status)] = problemResponse(byStatus.get(status)!);
  for (const [status, other] of Object.entries(spec.otherResponses ?? {})) {
    const existing = responses[status];
    responses[status] = existing
      ? { ...existing, description: `${String(existing.description)}\n${String(other.description)}`, content: { ...(existing.content as JsonObject), ...(other.content as JsonObject) } }
      : other;
  }
  if (counted(route)) {
    // Counted after the token is checked: every answer but a 401 says where the tightest limit stands.
    for (const [status, response] of Object.entries(responses)) {
      if (status === '401') continue;
      response.headers = { ...(response.headers as JsonObject | undefined), [headerName('RateLimitPolicy')]: ref('headers', 'RateLimitPolicy'), [headerName('RateLimit')]: ref('headers', 'RateLimit') };
    }
  }

  const description =
    routeKey(route) === 'POST /v1/actions'
      ? [
          'Submits an action envelope: one tool call or a plan of ordered steps whose arguments may read earlier steps\' outputs with `{"$ref": "steps.<id>.output.<path>"}`. Airlock validates it, decides with policy (allow, require approval, deny), records it and runs it as a saga that can be undone. The principal comes only from the bearer token; `agent` is recorded as the actor.',
          idempotencyText,
          preferText,
          toolsText(),
        ].join('\n\n')
      : spec.description;

  return {
    operationId: spec.operationId,
    tags: [spec.tag],
    summary: spec.summary,
    description,
    security: route.auth || route.verifiesOwnToken ? [{ bearerAuth: [] }] : [],
    ...(spec.parameters || spec.query
      ? { parameters: [...(spec.parameters ?? []), ...(spec.query ? queryParameters(schemas[spec.query]!) : [])] }
      : {}),
    ...(spec.body ? { requestBody: { required: !spec.bodyOptional, content: { 'application/json': { schema: schemas[spec.body]! } } } } : {}),
    responses,
  };
}

const problemTypesText = Object.entries(ProblemType)
  .map(([, urn]) => `\`${urn}\``)
  .join(', ');

/**
 * Builds the document. Throws when a route in the table has no operation here (or the
 * other way round), so a new route cannot ship undocumented.
 */
export function buildOpenApiDocument(table: readonly RouteSpec[] = routeTable): JsonObject {
  const keys = new Set(table.map(routeKey));
  const undocumented = [...keys].filter((k) => !operations[k]);
  const unrouted = Object.keys(operations).filter((k) => !keys.has(k));
  if (undocumented.length || unrouted.length) {
    throw new Error(`OpenAPI operations and routes.ts disagree: undocumented ${undocumented.join(', ') || 'none'}; not routed ${unrouted.join(', ') || 'none'}`);
  }

  const req = convert(requests, 'input');
  const res = convert(responses, 'output');
  const defs: Record<string, JsonObject> = { ...res.defs, ...mcpSchemas };
  for (const [id, def] of Object.entries(req.defs)) {
    if (defs[id] && JSON.stringify(defs[id]) !== JSON.stringify(def)) {
      throw new Error(`Schema ${id} differs between requests and responses; give one of them another id`);
    }
    defs[id] = def;
  }
  const schemas = { ...req.entries, ...res.entries };

  const paths: Record<string, Record<string, JsonObject>> = {};
  for (const route of table) {
    (paths[route.path] ??= {})[route.method.toLowerCase()] = operation(route, operations[routeKey(route)]!, schemas);
  }

  return {
    openapi: '3.1.0',
    jsonSchemaDialect: DIALECT,
    info: {
      title: 'Airlock API',
      version: API_VERSION,
      summary: 'The control plane between AI agents and the systems they act on.',
      description: [
        'Agents submit actions (tool calls or plans); Airlock decides with policy, asks humans when it must, runs the work as a saga that can be undone, never does it twice, and writes an immutable receipt.',
        '**Authentication**: a bearer JWT from the configured issuer on every route except `/healthz`, `/openapi.json` and the `/.well-known/oauth-protected-resource` documents (POST /mcp checks its token itself, to answer MCP\'s 401 challenge), in exactly one Authorization header. The principal (`sub`, `roles`, `manager`, `department`) is read only from the verified token, in the JSON types it was issued in: `roles` is an array of strings, each one role name exactly as issued; a token with these claims in another shape is refused with 401. The agent acting for the principal is read from the same token, first match wins: `act.sub` (RFC 8693), `azp`, `client_id`; delegations (`/v1/delegations`) are matched against it, never against the envelope\'s self-declared `agent.name`.',
        `**Errors** are RFC 9457 \`application/problem+json\` documents with a stable \`type\` URN to switch on, a \`detail\` written so an LLM can act on it, and extension members (\`violations\`, \`policyIds\`, \`retryAfter\`, …). Types: ${problemTypesText}.`,
        'On AWS, API Gateway\'s JWT authorizer answers a missing or invalid token itself (401 with a plain `{"message": "Unauthorized"}` body); the local server answers with the `urn:airlock:problem:unauthorized` problem documented on each route.',
        'Outside the handlers, API Gateway itself may answer 429 (stage throttling) or 404 for an unknown route with a plain `{"message": …}` body; the local server answers 404 `urn:airlock:problem:not-found` for an unknown path and 405 `urn:airlock:problem:method-not-allowed` (with `Allow`) for a known path with another method. `x-airlock-unrouted` declares these two refusals.',
        'Requests that are not valid HTTP never reach a route: the local server answers them with 400 `urn:airlock:problem:malformed-request` (control characters in a header, broken framing), 431 `urn:airlock:problem:headers-too-large` (request line and headers over 10,240 bytes, API Gateway\'s limit) or 408 `urn:airlock:problem:request-timeout`; on AWS, API Gateway answers them itself.',
        '**Rate limits** (policies/limits.json: global, per principal, per agent, per tool, per connector; fixed windows): every answer to an authenticated `/v1` request carries `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers) for the tightest limit that counted it. Over a limit → 429 `https://iana.org/assignments/http-problem-types#quota-exceeded` with `violated-policies` and `Retry-After`; nothing is recorded. Tool and connector limits count `POST /v1/actions` only; agent limits count it and `POST /v1/decisions`, per principal and agent: the verified agent the token names when there is one (whatever `agent.name` says), else the declared `agent.name`. `GET /v1/limits` shows your quotas.',
        'Every response the end-to-end tests receive from the local runtime is validated against this document (JSON Schema 2020-12, strict): members not listed here are never sent.',
      ].join('\n\n'),
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    tags: [
      { name: 'actions', description: 'Submit and follow actions.' },
      { name: 'approvals', description: 'Human approval of actions that policy sends to a person.' },
      { name: 'delegations', description: 'Delegations: a principal\'s consent that an agent may act for them within tools, a budget and an expiry; granting and revoking write receipts to the audit vault.' },
      { name: 'halts', description: 'The kill switch: halting and resuming work across the fleet (role from limits.json `killSwitch.role`).' },
      { name: 'reconciliations', description: 'Reconciliation against vendors: the ledger compared with what each vendor holds (kill-switch role).' },
      { name: 'tools', description: 'What an agent may call.' },
      { name: 'limits', description: 'Rate limits: how much, not who.' },
      { name: 'metrics', description: 'Safety KPIs for auditors and admins (local runtime).' },
      { name: 'meta', description: 'Health and this document.' },
      { name: 'mcp', description: 'The Model Context Protocol server and its OAuth protected resource metadata.' },
    ],
    servers: [
      { url: `http://127.0.0.1:${LOCAL_PORT}`, description: 'The local runtime (`npm start`; AIRLOCK_PORT changes the port).' },
      {
        url: 'https://{apiId}.execute-api.{region}.amazonaws.com',
        description: 'A deployed stack: the HTTP API\'s default endpoint (the `ApiUrl` stack output).',
        variables: {
          apiId: { default: 'abcdef1234', description: 'The HTTP API id.' },
          region: { default: 'us-east-1', description: 'The AWS region the stack is deployed to.' },
        },
      },
    ],
    security: [{ bearerAuth: [] }],
    paths,
    // Not an operation: what answers a request outside `paths` (checked by test/helpers/contract.ts).
    'x-airlock-unrouted': { '404': ref('responses', 'NoRoute'), '405': ref('responses', 'MethodNotAllowed') },
    components: {
      schemas: sortKeys(defs),
      parameters: {
        IdempotencyKey: {
          name: 'Idempotency-Key',
          in: 'header',
          required: true,
          description: `Makes the request safe to retry. 1–255 printable ASCII characters, bare (no comma) or as an RFC 8941 quoted string; sent once; scoped to the caller, kept at least 24 hours. See the operation's description.`,
          // Bare: printable ASCII but the comma, not opening with a quote. Quoted: sf-string, whose escapes may double its length.
          schema: { type: 'string', minLength: 1, maxLength: 512, pattern: '^(?:[\\x20\\x21\\x23-\\x2B\\x2D-\\x7E][\\x20-\\x2B\\x2D-\\x7E]*|"(?:[\\x20\\x21\\x23-\\x5B\\x5D-\\x7E]|\\\\["\\\\])+")$' },
        },
        Prefer: {
          name: 'Prefer',
          in: 'header',
          required: false,
          description: `RFC 7240: \`wait=N\` (seconds, at most ${defaultIntakeConfig.maxSyncWaitMs / 1000}) or \`respond-async\`.`,
          schema: { type: 'string' },
          examples: { wait: { value: 'wait=10' }, async: { value: 'respond-async' } },
        },
        PreferWait: {
          name: 'Prefer',
          in: 'header',
          required: false,
          description: `RFC 7240: \`wait=N\` (seconds, at most ${defaultIntakeConfig.maxSyncWaitMs / 1000}): answer when the action's status changes, or after N seconds. Other preferences are ignored.`,
          schema: { type: 'string' },
          examples: { wait: { value: 'wait=20' } },
        },
        ActionId: { name: 'id', in: 'path', required: true, description: 'Action id (`act_` + ULID).', schema: { type: 'string', pattern: ActionIdPattern.source } },
        ApprovalId: { name: 'id', in: 'path', required: true, description: 'Approval id (`apr_` + ULID).', schema: { type: 'string', pattern: ApprovalIdPattern.source } },
        HaltId: { name: 'id', in: 'path', required: true, description: 'Halt id (`hlt_` + ULID).', schema: { type: 'string', pattern: HaltIdPattern.source } },
        DelegationId: { name: 'id', in: 'path', required: true, description: 'Delegation id (`dlg_` + ULID).', schema: { type: 'string', pattern: DelegationIdPattern.source } },
      },
      headers: Object.fromEntries(
        Object.entries(headerDocs).map(([key, h]) => [key, { description: h.description, required: h.required, schema: h.schema }]),
      ),
      responses: {
        NoRoute: problemResponse([
          { status: 404, types: ['notFound'], when: 'no documented path matches the request (the local server; API Gateway answers a plain `{"message": "Not Found"}`)' },
        ]),
        MethodNotAllowed: problemResponse([
          { status: 405, types: ['methodNotAllowed'], when: 'the path exists but not with this method; `allow` and the Allow header list the methods it takes (the local server; API Gateway answers 404)', headers: ['Allow'] },
        ]),
      },
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A JWT from the configured issuer (locally: `airlock token <sub>`).' },
      },
    },
  };
}

let cached: JsonObject | undefined;

/** The document for the default route table, built once per process (it never changes at run time). */
export function openApiDocument(): JsonObject {
  cached ??= buildOpenApiDocument();
  return cached;
}

/** The document as checked in: 2-space JSON and a final newline. */
export function renderOpenApi(doc: JsonObject = openApiDocument()): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}
