import { stepsDeps } from '../composition/aws';
import type { Lazy, StepsFunctionDeps } from '../composition/deps';
import { annotate } from '../middleware/powertools';
import { taskHandler } from '../middleware/task';
import { jsonBytes, type StepSummary } from '../saga/limits';
import { RunStepSchema } from './contract';
import { runStep } from './run-step';

/**
 * A connector function (one per connector, named by CONNECTOR_NAME): runs one step call
 * under a verified, single-use grant, exactly once per step.
 */

/** A payload that does not match the contract: never retried. */
export class StepPayloadInvalidError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StepPayloadInvalidError';
  }
}

/**
 * The handler of a connector's function (`connector`: the one it serves; in Lambda, the one
 * CONNECTOR_NAME names). It returns a summary, never the output: the output is in the step
 * record, and a state over 256 KiB would fail the execution beyond any Catch.
 */
export function createStepsHandler(deps: Lazy<StepsFunctionDeps>, connector?: string) {
  return taskHandler<unknown, StepSummary>(async (event) => {
    const parsed = RunStepSchema.safeParse(event);
    if (!parsed.success) {
      throw new StepPayloadInvalidError(`Invalid step payload at ${parsed.error.issues.map((i) => i.path.join('.')).join(', ')}`);
    }
    const { actionId, stepId, kind, tool } = parsed.data;
    annotate({ actionId, tool });
    const forConnector = await deps();
    // The function's own connector: a step of any other is refused by the grant check.
    const output = await runStep(forConnector(connector), parsed.data);
    return { stepId, kind, outputBytes: jsonBytes(output) };
  });
}

/** Lambda entry point: serves CONNECTOR_NAME (any other connector's step is refused). */
export const handler = createStepsHandler(stepsDeps);
