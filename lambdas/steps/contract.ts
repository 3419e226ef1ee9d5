import * as z from 'zod';
import { GRANT_TOKEN_MAX_CHARS } from '../saga/limits';
import { canonicalJson, sha256Hex } from '../shared/canonical-json';
import { ActionIdSchema } from '../shared/ids';

/**
 * The RunStep contract: what IssueGrant hands the connector function for one step call (the
 * saga writes it, the connector function parses it). Written once, as zod; the TypeScript
 * type is inferred from it.
 */
export const RunStepSchema = z.object({
  task: z.literal('RunStep'),
  kind: z.enum(['forward', 'compensate']),
  actionId: ActionIdSchema,
  stepId: z.string().min(1).max(64),
  tool: z.string().min(3).max(128),
  input: z.unknown(),
  planHash: z.string().regex(/^[0-9a-f]{64}$/),
  dryRun: z.boolean(),
  /** The single-use grant (a compact JWS) covering exactly this call. */
  grant: z.string().min(10).max(GRANT_TOKEN_MAX_CHARS),
  /** Set in a dry run when the input depends on an earlier step's simulated output. */
  skipReason: z.string().max(500).optional(),
  /**
   * `record`: answer with the completed step record too (the read fast path, which invokes the
   * function directly and settles from it). Never set by the ASL: a state must stay small.
   */
  answer: z.literal('record').optional(),
});
export type RunStep = z.infer<typeof RunStepSchema>;

/** SHA-256 of the canonical form of a call's input; bound into its grant. */
export function inputHash(input: unknown): string {
  return sha256Hex(canonicalJson(input ?? null));
}
