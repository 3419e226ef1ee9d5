import type { ActionRecord, StoredDecision } from '../actions/action';
import type { RunStep } from '../steps/contract';
import { evaluatePolicy, issueGrant, prepareCompensation, settleAction, type SagaDeps } from './tasks';

/**
 * The read fast path (issue 17): an allowed single read-tier call runs intake → decision →
 * grant → connector → receipt without a Step Functions Standard execution — 15 state
 * transitions and four saga invocations that, for a read, cost about twenty times the rest
 * of the action. It is not a second implementation of the saga: it calls the same tasks the
 * saga's Task states call (EvaluatePolicy, IssueGrant, the connector function's RunStep,
 * SettleAction, WriteReceipt, RecordReceipt), in the order the ASL's happy path takes, so
 * the ledger records, the single-use grant, the exactly-once step record, the receipt, the
 * audit events and every check inside those tasks are the ones a Standard execution leaves.
 * Anything off the happy path throws {@link ReadPathHandOffError} or the task's own error,
 * and the caller starts the saga, which resumes from the ledger (a run-time decision that
 * is no longer allow, a refused grant, a failed vendor call, a receipt that did not land).
 */

/**
 * The errors statemachines/action-saga.asl.json retries on IssueGrant, RunStep or their
 * ExecuteStep rather than catching into compensation (test/saga/read-path.test.ts holds this list to the ASL's).
 */
export const STEP_RETRIED_ERRORS: ReadonlySet<string> = new Set([
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
  'LedgerThrottledError',
  'VendorUnavailableError',
  'VendorTimeoutError',
  'States.Timeout',
  // A paused halt (the kill switch's `pause`): the saga waits it out, retrying with back-off.
  'ActionPausedError',
]);

/** What the fast path needs besides the saga's tasks. */
export interface ReadPathDeps extends SagaDeps {
  /** Calls a connector function with a RunStep payload (AWS: a synchronous invoke; locally: its handler). */
  callConnector(functionName: string, payload: RunStep): Promise<unknown>;
  /** The receipts function's WriteReceipt. */
  writeReceipt(actionId: string): Promise<{ key: string; status: string }>;
}

/** The fast path stopped before the end; the saga takes the action over from the ledger. */
export class ReadPathHandOffError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ReadPathHandOffError';
  }
}

/**
 * Runs the action's one read call to its receipt. Resolves once the action is completed and
 * its receipt recorded; throws otherwise (see the module comment).
 */
export async function runReadAction(
  deps: ReadPathDeps,
  actionId: string,
  fresh?: { action: ActionRecord; decision: StoredDecision },
): Promise<void> {
  // EvaluatePolicy as the saga's first state runs it (it moves the action to running); intake's
  // decision of a moment ago, in the same request, is the run-time decision.
  const routed = await evaluatePolicy(deps, actionId, fresh);
  if (routed.next !== 'execute' || routed.count !== 1) {
    throw new ReadPathHandOffError(`run-time decision routes the action to ${routed.next} (${routed.count} step(s))`);
  }
  try {
    const grant = await issueGrant(deps, { actionId, index: 0, kind: 'forward' });
    await deps.callConnector(grant.functionName, grant.payload);
  } catch (error) {
    // What the ASL does with it: a transient error is retried (the saga, resuming at
    // EvaluatePolicy, issues a fresh grant: the same as a retry); anything else is caught into
    // PrepareCompensation, which records the failure and moves the action to compensating, so
    // the saga takes it from there exactly as a Standard execution would have.
    const name = error instanceof Error ? error.name : 'Error';
    if (!STEP_RETRIED_ERRORS.has(name)) {
      await prepareCompensation(deps, { actionId, error: { Error: name, Cause: error instanceof Error ? error.message : String(error) } });
    }
    throw new ReadPathHandOffError(`the step failed with ${name}`, { cause: error });
  }
  const settled = await settleAction(deps, { actionId, final: { status: 'completed', reason: 'every step completed' } });
  if (settled.status !== 'completed') throw new ReadPathHandOffError(`the action settled as ${settled.status}`);
  const receipt = await deps.writeReceipt(actionId);
  // The ASL's ReportOutcome: a failed receipt fails the execution; the saga retries it.
  if (receipt.status === 'failed') throw new ReadPathHandOffError('the receipt was not written');
  await deps.actions.setReceiptKey(actionId, receipt.key, deps.now());
}
