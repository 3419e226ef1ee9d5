import type { ActionRecord, ActionStatus, StoredDecision } from '../actions/action';
import { resultFromSteps } from '../actions/view';
import { isTerminal, TerminalStatuses } from '../actions/action';
import { isRef, type NormalizedAction, type PlannedStep } from '../intake/envelope';
import { ActionStateError, planOf } from '../actions/plan';
import type { Decider } from '../intake/intake';
import { mintGrant, type GrantKeyring } from '../steps/grants';
import { inputHash, type RunStep } from '../steps/contract';
import type { Logger } from '../shared/logger';
import { ACTION_RESULT_MAX_BYTES, jsonBytes, STEP_INPUT_MAX_BYTES, StepInputTooLargeError } from './limits';
import type { RegisteredTool, ToolRegistry } from '../ports/tools';
import { toolFacts } from '../policy/decider';
import type { MoneyConfig, SpendItem } from '../shared/money';
import { StatusTransitionError, type ActionStore } from '../ports/ledger';
import { type ApprovalStore } from '../ports/approvals';
import { approvalIdFor } from '../shared/ids';
import type { Metrics } from '../ports/metrics';
import { countKpi, recordApprovalDecided, recordDecision } from '../observability/kpis';
import { attemptInDoubt, type EventLog, type StepKind, type StepRecord, type StepStore } from '../ports/steps';
import { reserveStepSpend, settleActionSpend, type SpendGuard } from '../spend/reservations';
import { SpendCapExceededError } from '../spend/caps';
import { guardForwardStep, type SagaGuardrails } from '../guardrails/saga-guard';

/**
 * The saga's tasks: what each Task state of statemachines/action-saga.asl.json and action-run.asl.json asks the
 * policy function to do. Every task is idempotent: Step Functions may run it again, and the
 * local runner re-runs a whole execution after a restart.
 */

export interface SagaDeps {
  actions: ActionStore;
  steps: StepStore;
  events: EventLog;
  /** Spend caps: commit steps reserve against them before the vendor call (absent: no caps held). */
  spendCaps?: SpendGuard;
  decider: Decider;
  /** The tools plans may name (the registry port). */
  tools: ToolRegistry;
  /** The base currency and rates spend is counted in (the policy set's config). */
  money: MoneyConfig;
  keyring: GrantKeyring;
  /** The function (ARN in AWS, local name locally) that runs a connector's tools. */
  connectorFunction: (connector: string) => string;
  grantTtlSeconds: number;
  now: () => Date;
  logger: Logger;
  /** Approval items: an approval whose wait timed out is closed as expired (and audited). */
  approvals?: Pick<ApprovalStore, 'getApproval' | 'settle' | 'markAnswered'>;
  /** Halts and circuit breakers, checked before each forward step (none: no guardrails). */
  guardrails?: SagaGuardrails;
  /** Safety KPIs (run-time decisions, compensation failures, expiries). */
  metrics?: Metrics;
}

export { ActionStateError, inputHash, planOf };

/** Which way the saga goes after a decision. */
export type SagaNext = 'deny' | 'approve' | 'execute' | 'compensate' | 'settle';

/** Policy denies the action at run time. The ASL catches it by name. */
export class PolicyDeniedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyDeniedError';
  }
}

/** A step's resolved input does not satisfy its tool. Not retryable: compensation follows. */
export class StepInputInvalidError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StepInputInvalidError';
  }
}

/**
 * SettleAction was asked to end an action `failed` while a completed commit step of it was
 * never undone nor tried (the run failed around its steps and could not compensate). The ASL
 * fails the run instead: the action stays unfinished, and the saga that resumes it compensates.
 */
export class CompensationOwedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CompensationOwedError';
  }
}

/** The saga only acts on actions it can read; anything else is a bug or tampering. */
async function load(deps: SagaDeps, actionId: string): Promise<ActionRecord> {
  const action = await deps.actions.getAction(actionId);
  if (!action) throw new ActionStateError(`No action ${actionId}`);
  return action;
}

async function move(
  deps: SagaDeps,
  action: ActionRecord,
  to: ActionStatus,
  reason?: string,
  patch: { decision?: StoredDecision; result?: unknown } = {},
): Promise<ActionRecord> {
  if (action.status === to) return action;
  try {
    const next = await deps.actions.transition(action.id, to, { ...patch, ...(reason ? { statusReason: reason } : {}) }, deps.now(), action);
    await deps.events.append(action.id, { type: 'action.status', actor: 'airlock', data: { from: action.status, to, ...(reason ? { reason } : {}) } }, deps.now());
    return next;
  } catch (error) {
    if (error instanceof StatusTransitionError) {
      const latest = await load(deps, action.id);
      if (latest.status === to) return latest; // a retried task already did it
    }
    throw error;
  }
}

/**
 * EvaluatePolicy: re-decides at run time and routes the saga. `known`: the action as this
 * caller just read it (the read fast path), which spares reading it again.
 */
export async function evaluatePolicy(deps: SagaDeps, actionId: string, known?: ActionRecord): Promise<{ next: SagaNext; count: number }> {
  const { next, count } = await evaluate(deps, actionId, known);
  return { next, count };
}

/** EvaluatePolicy, answering also with the action as it left it (never in a state: it may be large). */
export async function evaluate(
  deps: SagaDeps,
  actionId: string,
  known?: ActionRecord,
  options: { reuseDecisionWithinMs?: number } = {},
): Promise<{ next: SagaNext; count: number; action: ActionRecord }> {
  let action = known?.id === actionId ? known : await load(deps, actionId);
  const plan = planOf(action, deps.tools);
  rememberStepIds(actionId, plan);
  const count = plan.steps.length;
  // Resuming after a restart or a retried task: continue where the ledger says we are.
  if (TerminalStatuses.has(action.status)) return { next: 'settle', count, action };
  if (action.status === 'compensating') return { next: 'compensate', count, action };
  if (action.status === 'running') return { next: 'execute', count, action };
  if (action.status === 'awaiting_approval') return { next: 'approve', count, action };
  if (action.cancel) {
    // Cancelled before policy ran (the cancel API usually ends it itself; this covers a lost race).
    action = await move(deps, action, 'cancelled', `cancelled by ${action.cancel.by}: ${action.cancel.reason}`);
    return { next: 'settle', count, action };
  }

  const decision = reusable(action.decision, deps.now(), options.reuseDecisionWithinMs) ?? (await deps.decider.decide(action.principal, plan, deps.now()));
  recordDecision(deps.metrics, decision, 'run');
  // Intake records no audit event: a received action's chain is empty, and the first append
  // need not read its head (a wrong hint costs one refused put, then the head is read).
  if (action.status === 'received') deps.events.hintEmpty?.(actionId);
  await deps.events.append(actionId, {
    type: 'policy.evaluated',
    actor: 'airlock',
    data: { outcome: decision.outcome, policyIds: decision.policyIds, policySetVersion: decision.policySetVersion, at: 'run' },
  }, deps.now());
  // The run-time decision is stored with the move it causes: one conditional write.
  if (decision.outcome === 'deny') {
    await deps.actions.setDecision(actionId, decision, deps.now());
    return { next: 'deny', count, action };
  }
  if (decision.outcome === 'require_approval') {
    action = await move(deps, action, 'awaiting_approval', undefined, { decision });
    return { next: 'approve', count, action };
  }
  action = await move(deps, action, 'running', undefined, { decision });
  return { next: 'execute', count, action };
}

/**
 * Intake's allow, when it was made within `withinMs` of now (the read fast path: the same
 * request, milliseconds ago, under the same policies and the same cap counters); undefined
 * otherwise, and the decision is made again.
 */
function reusable(decision: StoredDecision | undefined, now: Date, withinMs: number | undefined): StoredDecision | undefined {
  if (withinMs === undefined || decision?.outcome !== 'allow') return undefined;
  const age = now.getTime() - Date.parse(decision.decidedAt);
  return age >= 0 && age <= withinMs ? decision : undefined;
}

/** BeginExecution: after approval, re-checks that no forbid applies now and starts running. */
export async function beginExecution(deps: SagaDeps, actionId: string): Promise<{ next: SagaNext; count: number }> {
  const action = await load(deps, actionId);
  const plan = planOf(action, deps.tools);
  if (action.status === 'running') return { next: 'execute', count: plan.steps.length };
  if (action.status !== 'awaiting_approval') throw new ActionStateError(`Action ${actionId} is ${action.status}, not awaiting approval`);
  const decision = await deps.decider.decide(action.principal, plan, deps.now());
  // Counted only when it changes the course: an allow here repeats the run-time decision already counted.
  if (decision.outcome === 'deny') recordDecision(deps.metrics, decision, 'run');
  if (decision.outcome === 'deny') {
    await deps.actions.setDecision(actionId, decision, deps.now());
    throw new PolicyDeniedError(decision.reasons.join(' ') || 'denied by policy after approval');
  }
  await move(deps, action, 'running');
  return { next: 'execute', count: plan.steps.length };
}

function readPath(value: unknown, path: string[]): { found: boolean; value: unknown } {
  let node = value;
  for (const seg of path) {
    if (node !== null && typeof node === 'object' && Object.prototype.hasOwnProperty.call(node, seg)) {
      node = (node as Record<string, unknown>)[seg];
    } else {
      return { found: false, value: undefined };
    }
  }
  return { found: true, value: node };
}

/**
 * Replaces every `{ "$ref": "steps.<id>.output.<path>" }` with the value from the earlier
 * step's recorded output. Returns the refs that could not be resolved.
 */
export function resolveRefs(args: unknown, outputs: ReadonlyMap<string, unknown>): { value: unknown; missing: string[] } {
  const missing: string[] = [];
  const walk = (node: unknown): unknown => {
    if (isRef(node)) {
      const m = /^steps\.([^.]+)\.output((?:\.[^.]+)*)$/.exec(node.$ref);
      const output = m ? outputs.get(m[1]!) : undefined;
      const hit = m && outputs.has(m[1]!) ? readPath(output, (m[2] ?? '').split('.').filter(Boolean)) : { found: false, value: undefined };
      if (!hit.found) {
        missing.push(node.$ref);
        return node;
      }
      return hit.value;
    }
    if (Array.isArray(node)) return node.map(walk);
    if (node !== null && typeof node === 'object') {
      return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, walk(v)]));
    }
    return node;
  };
  return { value: walk(args), missing };
}

interface CompensationItem {
  stepId: string;
  tool: RegisteredTool;
  input: unknown;
}

/** Completed commit steps that can be undone, last first. */
function compensationsOf(tools: ToolRegistry, plan: NormalizedAction, records: StepRecord[]): CompensationItem[] {
  const done = new Map(records.filter((r) => r.kind === 'forward' && r.status === 'complete' && !r.dryRun).map((r) => [r.stepId, r]));
  const items: CompensationItem[] = [];
  for (const step of [...plan.steps].reverse()) {
    const record = done.get(step.id);
    const registered = tools.find(step.tool);
    if (!record || !registered || registered.tool.tier !== 'commit') continue;
    const undo = tools.compensationOf(registered);
    const spec = registered.tool.compensation;
    if (!undo || !spec) continue;
    const parsedInput = registered.tool.input.safeParse(record.input);
    items.push({
      stepId: step.id,
      tool: undo,
      input: spec.input(parsedInput.success ? parsedInput.data : record.input, record.output),
    });
  }
  return items;
}

/**
 * Plan indices of the forward commit steps (with an undo) whose outcome at the vendor is
 * unknown (attemptInDoubt), last first. Compensation cannot undo what it does not know of,
 * and skipping them would leave in place whatever the lost attempt did: the run retries each
 * to its end (same idempotency key, so the vendor answers with what it did, or does it now)
 * before it lists what to undo.
 */
function inDoubtOf(tools: ToolRegistry, plan: NormalizedAction, records: StepRecord[]): number[] {
  const forward = new Map(records.filter((r) => r.kind === 'forward').map((r) => [r.stepId, r]));
  const indices: number[] = [];
  for (let i = plan.steps.length - 1; i >= 0; i--) {
    const step = plan.steps[i]!;
    const registered = tools.find(step.tool);
    if (!registered || registered.tool.tier !== 'commit' || !registered.tool.compensation) continue;
    if (attemptInDoubt(forward.get(step.id))) indices.push(i);
  }
  return indices;
}

/** IssueGrant was asked to retry an in-doubt step (`resolve`) that is not in doubt (any more). */
export class StepNotInDoubtError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StepNotInDoubtError';
  }
}

/**
 * Reserves a commit step's money against its spend caps before the grant that lets the
 * vendor be called exists. A refusal is audited and thrown by name (SpendCapExceededError):
 * the ASL sends it to PrepareCompensation, which undoes the steps before it.
 */
async function holdStepSpend(
  deps: SagaDeps,
  action: ActionRecord,
  plan: NormalizedAction,
  index: number,
  records: StepRecord[],
  callInput: unknown,
  registered: RegisteredTool,
): Promise<void> {
  if (!deps.spendCaps || registered.tool.tier !== 'commit') return;
  // Earlier steps count with the inputs they ran with; this one with its resolved input.
  const ran = new Map(records.filter((r) => r.kind === 'forward' && r.status === 'complete').map((r) => [r.stepId, r.input]));
  const items: SpendItem[] = plan.steps.slice(0, index + 1).map((step, i) => {
    const args = i === index ? callInput : ran.has(step.id) ? ran.get(step.id) : step.arguments;
    return toolFacts(deps.tools, step.tool, (args ?? {}) as Record<string, unknown>);
  });
  const stepId = plan.steps[index]!.id;
  try {
    // The reservation item is the record of what is held; only refusals and settlements are events.
    await reserveStepSpend(
      deps.spendCaps,
      { actionId: action.id, stepId, principal: action.principal, connector: registered.connector.name, items, index, delegation: action.delegation },
      deps.now(),
    );
  } catch (error) {
    if (error instanceof SpendCapExceededError) {
      const e = error.exceeded;
      await deps.events.append(action.id, {
        type: 'spend.cap_refused',
        actor: 'airlock',
        data: { stepId, capId: e.capId, limit: e.limit, used: e.used, requested: e.requested, currency: e.currency },
      }, deps.now());
    }
    throw error;
  }
}

/**
 * Who a step's grant names as its actor (RFC 8693 `act.sub`), as the connector and the vendor
 * see it: the agent the verified token named, else the principal (a person calling without an
 * agent acts for themself). Never the envelope's `agent.name`: a body cannot rename the actor.
 */
export function grantActor(action: Pick<ActionRecord, 'principal'>): string {
  return action.principal.agent ?? action.principal.sub;
}

/**
 * The step ids of plans this function instance has read, by action id: a plan never changes
 * once accepted, so the next IssueGrant of the same action can read the action and its step
 * records in one request. A hint only, checked against the action it reads with.
 */
const planStepIds = new Map<string, readonly string[]>();
const PLAN_HINTS_MAX = 1_000;

function rememberStepIds(actionId: string, plan: NormalizedAction): void {
  if (planStepIds.has(actionId)) return;
  planStepIds.set(actionId, plan.steps.map((s) => s.id));
  if (planStepIds.size > PLAN_HINTS_MAX) planStepIds.delete(planStepIds.keys().next().value!);
}

/**
 * The action and its step records of `kinds`, in one request when this instance knows the
 * plan's step ids; undefined otherwise, or when the action read does not carry exactly those
 * steps (then both are read apart, as without a hint).
 */
async function actionWithSteps(
  deps: SagaDeps,
  actionId: string,
  kinds: readonly StepKind[],
): Promise<{ action: ActionRecord; records: StepRecord[] } | undefined> {
  const ids = planStepIds.get(actionId);
  if (!ids || !deps.steps.getActionWithSteps) return undefined;
  const both = await deps.steps.getActionWithSteps(actionId, ids, kinds);
  if (!both?.action) return undefined;
  const steps = planOf(both.action, deps.tools).steps;
  const same = steps.length === ids.length && steps.every((s, i) => s.id === ids[i]);
  return same ? { action: both.action, records: both.records } : undefined;
}

/** IssueGrant: resolves one call's input and mints the single-use grant that covers it. */
export async function issueGrant(
  deps: SagaDeps,
  input: { actionId: string; index: number; kind: StepKind; resolve?: boolean },
  known?: { action: ActionRecord; records?: StepRecord[] },
): Promise<{ functionName: string; payload: RunStep }> {
  // `known`: the action as the caller last wrote it and, when the caller knows them, its step
  // records (the read fast path); another writer's move since is caught by the conditional
  // writes that follow, as it is after a read.
  // Only forward records are looked at here (outputs, inputs, what can be undone).
  const both = known?.action.id === input.actionId ? undefined : await actionWithSteps(deps, input.actionId, ['forward']);
  const action = known?.action.id === input.actionId ? known.action : (both?.action ?? (await load(deps, input.actionId)));
  const plan = planOf(action, deps.tools);
  rememberStepIds(action.id, plan);
  const dryRun = plan.mode === 'dry_run';
  const records = known?.action.id === input.actionId && known.records ? known.records : (both?.records ?? (await deps.steps.listSteps(action.id)));
  let stepId: string;
  let registered: RegisteredTool | undefined;
  let callInput: unknown;
  let skipReason: string | undefined;

  if (input.kind === 'forward') {
    // `resolve`: the compensation loop retries a step in doubt to its end before undoing anything.
    const runsIn = input.resolve ? 'compensating' : 'running';
    if (action.status !== runsIn) throw new ActionStateError(`Action ${action.id} is ${action.status}; ${input.resolve ? 'in-doubt steps are retried only while compensating' : 'steps run only while running'}`);
    const step: PlannedStep | undefined = plan.steps[input.index];
    if (!step) throw new ActionStateError(`Action ${action.id} has no step ${input.index}`);
    stepId = step.id;
    registered = deps.tools.find(step.tool);
    const outputs = new Map(records.filter((r) => r.kind === 'forward' && r.status === 'complete').map((r) => [r.stepId, r.output]));
    const resolved = resolveRefs(step.arguments, outputs);
    callInput = resolved.value;
    if (resolved.missing.length > 0) {
      if (!dryRun) throw new StepInputInvalidError(`Step ${step.id} refers to outputs that do not exist: ${resolved.missing.join(', ')}`);
      // A dry run's earlier steps return simulations, not real outputs: this one is skipped.
      skipReason = `depends on simulated output (${resolved.missing.join(', ')})`;
    }
  } else {
    if (action.status !== 'compensating') throw new ActionStateError(`Action ${action.id} is ${action.status}; compensations run only while compensating`);
    const item = compensationsOf(deps.tools, plan, records)[input.index];
    if (!item) throw new ActionStateError(`Action ${action.id} has no compensation ${input.index}`);
    stepId = item.stepId;
    registered = item.tool;
    callInput = item.input;
  }
  if (!registered) throw new ActionStateError(`Action ${action.id} names an unknown tool`);
  // A step whose earlier attempt may have acted at the vendor is retried to the end (see
  // attemptInDoubt); halts, cancels and breakers stop every other step before it begins.
  const record = records.find((r) => r.kind === 'forward' && r.stepId === stepId);
  const inDoubt = input.kind === 'forward' && attemptInDoubt(record);
  // A completed step is not called again (its record answers), so no guardrail stands in its
  // way: a resumed run replays it to reach the step it stopped at, which may be in doubt.
  const done = input.kind === 'forward' && record?.status === 'complete';
  if (input.resolve && !inDoubt && !done) throw new StepNotInDoubtError(`Step ${stepId} of ${action.id} is not in doubt`);
  if (input.kind === 'forward' && !inDoubt && !done) {
    await guardForwardStep(deps, action, plan.steps.map((s) => s.tool), { stepId, connector: registered.connector.name });
  }
  // The input rides in the state to the connector function; Step Functions caps a state at 256 KiB.
  const inputBytes = jsonBytes(callInput);
  if (inputBytes > STEP_INPUT_MAX_BYTES) throw new StepInputTooLargeError(stepId, registered.fullName, inputBytes);
  if (!skipReason) {
    const check = registered.tool.input.safeParse(callInput);
    if (!check.success) {
      throw new StepInputInvalidError(
        `Step ${stepId} input for ${registered.fullName} is invalid at ${check.error.issues.map((i) => i.path.join('.') || '(root)').join(', ')}`,
      );
    }
  }
  if (input.kind === 'forward' && !dryRun && !skipReason) {
    await holdStepSpend(deps, action, plan, input.index, records, callInput, registered);
  }
  const grant = await mintGrant(
    deps.keyring,
    {
      principal: action.principal.sub,
      // The verified agent (the token's act.sub, azp or client_id), never the body's self-declared
      // name; a person calling without an agent acts for themself.
      agent: grantActor(action),
      connector: registered.connector.name,
      tool: registered.fullName,
      actionId: action.id,
      stepId,
      kind: input.kind,
      planHash: action.planHash,
      inputHash: inputHash(callInput),
    },
    { ttlSeconds: deps.grantTtlSeconds, now: deps.now() },
  );
  await deps.events.append(action.id, {
    type: 'grant.issued',
    actor: 'airlock',
    // Only the grant's id, scope and expiry are recorded, never the token.
    data: { stepId, kind: input.kind, jti: grant.jti, scope: grant.scope, exp: grant.exp },
  }, deps.now());
  return {
    functionName: deps.connectorFunction(registered.connector.name),
    payload: {
      task: 'RunStep',
      kind: input.kind,
      actionId: action.id,
      stepId,
      tool: registered.fullName,
      input: callInput,
      planHash: action.planHash,
      dryRun,
      grant: grant.token,
      ...(skipReason ? { skipReason } : {}),
    },
  };
}

/** Error details that are safe to keep: a name and a bounded message. */
function safeError(error: unknown): { name: string; message: string } {
  const e = (error ?? {}) as { Error?: unknown; Cause?: unknown };
  const name = typeof e.Error === 'string' ? e.Error.slice(0, 100) : 'UnknownError';
  let message = typeof e.Cause === 'string' ? e.Cause : '';
  try {
    const parsed = JSON.parse(message) as { errorMessage?: unknown };
    if (typeof parsed.errorMessage === 'string') message = parsed.errorMessage;
  } catch {
    // The cause is plain text.
  }
  return { name, message: message.slice(0, 300) };
}

/** Why an action ends failed when its saga failed before any step ran, or around the steps (the ASL's MarkFailed). */
export const OUTSIDE_A_STEP = 'the saga failed outside a step';

/** PrepareCompensation: records why the run failed and lists what must be undone. */
export async function prepareCompensation(
  deps: SagaDeps,
  input: { actionId: string; error?: unknown; recount?: boolean },
): Promise<{ count: number; inDoubt: number[] }> {
  let action = await load(deps, input.actionId);
  const plan = planOf(action, deps.tools);
  if (action.status === 'running') {
    // No error: the Standard saga passed its own failure (PassFailure) without one.
    const failure = input.error === undefined ? { name: 'SagaFailed', message: OUTSIDE_A_STEP } : safeError(input.error);
    await deps.events.append(action.id, { type: 'step.failed', actor: 'airlock', data: { error: failure } }, deps.now());
    action = await move(deps, action, 'compensating', `${failure.name}: ${failure.message}`.slice(0, 300));
  }
  if (action.status !== 'compensating') return { count: 0, inDoubt: [] };
  const records = await deps.steps.listSteps(action.id);
  // The recount, after the in-doubt steps were retried, never asks again: what is still in
  // doubt stays so, and FinishCompensation says it.
  return { count: compensationsOf(deps.tools, plan, records).length, inDoubt: input.recount ? [] : inDoubtOf(deps.tools, plan, records) };
}

/** RecordCompensationFailure: a compensation that still fails is an alarm, never silent. */
export async function recordCompensationFailure(
  deps: SagaDeps,
  input: { actionId: string; index: number; error?: unknown },
): Promise<void> {
  const action = await load(deps, input.actionId);
  const item = compensationsOf(deps.tools, planOf(action, deps.tools), await deps.steps.listSteps(action.id))[input.index];
  const failure = safeError(input.error);
  const stepId = item?.stepId ?? `#${input.index}`;
  await deps.events.append(action.id, {
    type: 'compensation.failed',
    actor: 'airlock',
    data: { stepId, tool: item?.tool.fullName ?? null, error: failure, alarm: true },
  }, deps.now());
  if (item) await deps.steps.failStep({ actionId: action.id, stepId: item.stepId, kind: 'compensate' }, failure, true, deps.now());
  // The page: a committed side effect that was not undone (money not returned, a role not revoked).
  countKpi(deps.metrics, 'CompensationFailed', { connector: item?.tool.connector.name ?? 'unknown' });
  deps.logger.error('ALARM compensation failed', { actionId: action.id, stepId, tool: item?.tool.fullName, error: failure.name });
}

/**
 * FinishCompensation: compensated when everything was undone, failed (naming the steps)
 * otherwise. An action no step ran for (received, awaiting approval: the run came here from
 * MarkFailed) had nothing to undo and ends failed.
 */
export async function finishCompensation(deps: SagaDeps, actionId: string): Promise<{ status: 'compensated' | 'failed'; reason: string }> {
  const action = await load(deps, actionId);
  if (action.status === 'received' || action.status === 'awaiting_approval') return { status: 'failed', reason: OUTSIDE_A_STEP };
  const records = await deps.steps.listSteps(actionId);
  const plan = planOf(action, deps.tools);
  const items = compensationsOf(deps.tools, plan, records);
  const undone = new Set(records.filter((r) => r.kind === 'compensate' && r.status === 'complete').map((r) => r.stepId));
  const stuck = items.filter((i) => !undone.has(i.stepId));
  const unknown = inDoubtOf(deps.tools, plan, records).map((i) => plan.steps[i]!);
  const why = action.statusReason ?? 'a step failed';
  if (unknown.length > 0) {
    // Retried with compensation's patience and still not told: it may be in force at the
    // vendor. Never `compensated`; reconciliation asks the vendor again and can undo it.
    deps.logger.error('ALARM step outcome unknown after compensation', { actionId, stepIds: unknown.map((s) => s.id) });
  }
  if (stuck.length > 0 || unknown.length > 0) {
    const parts = [
      ...(stuck.length > 0 ? [`compensation failed for ${stuck.map((s) => `${s.stepId} (${s.tool.fullName})`).join(', ')}`] : []),
      ...(unknown.length > 0 ? [`outcome unknown at the vendor for ${unknown.map((s) => `${s.id} (${s.tool})`).join(', ')}`] : []),
    ];
    return { status: 'failed', reason: `${why}; ${parts.join('; ')}` };
  }
  return { status: 'compensated', reason: `${why}; ${items.length} completed step(s) undone` };
}

/** SettleAction: the terminal status, forward-only; spend-cap reservations made final or released. */
export async function settleAction(
  deps: SagaDeps,
  input: SettleInput,
  known?: ActionRecord,
): Promise<{ status: ActionStatus }> {
  return (await settle(deps, input, known)).settled;
}

/** What SettleAction is told: the ending the run chose, and whether its compensation loop ran. */
export interface SettleInput {
  actionId: string;
  final?: { status?: unknown; reason?: unknown };
  /** The run went through PrepareCompensation (its state has `undo`): what could be undone was tried. */
  compensationRan?: boolean;
}

/**
 * SettleAction, answering also with the action as it left it (`known`: as the caller last
 * wrote it; a stale one fails the conditional move and is read again). `knownRecords`: every
 * step record of the action, when the caller holds them all (the read fast path: its one step,
 * completed, as the connector recorded it); otherwise they are read.
 */
export async function settle(
  deps: SagaDeps,
  input: SettleInput,
  known?: ActionRecord,
  knownRecords?: StepRecord[],
): Promise<{ settled: { status: ActionStatus }; action: ActionRecord; records: StepRecord[] | undefined }> {
  // Fresh, never a remembered copy: the ending depends on it (a cancel asked meanwhile). With
  // the plan known here, the action and every step record come in one request.
  const both = known?.id === input.actionId ? undefined : await actionWithSteps(deps, input.actionId, ['forward', 'compensate']);
  let action = known?.id === input.actionId ? known : (both?.action ?? (await load(deps, input.actionId)));
  const wanted = input.final?.status;
  const reason = typeof input.final?.reason === 'string' ? input.final.reason : undefined;
  const target: ActionStatus =
    // Every ending but a cancel, which only the cancel API brings about, never the state machine:
    // a cancelled action whose compensation succeeded ends `cancelled` (one that did not, `failed`).
    typeof wanted === 'string' && isTerminal(wanted) && wanted !== 'cancelled'
      ? wanted === 'compensated' && action.cancel
        ? 'cancelled'
        : wanted
      : 'failed';
  let records: Promise<StepRecord[]> | undefined = both ? Promise.resolve(both.records) : knownRecords && Promise.resolve(knownRecords);
  const stepRecords = () => (records ??= deps.steps.listSteps(input.actionId));
  if (target === 'failed' && !input.compensationRan && (action.status === 'running' || action.status === 'compensating')) {
    const all = await stepRecords();
    const tried = new Set(all.filter((r) => r.kind === 'compensate' && r.status !== 'in_progress').map((r) => r.stepId));
    const plan = planOf(action, deps.tools);
    const owed = [
      ...compensationsOf(deps.tools, plan, all).filter((i) => !tried.has(i.stepId)).map((i) => i.stepId),
      // A step in doubt may be in force at the vendor: the resumed run retries it, then undoes it.
      ...inDoubtOf(deps.tools, plan, all).map((i) => plan.steps[i]!.id),
    ];
    if (owed.length > 0) throw new CompensationOwedError(`Action ${action.id} cannot end failed: ${owed.join(', ')} not undone yet`);
  }
  if (!TerminalStatuses.has(action.status)) {
    if (target === 'completed') {
      const result = resultFromSteps(action, await stepRecords());
      // The action record is one DynamoDB item: outputs too large for it stay in the step
      // records, from which the action view and the receipt put the result together.
      const patch = jsonBytes(result) <= ACTION_RESULT_MAX_BYTES ? { result } : {};
      // try/await, not .catch(): an awaited call keeps its callers on async stack traces.
      try {
        action = await move(deps, action, 'completed', reason, patch);
      } catch (error) {
        if (!(error instanceof StatusTransitionError)) throw error;
        action = await load(deps, input.actionId);
      }
    } else {
      try {
        action = await move(deps, action, target, reason);
      } catch (error) {
        if (!(error instanceof StatusTransitionError)) throw error;
        action = await move(deps, await load(deps, input.actionId), 'failed', reason);
      }
    }
  }
  if (target === 'expired' && deps.approvals) {
    // The wait timed out in the state machine: close the approval too, so nobody votes on it
    // and the receipt records the expiry. Only the winner of the conditional settle audits it.
    const approvalId = approvalIdFor(action.id);
    const approval = await deps.approvals.getApproval(approvalId);
    if (approval?.status === 'pending' && (await deps.approvals.settle(approvalId, 'expired', { by: 'airlock', reason: 'expired' }, deps.now()))) {
      await deps.approvals.markAnswered(approvalId, deps.now());
      recordApprovalDecided(deps.metrics, 'expired', approval.createdAt, deps.now());
      await deps.events.append(action.id, { type: 'approval.expired', actor: 'airlock', data: { approvalId } }, deps.now());
    }
  }
  // Only commit steps whose tool declares money reserve spend (holdStepSpend: any other step
  // adds nothing to the plan's total): an action without one has nothing to settle.
  const commits = planOf(action, deps.tools).steps.some((step) => {
    const tool = deps.tools.find(step.tool)?.tool;
    return tool?.tier === 'commit' && tool.money !== undefined;
  });
  if (deps.spendCaps && commits && TerminalStatuses.has(action.status)) {
    // Completed spend becomes final; what was undone or never ran gives its room back.
    const settled = await settleActionSpend(deps.spendCaps, action.id, await stepRecords(), deps.now());
    if (settled.final.length + settled.released.length > 0) {
      await deps.events.append(action.id, { type: 'spend.settled', actor: 'airlock', data: { final: settled.final, released: settled.released } }, deps.now());
    }
  }
  settledActions.set(action.id, action);
  if (settledActions.size > PLAN_HINTS_MAX) settledActions.delete(settledActions.keys().next().value!);
  return { settled: { status: action.status }, action, records: records && (await records) };
}

/**
 * Actions as SettleAction last left them in this instance, for RecordReceipt: nothing but
 * reads (WriteReceipt) comes between the two, so the copy is almost always current, and the
 * version check of the write refuses it when it is not (the action is then read again).
 */
const settledActions = new Map<string, ActionRecord>();

/** RecordReceipt: the receipt's key on the action (once; a retry finds it there). */
export async function recordReceipt(deps: SagaDeps, input: { actionId: string; key: string }): Promise<void> {
  const known = settledActions.get(input.actionId);
  settledActions.delete(input.actionId);
  await deps.actions.setReceiptKey(input.actionId, input.key, deps.now(), known);
}

