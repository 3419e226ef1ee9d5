import type { ActionRecord } from '../actions/action';
import type { StepRecord } from './steps';
import type { ReadAnswer } from './ledger';

/**
 * Which workflow an action starts in, chosen at intake: `unattended` (policy allowed it, no
 * human to wait for: the Express run, statemachines/action-run.asl.json) or `attended` (an
 * approval or another wait may come: the Standard saga, statemachines/action-saga.asl.json,
 * which runs the same Express run once it is cleared). `resumed`: the saga again, for an action
 * a dead workflow left unfinished (saga/resume.ts); in AWS under a fresh execution name, since
 * the action's first saga may have ended.
 */
export type WorkflowKind = 'unattended' | 'attended' | 'resumed';

/**
 * Starting the workflow for an accepted action. Step Functions in AWS (the Standard saga's
 * execution name = action id, so a second start is a no-op; an Express run may run twice,
 * which its idempotent tasks make safe); the local ASL runner in local mode. `kind` defaults
 * to `attended`: the saga resumes any action from what the ledger holds.
 */
export interface WorkflowStarter {
  start(actionId: string, input: SagaInput, kind?: WorkflowKind): Promise<void>;
  /**
   * Optional: resolves when the workflow running for the action (in whichever of the two
   * workflows) has ended; undefined when none is known to be running. Only a hint that the
   * ledger is worth reading again (intake's wait for a synchronous answer reads the action
   * then instead of at its next poll): what the action is, is always read from the ledger.
   * The local runner has it (it runs the executions); Step Functions' StartExecution does not,
   * and intake polls there.
   */
  ended?(actionId: string): Promise<void> | undefined;
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
   * `action`: the record the caller (intake) just wrote, which spares the runner reading it
   * back; the runner reads the ledger when it is absent. Every write after is conditional on
   * its version, so a copy another writer has since moved is found, never written over.
   * `answer`: the answer the caller will give when the read ends (ReadAnswer), for the runner to
   * record with the receipt key; `answered` in the result says it did.
   * Resolves with the ended action and its steps when the runner answered with them.
   */
  run(
    actionId: string,
    options?: { timeoutMs?: number; action?: ActionRecord; answer?: ReadAnswer },
  ): Promise<{ action: ActionRecord; steps: StepRecord[]; answered?: ReadAnswer } | undefined | void>;
}
