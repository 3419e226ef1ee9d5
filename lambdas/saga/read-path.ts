import type { ActionRecord } from '../actions/action';
import type { ReadAnswer } from '../ports/ledger';
import { InvokeTimeoutError, type FunctionInvoker } from '../ports/functions';
import type { AuditEvent, EventLog, LedgerSnapshot, StepRecord } from '../ports/steps';
import type { ReadPath } from '../ports/workflow';
import type { RunStep } from '../steps/contract';
import { evaluate, issueGrant, prepareCompensation, settle, type SagaDeps } from './tasks';

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
 *
 * Where it runs: in the saga function, as its RunRead task, in AWS and locally alike. Intake
 * invokes it synchronously ({@link readPathThrough}); RunRead invokes the connector function
 * and the receipts function synchronously ({@link invokedReadPath}). A Standard execution
 * would cost ~15 state transitions per read; an Express synchronous execution of a read-only
 * definition would cost five Task invocations where this costs three, and its at-most-once
 * start buys nothing the ledger does not already give.
 */

/**
 * The errors statemachines/action-run.asl.json retries (or waits out) on IssueGrant, RunStep or their
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
  // The connector function's own timeout (middy): the step may have acted, so it is retried.
  'TimeoutError',
  // A paused halt (the kill switch's `pause`): the saga waits it out, retrying with back-off.
  'ActionPausedError',
]);

/** How a read ended: the action (completed, its receipt recorded) and its step records, as the ledger holds them. */
export interface ReadOutcome {
  action: ActionRecord;
  steps: StepRecord[];
  /**
   * The read answer the caller asked to record (ReadAnswer) was recorded with the receipt key,
   * bound to this action's version: a replay of the request rebuilds the answer from it.
   */
  answered?: ReadAnswer;
}

/** What the fast path needs besides the saga's tasks. */
export interface ReadPathDeps extends SagaDeps {
  /** Calls a connector function with a RunStep payload (AWS: a synchronous invoke; locally: its handler). */
  callConnector(functionName: string, payload: RunStep): Promise<unknown>;
  /** The receipts function's WriteReceipt; `held`: the action's records as the path holds them (the receipt is built from them). */
  writeReceipt(actionId: string, held?: LedgerSnapshot): Promise<{ key: string; status: string }>;
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
 * its receipt recorded; throws otherwise (see the module comment). The action is intake's
 * record (`handed`; read only when absent) carried from task to task as each left it: every
 * write after is conditional on the version it carries, so a writer that moved it meanwhile
 * is found, never overwritten. The step record comes back from the connector and the audit
 * events are the ones this run appended, so on the happy path nothing is read back: settling
 * and the receipt are built from what the path wrote (each falls back to reading the ledger).
 */
export async function runReadAction(readDeps: ReadPathDeps, actionId: string, handed?: unknown, answer?: ReadAnswer): Promise<ReadOutcome> {
  // Every audit event this run appends, as written: when they are the action's whole chain, the
  // receipt is built from them rather than from reading the chain back.
  const events = new RecordingEventLog(readDeps.events);
  const deps: ReadPathDeps = { ...readDeps, events };
  // Intake hands over the record it has just written (only intake invokes RunRead, and it is
  // intake's own record): no read. Without one, or with one that is not this received action, the ledger's.
  const loaded = handedAction(handed, actionId) ?? (await deps.actions.getAction(actionId));
  if (!loaded) throw new ReadPathHandOffError(`no action ${actionId}`);
  if (loaded.status !== 'received') throw new ReadPathHandOffError(`the action is ${loaded.status}, not received`);
  // EvaluatePolicy as the saga's first state runs it: decided again at run time, moved to running.
  const routed = await evaluate(deps, actionId, loaded, { reuseDecisionWithinMs: FRESH_DECISION_MS });
  if (routed.next !== 'execute' || routed.count !== 1) {
    throw new ReadPathHandOffError(`run-time decision routes the action to ${routed.next} (${routed.count} step(s))`);
  }
  let stepRecord: StepRecord | undefined;
  try {
    // No step records: it was received a moment ago, and steps begin only once it runs. Were
    // another runner's attempt already there, this grant is one more attempt at the same step,
    // which the connector's step record and the vendor's idempotency key make one call.
    const grant = await issueGrant(deps, { actionId, index: 0, kind: 'forward' }, { action: routed.action, records: [] });
    stepRecord = completedRecordOf(await deps.callConnector(grant.functionName, { ...grant.payload, answer: 'record' }), grant.payload);
  } catch (error) {
    // What the ASL does with it: a transient error is retried (the saga, resuming at
    // EvaluatePolicy, issues a fresh grant: the same as a retry); anything else is caught into
    // PrepareCompensation, which records the failure and moves the action to compensating, so
    // the saga takes it from there exactly as a Standard execution would have.
    const name = error instanceof Error ? error.name : 'Error';
    // A connector that did not answer in time may still be calling the vendor: in doubt, like
    // the ASL's States.Timeout, never a failure to compensate.
    if (!STEP_RETRIED_ERRORS.has(name) && !(error instanceof InvokeTimeoutError)) {
      await prepareCompensation(deps, { actionId, error: { Error: name, Cause: error instanceof Error ? error.message : String(error) } });
    }
    throw new ReadPathHandOffError(`the step failed with ${name}`, { cause: error });
  }
  // The plan's one step, completed, as the connector recorded it: every step record the action
  // has (a compensation record needs the action compensating, which the settle's conditional
  // move from running would find). Without it, settle queries them.
  const { settled, action, records } = await settle(
    deps,
    { actionId, final: { status: 'completed', reason: 'every step completed' } },
    routed.action,
    stepRecord && [stepRecord],
  );
  if (settled.status !== 'completed') throw new ReadPathHandOffError(`the action settled as ${settled.status}`);
  // What the receipt is built from, when this run holds all of it: the action as settle wrote
  // it, the chain it appended from its first event (each append a conditional put of the next
  // sequence number, so no other writer's event lies between them), and the one step record.
  // Events another writer appends after the last of these are after the receipt's point in
  // time, as they would be after a read. JSON, as the ledger returns them and Lambda carries them.
  const chain = wholeChain(events.appended);
  const held: LedgerSnapshot | undefined =
    chain && records && records.length === 1 ? (JSON.parse(JSON.stringify({ action, events: chain, steps: records })) as LedgerSnapshot) : undefined;
  const receipt = await deps.writeReceipt(actionId, held);
  // The ASL's ReportOutcome: a failed receipt fails the execution; the saga retries it.
  if (receipt.status === 'failed') throw new ReadPathHandOffError('the receipt was not written');
  // With it, the read answer intake will give (`answer`): one write records both, so intake
  // need not store the answer under the Idempotency-Key (intake.ts, answeredRead).
  const written = await deps.actions.setReceiptKey(actionId, receipt.key, deps.now(), action, answer);
  const recorded = written ?? (await deps.actions.getAction(actionId));
  if (!recorded) throw new ReadPathHandOffError(`no action ${actionId}`);
  // Recorded only by this write (none when another run had recorded the key already).
  return { action: recorded, steps: records ?? (await deps.steps.listSteps(actionId)), ...(written && answer ? { answered: answer } : {}) };
}

/** The event log, recording in `appended` every event it appends (never one it found already there). */
class RecordingEventLog implements EventLog {
  readonly appended: AuditEvent[] = [];
  readonly listWithAction?: EventLog['listWithAction'];
  readonly hintEmpty?: EventLog['hintEmpty'];

  constructor(private readonly events: EventLog) {
    if (events.listWithAction) this.listWithAction = (actionId) => events.listWithAction!(actionId);
    if (events.hintEmpty) this.hintEmpty = (actionId) => events.hintEmpty!(actionId);
  }

  async append(...args: Parameters<EventLog['append']>): Promise<AuditEvent> {
    const written = await this.events.append(...args);
    this.appended.push(written);
    return written;
  }

  async appendOnce(...args: Parameters<EventLog['appendOnce']>): ReturnType<EventLog['appendOnce']> {
    const answer = await this.events.appendOnce(...args);
    // An event found in the chain was another writer's: the chain is no longer all this run's.
    this.appended.push(answer.appended ? answer.event : { ...answer.event, seq: -1 });
    return answer;
  }

  list(actionId: string): Promise<AuditEvent[]> {
    return this.events.list(actionId);
  }
}

/** `appended` when it is a whole chain from its first event (sequence 1, 2, … in order, each linked to the one before); undefined otherwise. */
function wholeChain(appended: readonly AuditEvent[]): AuditEvent[] | undefined {
  const whole = appended.every((e, i) => e.seq === i + 1 && (i === 0 || e.prevHash === appended[i - 1]!.hash));
  return whole && appended.length > 0 ? [...appended] : undefined;
}

/**
 * The completed step record in a connector's answer to a RunStep asking for it (`answer:
 * 'record'`), when it is the record of exactly this call's step; undefined otherwise (an
 * answer without one: the step records are read instead).
 */
export function completedRecordOf(answer: unknown, call: Pick<RunStep, 'actionId' | 'stepId' | 'kind'>): StepRecord | undefined {
  if (answer === null || typeof answer !== 'object') return undefined;
  const record = (answer as { record?: unknown }).record;
  if (record === null || typeof record !== 'object') return undefined;
  const r = record as Partial<StepRecord>;
  const same = r.actionId === call.actionId && r.stepId === call.stepId && r.kind === call.kind;
  return same && r.status === 'complete' && typeof r.attempts === 'number' && Array.isArray(r.grants) ? (r as StepRecord) : undefined;
}

/**
 * The action intake handed RunRead, when it is this action as intake wrote it (received,
 * versioned, decided); undefined otherwise, and RunRead reads the ledger. Not a trust check:
 * only intake may invoke RunRead, and it hands over the record it wrote. What keeps a stale copy
 * harmless is the version every later write is conditional on.
 */
export function handedAction(value: unknown, actionId: string): ActionRecord | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const a = value as Partial<ActionRecord>;
  const decided = a.decision !== null && typeof a.decision === 'object';
  const principal = a.principal !== null && typeof a.principal === 'object' && typeof a.principal.sub === 'string';
  if (a.id !== actionId || a.status !== 'received' || typeof a.version !== 'number' || typeof a.planHash !== 'string' || !decided || !principal) return undefined;
  return a as ActionRecord;
}

/**
 * How old intake's allow may be for RunRead to take it as the run-time decision: RunRead runs
 * in the same request, milliseconds after it; a read that reaches it later is decided again.
 */
export const FRESH_DECISION_MS = 2_000;

/** The saga function's task that runs the read fast path (intake invokes it synchronously). */
export const RUN_READ_TASK = 'RunRead';

/** The receipts function's WriteReceipt answer, checked: it crosses a function boundary. */
export function receiptAnswer(value: unknown): { key: string; status: string } {
  const v = (value ?? {}) as { key?: unknown; status?: unknown };
  if (typeof v.key !== 'string' || typeof v.status !== 'string') throw new ReadPathHandOffError('WriteReceipt answered without a key and status');
  return { key: v.key, status: v.status };
}

/**
 * The read path's calls out of the saga function: the connector function (with its own
 * timeout: a connector that does not answer leaves the step in doubt) and the receipts function.
 */
export function invokedReadPath(
  saga: SagaDeps,
  invoker: FunctionInvoker,
  options: { receiptsFunction: string; connectorTimeoutMs: number; receiptTimeoutMs: number },
): ReadPathDeps {
  return {
    ...saga,
    callConnector: (functionName, payload) => invoker.invoke(functionName, payload, { timeoutMs: options.connectorTimeoutMs }),
    writeReceipt: async (actionId, held) =>
      receiptAnswer(
        await invoker.invoke(options.receiptsFunction, { task: 'WriteReceipt', actionId, ...(held ? { held } : {}) }, { timeoutMs: options.receiptTimeoutMs }),
      ),
  };
}

/**
 * Intake's side of the read path: a synchronous invoke of the saga function's RunRead, bounded
 * by how long the client agreed to wait. Any error, a timeout included, hands the action to
 * the Standard saga: if RunRead is still running, both meet in the ledger (conditional status
 * moves, the step record, the single-use grant, the write-once receipt), so the read is
 * neither lost nor done twice.
 */
export function readPathThrough(invoker: FunctionInvoker, sagaFunction: string, defaultTimeoutMs: number): ReadPath {
  return {
    run: async (actionId, options = {}) => {
      const payload = {
        task: RUN_READ_TASK,
        actionId,
        ...(options.action ? { action: options.action } : {}),
        ...(options.answer ? { answer: options.answer } : {}),
      };
      const answer = await invoker.invoke(sagaFunction, payload, { timeoutMs: options.timeoutMs ?? defaultTimeoutMs });
      return readOutcomeOf(answer, actionId);
    },
  };
}

/**
 * RunRead's answer, checked before intake answers the client with it: this action, completed,
 * its receipt recorded, its step records. Anything else is undefined, and intake reads the
 * ledger instead (an answer from an older deployment, or a bug: never trusted blindly).
 */
export function readOutcomeOf(answer: unknown, actionId: string): ReadOutcome | undefined {
  if (answer === null || typeof answer !== 'object') return undefined;
  const { action, steps, answered } = answer as { action?: unknown; steps?: unknown; answered?: unknown };
  if (action === null || typeof action !== 'object' || !Array.isArray(steps)) return undefined;
  const a = action as Partial<ActionRecord>;
  if (a.id !== actionId || a.status !== 'completed' || typeof a.receiptKey !== 'string' || typeof a.version !== 'number') return undefined;
  const ours = steps.every((s: unknown) => s !== null && typeof s === 'object' && (s as Partial<StepRecord>).actionId === actionId);
  if (!ours) return undefined;
  const recorded = answered !== null && typeof answered === 'object' && typeof (answered as ReadAnswer).waitMs === 'number';
  return { action: action as ActionRecord, steps: steps as StepRecord[], ...(recorded ? { answered: { waitMs: (answered as ReadAnswer).waitMs } } : {}) };
}
