import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Context } from 'aws-lambda';
import { StateMachine } from 'aws-local-stepfunctions';
import { z } from 'zod';
import type { Logger } from '../lambdas/shared/logger';
import { jsonBytes, STATE_PAYLOAD_MAX_BYTES } from '../lambdas/saga/limits';
import {
  applySagaTimeouts,
  DEFAULT_SAGA_TIMEOUTS,
  deriveSagaTimeouts,
  SagaTimeoutError,
  sagaTimeoutProblems,
  TASK_TIMEOUT_MARGIN_SECONDS,
  type SagaTimeoutConfig,
  type SagaTimeouts,
} from '../lambdas/saga/timeouts';
import { TaskTokenInvalidError, type TaskCallbacks } from '../lambdas/ports/task-callbacks';
import type { SagaInput, WorkflowKind, WorkflowStarter } from '../lambdas/ports/workflow';

/**
 * The local stand-in for Step Functions: runs the two workflows with aws-local-stepfunctions,
 * statemachines/action-saga.asl.json (the Standard saga: decisions and waits) and
 * statemachines/action-run.asl.json (the Express run: steps, compensation, receipt), every
 * Task mapped to the same handler functions the stack deploys, in-process. The saga's
 * `states:startExecution.sync:2` Task runs the run here and waits for it; the run's
 * `states:startExecution` hands an action to the saga (a no-op while the saga has it, as an
 * execution name makes it in AWS). It mints the task tokens that library never generates and answers
 * `.waitForTaskToken` states through a callback registry behind the same TaskCallbacks port
 * the approvals function uses with SendTaskSuccess / SendTaskFailure in AWS.
 *
 * It also keeps two promises the library does not: the TimeoutSeconds derived from config,
 * exactly as the stack derives them (the execution's enforced here, since the library arms a
 * single Node timer, capped at ~24.8 days), and the 256 KiB cap on every state's input and
 * output, a task's input and its result: a breach stops the execution with
 * States.DataLimitExceeded, beyond any Catch, as Step Functions does, so local tests see it.
 */

/** A deployed function, in-process: the handler module's export. */
export type LocalFunction = (event: unknown, context: Context) => Promise<unknown>;

export const LOCAL_ACCOUNT = '000000000000';
export const LOCAL_REGION = 'us-east-1';

/** The ARN a function has locally: `arn:aws:lambda:us-east-1:000000000000:function:airlock-<name>`. */
export function localFunctionArn(name: string): string {
  return `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:airlock-${name}`;
}

const DEFAULT_ASL = join(import.meta.dirname, '..', 'statemachines', 'action-saga.asl.json');
const DEFAULT_RUN_ASL = join(import.meta.dirname, '..', 'statemachines', 'action-run.asl.json');
/** The local ARNs of the two state machines (the ASL's `${SagaWorkflowArn}` and `${RunWorkflowArn}`). */
export const LOCAL_SAGA_ARN = `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stateMachine:airlock-action-saga`;
export const LOCAL_RUN_ARN = `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stateMachine:airlock-action-run`;
const RUN_SYNC = 'arn:aws:states:::states:startExecution.sync:2';
const START_EXECUTION = 'arn:aws:states:::states:startExecution';

export interface LocalSagaRunnerOptions {
  /** Functions by local ARN (see localFunctionArn). */
  functions: ReadonlyMap<string, LocalFunction>;
  /** `${SagaFunctionArn}` → local ARN, as the stack's definitionSubstitutions do. */
  substitutions: Readonly<Record<string, string>>;
  logger: Logger;
  /** The Standard saga's ASL (default statemachines/action-saga.asl.json). */
  definitionPath?: string;
  /**
   * The Express run's ASL: default statemachines/action-run.asl.json, or none when a custom
   * `definitionPath` is given without one (a single-machine test definition).
   */
  runDefinitionPath?: string;
  /**
   * Shortens every Retry interval to this many milliseconds (tests). The ASL's own intervals
   * (seconds, with backoff and jitter) apply otherwise.
   */
  retryIntervalMs?: number;
  /**
   * With `retryIntervalMs`: the length of the Wait states that wait out a `pause` halt
   * (`WaitWhilePaused`, at most six in a row before the saga compensates) instead, so a
   * paused saga waits six times this for the resume (the chaos storm) rather than giving up
   * within milliseconds.
   */
  pauseRetryIntervalMs?: number;
  /** What the TimeoutSeconds are derived from (the stack uses its config); the config defaults otherwise. */
  timeouts?: Partial<SagaTimeoutConfig>;
  /**
   * How long close() waits for task handlers still running (default 30 s). Handlers are
   * expected to end sooner: the control plane aborts their vendor calls when it stops.
   */
  closeTimeoutMs?: number;
}

/** Default bound of close()'s wait for running task handlers: API Gateway's integration timeout. */
const DEFAULT_CLOSE_TIMEOUT_MS = 30_000;

/** Why the runner stopped an execution, or the error of the Fail state it ended in. */
export interface ExecutionFailure {
  error: string;
  cause: string;
  /** The state where it happened, when the runner stopped it. */
  state?: string;
}

/** What the runner saw of one execution. */
export interface ExecutionReport {
  failure?: ExecutionFailure;
  /** Largest state input or output, task input or result (UTF-8 bytes of its JSON), and where. */
  largestPayload: { bytes: number; state: string; what: string };
  /**
   * States entered in every execution of the action, both workflows, Parallel branches and
   * Map iterations included.
   */
  transitions: number;
  /** Of those, the ones entered in Standard executions: what Step Functions bills per transition. */
  standardTransitions: number;
  /** Standard executions started for the action. */
  standardExecutions: number;
  /** Express executions started for the action (billed per request) and how long they ran (billed per GB-second). */
  express: { executions: number; ms: number };
  /** Lambda invocations by local function name (Task states run, retries included). */
  invocations: Record<string, number>;
  /** Milliseconds those invocations ran, by function (a waitForTaskToken Task: until its handler returned). */
  invocationMs: Record<string, number>;
}

/** Longest delay a Node.js timer takes (2^31 - 1 ms); longer ones fire at once. */
export const MAX_TIMER_SECONDS = Math.floor(2_147_483_647 / 1000);
/** Reports kept for finished executions (oldest dropped first). */
const MAX_REPORTS = 1_000;

type RunOverrides = NonNullable<NonNullable<Parameters<StateMachine['run']>[1]>['overrides']>;

interface Waiter {
  resolve: (output: unknown) => void;
  reject: (error: Error) => void;
}

const LambdaInvokeSchema = z.object({ FunctionName: z.string(), Payload: z.unknown() });
const StartExecutionSchema = z.object({ StateMachineArn: z.string(), Name: z.string().optional(), Input: z.record(z.string(), z.unknown()) });

function emptyReport(): ExecutionReport {
  return { largestPayload: { bytes: 0, state: '', what: '' }, transitions: 0, standardTransitions: 0, standardExecutions: 0, express: { executions: 0, ms: 0 }, invocations: {}, invocationMs: {} };
}
const ApprovalRequestResult = z.object({ expiresAt: z.string().datetime({ offset: true }) }).partial().passthrough();

/** An error with a Step Functions name (`States.Timeout`, `ApprovalRejected`, a handler's error name). */
class NamedStateError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

interface TaskState {
  Type: string;
  Resource?: string;
  Retry?: unknown[];
}

/** One of the two state machines, compiled. */
interface LocalMachine {
  kind: WorkflowKind;
  arn: string;
  definition: Record<string, unknown>;
  timeouts: SagaTimeouts;
  machine: StateMachine;
  tasks: Map<string, TaskState>;
  retryStates: string[];
  waitStates: string[];
}

/** One running execution. */
interface Execution {
  actionId: string;
  machine: LocalMachine;
  token: string;
  abort: () => void;
  report: ExecutionReport;
  /** Set once the runner has stopped it; every task it would still run is refused. */
  stopped?: NamedStateError;
  cancelTimeout?: () => void;
}

type EventLogs = ReturnType<StateMachine['run']>['eventLogs'];
const TERMINAL_EVENTS = new Set(['ExecutionSucceeded', 'ExecutionFailed', 'ExecutionAborted', 'ExecutionTimeout']);

/** Every state of a definition by name, including those inside Parallel branches and Map processors. */
function statesOf(definition: unknown): Map<string, TaskState> {
  const found = new Map<string, TaskState>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (node === null || typeof node !== 'object') return;
    const obj = node as Record<string, unknown>;
    if (obj.States && typeof obj.States === 'object') {
      for (const [name, state] of Object.entries(obj.States as Record<string, TaskState>)) found.set(name, state);
    }
    Object.values(obj).forEach(visit);
  };
  visit(definition);
  return found;
}

/** The local Step Functions: see the module comment. */
export class LocalSagaRunner implements WorkflowStarter, TaskCallbacks {
  /** The Standard saga as run here: the ASL with placeholders substituted and derived TimeoutSeconds. */
  readonly definition: Record<string, unknown>;
  /** The saga's derived TimeoutSeconds, the same numbers the stack deploys for the same config. */
  readonly timeouts: SagaTimeouts;
  /** The Express run as run here (absent for a single-machine test definition). */
  readonly runDefinition?: Record<string, unknown>;
  /** The run's derived TimeoutSeconds (its execution's: the Express cap). */
  readonly runTimeouts?: SagaTimeouts;
  private readonly config: SagaTimeoutConfig;
  private readonly saga: LocalMachine;
  /** The Express run (absent for a single-machine test definition). */
  private readonly run?: LocalMachine;
  /** Top-level executions by `kind:actionId` (a second start of the same is a no-op); nested runs by execution id. */
  private readonly running = new Map<string, Promise<void>>();
  private readonly executions = new Map<string, Execution>();
  private readonly reports = new Map<string, ExecutionReport>();
  private readonly waiters = new Map<string, Waiter>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Task handler invocations still running; an aborted execution does not stop them. */
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;
  private readonly direct: { invocations: Record<string, number>; invocationMs: Record<string, number> } = { invocations: {}, invocationMs: {} };

  constructor(private readonly options: LocalSagaRunnerOptions) {
    const config: SagaTimeoutConfig = { ...DEFAULT_SAGA_TIMEOUTS, ...options.timeouts };
    this.config = config;
    this.saga = this.compile('attended', options.definitionPath ?? DEFAULT_ASL);
    const runPath = options.runDefinitionPath ?? (options.definitionPath ? undefined : DEFAULT_RUN_ASL);
    if (runPath) this.run = this.compile('unattended', runPath);
    this.definition = this.saga.definition;
    this.timeouts = this.saga.timeouts;
    if (this.run) {
      this.runDefinition = this.run.definition;
      this.runTimeouts = this.run.timeouts;
    }
  }

  /** Reads, substitutes, times and compiles one ASL file. */
  private compile(kind: WorkflowKind, path: string): LocalMachine {
    const { options, config } = this;
    const express = kind === 'unattended';
    const source = readFileSync(path, 'utf8');
    let text = source;
    for (const [placeholder, arn] of Object.entries({ SagaWorkflowArn: LOCAL_SAGA_ARN, RunWorkflowArn: LOCAL_RUN_ARN, ...options.substitutions })) {
      text = text.replaceAll(`\${${placeholder}}`, arn);
    }
    // Derived from the file as the stack reads it (placeholders tell a Task's function apart).
    const timeouts = deriveSagaTimeouts(JSON.parse(source) as unknown, config, { express });
    const parsed = JSON.parse(text) as Record<string, unknown>;
    const problems = sagaTimeoutProblems(timeouts, config, { express });
    const tooLong = Object.entries(timeouts.tasks).filter(([, seconds]) => seconds > MAX_TIMER_SECONDS);
    if (tooLong.length > 0) {
      problems.push(
        `the local runner waits at most ${MAX_TIMER_SECONDS} s in one Task (a Node.js timer limit), and ${tooLong.map(([n, sec]) => `${n} would wait ${sec} s`).join(', ')}: lower approvalTimeoutSeconds`,
      );
    }
    if (problems.length > 0) throw new SagaTimeoutError(`Cannot run the saga locally: ${problems.join('; ')}`);
    const definition = applySagaTimeouts(parsed, timeouts);
    // The library gets a copy (it annotates what it validates) without the execution timeout,
    // which launch() keeps instead: the library would arm one Node timer for it, and a Node
    // timer fires at once past ~24.8 days.
    const { TimeoutSeconds: _executionTimeout, ...forLibrary } = structuredClone(definition);
    const forRun = forLibrary as unknown as ConstructorParameters<typeof StateMachine>[0];
    const machine = new StateMachine(forRun, { validationOptions: { checkPaths: true, checkArn: true } });
    const states = [...statesOf(forRun)];
    return {
      kind,
      arn: express ? LOCAL_RUN_ARN : LOCAL_SAGA_ARN,
      definition,
      timeouts,
      machine,
      tasks: new Map(states.filter(([, state]) => state.Type === 'Task')),
      retryStates: states.filter(([, state]) => Array.isArray(state.Retry)).map(([name]) => name),
      waitStates: states.filter(([, state]) => state.Type === 'Wait').map(([name]) => name),
    };
  }

  /**
   * Starts the workflow for an action: the Express run for an `unattended` one (when this
   * runner has it), the Standard saga otherwise. A second start of the same workflow while one
   * runs is a no-op (like an execution name).
   */
  async start(actionId: string, input: SagaInput, kind: WorkflowKind = 'attended'): Promise<void> {
    // `resumed` is the saga too; here nothing has ended under the action's name that a new start would clash with.
    if (this.closed) throw new Error('The local saga runner is closed');
    const machine = kind === 'unattended' && this.run ? this.run : this.saga;
    if (this.running.has(`${machine.kind}:${actionId}`)) return;
    this.reports.set(actionId, emptyReport());
    while (this.reports.size > MAX_REPORTS) this.reports.delete(this.reports.keys().next().value!);
    this.launch(machine, actionId, input, `${machine.kind}:${actionId}`);
  }

  /**
   * Runs one execution; its report is the action's (nested and handed-over executions add to
   * it). Resolves with its output; rejects with its failure (a Fail state, or the runner's stop).
   */
  /** A shortened Wait state's length: the pause waits' own interval, or the retry interval. */
  private waitInterval(state: string): number {
    const short = this.options.retryIntervalMs!;
    return state === 'WaitWhilePaused' ? (this.options.pauseRetryIntervalMs ?? short) : short;
  }

  private launch(machine: LocalMachine, actionId: string, input: unknown, key: string): Promise<unknown> {
    const token = `local-${randomUUID()}`;
    let report = this.reports.get(actionId);
    if (!report) {
      report = emptyReport();
      this.reports.set(actionId, report);
    }
    const express = machine.kind === 'unattended';
    if (express) report.express.executions++;
    else report.standardExecutions++;
    const exec: Execution = { actionId, machine, token, abort: () => undefined, report };
    const name = express ? randomUUID() : actionId;
    const execution = machine.machine.run(input as Parameters<StateMachine['run']>[0], {
      overrides: {
        taskResourceLocalHandlers: Object.fromEntries(
          [...machine.tasks].map(([state, definition]) => [state, (taskInput: unknown) => this.guardedTask(exec, state, definition, taskInput)]),
        ),
        ...(this.options.retryIntervalMs !== undefined
          ? {
              retryIntervalOverrides: Object.fromEntries(machine.retryStates.map((n) => [n, this.options.retryIntervalMs!])),
              waitTimeOverrides: Object.fromEntries(machine.waitStates.map((n) => [n, this.waitInterval(n)])),
            }
          : {}),
      } as RunOverrides,
      context: {
        Execution: { Id: `${machine.arn.replace(':stateMachine:', ':execution:')}:${name}`, Name: name },
        Task: { Token: token },
      },
      noThrowOnAbort: true,
    });
    exec.abort = execution.abort;
    this.executions.set(key, exec);
    const started = performance.now();
    // Ends with the execution: the library dispatches its terminal event before it settles.
    const watching = this.watchPayloads(exec, execution.eventLogs).catch((error: unknown) =>
      this.options.logger.error('payload watch failed', { actionId, error }),
    );
    const seconds = machine.timeouts.executionSeconds;
    exec.cancelTimeout = this.after(Date.now() + seconds * 1000, () =>
      this.stop(exec, 'States.Timeout', `The execution ran longer than its TimeoutSeconds (${seconds} s)`),
    );
    const outcome = execution.result.then(
      (output) => {
        if (exec.stopped) throw exec.stopped;
        this.options.logger.debug('workflow finished', { actionId, workflow: machine.kind });
        return output as unknown;
      },
      (error: unknown) => {
        const e = error instanceof Error ? error : new Error(String(error));
        const cause = (e as { cause?: unknown }).cause;
        const failed = cause instanceof Error ? cause : e;
        exec.report.failure ??= { error: failed.name, cause: failed.message };
        this.options.logger.warn('workflow ended in a Fail state', { actionId, workflow: machine.kind, error: failed.name });
        throw failed;
      },
    );
    const done = outcome
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => watching)
      .finally(() => {
        exec.cancelTimeout?.();
        if (express) exec.report.express.ms += performance.now() - started;
        this.running.delete(key);
        this.executions.delete(key);
      });
    this.running.set(key, done);
    return outcome;
  }

  /** What the runner saw of the latest execution for an action (kept after it ends). */
  reportOf(actionId: string): ExecutionReport | undefined {
    return this.reports.get(actionId);
  }

  /**
   * Stops an execution the way Step Functions fails it for a data limit or a timeout: no
   * Catch runs, nothing after it runs, the action stays where the ledger has it.
   */
  private stop(exec: Execution, error: string, cause: string, state?: string): void {
    if (exec.stopped) return;
    exec.stopped = new NamedStateError(error, cause);
    exec.report.failure = { error, cause, ...(state ? { state } : {}) };
    this.options.logger.error('saga execution failed', { actionId: exec.actionId, error, state, cause });
    exec.abort();
    const waiter = this.waiters.get(exec.token);
    this.waiters.delete(exec.token);
    waiter?.reject(exec.stopped);
  }

  /** Checks one payload against the 256 KiB cap, stopping the execution when it is over. */
  private measure(exec: Execution, state: string, what: string, payload: unknown): void {
    const bytes = jsonBytes(payload);
    if (bytes > exec.report.largestPayload.bytes) exec.report.largestPayload = { bytes, state, what };
    if (bytes > STATE_PAYLOAD_MAX_BYTES) {
      this.stop(exec, 'States.DataLimitExceeded', `The ${what} of state ${state} is ${bytes} bytes, over the ${STATE_PAYLOAD_MAX_BYTES} Step Functions allows`, state);
    }
  }

  /** Measures every state's input and output, Parallel branches included, until the execution ends. */
  private async watchPayloads(exec: Execution, events: EventLogs): Promise<void> {
    for await (const event of events) {
      if (event.type === 'StateEntered') {
        exec.report.transitions++;
        if (exec.machine.kind === 'attended') exec.report.standardTransitions++;
        this.measure(exec, event.state.name, 'input', event.state.input);
      }
      else if (event.type === 'StateExited') this.measure(exec, event.state.name, 'output', event.state.output);
      if (TERMINAL_EVENTS.has(event.type)) return;
    }
  }

  /** Runs a Task for an execution, unless the runner stopped it; measures the task's input and result. */
  private async guardedTask(exec: Execution, name: string, state: TaskState, input: unknown): Promise<unknown> {
    // The library announces a state before it runs it: one macrotask lets watchPayloads look at
    // everything so far, so a breach stops the execution before this task's side effects.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (!exec.stopped) this.measure(exec, name, 'task input', input);
    if (exec.stopped) throw exec.stopped;
    const result = await this.runTask(exec, name, state, input);
    if (!exec.stopped) this.measure(exec, name, 'task result', result);
    if (exec.stopped) throw exec.stopped;
    return result;
  }

  private invoke(exec: Execution | undefined, functionName: string, payload: unknown, timeoutSeconds: number): Promise<unknown> {
    // An execution aborted by close() may still reach a Task (a Retry timer firing); a stopped
    // runner starts no handler, so nothing writes to the ledger after close() returns.
    if (this.closed) return Promise.reject(new NamedStateError('States.Runtime', 'runner closed'));
    const fn = this.options.functions.get(functionName);
    if (exec) exec.report.invocations[functionName] = (exec.report.invocations[functionName] ?? 0) + 1;
    if (!fn) return Promise.reject(new NamedStateError('Lambda.ResourceNotFoundException', `No local function ${functionName}`));
    const deadline = Date.now() + timeoutSeconds * 1000;
    const context = {
      awsRequestId: randomUUID(),
      functionName,
      invokedFunctionArn: functionName,
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    } as unknown as Context;
    const started = performance.now();
    const work = fn(payload, context);
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    if (exec) void settled.then(() => (exec.report.invocationMs[functionName] = (exec.report.invocationMs[functionName] ?? 0) + performance.now() - started));
    this.inFlight.add(settled);
    void settled.finally(() => this.inFlight.delete(settled));
    return work;
  }

  private async runTask(exec: Execution, name: string, state: TaskState, input: unknown): Promise<unknown> {
    const resource = state.Resource ?? '';
    // The function's own timeout: its Task's, less the margin the Task adds for a cold start.
    const functionTimeout = (exec.machine.timeouts.tasks[name] ?? 0) - TASK_TIMEOUT_MARGIN_SECONDS;
    if (resource === RUN_SYNC) return this.runNested(exec, StartExecutionSchema.parse(input));
    if (resource === START_EXECUTION) {
      const call = StartExecutionSchema.parse(input);
      if (call.StateMachineArn !== LOCAL_SAGA_ARN || !call.Name) throw new NamedStateError('States.Runtime', `${name}: only the saga is started by name`);
      // Handing over: the saga's name is the action id; while it runs, StartExecution is a no-op.
      const key = `attended:${call.Name}`;
      if (!this.running.has(key) && !this.closed) void this.launch(this.saga, call.Name, call.Input, key).catch(() => undefined);
      return { ExecutionArn: `${LOCAL_SAGA_ARN.replace(':stateMachine:', ':execution:')}:${call.Name}`, StartDate: new Date().toISOString() };
    }
    if (resource === 'arn:aws:states:::lambda:invoke') {
      const call = LambdaInvokeSchema.parse(input);
      const payload = await this.invoke(exec, call.FunctionName, call.Payload, functionTimeout);
      return { ExecutedVersion: '$LATEST', Payload: payload ?? null, StatusCode: 200 };
    }
    if (resource === 'arn:aws:states:::lambda:invoke.waitForTaskToken') {
      const call = LambdaInvokeSchema.parse(input);
      const token = (call.Payload as { taskToken?: unknown } | null)?.taskToken;
      if (typeof token !== 'string') throw new NamedStateError('States.Runtime', `${name} sends no task token`);
      const answered = new Promise<unknown>((resolve, reject) => this.waiters.set(token, { resolve, reject }));
      // An aborted execution no longer awaits its task; its rejection at close is expected.
      answered.catch(() => undefined);
      try {
        const result = ApprovalRequestResult.safeParse(await this.invoke(exec, call.FunctionName, call.Payload, this.config.functionTimeoutSeconds));
        const expiresAt = result.success && result.data.expiresAt ? Date.parse(result.data.expiresAt) : undefined;
        // After a restart the ASL's TimeoutSeconds would start again from zero; the stored
        // expiry keeps the deadline where it was. Like the deployed Task (timeouts.ts), the wait
        // outlasts the expiry by the approvals function's time: a vote accepted just before the
        // expiry must be able to answer the saga, or the approval would read granted while the
        // action ends expired (found by the chaos storm under load).
        if (expiresAt !== undefined) this.expireAt(token, expiresAt + this.config.functionTimeoutSeconds * 1000);
      } catch (error) {
        this.waiters.delete(token);
        throw error;
      }
      return answered;
    }
    if (resource.startsWith('arn:aws:lambda:')) return this.invoke(exec, resource, input, functionTimeout);
    throw new NamedStateError('States.Runtime', `${name}: unsupported resource ${resource}`);
  }

  /** `startExecution.sync:2` of the Express run: runs it to its end and answers as Step Functions does (Output parsed). */
  private async runNested(exec: Execution, call: z.infer<typeof StartExecutionSchema>): Promise<unknown> {
    if (call.StateMachineArn !== LOCAL_RUN_ARN || !this.run) throw new NamedStateError('States.Runtime', `No local state machine ${call.StateMachineArn}`);
    if (this.closed) throw new NamedStateError('States.Runtime', 'runner closed');
    try {
      const output = await this.launch(this.run, exec.actionId, call.Input, `nested:${randomUUID()}`);
      return { Output: output ?? null, Status: 'SUCCEEDED', StateMachineArn: call.StateMachineArn };
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      // Like Step Functions: the parent sees States.TaskFailed, the child's error in the cause.
      throw new NamedStateError('States.TaskFailed', JSON.stringify({ Error: e.name, Cause: e.message }).slice(0, 32_768));
    }
  }

  private expireAt(token: string, at: number): void {
    this.after(at, () => {
      const waiter = this.waiters.get(token);
      if (!waiter) return;
      this.waiters.delete(token);
      waiter.reject(new NamedStateError('States.Timeout', 'The approval timed out'));
    });
  }

  /** Calls `fire` at epoch ms `at`, however far away; returns a cancel function. */
  private after(at: number, fire: () => void): () => void {
    let timer: NodeJS.Timeout | undefined;
    let cancelled = false;
    const arm = () => {
      const delay = at - Date.now();
      if (delay <= 0) return void queueMicrotask(() => cancelled || fire());
      // Node timers cap at ~24.8 days; re-arm in steps for longer waits.
      timer = setTimeout(() => {
        this.timers.delete(timer!);
        arm();
      }, Math.min(delay, 2_000_000_000));
      timer.unref();
      this.timers.add(timer);
    };
    arm();
    return () => {
      cancelled = true;
      if (timer) {
        clearTimeout(timer);
        this.timers.delete(timer);
      }
    };
  }

  async sendTaskSuccess(taskToken: string, output: unknown): Promise<void> {
    const waiter = this.waiters.get(taskToken);
    if (!waiter) throw new TaskTokenInvalidError('invalid');
    this.waiters.delete(taskToken);
    waiter.resolve(output);
  }

  async sendTaskFailure(taskToken: string, error: string, cause: string): Promise<void> {
    const waiter = this.waiters.get(taskToken);
    if (!waiter) throw new TaskTokenInvalidError('invalid');
    this.waiters.delete(taskToken);
    waiter.reject(new NamedStateError(error, cause));
  }

  /** Task handler invocations still running (after close(): those that outlived its bound). */
  get inFlightTasks(): number {
    return this.inFlight.size;
  }

  /**
   * Invokes a local function synchronously, outside any execution (the read fast path's
   * connector and receipts calls: Lambda's RequestResponse invoke). It counts as in flight,
   * so close() waits for it, and a closed runner refuses it.
   */
  invokeFunction(functionName: string, payload: unknown): Promise<unknown> {
    this.direct.invocations[functionName] = (this.direct.invocations[functionName] ?? 0) + 1;
    const started = performance.now();
    const work = this.invoke(undefined, functionName, payload, this.config.functionTimeoutSeconds);
    const timed = () => void (this.direct.invocationMs[functionName] = (this.direct.invocationMs[functionName] ?? 0) + performance.now() - started);
    work.then(timed, timed);
    return work;
  }

  /** Synchronous invocations outside executions so far (the read fast path's), for the cost model. */
  directInvocations(): { invocations: Record<string, number>; invocationMs: Record<string, number> } {
    return structuredClone(this.direct);
  }

  /**
   * Resolves when the workflow running for the action (the Standard saga or the Express run)
   * has ended; undefined when none is. Intake's wait for a synchronous answer reads the ledger
   * then rather than at its next poll.
   */
  ended(actionId: string): Promise<void> | undefined {
    const running = this.running.get(`unattended:${actionId}`) ?? this.running.get(`attended:${actionId}`);
    return running?.then(() => undefined);
  }

  /** Whether a workflow for this action is running in this process. */
  isRunning(actionId: string): boolean {
    return this.running.has(`attended:${actionId}`) || this.running.has(`unattended:${actionId}`) || [...this.executions.values()].some((e) => e.actionId === actionId);
  }

  /** Resolves when every saga started so far has ended (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running.values()]);
  }

  /**
   * Stops every execution and waits (bounded by closeTimeoutMs) for the task handlers they
   * had running, which an abort does not stop: once it returns nothing of this runner writes
   * to the ledger, even when the database outlives the process. The executions' state is in
   * the ledger: the next start resumes them (safe because every step is idempotent).
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const exec of this.executions.values()) exec.abort();
    for (const waiter of this.waiters.values()) waiter.reject(new NamedStateError('States.Runtime', 'runner closed'));
    this.waiters.clear();
    await Promise.allSettled([...this.running.values()]);
    if (this.inFlight.size === 0) return;
    const bound = this.options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      Promise.all([...this.inFlight]).then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), bound);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) this.options.logger.error('task handlers still running after close', { count: this.inFlight.size, waitedMs: bound });
  }
}
