import middy from '@middy/core';
import { z } from 'zod';
import { runStep } from './run-step';
import { GRANT_TOKEN_MAX_CHARS, jsonBytes, type StepSummary } from '../saga/limits';
import { boundedErrors } from '../middleware/bounded-errors';
import { connectorRuntime } from '../composition/aws';

/**
 * A connector function (one per connector, named by CONNECTOR_NAME): runs one step call
 * under a verified, single-use grant, exactly once per step.
 */

export const RunStepSchema = z.object({
  task: z.literal('RunStep'),
  kind: z.enum(['forward', 'compensate']),
  actionId: z.string().regex(/^act_[0-9A-HJKMNP-TV-Z]{26}$/),
  stepId: z.string().min(1).max(64),
  tool: z.string().min(3).max(128),
  input: z.unknown(),
  planHash: z.string().regex(/^[0-9a-f]{64}$/),
  dryRun: z.boolean(),
  grant: z.string().min(10).max(GRANT_TOKEN_MAX_CHARS),
  skipReason: z.string().max(500).optional(),
});

/** A payload that does not match the contract: never retried. */
export class StepPayloadInvalidError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StepPayloadInvalidError';
  }
}

/**
 * The handler of one connector's function; locally one is made per connector. It returns a
 * summary, never the output: the output is in the step record, and a state over 256 KiB would
 * fail the execution beyond any Catch.
 */
export function connectorHandler(connector?: string) {
  return middy<unknown, StepSummary>()
    .use(boundedErrors())
    .handler(async (event: unknown) => {
      const parsed = RunStepSchema.safeParse(event);
      if (!parsed.success) {
        throw new StepPayloadInvalidError(`Invalid step payload at ${parsed.error.issues.map((i) => i.path.join('.')).join(', ')}`);
      }
      const { stepId, kind } = parsed.data;
      const output = await runStep(await connectorRuntime(connector), parsed.data);
      return { stepId, kind, outputBytes: jsonBytes(output) };
    });
}

/** Lambda entry point: serves CONNECTOR_NAME. */
export const handler = connectorHandler();
