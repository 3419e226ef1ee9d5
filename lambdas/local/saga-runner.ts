import './polyfills';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Context } from 'aws-lambda';
import { StateMachine } from 'aws-local-stepfunctions';
import { z } from 'zod';
import type { Logger } from '../core/logger';
import { TaskTokenInvalidError, type TaskCallbacks } from '../ports/task-callbacks';
import type { SagaInput, WorkflowStarter } from '../ports/workflow';

/**
 * The local stand-in for Step Functions: runs statemachines/action-saga.asl.json with
 * aws-local-stepfunctions, every Task mapped to the same handler functions the stack
 * deploys, in-process. It mints the task tokens that library never generates and answers
 * `.waitForTaskToken` states through a callback registry behind the same TaskCallbacks port
 * the approvals function uses with SendTaskSuccess / SendTaskFailure in AWS.
 */

/** A deployed function, in-process: the handler module's export. */
export type LocalFunction = (event: unknown, context: Context) => Promise<unknown>;

export const LOCAL_ACCOUNT = '000000000000';
export const LOCAL_REGION = 'us-east-1';

/** The ARN a function has locally: `arn:aws:lambda:us-east-1:000000000000:function:airlock-<name>`. */
export function localFunctionArn(name: string): string {
  return `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:airlock-${name}`;
}

const DEFAULT_ASL = join(import.meta.dirname, '..', '..', 'statemachines', 'action-saga.asl.json');

export interface LocalSagaRunnerOptions {
  /** Functions by local ARN (see localFunctionArn). */
  functions: ReadonlyMap<string, LocalFunction>;
  /** `${PolicyFunctionArn}` → local ARN, as the stack's definitionSubstitutions do. */
  substitutions: Readonly<Record<string, string>>;
  logger: Logger;
  definitionPath?: string;
  /**
   * Shortens every Retry interval to this many milliseconds (tests). The ASL's own intervals
   * (seconds, with backoff and jitter) apply otherwise.
   */
  retryIntervalMs?: number;
  /**
   * How long close() waits for task handlers still running (default 30 s). Handlers are
   * expected to end sooner: the control plane aborts their vendor calls when it stops.
   */
  closeTimeoutMs?: number;
}

/** Default bound of close()'s wait for running task handlers: API Gateway's integration timeout. */
const DEFAULT_CLOSE_TIMEOUT_MS = 30_000;

type RunOverrides = NonNullable<NonNullable<Parameters<StateMachine['run']>[1]>['overrides']>;

interface Waiter {
  resolve: (output: unknown) => void;
  reject: (error: Error) => void;
}

const LambdaInvokeSchema = z.object({ FunctionName: z.string(), Payload: z.unknown() });
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

export class LocalSagaRunner implements WorkflowStarter, TaskCallbacks {
  private readonly machine: StateMachine;
  private readonly tasks: Map<string, TaskState>;
  private readonly retryStates: string[];
  private readonly running = new Map<string, Promise<void>>();
  private readonly aborts = new Map<string, () => void>();
  private readonly waiters = new Map<string, Waiter>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Task handler invocations still running; an aborted execution does not stop them. */
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly options: LocalSagaRunnerOptions) {
    let text = readFileSync(options.definitionPath ?? DEFAULT_ASL, 'utf8');
    for (const [placeholder, arn] of Object.entries(options.substitutions)) {
      text = text.replaceAll(`\${${placeholder}}`, arn);
    }
    const definition = JSON.parse(text) as ConstructorParameters<typeof StateMachine>[0];
    this.machine = new StateMachine(definition, { validationOptions: { checkPaths: true, checkArn: true } });
    const states = [...statesOf(definition)];
    this.tasks = new Map(states.filter(([, state]) => state.Type === 'Task'));
    this.retryStates = states.filter(([, state]) => Array.isArray(state.Retry)).map(([name]) => name);
  }

  /** Starts the saga for an action; a second start while one runs is a no-op (like an execution name). */
  async start(actionId: string, input: SagaInput): Promise<void> {
    if (this.closed) throw new Error('The local saga runner is closed');
    if (this.running.has(actionId)) return;
    const token = `local-${randomUUID()}`;
    const execution = this.machine.run(input as unknown as Parameters<StateMachine['run']>[0], {
      overrides: {
        taskResourceLocalHandlers: Object.fromEntries(
          [...this.tasks].map(([name, state]) => [name, (taskInput: unknown) => this.runTask(name, state, taskInput)]),
        ),
        ...(this.options.retryIntervalMs !== undefined
          ? { retryIntervalOverrides: Object.fromEntries(this.retryStates.map((n) => [n, this.options.retryIntervalMs!])) }
          : {}),
      } as RunOverrides,
      context: {
        Execution: { Id: `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:execution:airlock-action-saga:${actionId}`, Name: actionId },
        Task: { Token: token },
      },
      noThrowOnAbort: true,
    });
    this.aborts.set(actionId, execution.abort);
    const done = execution.result.then(
      (output) => this.options.logger.debug('saga finished', { actionId, output }),
      (error: unknown) => {
        const e = error instanceof Error ? error : new Error(String(error));
        const cause = (e as { cause?: unknown }).cause;
        const name = cause instanceof Error ? cause.name : e.name;
        this.options.logger.warn('saga ended in a Fail state', { actionId, error: name });
      },
    ).finally(() => {
      this.running.delete(actionId);
      this.aborts.delete(actionId);
    });
    this.running.set(actionId, done);
  }

  private invoke(functionName: string, payload: unknown): Promise<unknown> {
    // An execution aborted by close() may still reach a Task (a Retry timer firing); a stopped
    // runner starts no handler, so nothing writes to the ledger after close() returns.
    if (this.closed) return Promise.reject(new NamedStateError('States.Runtime', 'runner closed'));
    const fn = this.options.functions.get(functionName);
    if (!fn) return Promise.reject(new NamedStateError('Lambda.ResourceNotFoundException', `No local function ${functionName}`));
    const deadline = Date.now() + 60_000;
    const context = {
      awsRequestId: randomUUID(),
      functionName,
      invokedFunctionArn: functionName,
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    } as unknown as Context;
    const work = fn(payload, context);
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    this.inFlight.add(settled);
    void settled.finally(() => this.inFlight.delete(settled));
    return work;
  }

  private async runTask(name: string, state: TaskState, input: unknown): Promise<unknown> {
    const resource = state.Resource ?? '';
    if (resource === 'arn:aws:states:::lambda:invoke') {
      const call = LambdaInvokeSchema.parse(input);
      const payload = await this.invoke(call.FunctionName, call.Payload);
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
        const result = ApprovalRequestResult.safeParse(await this.invoke(call.FunctionName, call.Payload));
        const expiresAt = result.success && result.data.expiresAt ? Date.parse(result.data.expiresAt) : undefined;
        // After a restart the ASL's TimeoutSeconds would start again from zero; the stored
        // expiry keeps the deadline where it was.
        if (expiresAt !== undefined) this.expireAt(token, expiresAt);
      } catch (error) {
        this.waiters.delete(token);
        throw error;
      }
      return answered;
    }
    if (resource.startsWith('arn:aws:lambda:')) return this.invoke(resource, input);
    throw new NamedStateError('States.Runtime', `${name}: unsupported resource ${resource}`);
  }

  private expireAt(token: string, at: number): void {
    const fire = () => {
      const waiter = this.waiters.get(token);
      if (!waiter) return;
      this.waiters.delete(token);
      waiter.reject(new NamedStateError('States.Timeout', 'The approval timed out'));
    };
    const delay = at - Date.now();
    if (delay <= 0) return void queueMicrotask(fire);
    // Node timers cap at ~24.8 days; re-arm in steps for longer approval windows.
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (at - Date.now() > 0) this.expireAt(token, at);
      else fire();
    }, Math.min(delay, 2_000_000_000));
    timer.unref();
    this.timers.add(timer);
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

  /** Whether a saga for this action is running in this process. */
  isRunning(actionId: string): boolean {
    return this.running.has(actionId);
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
    for (const abort of this.aborts.values()) abort();
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
