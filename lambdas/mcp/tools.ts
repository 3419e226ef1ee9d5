import { ActionStatuses } from '../actions/action';
import type { ToolRegistry } from '../ports/tools';
import { toolCatalog, type CatalogEntry } from '../tools/catalog';
import { safeToolName } from '../tools/names';
import { MAX_PLAN_STEPS } from '../intake/envelope';
import { ActionIdPattern } from '../shared/ids';

/**
 * The MCP face of the tool catalog: every catalog tool under its safe name, with annotations
 * that tell the truth about what a call does, plus Airlock's own tools (submit a plan, read an
 * action, list what waits for approval, cancel). Pure data: the server (server.ts) serves it.
 */

/** JSON Schema as MCP carries it (an object schema at the top). */
export type JsonSchema = Record<string, unknown>;

/** MCP tool annotations (2025-11-25 and 2026-07-28 `ToolAnnotations`). */
export interface ToolAnnotations {
  title: string;
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  openWorldHint: boolean;
}

/** One entry of `tools/list`. */
export interface McpToolDescriptor {
  name: string;
  title: string;
  description: string;
  inputSchema: JsonSchema;
  outputSchema: JsonSchema;
  annotations: ToolAnnotations;
}

/** What an MCP tool does when called. */
export type McpToolTarget =
  | { kind: 'catalog'; catalogName: string }
  | { kind: 'submit_plan' }
  | { kind: 'get_action' }
  | { kind: 'approvals_status' }
  | { kind: 'cancel_action' };

/** Airlock's own tools; `airlock` is no connector's name, so these never collide with the catalog. */
export const OwnTools = {
  submitPlan: 'airlock-submit_plan',
  getAction: 'airlock-get_action',
  approvalsStatus: 'airlock-approvals_status',
  cancelAction: 'airlock-cancel_action',
} as const;

/** Keys of `_meta` on `tools/call` that Airlock reads. */
export const MetaKeys = {
  /** Client-chosen idempotency key: same semantics as the `Idempotency-Key` header. */
  idempotencyKey: 'io.airlock/idempotency-key',
  /** Why the agent makes the call (recorded on the action and its receipt). */
  reason: 'io.airlock/reason',
} as const;

/**
 * Drops what MCP clients' validators choke on and the wire does not need: `$schema` (an MCP
 * tool schema is 2020-12 by default) and a top-level `$id`.
 */
function bare(schema: JsonSchema): JsonSchema {
  const { $schema: _schema, $id: _id, ...rest } = schema;
  return rest;
}

const ActionIdSchema: JsonSchema = { type: 'string', pattern: ActionIdPattern.source, description: 'An action id (`act_…`).' };
const StatusSchema: JsonSchema = { type: 'string', enum: [...ActionStatuses] };

/** Who must approve, and how to follow the action until it finishes. */
const ApprovalSchema: JsonSchema = {
  anyOf: [
    {
      type: 'object',
      properties: {
        quorum: { type: 'integer', minimum: 0, description: 'How many distinct people must approve.' },
        approverRule: { type: ['string', 'null'], description: 'Who may approve, as policy names it (e.g. the requester\'s manager, a role).' },
        approvalIds: { type: 'array', items: { type: 'string' } },
        reasons: { type: 'array', items: { type: 'string' } },
        poll: { type: 'string', description: 'How to follow the action until it finishes.' },
      },
      required: ['quorum', 'approverRule', 'approvalIds', 'reasons', 'poll'],
    },
    { type: 'null' },
  ],
};

/** The structured result of a call that creates an action; `result` is the tool's own output. */
function actionResultSchema(result: JsonSchema): JsonSchema {
  return {
    type: 'object',
    properties: {
      actionId: ActionIdSchema,
      status: StatusSchema,
      statusReason: { type: ['string', 'null'] },
      replayed: { type: 'boolean', description: 'True when this answer is the replay of an earlier call with the same idempotency key.' },
      result: { anyOf: [result, { type: 'null' }], description: 'The output, once the action completed (execute mode); null until then.' },
      approval: ApprovalSchema,
      links: { type: 'object', properties: { self: { type: 'string' } }, required: ['self'] },
    },
    required: ['actionId', 'status', 'statusReason', 'replayed', 'result', 'approval', 'links'],
  };
}

/** The HTTP API's action view (GET /v1/actions/{id}), loosely: the full contract is in the OpenAPI document. */
const ActionViewSchema: JsonSchema = {
  type: 'object',
  properties: { id: ActionIdSchema, status: StatusSchema, steps: { type: 'array' }, decision: {}, result: {} },
  required: ['id', 'status', 'steps'],
};

function title(entry: CatalogEntry): string {
  const [connector = '', tool = ''] = entry.name.split('.');
  const words = tool.replace(/_/g, ' ');
  return `${connector.charAt(0).toUpperCase()}${connector.slice(1)}: ${words}`;
}

/**
 * Annotations by tier. Reads change nothing, so repeating one is harmless; commits change a
 * vendor's state, and a new call (a new idempotency key) acts again, so they are not
 * idempotent in MCP's sense. Every catalog tool reaches a vendor outside Airlock.
 */
function annotationsFor(entry: CatalogEntry): ToolAnnotations {
  const read = entry.tier === 'read';
  return {
    title: title(entry),
    readOnlyHint: read,
    destructiveHint: entry.tier === 'commit',
    idempotentHint: read,
    openWorldHint: true,
  };
}

function describe(entry: CatalogEntry): string {
  const notes = [
    entry.tier === 'commit'
      ? entry.compensation
        ? `Commits a change (undone by ${safeToolName(entry.compensation)} if a later step fails).`
        : 'Commits a change that cannot be undone automatically.'
      : entry.tier === 'read'
        ? 'Read-only.'
        : 'Drafts a change without committing it.',
    'Airlock checks policy first; if a person must approve, the result says who and how to follow the action.',
  ];
  return `${entry.description} ${notes.join(' ')}`;
}

const submitPlanInput: JsonSchema = {
  type: 'object',
  properties: {
    plan: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_PLAN_STEPS,
      items: {
        type: 'object',
        properties: {
          id: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_-]{0,63}$' },
          tool: { type: 'string', description: 'A catalog tool, as listed here (`travel-hold_seat`) or dotted (`travel.hold_seat`).' },
          arguments: { type: 'object', description: 'The tool\'s arguments; a value may be {"$ref":"steps.<id>.output.<path>"} to use an earlier step\'s output.' },
        },
        required: ['id', 'tool', 'arguments'],
        additionalProperties: false,
      },
    },
    mode: { type: 'string', enum: ['execute', 'dry_run'], description: 'dry_run walks the same path with vendors only validating.' },
    reason: { type: 'string', minLength: 1, maxLength: 2000 },
  },
  required: ['plan'],
  additionalProperties: false,
};

function ownTools(): McpToolDescriptor[] {
  return [
    {
      name: OwnTools.submitPlan,
      title: 'Airlock: submit a plan',
      description:
        'Runs several catalog tools as one saga: steps run in order, a later step may use an earlier one\'s output through {"$ref":"steps.<id>.output.<path>"}, and if a step fails the committed ones are undone. Every commit step but the last must have a compensation. Policy may require approval first.',
      inputSchema: submitPlanInput,
      outputSchema: actionResultSchema({ type: 'object', description: 'Each step\'s output by step id (execute mode).' }),
      annotations: { title: 'Airlock: submit a plan', readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    },
    {
      name: OwnTools.getAction,
      title: 'Airlock: get an action',
      description: 'Reads one of your actions: status, steps, decision, approvals and result. Poll this to follow an action that waits for approval.',
      inputSchema: { type: 'object', properties: { actionId: ActionIdSchema }, required: ['actionId'], additionalProperties: false },
      outputSchema: ActionViewSchema,
      annotations: { title: 'Airlock: get an action', readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    {
      name: OwnTools.approvalsStatus,
      title: 'Airlock: my pending approvals',
      description: 'Lists your actions that wait for approval, newest first, with who must approve each.',
      inputSchema: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 100 } }, additionalProperties: false },
      outputSchema: {
        type: 'object',
        properties: {
          items: {
            type: 'array',
            items: {
              type: 'object',
              properties: { actionId: ActionIdSchema, status: StatusSchema, approval: ApprovalSchema, createdAt: { type: 'string' } },
              required: ['actionId', 'status', 'approval', 'createdAt'],
            },
          },
        },
        required: ['items'],
      },
      annotations: { title: 'Airlock: my pending approvals', readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    {
      name: OwnTools.cancelAction,
      title: 'Airlock: cancel an action',
      description: 'Cancels one of your actions that has not finished (POST /v1/actions/{id}/cancel). Waiting for approval: it ends cancelled at once. Running: it stops before its next step and what it did is undone (compensated), then ends cancelled. An action that already finished cannot be cancelled (an error says so). Repeating the call changes nothing.',
      inputSchema: { type: 'object', properties: { actionId: ActionIdSchema }, required: ['actionId'], additionalProperties: false },
      outputSchema: { type: 'object', properties: { actionId: ActionIdSchema, status: StatusSchema }, required: ['actionId', 'status'] },
      annotations: { title: 'Airlock: cancel an action', readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
  ];
}

/** The MCP tool list and where each name leads. */
export interface McpToolset {
  tools: readonly McpToolDescriptor[];
  resolve(name: string): McpToolTarget | undefined;
}

const cache = new WeakMap<ToolRegistry, McpToolset>();

const serialized = new WeakMap<ToolRegistry, string>();

/**
 * The toolset's `tools` array as JSON, serialized once per registry: the catalog is fixed for
 * a deployment, so every tools/list answers the same bytes (see mcp/http.ts, which splices
 * them into the SDK's answer rather than have it serialize ~70 KB per request).
 */
export function mcpToolsJson(registry: ToolRegistry): string {
  let json = serialized.get(registry);
  if (json === undefined) {
    json = JSON.stringify(mcpToolset(registry).tools);
    serialized.set(registry, json);
  }
  return json;
}

/** The toolset of a registry, built once per process (the catalog does not change at run time). */
export function mcpToolset(registry: ToolRegistry): McpToolset {
  let set = cache.get(registry);
  if (!set) {
    const catalog = toolCatalog(registry);
    const targets = new Map<string, McpToolTarget>();
    const tools: McpToolDescriptor[] = [];
    for (const entry of catalog) {
      const name = safeToolName(entry.name);
      const annotations = annotationsFor(entry);
      tools.push({
        name,
        title: annotations.title,
        description: describe(entry),
        inputSchema: bare(entry.inputSchema),
        outputSchema: actionResultSchema(bare(entry.outputSchema)),
        annotations,
      });
      targets.set(name, { kind: 'catalog', catalogName: entry.name });
    }
    const own: Record<string, McpToolTarget> = {
      [OwnTools.submitPlan]: { kind: 'submit_plan' },
      [OwnTools.getAction]: { kind: 'get_action' },
      [OwnTools.approvalsStatus]: { kind: 'approvals_status' },
      [OwnTools.cancelAction]: { kind: 'cancel_action' },
    };
    for (const t of ownTools()) {
      if (targets.has(t.name)) throw new Error(`MCP tool ${t.name} collides with a catalog tool`);
      tools.push(t);
      targets.set(t.name, own[t.name]!);
    }
    set = { tools, resolve: (name) => targets.get(name) };
    cache.set(registry, set);
  }
  return set;
}
