import * as z from 'zod';
import { ActionStatuses } from '../actions/action';
import { ApprovalStatuses } from '../ports/approvals';
import { FunctionCallingFormats } from '../tools/function-calling';

/**
 * The HTTP API's request side as zod schemas: the query strings and bodies the handlers parse,
 * and the two status enums they share with the answers. Kept apart from the answers' schemas
 * (schemas.ts, which re-exports these) so a handler's cold start builds only what it parses:
 * the answers' ~150 schemas are built where they are used (the OpenAPI document, tests), and
 * building them cost intake's and approvals' import tens of milliseconds of CPU (measured with
 * `npm run bench:cold-start`).
 */

export const ActionStatusSchema = z.enum(ActionStatuses).meta({
  id: 'ActionStatus',
  description: 'received → awaiting_approval → running → completed, or a terminal denied / rejected / expired / failed / compensated / cancelled.',
});

export const ApprovalStatusSchema = z.enum(ApprovalStatuses).meta({ id: 'ApprovalStatus' });

/** GET /v1/actions query string. */
export const ActionListQuerySchema = z
  .object({
    scope: z
      .enum(['mine', 'all'])
      .default('mine')
      .meta({ description: '`mine` (default): your own actions. `all`: every principal\'s, for auditors (role `Auditor`; anyone else gets 403, recorded on the access trail).' }),
    status: ActionStatusSchema.optional(),
    tool: z
      .string()
      .regex(/^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$/, 'a tool name such as travel.book_flight')
      .max(129)
      .optional()
      .meta({ description: 'Only actions calling this tool (any step of a plan). With `scope=all` only.' }),
    principal: z.string().min(1).max(256).optional().meta({ description: 'Only actions of this principal (`sub`). With `scope=all` only.' }),
    since: z.iso.datetime({ offset: true }).optional().meta({ description: 'Created at or after (default: 7 days before `until`). With `scope=all` only; the range spans at most 31 days.' }),
    until: z.iso.datetime({ offset: true }).optional().meta({ description: 'Created at or before (default: now). With `scope=all` only.' }),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().min(1).max(2048).optional(),
  })
  .strict();

/** GET /v1/tools query string: the catalog as is, or rendered for one function-calling API. */
export const ToolsQuerySchema = z
  .object({
    format: z
      .enum(FunctionCallingFormats)
      .optional()
      .meta({ description: 'Render the catalog as this vendor\'s tool definitions (`openai`: Chat Completions `tools` with `strict: true`; `anthropic`: Messages `tools`; `gemini`: `tools` with `functionDeclarations`). Without it: the catalog.' }),
  })
  .strict();

/** GET /v1/approvals query string. */
export const ApprovalListQuerySchema = z
  .object({
    status: ApprovalStatusSchema.default('pending'),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().min(1).max(2048).optional(),
  })
  .strict();

/** `POST /v1/actions/{id}/cancel`: an optional reason, recorded in the audit chain and the receipt. */
export const CancelBodySchema = z
  .object({
    reason: z.string().trim().min(1).max(500).optional(),
  })
  .strict()
  .meta({ id: 'CancelRequest' });

/** POST /v1/approvals/{id}/decision body. */
export const DecisionBodySchema = z
  .object({
    decision: z.enum(['approve', 'reject']),
    planHash: z.string().regex(/^[0-9a-f]{64}$/, 'the planHash shown in the preview (64 hex characters)'),
    comment: z.string().trim().min(1).max(1000).optional(),
  })
  .strict()
  .meta({ id: 'ApprovalDecision' });

/** GET /v1/limits query string: the agent and tool an action would name, to see their quotas too. */
export const LimitsQuerySchema = z
  .object({
    agent: z.string().min(1).max(128).optional().meta({ description: 'An agent name (`agent.name` of an envelope): adds the agent policies for it. A token that names a verified agent sees that agent\'s quota whatever name is given.' }),
    tool: z.string().min(1).max(200).optional().meta({ description: 'A tool name (`<connector>.<tool>`, from GET /v1/tools): adds the tool and connector policies for it.' }),
  })
  .strict();

/** GET /v1/metrics query string. */
export const MetricsQuerySchema = z
  .object({
    since: z
      .string()
      .regex(/^[1-9]\d{0,5}[smhd]$/, 'a window such as 30m, 1h or 7d')
      .default('1h')
      .meta({ description: 'How far back to look: a number and s, m, h or d (at most 400d).' }),
  })
  .strict();
