import type { ActionRecord } from '../actions/action';
import type { StepRecord } from './steps';

/**
 * Starting the saga for an accepted action. Step Functions in AWS (execution name = action
 * id, so a second start is a no-op); the local ASL runner in local mode.
 */
export interface WorkflowStarter {
  start(actionId: string, input: SagaInput): Promise<void>;
}

/** The saga's input: only ids; every task reads the ledger for the rest. */
export interface SagaInput {
  actionId: string;
}

/**
 * Runs an allowed single read-tier call to its end without a Standard execution (issue 17's
 * read fast path): the same saga tasks, connector function and receipts function, called in
 * order. It throws when it cannot finish (a refusal, a vendor error, a run-time decision
 * other than allow): the caller then hands the action to the saga, which resumes from what
 * the ledger holds, so every path that is not the happy one stays the saga's.
 */
export interface ReadPath {
  /**
   * `timeoutMs`: how long the caller waits for the end (the function it calls may run on).
   * Resolves with the ended action and its steps when the runner answered with them.
   */
  run(actionId: string, options?: { timeoutMs?: number }): Promise<{ action: ActionRecord; steps: StepRecord[] } | undefined | void>;
}
