import { CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, inputRequired, MissingRequiredClientCapabilityError, ProtocolError, ProtocolErrorCode, Server, type CallToolResult, type Tool } from '@modelcontextprotocol/server';
import * as z from 'zod';
import type { ToolRegistry } from '../ports/tools';
import { canonicalJson, sha256Hex } from '../shared/canonical-json';
import type { ProblemDocument } from '../shared/problem';
import { approvalIdFor } from '../shared/ids';
import { callConformanceFixture, conformanceFixtureTools, envelopeCapabilities, isConformanceFixture } from './conformance-fixtures';
import { mcpToolset, MetaKeys, type McpToolTarget } from './tools';

/**
 * Airlock as an MCP server (the official SDK's low-level `Server`): `tools/list` serves the
 * toolset (tools.ts) and `tools/call` runs each call through the HTTP API's own operations,
 * so validation, policy, limits, idempotency, the saga and the receipt are exactly those of
 * `POST /v1/actions`. Every answer of that path becomes a tool result: problems (denials,
 * violations, halts, limits, whatever intake answers) are `isError` results carrying the
 * problem document, so a model can read why and correct itself.
 *
 * One instance serves one HTTP request (createMcpHandler's factory): nothing is kept between
 * requests, so any Lambda instance can serve any request.
 */

/** An answer of the HTTP API: status, headers (lower-case), JSON body. */
export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** The HTTP API operations tools/call uses, answered exactly as their routes answer them. */
export interface McpBackend {
  /** POST /v1/actions with this body and Idempotency-Key. */
  postAction(body: unknown, idempotencyKey: string): Promise<HttpAnswer>;
  /** GET /v1/actions/{id}. */
  getAction(id: string): Promise<HttpAnswer>;
  /** GET /v1/actions with this query. */
  listActions(query: Record<string, string>): Promise<HttpAnswer>;
  /** POST /v1/actions/{id}/cancel. */
  cancelAction(id: string): Promise<HttpAnswer>;
}

/** Who calls, and through what: one per HTTP request. */
export interface McpSession {
  /** The verified principal's subject (idempotency keys are scoped to it by intake). */
  principalSub: string;
  /** The principal's manager, from the verified token (named when a manager must approve). */
  principalManager?: string;
  backend: McpBackend;
  tools: ToolRegistry;
  /**
   * The absolute URL of an approval's page in the web console, where an approver decides it;
   * absent when the console's address is unknown (then no URL elicitation is offered).
   */
  approvalPageUrl?: (approvalId: string) => string;
  /**
   * Served on the 2026-07-28 era (per-request envelope, multi-round-trip results), where an
   * `input_required` result is stateless; 2025-era requests never get one (see urlElicitation).
   */
  modernEra?: boolean;
  /**
   * Set by the HTTP edge: tools/list answers an empty `tools` array and marks `toolsListed`,
   * and the edge splices the cached serialized list into the answer (mcp/http.ts). The SDK
   * then frames, versions and validates a small message instead of ~70 KB on every request.
   */
  spliceToolsList?: boolean;
  /** Whether this request's tools/list answer awaits the splice. */
  toolsListed?: boolean;
  /**
   * Also serve the conformance suite's `test_*` fixture tools (conformance-fixtures.ts), and
   * the logging capability they exercise: only for `npm run test:mcp-conformance`.
   */
  conformanceFixtures?: boolean;
}

/** The server's name and version, as `initialize` and `server/discover` report them. */
export const SERVER_INFO = { name: 'airlock', title: 'Airlock', version: '0.1.0' } as const;

const INSTRUCTIONS =
  'Airlock runs tools on behalf of the signed-in person, under policy. Read tools answer at once. ' +
  'A commit may need a person\'s approval: the result then says who must approve; follow it with airlock-get_action. ' +
  'Retrying a call is safe: the same request (same JSON-RPC id and arguments, or the same _meta "io.airlock/idempotency-key") is answered from the first, never run twice.';

/** Agent names as the envelope accepts them (1–128 characters). */
function agentName(name: string | undefined): string {
  const trimmed = (name ?? '').trim().slice(0, 128);
  return trimmed.length > 0 ? trimmed : 'mcp-client';
}

/**
 * The idempotency key of a call without one of its own: the same JSON-RPC request retried
 * (same client, id, tool and arguments) gets the same key, so the transport may resend it
 * safely. Intake scopes keys to the principal.
 */
export function derivedIdempotencyKey(call: { client: string; requestId: string | number; tool: string; arguments: unknown }): string {
  return `mcp-${sha256Hex(canonicalJson([call.client, String(call.requestId), call.tool, call.arguments ?? {}]))}`;
}

function text(value: string): CallToolResult['content'][number] {
  return { type: 'text', text: value };
}

function isProblem(body: unknown): body is ProblemDocument {
  return typeof body === 'object' && body !== null && typeof (body as ProblemDocument).type === 'string' && typeof (body as ProblemDocument).status === 'number';
}

/** A problem answer as an error result: the document itself, and a rendering a model reads. */
export function problemResult(answer: HttpAnswer): CallToolResult {
  const doc: ProblemDocument = isProblem(answer.body)
    ? answer.body
    : { type: 'about:blank', title: 'Request failed', status: answer.status, detail: `The request failed with HTTP ${answer.status}.` };
  const lines = [`${doc.title} (${doc.status}): ${doc.detail}`];
  const violations = Array.isArray(doc.violations) ? (doc.violations as Array<{ path?: unknown; message?: unknown }>) : [];
  for (const v of violations.slice(0, 50)) lines.push(`- ${String(v.path)}: ${String(v.message)}`);
  if (Array.isArray(doc.policyIds) && doc.policyIds.length > 0) lines.push(`Policies: ${doc.policyIds.join(', ')}`);
  const retryAfter = answer.headers['retry-after'];
  if (retryAfter) lines.push(`Retry after ${retryAfter} s.`);
  return { isError: true, content: [text(lines.join('\n'))], structuredContent: { ...doc } };
}

const FAILED = new Set(['denied', 'rejected', 'expired', 'failed', 'compensated', 'cancelled']);

interface ActionLike {
  id: string;
  status: string;
  createdAt?: string;
  updatedAt?: string;
  statusReason?: string;
  mode?: string;
  result?: unknown;
  approvals?: string[];
  decision?: { outcome?: string; quorum?: number; approverRule?: string | null; reasons?: string[] } | null;
  links?: { self: string };
}

/** Who must approve and how to follow, while the action waits (or is about to wait) for approval. */
function approvalOf(action: ActionLike): Record<string, unknown> | null {
  const waiting = action.status === 'awaiting_approval' || (action.status === 'received' && action.decision?.outcome === 'require_approval');
  if (!waiting) return null;
  return {
    quorum: action.decision?.quorum ?? 1,
    approverRule: action.decision?.approverRule ?? null,
    approvalIds: action.approvals ?? [],
    reasons: action.decision?.reasons ?? [],
    poll: `Call airlock-get_action with {"actionId":"${action.id}"} (or GET /v1/actions/${action.id}) until the status is final; approvers decide with POST /v1/approvals/{id}/decision.`,
  };
}

/** An action (accepted or finished) as a tool result matching the toolset's output schema. */
function actionResult(action: ActionLike, replayed: boolean): CallToolResult {
  const approval = approvalOf(action);
  const completed = action.status === 'completed' && action.mode !== 'dry_run';
  const structured = {
    actionId: action.id,
    status: action.status,
    statusReason: action.statusReason ?? null,
    replayed,
    result: completed ? (action.result ?? null) : null,
    approval,
    links: action.links ?? { self: `/v1/actions/${action.id}` },
  };
  const lines: string[] = [];
  if (replayed) lines.push('Replayed: this call was already made; this is its original answer (nothing ran twice).');
  if (approval) {
    const who = approval.approverRule ? ` by ${String(approval.approverRule)}` : '';
    lines.push(
      `Action ${action.id} is waiting for approval${who} (${String(approval.quorum)} approval(s) needed). Nothing has run yet. ${String(approval.poll)}`,
    );
  } else if (action.status === 'completed') {
    lines.push(`Action ${action.id} completed.`);
    if (action.mode === 'dry_run') lines.push(`Dry run: ${JSON.stringify(action.result ?? null)}`);
    else lines.push(JSON.stringify(action.result ?? null));
  } else if (FAILED.has(action.status)) {
    lines.push(`Action ${action.id} ended ${action.status}${action.statusReason ? `: ${action.statusReason}` : ''}.`);
  } else {
    lines.push(`Action ${action.id} is ${action.status}. Follow it with airlock-get_action {"actionId":"${action.id}"}.`);
  }
  return { isError: FAILED.has(action.status), content: [text(lines.join('\n'))], structuredContent: structured };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function answerAction(session: McpSession, answer: HttpAnswer): Promise<CallToolResult> {
  if (answer.status >= 400) return problemResult(answer);
  const replayed = answer.headers['idempotent-replayed'] === 'true';
  const body = answer.body as ActionLike;
  if (answer.status === 202 && body.decision?.outcome === 'require_approval') {
    // The 202 names neither the approver rule nor the approval ids: read the action for them.
    const full = await session.backend.getAction(body.id);
    if (full.status === 200) return actionResult(full.body as ActionLike, replayed);
  }
  return actionResult(body, replayed);
}

async function call(
  session: McpSession,
  target: McpToolTarget,
  args: Record<string, unknown>,
  key: () => string,
  meta: Record<string, unknown>,
  agent: { name: string },
): Promise<CallToolResult> {
  const reason = typeof meta[MetaKeys.reason] === 'string' ? { reason: meta[MetaKeys.reason] } : {};
  switch (target.kind) {
    case 'catalog':
      return answerAction(session, await session.backend.postAction({ tool: target.catalogName, arguments: args, agent, ...reason }, key()));
    case 'submit_plan':
      // The agent is the MCP client, whatever the arguments say.
      return answerAction(session, await session.backend.postAction({ ...reason, ...args, agent }, key()));
    case 'get_action': {
      const answer = await session.backend.getAction(String(args.actionId ?? ''));
      if (answer.status >= 400) return problemResult(answer);
      const view = answer.body as ActionLike;
      return { content: [text(`Action ${view.id} is ${view.status}.\n${JSON.stringify(answer.body)}`)], structuredContent: answer.body as Record<string, unknown> };
    }
    case 'approvals_status': {
      const limit = typeof args.limit === 'number' ? String(args.limit) : '20';
      const answer = await session.backend.listActions({ status: 'awaiting_approval', limit });
      if (answer.status >= 400) return problemResult(answer);
      const items = ((answer.body as { items?: Array<ActionLike & { createdAt: string }> }).items ?? []).map((a) => ({
        actionId: a.id,
        status: a.status,
        approval: approvalOf(a),
        createdAt: a.createdAt,
      }));
      const summary = items.length === 0 ? 'None of your actions is waiting for approval.' : items.map((i) => `${i.actionId}: waiting for ${String(i.approval?.approverRule ?? 'approval')}`).join('\n');
      return { content: [text(summary)], structuredContent: { items } };
    }
    case 'cancel_action': {
      const answer = await session.backend.cancelAction(String(args.actionId ?? ''));
      if (answer.status >= 400) return problemResult(answer);
      const view = answer.body as ActionLike;
      const how = answer.status === 202 ? 'It stops before its next step, and what it did is undone.' : 'Nothing more will run.';
      return {
        content: [text(`Action ${view.id} is ${view.status}. ${how}\n${JSON.stringify(answer.body)}`)],
        structuredContent: { actionId: view.id, status: view.status },
      };
    }
  }
}

/** The id of the embedded request that sends a person to the approval page. */
export const APPROVAL_INPUT_KEY = 'airlock-approval';

/** Did this request's client declare URL-mode elicitation (`elicitation: { url: {} }`)? */
function clientSupportsUrlElicitation(envelope: Record<string, unknown> | undefined): boolean {
  const caps = envelope?.[CLIENT_CAPABILITIES_META_KEY] as { elicitation?: { url?: unknown } } | undefined;
  return typeof caps?.elicitation?.url === 'object' && caps.elicitation.url !== null;
}

/** Who must approve, in words the person at the client can act on. */
function approverWords(session: McpSession, approval: { approverRule?: unknown; quorum?: unknown }): string {
  const rule = typeof approval.approverRule === 'string' ? approval.approverRule : 'an approver';
  const manager = session.principalManager && /\bmanager\b/.test(rule) ? ` (your manager is ${session.principalManager})` : '';
  return `${rule}${manager}, ${String(approval.quorum ?? 1)} approval(s) needed`;
}

/**
 * An action waiting for approval, for a client that declared URL-mode elicitation: an
 * `input_required` result (2026-07-28 multi-round-trip) whose embedded `elicitation/create`
 * (mode url) opens the approval's page in the console. It is stateless: the round carries its
 * own `requestState`, which is the call's idempotency key, so the client's retry (on a fresh
 * request id) replays the same action instead of creating another, and any instance answers
 * it. The state needs no integrity protection: it grants nothing a client cannot already ask
 * for with its own `_meta` key (intake scopes keys to the principal and refuses a key reused
 * with other arguments). The approval usually needs someone else, so the message says who;
 * the retry answers the action as it then stands (still waiting, a task, or done), never
 * elicits again.
 */
function approvalElicitation(session: McpSession, result: CallToolResult, key: string): Record<string, unknown> | undefined {
  const structured = result.structuredContent as { actionId?: unknown; approval?: { approverRule?: unknown; quorum?: unknown } | null } | undefined;
  if (typeof structured?.actionId !== 'string' || !structured.approval || !session.approvalPageUrl) return undefined;
  const url = session.approvalPageUrl(approvalIdFor(structured.actionId));
  const message =
    `Action ${structured.actionId} waits for approval by ${approverWords(session, structured.approval)}. Nothing has run yet. ` +
    'The page shows what it will do and lets an approver decide; you cannot approve your own action, so send the link to the approver if it is not you.';
  return inputRequired({ inputRequests: { [APPROVAL_INPUT_KEY]: inputRequired.elicitUrl({ message, url }) }, requestState: key }) as unknown as Record<string, unknown>;
}

/** The MCP Tasks extension (2026-07-28, SEP-2663): a tools/call may answer with a task handle. */
export const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks';

/** How often a client should poll: an approval takes minutes to days, a running saga seconds. */
const POLL_AWAITING_APPROVAL_MS = 5_000;
const POLL_RUNNING_MS = 1_000;

/** Did this request's client declare the Tasks extension (per-request capabilities, 2026-07-28)? */
function clientSupportsTasks(envelope: Record<string, unknown> | undefined): boolean {
  const caps = envelope?.[CLIENT_CAPABILITIES_META_KEY] as { extensions?: Record<string, unknown> } | undefined;
  return typeof caps?.extensions === 'object' && caps.extensions !== null && TASKS_EXTENSION in caps.extensions;
}

/**
 * An action as a Task (the task id is the action id, so any instance can answer tasks/get from
 * the ledger). Every end of an action is a completed task whose result is the tool result the
 * call would have returned (denials, rejections and failures are `isError` results, as the
 * extension asks: `failed` is for JSON-RPC errors only); a cancelled action is a cancelled task.
 */
export function taskOf(action: ActionLike): Record<string, unknown> {
  const base = {
    taskId: action.id,
    createdAt: action.createdAt ?? new Date(0).toISOString(),
    lastUpdatedAt: action.updatedAt ?? action.createdAt ?? new Date(0).toISOString(),
    // Actions are kept (their receipts for years); the approval timeout ends a waiting one.
    ttlMs: null,
  };
  if (action.status === 'cancelled') return { ...base, status: 'cancelled', statusMessage: action.statusReason ?? 'The action was cancelled.' };
  if (action.status === 'completed' || FAILED.has(action.status)) {
    const result = actionResult(action, false);
    return { ...base, status: 'completed', statusMessage: `The action ended ${action.status}.`, result };
  }
  const approval = approvalOf(action);
  return {
    ...base,
    status: 'working',
    statusMessage: approval
      ? `Waiting for approval${approval.approverRule ? ` by ${String(approval.approverRule)}` : ''} (${String(approval.quorum)} needed); nothing has run yet.`
      : `The action is ${action.status}.`,
    pollIntervalMs: approval ? POLL_AWAITING_APPROVAL_MS : POLL_RUNNING_MS,
  };
}

const TaskParams = z.looseObject({ taskId: z.string().min(1).max(200) });

async function actionOfTask(session: McpSession, taskId: string): Promise<ActionLike> {
  const answer = await session.backend.getAction(taskId);
  // Another person's action is as unknown as one that does not exist (GET /v1/actions/{id}'s 404).
  if (answer.status === 404) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `No task ${taskId.slice(0, 100)}: task ids are the action ids this server returned to you.`);
  if (answer.status >= 400) {
    const doc = answer.body as Partial<ProblemDocument> | null;
    throw new ProtocolError(ProtocolErrorCode.InternalError, `Cannot read task ${taskId.slice(0, 100)}: ${String(doc?.detail ?? `HTTP ${answer.status}`)}`);
  }
  return answer.body as ActionLike;
}

/** Builds the MCP server instance for one request of `session`'s principal. */
export function createAirlockMcpServer(session: McpSession): Server {
  const fixtures = session.conformanceFixtures === true;
  const capabilities = { tools: {}, extensions: { [TASKS_EXTENSION]: {} }, ...(fixtures ? { logging: {} } : {}) };
  const server = new Server(SERVER_INFO, { capabilities, instructions: INSTRUCTIONS });
  const toolset = mcpToolset(session.tools);

  server.setRequestHandler('tools/list', async () => {
    if (session.spliceToolsList && !fixtures) {
      session.toolsListed = true;
      return { tools: [] };
    }
    const extra = fixtures ? (conformanceFixtureTools() as Tool[]) : [];
    return { tools: [...toolset.tools.map((t) => ({ ...t }) as Tool), ...extra] };
  });

  server.setRequestHandler('tools/call', async (request, ctx) => {
    const { name } = request.params;
    const target = toolset.resolve(name);
    if (!target && fixtures && isConformanceFixture(name)) {
      const envelope = ctx.mcpReq.envelope as Record<string, unknown> | undefined;
      const fixtureAgent = { name: agentName(typeof (envelope?.[CLIENT_INFO_META_KEY] as { name?: unknown } | undefined)?.name === 'string' ? String((envelope?.[CLIENT_INFO_META_KEY] as { name: string }).name) : server.getClientVersion()?.name) };
      return callConformanceFixture(name, ctx, {
        clientCapabilities: session.modernEra ? envelopeCapabilities(envelope) : (server.getClientCapabilities() as Record<string, unknown> | undefined),
        callCatalog: (catalogName, args) =>
          call(session, { kind: 'catalog', catalogName }, args, () => derivedIdempotencyKey({ client: fixtureAgent.name, requestId: ctx.mcpReq.id, tool: name, arguments: args }), {}, fixtureAgent),
      });
    }
    if (!target) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown tool: ${name.slice(0, 100)}. tools/list names every tool.`);
    const args = request.params.arguments ?? {};
    if (!isObject(args)) throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'arguments must be a JSON object.');
    const meta: Record<string, unknown> = { ...(ctx.mcpReq._meta ?? {}), ...(request.params._meta ?? {}) };
    // 2026-07-28: the client names itself in every request's envelope; 2025-era: in initialize (absent when stateless).
    const fromEnvelope = (ctx.mcpReq.envelope as Record<string, unknown> | undefined)?.[CLIENT_INFO_META_KEY] as { name?: unknown } | undefined;
    const client = typeof fromEnvelope?.name === 'string' ? fromEnvelope.name : server.getClientVersion()?.name;
    const agent = { name: agentName(client) };
    const own = meta[MetaKeys.idempotencyKey];
    // The retry of an input-required round comes on a fresh request id: the key it must reuse is
    // the state the first round handed out (see approvalElicitation).
    const state = ctx.mcpReq.requestState?.();
    const reentry = typeof state === 'string';
    // A client key that is not a string is passed on as one, so intake refuses it by the header's rules.
    const key = () =>
      reentry ? state : own === undefined ? derivedIdempotencyKey({ client: agent.name, requestId: ctx.mcpReq.id, tool: name, arguments: args }) : String(own);
    const result = await call(session, target, args, key, meta, agent);
    // A client with the Tasks extension gets a task for an action that has not ended (waiting
    // for approval, or still running): the action is in the ledger, so tasks/get resolves.
    const structured = result.structuredContent as { actionId?: unknown; status?: unknown } | undefined;
    const createsAction = target.kind === 'catalog' || target.kind === 'submit_plan';
    const envelope = ctx.mcpReq.envelope as Record<string, unknown> | undefined;
    if (createsAction && !result.isError && !reentry && session.modernEra && session.approvalPageUrl && clientSupportsUrlElicitation(envelope)) {
      const elicitation = approvalElicitation(session, result, key());
      if (elicitation) return elicitation as unknown as CallToolResult;
    }
    if (createsAction && !result.isError && clientSupportsTasks(ctx.mcpReq.envelope as Record<string, unknown> | undefined) && typeof structured?.actionId === 'string' && structured.status !== 'completed') {
      const action = await actionOfTask(session, structured.actionId);
      const task = taskOf(action);
      if (task.status === 'working') return { resultType: 'task', ...task } as unknown as CallToolResult;
    }
    return result;
  });

  // SEP-2663: the tasks/* methods need the extension in the request's own client capabilities.
  const requireTasks = (ctx: { mcpReq: { envelope?: unknown } }) => {
    if (!clientSupportsTasks(ctx.mcpReq.envelope as Record<string, unknown> | undefined)) {
      throw new MissingRequiredClientCapabilityError({ requiredCapabilities: { extensions: { [TASKS_EXTENSION]: {} } } }, `Missing required client capability: declare the ${TASKS_EXTENSION} extension to use tasks.`);
    }
  };

  server.setRequestHandler('tasks/get', { params: TaskParams }, async (params, ctx) => {
    requireTasks(ctx);
    return taskOf(await actionOfTask(session, params.taskId));
  });

  server.setRequestHandler('tasks/update', { params: TaskParams }, async (params, ctx) => {
    requireTasks(ctx);
    // Airlock never asks the client for input mid-task, so no response is outstanding: acknowledge and ignore (SEP-2663).
    await actionOfTask(session, params.taskId);
    return {};
  });

  server.setRequestHandler('tasks/cancel', { params: TaskParams }, async (params, ctx) => {
    requireTasks(ctx);
    const action = await actionOfTask(session, params.taskId);
    // The HTTP cancel route itself (POST /v1/actions/{id}/cancel): same checks, audit and receipt.
    const answer = await session.backend.cancelAction(action.id);
    if (answer.status === 409) {
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Task ${action.id} cannot be cancelled: the action already ended ${String(action.status)}.`);
    }
    if (answer.status >= 400) {
      const doc = answer.body as Partial<ProblemDocument> | null;
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Task ${action.id} cannot be cancelled: ${String(doc?.detail ?? `HTTP ${answer.status}`)}`);
    }
    // Waiting for approval: cancelled now. Running: it stops before its next step, undoes what it did, then ends cancelled.
    return taskOf(await actionOfTask(session, params.taskId));
  });

  return server;
}
