import * as z from 'zod';
import { BudgetPeriods } from './model';

/** The wire shapes of `/v1/delegations` requests (published in the OpenAPI document). */

/** The longest a delegation may live: consent is renewed at least yearly. */
export const MAX_DELEGATION_DAYS = 366;
/** The most tools and connectors one delegation names. */
export const MAX_SCOPE_ENTRIES = 100;

const AgentIdSchema = z.string().min(1).max(256).regex(/^\S+$/, 'an agent id has no spaces (it is the agent token\'s act.sub, azp or client_id)');

/** `POST /v1/delegations`. */
export const CreateDelegationSchema = z
  .object({
    agent: AgentIdSchema.meta({ description: 'The agent: the value its tokens carry in act.sub, else azp, else client_id.' }),
    tools: z.array(z.string().min(1).max(128)).max(MAX_SCOPE_ENTRIES).optional().meta({ description: 'Full tool names (`travel.book_flight`) from GET /v1/tools.' }),
    connectors: z.array(z.string().min(1).max(64)).max(MAX_SCOPE_ENTRIES).optional().meta({ description: 'Connectors whose every tool is covered (`travel`).' }),
    budget: z
      .object({
        amount: z.number().min(0, 'a budget is not negative').max(1e12).meta({ description: 'Major units (dollars), ≥ 0.' }),
        currency: z.string().regex(/^[A-Za-z]{3}$/, 'an ISO 4217 code'),
        period: z.enum(BudgetPeriods).meta({ description: 'The budget starts over each UTC day or month, or holds for the whole delegation (`total`).' }),
      })
      .strict()
      .optional()
      .meta({ description: 'What commit steps under this delegation may spend per period; none: no budget of its own (spend caps still apply).' }),
    expiresAt: z.iso.datetime({ offset: true }).meta({ description: 'When it ends; in the future, at most 366 days ahead.' }),
    rules: z
      .object({ askForCommit: z.boolean().optional().meta({ description: '"Always ask me for commit steps": every commit-tier step needs approval.' }) })
      .strict()
      .optional(),
    purpose: z.string().trim().min(1).max(500).optional(),
  })
  .strict()
  .meta({ id: 'DelegationRequest' });
export type CreateDelegationRequest = z.infer<typeof CreateDelegationSchema>;

/** `DELETE /v1/delegations/{id}`: why (optional). */
export const RevokeDelegationSchema = z
  .object({ reason: z.string().trim().min(1).max(500).optional() })
  .strict()
  .meta({ id: 'RevokeDelegationRequest' });
