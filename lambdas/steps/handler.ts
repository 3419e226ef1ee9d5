import { stepsDeps } from '../composition/aws';
import type { Lazy, StepsFunctionDeps } from '../composition/deps';
import { annotate } from '../middleware/powertools';
import { taskHandler } from '../middleware/task';
import { jsonBytes, type StepSummary } from '../saga/limits';
import type { StepRecord } from '../ports/steps';
import { RunStepSchema } from './contract';
import { runStepRecorded } from './run-step';

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
  return taskHandler<unknown, StepSummary & { record?: StepRecord }>(async (event) => {
    const parsed = RunStepSchema.safeParse(event);
    if (!parsed.success) {
      throw new StepPayloadInvalidError(`Invalid step payload at ${parsed.error.issues.map((i) => i.path.join('.')).join(', ')}`);
    }
    const { actionId, stepId, kind, tool } = parsed.data;
    annotate({ actionId, tool });
    const forConnector = await deps();
    // The function's own connector: a step of any other is refused by the grant check.
    const record = await runStepRecorded(forConnector(connector), parsed.data);
    const summary = { stepId, kind, outputBytes: jsonBytes(record.output) };
    // Only the read fast path asks (a direct invoke, whose answer may be as large as a Lambda response).
    return parsed.data.answer === 'record' ? { ...summary, record } : summary;
  });
}

/** Lambda entry point: serves CONNECTOR_NAME (any other connector's step is refused). */
export const handler = createStepsHandler(stepsDeps);
