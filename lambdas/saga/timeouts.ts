/**
 * The saga's timeouts, derived from its ASL and the configured function timeouts, so the
 * execution can never time out before the waits inside it (an execution timeout is a failure
 * no Catch sees: no compensation, no receipt). The stack (lib/constructs/saga.ts), the config
 * check (lib/config.ts) and the local runner (local/saga-runner.ts) all call
 * `deriveSagaTimeouts` and `applySagaTimeouts` on the same file, so the deployed and the local
 * definition carry the same numbers. The ASL file itself holds no TimeoutSeconds at all.
 *
 * The bound, in seconds (every term read from the ASL's Retry fields, defaults as in the ASL spec):
 *
 *   task(s)       = fn(s) + TASK_TIMEOUT_MARGIN_SECONDS        fn = timeout of the Lambda it invokes
 *   task(wait)    = approvalTimeoutSeconds + task(approvals function)
 *   delays(s)     = Σ retriers Σ k<MaxAttempts min(IntervalSeconds·BackoffRate^k, MaxDelaySeconds)
 *   worst(Task)   = (1 + Σ MaxAttempts)·task(s) + delays(s)
 *   worst(wait)   = Σ MaxAttempts·task(approvals function) + task(wait) + delays(s)
 *   worst(Parallel) = (1 + Σ MaxAttempts)·max over branches run(branch) + delays(s)
 *   run(def)      = Σ states visits(s)·(worst(s) + TRANSITION_ALLOWANCE_SECONDS)
 *   visits(s)     = maxSteps if s lies on a cycle (the step and compensation loops), else 1
 *   execution     = run(top level)
 *
 * Summing every state (not only one path) over-counts alternatives such as the forward and
 * the compensation loop; the bound stays simple and safe, and the only large term (the
 * approval wait) is counted once.
 */

import { MAX_PLAN_STEPS } from '../intake/envelope';

/** Step Functions Standard workflows run at most one year. */
export const STANDARD_MAX_EXECUTION_SECONDS = 31_536_000;
/**
 * Express workflows run at most five minutes. The Express run's derived worst case (every
 * retry of every step of a 20-step plan) is far longer: its TimeoutSeconds is this cap, and a
 * run that reaches it is resumed by the Standard saga (see statemachines/action-run.asl.json).
 */
export const EXPRESS_MAX_EXECUTION_SECONDS = 300;
/** Longest Task timeout the Express run accepts: one step attempt must fit in a run with room for the rest. */
export const EXPRESS_TASK_MAX_SECONDS = 240;
/**
 * Added to a Lambda's timeout for its Task: the function's own timeout must fire first (a
 * named, retryable error) rather than States.Timeout, and a cold start's init phase (up to
 * 10 s) is not part of the function timeout.
 */
export const TASK_TIMEOUT_MARGIN_SECONDS = 10;
/** Allowance per state visit for the transition itself (throttled transitions wait). */
export const TRANSITION_ALLOWANCE_SECONDS = 1;

/** What the timeouts are derived from: the stack's config, or the local runner's options. */
export interface SagaTimeoutConfig {
  /** How long WaitForApproval waits for a quorum (config `approvalTimeoutSeconds`). */
  approvalTimeoutSeconds: number;
  /** Timeout of the functions the ASL names (`${SagaFunctionArn}`, …): config `lambda.timeoutSeconds`. */
  functionTimeoutSeconds: number;
  /** Timeout of the connector functions, invoked by a name read at run time: `lambda.connectorTimeoutSeconds`. */
  connectorTimeoutSeconds: number;
  /** Most iterations of a loop in the saga: steps in a plan (compensations are fewer). */
  maxSteps: number;
}

/** The config defaults (lib/config.ts uses them too), so the local runner derives the same numbers as an unconfigured stack. */
export const DEFAULT_SAGA_TIMEOUTS: Readonly<SagaTimeoutConfig> = Object.freeze({
  approvalTimeoutSeconds: 259_200,
  functionTimeoutSeconds: 10,
  connectorTimeoutSeconds: 30,
  maxSteps: MAX_PLAN_STEPS,
});

/** The derived numbers. */
export interface SagaTimeouts {
  /** The execution's top-level TimeoutSeconds. */
  executionSeconds: number;
  /** TimeoutSeconds of every Task state, by state name (the approval wait's includes the approvals function's time). */
  tasks: Record<string, number>;
  /** The execution bound without the approval wait: what the saga itself may take at worst. */
  runSeconds: number;
}

/** The definition cannot be given honest timeouts (an unknown Task shape, or over a limit). */
export class SagaTimeoutError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SagaTimeoutError';
  }
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface Retrier {
  MaxAttempts?: number;
  IntervalSeconds?: number;
  BackoffRate?: number;
  MaxDelaySeconds?: number;
}

const isObject = (value: Json | undefined): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

const CALLBACK = 'arn:aws:states:::lambda:invoke.waitForTaskToken';
/** Runs the Express run and waits for it: bounded by the Express cap. */
const RUN_SYNC = 'arn:aws:states:::states:startExecution.sync:2';
/** Starts the Standard saga and returns: one API call. */
const START = 'arn:aws:states:::states:startExecution';
const INVOKE = 'arn:aws:states:::lambda:invoke';
const FIXED_FUNCTION = /^\$\{[A-Za-z][A-Za-z0-9]*FunctionArn\}$/;

function retriers(state: JsonObject): Retrier[] {
  return Array.isArray(state.Retry) ? state.Retry.filter(isObject).map((r) => r as Retrier) : [];
}

/** Retries and the longest total back-off the state's Retry fields allow (ASL defaults: 3, 1 s, ×2). */
function retryBudget(state: JsonObject): { retries: number; delaySeconds: number } {
  let retries = 0;
  let delaySeconds = 0;
  for (const r of retriers(state)) {
    const max = r.MaxAttempts ?? 3;
    const interval = r.IntervalSeconds ?? 1;
    const rate = r.BackoffRate ?? 2;
    retries += max;
    for (let k = 0; k < max; k++) delaySeconds += Math.min(interval * rate ** k, r.MaxDelaySeconds ?? Number.POSITIVE_INFINITY);
  }
  return { retries, delaySeconds: Math.ceil(delaySeconds) };
}

function successors(state: JsonObject): string[] {
  const next: Json[] = [state.Next ?? null, state.Default ?? null];
  for (const list of [state.Choices, state.Catch]) {
    if (Array.isArray(list)) for (const c of list) if (isObject(c)) next.push(c.Next ?? null);
  }
  return next.filter((n): n is string => typeof n === 'string');
}

/** States of one definition level that lie on a cycle (reachable from one of their successors). */
function statesOnCycles(states: JsonObject): Set<string> {
  const onCycle = new Set<string>();
  for (const name of Object.keys(states)) {
    const seen = new Set<string>();
    const queue = [...successors(states[name] as JsonObject)];
    while (queue.length > 0) {
      const current = queue.pop()!;
      if (current === name) {
        onCycle.add(name);
        break;
      }
      if (seen.has(current) || !isObject(states[current])) continue;
      seen.add(current);
      queue.push(...successors(states[current] as JsonObject));
    }
  }
  return onCycle;
}

/** The TimeoutSeconds a Task gets: its Lambda's timeout plus the margin, or the approval wait. */
function taskTimeout(name: string, state: JsonObject, config: SagaTimeoutConfig): number {
  const params = isObject(state.Parameters) ? state.Parameters : {};
  // The wait's timer starts before the approvals function stores the approval (and its
  // expiry, approvalTimeoutSeconds later): the function's own Task time on top keeps the
  // stored expiry first, so a vote the ledger accepts is never answered to a timed-out task.
  if (state.Resource === CALLBACK) return config.approvalTimeoutSeconds + config.functionTimeoutSeconds + TASK_TIMEOUT_MARGIN_SECONDS;
  if (state.Resource === RUN_SYNC) return EXPRESS_MAX_EXECUTION_SECONDS + TASK_TIMEOUT_MARGIN_SECONDS;
  if (state.Resource === START) return config.functionTimeoutSeconds + TASK_TIMEOUT_MARGIN_SECONDS;
  if (state.Resource === INVOKE) {
    if (typeof params.FunctionName === 'string' && FIXED_FUNCTION.test(params.FunctionName)) {
      return config.functionTimeoutSeconds + TASK_TIMEOUT_MARGIN_SECONDS;
    }
    // The only function chosen at run time is the step's connector (named by IssueGrant).
    if (typeof params['FunctionName.$'] === 'string') return config.connectorTimeoutSeconds + TASK_TIMEOUT_MARGIN_SECONDS;
  }
  throw new SagaTimeoutError(
    `Task ${name} calls neither a \${...FunctionArn} nor a connector function (Resource ${String(state.Resource)}); no timeout can be derived for it`,
  );
}

/** Worst-case duration of one definition level; fills `tasks` with every Task's timeout on the way. */
function runSeconds(definition: JsonObject, config: SagaTimeoutConfig, tasks: Record<string, number>, countWait: boolean): number {
  const states = isObject(definition.States) ? definition.States : {};
  const loops = statesOnCycles(states);
  let total = 0;
  for (const [name, value] of Object.entries(states)) {
    if (!isObject(value)) continue;
    const { retries, delaySeconds } = retryBudget(value);
    let worst = 0;
    if (value.Type === 'Task') {
      const timeout = taskTimeout(name, value, config);
      tasks[name] = timeout;
      if (value.Resource === CALLBACK) {
        // Retried errors (Lambda.*, LedgerThrottledError) come from the invoke, never from the
        // answer: a failed attempt lasts at most the approvals function's own Task timeout. The
        // one retry of States.Timeout comes after the stored expiry, so RequestApproval answers
        // it at once from the ledger (decided, or expired now): it too lasts one function time.
        const invoke = config.functionTimeoutSeconds + TASK_TIMEOUT_MARGIN_SECONDS;
        worst = retries * invoke + timeout - (countWait ? 0 : config.approvalTimeoutSeconds) + delaySeconds;
      } else {
        worst = (1 + retries) * timeout + delaySeconds;
      }
    } else if (value.Type === 'Parallel' || value.Type === 'Map') {
      const branches = value.Type === 'Parallel' ? (Array.isArray(value.Branches) ? value.Branches : []) : [value.ItemProcessor ?? value.Iterator ?? null];
      const branch = Math.max(0, ...branches.filter(isObject).map((b) => runSeconds(b, config, tasks, countWait)));
      // A Map in this saga would run its items one after another (MaxConcurrency 1) at worst.
      const items = value.Type === 'Map' ? config.maxSteps : 1;
      worst = (1 + retries) * branch * items + delaySeconds;
    } else if (value.Type === 'Wait') {
      worst = typeof value.Seconds === 'number' ? value.Seconds : 0;
    }
    total += (loops.has(name) ? config.maxSteps : 1) * (worst + TRANSITION_ALLOWANCE_SECONDS);
  }
  return total;
}

/**
 * Derives the execution's and every Task's TimeoutSeconds from the definition and the config.
 * Throws SagaTimeoutError for a Task whose timeout cannot be derived.
 */
export function deriveSagaTimeouts(definition: unknown, config: SagaTimeoutConfig, options: { express?: boolean } = {}): SagaTimeouts {
  if (!isObject(definition as Json)) throw new SagaTimeoutError('The saga definition is not a JSON object');
  const tasks: Record<string, number> = {};
  const derived = runSeconds(definition as JsonObject, config, tasks, true);
  const run = runSeconds(definition as JsonObject, config, {}, false);
  // An Express execution cannot be given its worst case: the cap, and the Standard saga resumes it.
  const executionSeconds = options.express ? Math.min(derived, EXPRESS_MAX_EXECUTION_SECONDS) : derived;
  return { executionSeconds, tasks, runSeconds: run };
}

/**
 * Problems that make the timeouts impossible to honour on Step Functions, each naming the
 * config fields to change (empty when the config is fine).
 */
export function sagaTimeoutProblems(timeouts: SagaTimeouts, config: SagaTimeoutConfig, options: { express?: boolean } = {}): string[] {
  const problems: string[] = [];
  if (options.express) {
    // A Task that outlasts the run's cap could never finish inside it: resuming would cut it again.
    const tooLong = Object.entries(timeouts.tasks).filter(([, seconds]) => seconds > EXPRESS_TASK_MAX_SECONDS);
    if (tooLong.length > 0) {
      problems.push(
        `${tooLong.map(([name, seconds]) => `${name} may take ${seconds} s`).join(', ')}, more than the ${EXPRESS_TASK_MAX_SECONDS} s one Task may take in the Express run ` +
          `(its ${EXPRESS_MAX_EXECUTION_SECONDS} s cap less room for the run's bookkeeping): lower lambda.connectorTimeoutSeconds (at most ${EXPRESS_TASK_MAX_SECONDS - TASK_TIMEOUT_MARGIN_SECONDS}) or lambda.timeoutSeconds`,
      );
    }
    return problems;
  }
  if (timeouts.executionSeconds > STANDARD_MAX_EXECUTION_SECONDS) {
    const room = STANDARD_MAX_EXECUTION_SECONDS - timeouts.runSeconds;
    problems.push(
      `approvalTimeoutSeconds (${config.approvalTimeoutSeconds} s) plus the saga's worst-case run (${timeouts.runSeconds} s ` +
        `with lambda.timeoutSeconds = ${config.functionTimeoutSeconds}, lambda.connectorTimeoutSeconds = ${config.connectorTimeoutSeconds}, ` +
        `${config.maxSteps} steps and their compensations, retries included) needs an execution of ${timeouts.executionSeconds} s, ` +
        `over the ${STANDARD_MAX_EXECUTION_SECONDS} s (one year) a Standard workflow may run; ` +
        (room >= 60
          ? `lower approvalTimeoutSeconds to at most ${room}, or the Lambda timeouts`
          : 'lower lambda.timeoutSeconds or lambda.connectorTimeoutSeconds'),
    );
  }
  return problems;
}

/**
 * A copy of the definition with the derived TimeoutSeconds on the execution and on every Task
 * (in nested Parallel branches and Map processors too).
 */
export function applySagaTimeouts<T>(definition: T, timeouts: SagaTimeouts): T {
  const copy = structuredClone(definition) as unknown as JsonObject;
  const visit = (node: Json): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!isObject(node)) return;
    if (isObject(node.States)) {
      for (const [name, state] of Object.entries(node.States)) {
        if (isObject(state) && state.Type === 'Task') {
          const seconds = timeouts.tasks[name];
          if (seconds === undefined) throw new SagaTimeoutError(`No timeout was derived for Task ${name}`);
          state.TimeoutSeconds = seconds;
        }
      }
    }
    Object.values(node).forEach(visit);
  };
  visit(copy);
  copy.TimeoutSeconds = timeouts.executionSeconds;
  return copy as unknown as T;
}
