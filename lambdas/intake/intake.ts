import { TerminalStatuses, type ActionRecord, type StoredDecision } from '../actions/action';
import type { StepStore } from '../ports/steps';
import { canonicalJson, fingerprint, inspectJsonShape, sha256Hex } from '../shared/canonical-json';
import { isSingleRead, MAX_JSON_DEPTH, validateEnvelope, normalizeEnvelope, type NormalizedAction } from './envelope';
import { newActionId } from '../shared/ids';
import type { Principal } from '../shared/principal';
import {
  EnvelopeInvalidError,
  IdempotencyInProgressError,
  IdempotencyKeyInvalidError,
  IdempotencyKeyMissingError,
  IdempotencyKeyReusedError,
  IntakeBusyError,
} from './errors';
import { LedgerThrottledError, type ActionStore, type IdempotencyStore, type ReadAnswer, type StoredResponse } from '../ports/ledger';
import type { StepRecord } from '../ports/steps';
import type { ReadPath, WorkflowStarter } from '../ports/workflow';
import type { Logger } from '../shared/logger';
import type { ToolRegistry } from '../ports/tools';
import { refuseGuardedNew, type IntakeGuardrails } from '../guardrails/intake-guard';
import type { Metrics } from '../ports/metrics';
import { countKpi, recordDecision } from '../observability/kpis';
import { delegationForAction, type DelegationGate } from '../delegations/gate';

/**
 * Accepting an action: the front door's use case. Validates the envelope, makes the call
 * idempotent per principal and Idempotency-Key (IETF draft-ietf-httpapi-idempotency-key-header,
 * with Stripe's replay behaviour), decides with policy, records the action and hands it to
 * the workflow.
 */

export interface IntakeConfig {
  /** How long a completed key is remembered (≥ 24 h). */
  idempotencyRetentionMs: number;
  /** How long an in-progress claim blocks others before it counts as abandoned. */
  idempotencyLockMs: number;
  /** How long a concurrent duplicate waits for the first request before answering 409. */
  inProgressWaitMs: number;
  /** How long an allowed action may run before the POST answers 202 instead of its result. */
  syncWaitMs: number;
  /** The most a client may ask for with `Prefer: wait=N` (API Gateway cuts at 30 s). */
  maxSyncWaitMs: number;
}

export const defaultIntakeConfig: IntakeConfig = {
  idempotencyRetentionMs: 24 * 60 * 60 * 1000,
  idempotencyLockMs: 30_000,
  inProgressWaitMs: 2_000,
  syncWaitMs: 5_000,
  maxSyncWaitMs: 20_000,
};

/** Decides an action with policy; the result is stored on the action. */
export interface Decider {
  decide(principal: Principal, action: NormalizedAction, now: Date): Promise<StoredDecision>;
}

export interface IntakeDeps {
  actions: ActionStore;
  /** Step records, for the steps of a synchronous answer. */
  steps?: StepStore;
  idempotency: IdempotencyStore;
  workflow: WorkflowStarter;
  /**
   * Runs an allowed single read call without the saga when the client waits for the answer
   * (absent: every action goes to the workflow). On any failure the action goes to the workflow.
   */
  readPath?: ReadPath;
  decider: Decider;
  /** The tools an envelope may name (the registry port). */
  tools: ToolRegistry;
  config: IntakeConfig;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  logger?: Logger;
  /** Halts and circuit breakers: new work they cover is refused before it is recorded. */
  guardrails?: IntakeGuardrails;
  /** Safety KPIs (decisions, denials by policy, idempotency replays and conflicts). */
  metrics?: Metrics;
  /** Delegations: the one an action runs under, and whether one is required (`requireDelegation`). */
  delegations?: DelegationGate;
}

export interface IntakeRequest {
  principal: Principal;
  idempotencyKey: string | undefined;
  body: unknown;
  /** The RFC 7240 `Prefer` header, if any (`wait=N`, `respond-async`). */
  prefer?: string | undefined;
  /** Trace id to record on the action (X-Ray root or request id). */
  traceId?: string | undefined;
}

/** How long to wait for the result, from `Prefer` (RFC 7240) and the configured default. */
export function preferredWaitMs(prefer: string | undefined, config: IntakeConfig): number {
  if (!prefer) return config.syncWaitMs;
  const prefs = prefer.toLowerCase().split(',').map((p) => p.trim());
  if (prefs.includes('respond-async')) return 0;
  const wait = prefs.map((p) => /^wait\s*=\s*(\d{1,6})$/.exec(p)).find((m) => m !== null);
  return wait ? Math.min(Number(wait[1]) * 1000, config.maxSyncWaitMs) : config.syncWaitMs;
}

/** Longest Idempotency-Key accepted, counted after unquoting. */
export const MAX_IDEMPOTENCY_KEY_CHARS = 255;

/**
 * An RFC 8941 sf-string (`"…"` with `\"` and `\\` escapes, printable ASCII inside) that is
 * the whole field value; undefined when the value is anything else, including a string
 * followed by more (`"a","b"`: a repeated header joined by a comma, or parameters).
 */
function sfString(value: string): string | undefined {
  if (!value.startsWith('"')) return undefined;
  let out = '';
  for (let i = 1; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\') {
      const next = value[++i];
      if (next !== '"' && next !== '\\') return undefined;
      out += next;
    } else if (c === '"') {
      return i === value.length - 1 ? out : undefined;
    } else if (c < ' ' || c > '~') {
      return undefined;
    } else {
      out += c;
    }
  }
  return undefined;
}

/** RFC 9110 §5.5: leading and trailing SP / HTAB are not part of a field value (no regex: `[ \t]+$` is quadratic). */
function trimOws(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && (value[start] === ' ' || value[start] === '\t')) start++;
  while (end > start && (value[end - 1] === ' ' || value[end - 1] === '\t')) end--;
  return value.slice(start, end);
}

const keyProblem = (message: string) => new IdempotencyKeyInvalidError(message);

/**
 * Parses an Idempotency-Key header. The draft (draft-ietf-httpapi-idempotency-key-header)
 * makes it an RFC 8941 sf-string (`"abc"`); Stripe-style bare keys are accepted too, as long
 * as they hold no comma. A comma is what a repeated header turns into: Node, API Gateway and
 * most proxies join repeated fields with `,`, so `one,two` (or `"one", "two"`) may be two
 * keys, and which one the client meant cannot be known. A quoted key may hold a comma.
 * Either form: 1–255 printable ASCII characters once unquoted.
 */
export function parseIdempotencyKey(raw: string | undefined): string {
  if (raw === undefined || raw.length === 0) {
    throw new IdempotencyKeyMissingError();
  }
  const value = trimOws(raw);
  let key: string | undefined;
  if (value.startsWith('"')) {
    key = sfString(value);
    if (key === undefined) {
      throw keyProblem(
        'must be exactly one quoted string ("…", escaping only \\" and \\\\, printable ASCII), nothing after it: send the header once',
      );
    }
  } else {
    if (value.includes(',')) {
      throw keyProblem('must be one key, sent once: a comma means a repeated header; quote a key that contains a comma ("a,b")');
    }
    key = value;
  }
  if (key.length < 1 || key.length > MAX_IDEMPOTENCY_KEY_CHARS || !/^[\x20-\x7E]+$/.test(key)) {
    throw keyProblem('must be 1–255 printable ASCII characters');
  }
  return key;
}

/** SHA-256 over the canonical plan: what an approval is bound to. */
export function planHash(action: NormalizedAction): string {
  return sha256Hex(
    canonicalJson({ mode: action.mode, steps: action.steps.map((s) => ({ id: s.id, tool: s.tool, arguments: s.arguments })) }),
  );
}

/** What accepting an action came to; intake/http.ts renders it (and the render is what a replay answers). */
export type AcceptOutcome =
  | { kind: 'denied'; action: ActionRecord }
  | { kind: 'accepted'; action: ActionRecord }
  | { kind: 'completed'; action: ActionRecord; steps: StepRecord[] | undefined; waitedMs: number };

/** The wait a completed outcome's answer names (undefined for any other). */
const waitMsOf = (outcome: AcceptOutcome) => (outcome.kind === 'completed' ? outcome.waitedMs : undefined);

/** The answer to an outcome, stored under the key so that a retry gets the same one back. */
export type RenderOutcome = (outcome: AcceptOutcome) => StoredResponse;

/**
 * Validates an untrusted body as an envelope (shape first: depth and prototype-polluting keys,
 * then the envelope itself) or throws a 400 listing every violation.
 */
export function parseEnvelope(body: unknown, tools: ToolRegistry, retryHint = 'and retry'): NormalizedAction {
  const shapeIssues = inspectJsonShape(body, MAX_JSON_DEPTH);
  if (shapeIssues.length > 0) throw new EnvelopeInvalidError('The body is not an acceptable JSON document.', shapeIssues);
  const validated = validateEnvelope(body, tools);
  if (!validated.ok) {
    throw new EnvelopeInvalidError(`The request has ${validated.violations.length} problem(s); fix every listed violation ${retryHint}.`, validated.violations);
  }
  return validated.action;
}

/**
 * POST /v1/decisions: what policy would decide for this envelope now, without creating an
 * action (a preview for agents and policy authors). Nothing is written. The delegation is
 * found as intake finds it (same gate, same clock), so Cedar sees the same
 * `context.delegation` (budget spent so far included), and an action intake would refuse for
 * its delegation (none matching while required, or over its budget) is refused here with the
 * same problem: a preview never says allow where the action would be refused for that.
 */
export async function previewDecision(
  req: { principal: Principal; body: unknown },
  deps: { decider: Decider; tools: ToolRegistry; now?: () => number; delegations?: DelegationGate },
): Promise<{ decision: StoredDecision; planHash: string }> {
  const action = parseEnvelope(normalizeEnvelope(req.body, deps.tools), deps.tools);
  const at = new Date((deps.now ?? Date.now)());
  const delegation = await delegationForAction(deps.delegations, req.principal, action, at, { record: false });
  if (delegation) action.delegation = delegation;
  const decision = await deps.decider.decide(req.principal, action, at);
  return { decision, planHash: planHash(action) };
}

/** With a workflow that says when it ends, how often the ledger is still read meanwhile (a safety net). */
const WAKE_POLL_MS = 200;

/**
 * The wait a read asked for with `Prefer: wait=N` (GET /v1/actions/{id}), capped at
 * `maxSyncWaitMs`; undefined when it asked for none (a read never waits by default).
 */
export function askedWaitMs(prefer: string | undefined, config: IntakeConfig): number | undefined {
  if (!prefer) return undefined;
  const wait = prefer
    .toLowerCase()
    .split(',')
    .map((p) => /^wait\s*=\s*(\d{1,6})$/.exec(p.trim()))
    .find((m) => m !== null);
  return wait ? Math.min(Number(wait[1]) * 1000, config.maxSyncWaitMs) : undefined;
}

/** Longest pause between two ledger reads of a waiting read (the workflow's end wakes it sooner locally). */
const CHANGE_POLL_MAX_MS = 1_000;

/**
 * A long poll (GET /v1/actions/{id} with `Prefer: wait=N`): waits until the action is no longer
 * as `seen` — another status that is not an end (running, awaiting approval), or an end with its
 * receipt written — or the deadline passes, and returns it as it then is. An action already finished
 * with its receipt is returned at once. One request in place of an agent's poll loop: each
 * look here is a single ledger read, not a request with its token, rate limit and log.
 */
export async function awaitChange(
  deps: Pick<IntakeDeps, 'actions' | 'workflow' | 'now' | 'sleep'>,
  seen: ActionRecord,
  deadline: number,
): Promise<ActionRecord> {
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const settled = (a: ActionRecord) => TerminalStatuses.has(a.status) && a.receiptKey !== undefined;
  // An end is reported with its receipt (written just after it), as a waiting POST reports it.
  const changed = (a: ActionRecord) => settled(a) || (a.status !== seen.status && !TerminalStatuses.has(a.status));
  let current = seen;
  let wake = deps.workflow.ended?.(seen.id);
  for (let pause = 50; !changed(current); pause = Math.min(pause * 2, CHANGE_POLL_MAX_MS)) {
    const left = deadline - now();
    if (left <= 0) break;
    if (wake) wake = (await pauseUntil(wake, sleep, Math.min(pause, left), deps, seen.id)).next;
    else await sleep(Math.min(pause, left));
    current = (await deps.actions.getAction(seen.id)) ?? current;
  }
  return current;
}

/**
 * Polls the action until it reaches a terminal status or the deadline passes. Where the
 * workflow starter says when a workflow ends (the local runner), intake reads the action when
 * it ends (and every WAKE_POLL_MS meanwhile) instead of on a backoff that can overshoot the end
 * by its last interval. The ledger alone says what the action is: the end is only a hint.
 */
async function waitForEnd(
  deps: IntakeDeps,
  actionId: string,
  deadline: number,
  sleep: (ms: number) => Promise<void>,
): Promise<ActionRecord | undefined> {
  const now = deps.now ?? Date.now;
  let wake = deps.workflow.ended?.(actionId);
  for (let pause = 10; ; ) {
    if (wake) wake = (await pauseUntil(wake, sleep, Math.max(0, Math.min(WAKE_POLL_MS, deadline - now())), deps, actionId)).next;
    const action = await deps.actions.getAction(actionId);
    const ended = action !== undefined && TerminalStatuses.has(action.status);
    // The receipt is written just after the end; answer with it when it comes in time.
    if (ended && action.receiptKey) return action;
    if (wake) {
      if (now() >= deadline) return ended ? action : undefined;
      continue;
    }
    if (now() + pause > deadline) return ended ? action : undefined;
    await sleep(pause);
    pause = Math.min(pause * 2, 200);
  }
}

/**
 * Sleeps `pause` ms or until `wake` (the workflow ended), whichever is first. Returns what to
 * wake on next: the same promise after a full pause; after the end, the workflow that may have
 * taken over (an Express run hands an approval to the Standard saga), or none.
 */
async function pauseUntil(
  wake: Promise<void>,
  sleep: (ms: number) => Promise<void>,
  pause: number,
  deps: Pick<IntakeDeps, 'workflow'>,
  actionId: string,
): Promise<{ next: Promise<void> | undefined }> {
  const woke = await Promise.race([sleep(pause).then(() => false), wake.then(() => true, () => true)]);
  if (!woke) return { next: wake };
  const next = deps.workflow.ended?.(actionId);
  // Boxed (an async function returning a promise would wait for it); the same, settled promise
  // again would make a busy loop of the wait: polling takes over then.
  return { next: next === wake ? undefined : next };
}

/**
 * The read fast path; false when it handed off (the caller starts the saga, which resumes from
 * the ledger). When it ran to the end it may answer with the ended action and its steps.
 */
async function runRead(
  deps: IntakeDeps,
  action: ActionRecord,
  waitMs: number,
): Promise<false | { action: ActionRecord; steps: StepRecord[]; answered?: ReadAnswer } | undefined> {
  const actionId = action.id;
  try {
    // The record intake just wrote (or read back): RunRead starts from it instead of reading it
    // again. `answer`: RunRead records the answer this request will give with the receipt key,
    // so that it need not be stored under the Idempotency-Key (answeredRead rebuilds it, which
    // takes the step records).
    const answer = deps.steps ? { answer: { waitMs } } : {};
    return (await deps.readPath!.run(actionId, { timeoutMs: waitMs, action, ...answer })) ?? undefined;
  } catch (error) {
    // Not a failure of the request: the saga takes the action from where the ledger has it.
    deps.logger?.info('read fast path handed off to the saga', { actionId, error: error instanceof Error ? error.name : 'unknown' });
    return false;
  }
}

/**
 * The answer the read fast path recorded for this action (ReadAnswer: RunRead wrote it with
 * the receipt key, and the request that ran it answered with it without storing it under the
 * key), rebuilt as that request rendered it, and stored under the key now (`pin`): whoever
 * stores an answer first fixes it for every request with this key, so a request that meanwhile
 * gave up on the fast path and answers 202 answers this instead (acceptAction's `complete`).
 * Undefined when the action has no recorded answer.
 */
async function answeredRead(
  deps: IntakeDeps,
  render: RenderOutcome,
  claim: { scope: string; key: string; actionId: string },
): Promise<StoredResponse | undefined> {
  if (!deps.steps) return undefined;
  const found = await deps.actions.getReadAnswer(claim.actionId);
  if (!found) return undefined;
  const steps = await deps.steps.listSteps(claim.actionId);
  const response = render({ kind: 'completed', action: found.action, steps, waitedMs: found.answer.waitMs });
  const now = (deps.now ?? Date.now)();
  return deps.idempotency.pin({ ...claim, response, now, retentionMs: deps.config.idempotencyRetentionMs });
}

/**
 * Accepts an action (POST /v1/actions). Validation failures are refused before the key is
 * touched (nothing is stored for a request that never started, as Stripe does). Returns the
 * rendered answer, stored under the key, and whether it is a replay of an earlier one.
 */
export async function acceptAction(
  req: IntakeRequest,
  deps: IntakeDeps,
  render: RenderOutcome,
): Promise<{ response: StoredResponse; replayed: boolean }> {
  req = { ...req, body: normalizeEnvelope(req.body, deps.tools) };
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const key = parseIdempotencyKey(req.idempotencyKey);

  const action = parseEnvelope(req.body, deps.tools, 'and retry with a new Idempotency-Key');
  const scope = req.principal.sub;
  const fp = fingerprint({ method: 'POST', path: '/v1/actions', body: req.body });

  let claim;
  const waitUntil = now() + deps.config.inProgressWaitMs;
  for (let pause = 25; ; pause = Math.min(pause * 2, 250)) {
    try {
      claim = await deps.idempotency.claim({
        scope,
        key,
        fingerprint: fp,
        proposedActionId: newActionId(now()),
        now: now(),
        lockMs: deps.config.idempotencyLockMs,
        // Past the longest wait: a read fast path's answer is never stored under the key (the
        // claim's retention is the key's), and is still kept the full retention after it is given.
        retentionMs: deps.config.idempotencyRetentionMs + deps.config.maxSyncWaitMs,
      });
    } catch (error) {
      if (error instanceof LedgerThrottledError) throw new IntakeBusyError(1, { cause: error });
      throw error;
    }
    if (claim.outcome === 'claimed') break;
    const record = claim.record;
    if (record.fingerprint !== fp) {
      countKpi(deps.metrics, 'IdempotencyConflict', { kind: 'payload_mismatch' });
      throw new IdempotencyKeyReusedError();
    }
    if (record.state === 'complete') {
      countKpi(deps.metrics, 'IdempotentReplay');
      return { response: record.response, replayed: true };
    }
    // In progress under the key, or answered by the read fast path, which records its answer
    // on the action rather than under the key.
    const answered = await answeredRead(deps, render, { scope, key, actionId: record.actionId });
    if (answered) {
      countKpi(deps.metrics, 'IdempotentReplay');
      return { response: answered, replayed: true };
    }
    if (now() >= waitUntil) {
      // The first request usually finishes within a second; a crashed one is taken over
      // once its lock lapses, so a short, honest hint beats the full lock time.
      countKpi(deps.metrics, 'IdempotencyConflict', { kind: 'in_progress' });
      throw new IdempotencyInProgressError(1);
    }
    await sleep(pause);
  }

  const { actionId, owner } = claim;
  if (claim.takenOver) {
    // The request that claimed the key ended without storing an answer: the read fast path's
    // recorded one is the answer, when it has one.
    const answered = await answeredRead(deps, render, { scope, key, actionId });
    if (answered) {
      countKpi(deps.metrics, 'IdempotentReplay');
      return { response: answered, replayed: true };
    }
  }
  let created = false;
  let read: Awaited<ReturnType<typeof runRead>> = false;
  try {
    // A fresh claim names a new action id: only a takeover can find an action already there.
    let record = claim.takenOver ? await deps.actions.getAction(actionId) : undefined;
    if (!record) {
      // Refused before anything is recorded: a replay of work accepted earlier is still answered.
      await refuseGuardedNew(deps.guardrails, deps.tools, req.principal, action);
      const at = new Date(now());
      const delegation = await delegationForAction(deps.delegations, req.principal, action, at);
      if (delegation) action.delegation = delegation;
      const decision = await deps.decider.decide(req.principal, action, at);
      countKpi(deps.metrics, 'ActionRequested', { kind: action.kind });
      recordDecision(deps.metrics, decision, 'intake');
      const fresh: ActionRecord = {
        id: actionId,
        principal: req.principal,
        actor: action.agent,
        envelope: req.body,
        kind: action.kind,
        mode: action.mode,
        ...(action.reason !== undefined ? { reason: action.reason } : {}),
        planHash: planHash(action),
        ...(req.traceId ? { traceId: req.traceId } : {}),
        ...(delegation ? { delegation } : {}),
        status: 'received',
        decision,
        createdAt: at.toISOString(),
        updatedAt: at.toISOString(),
        version: 1,
      };
      const written = await deps.actions.createAction(fresh);
      // Only a concurrent creator could have written something else under this id.
      record = written === 'created' ? fresh : ((await deps.actions.getAction(actionId)) ?? fresh);
    }
    created = true;
    let outcome: AcceptOutcome;
    if (record.decision?.outcome === 'deny') {
      if (record.status === 'received') {
        record = await deps.actions.transition(actionId, 'denied', { statusReason: 'denied by policy' }, new Date(now()), record);
      }
      // The run sees a terminal action and only writes its receipt: denials are audited too.
      await deps.workflow.start(actionId, { actionId }, 'unattended');
      outcome = { kind: 'denied', action: record };
    } else {
      const waitMs = record.decision?.outcome === 'allow' ? preferredWaitMs(req.prefer, deps.config) : 0;
      // A client that asked to wait gets a read without the saga; `respond-async` keeps the saga.
      // The client's wait covers the read path too: a read that outlived it is answered 202.
      const deadline = now() + waitMs;
      const fast = deps.readPath && waitMs > 0 && record.status === 'received' && isSingleRead(action, deps.tools);
      read = fast ? await runRead(deps, record, waitMs) : false;
      // Allowed with no approval: the Express run (nothing to wait for; it hands the action to
      // the Standard saga if the run-time decision asks for an approver). Otherwise the saga.
      if (read === false) await deps.workflow.start(actionId, { actionId }, record.decision?.outcome === 'allow' ? 'unattended' : 'attended');
      if (read) {
        // The read path ended it and said how: nothing to read back.
        outcome = { kind: 'completed', action: read.action, steps: read.steps, waitedMs: waitMs };
      } else {
        const finished = waitMs > 0 ? await waitForEnd(deps, actionId, deadline, sleep) : undefined;
        outcome = finished
          ? { kind: 'completed', action: finished, steps: deps.steps ? await deps.steps.listSteps(actionId) : undefined, waitedMs: waitMs }
          : { kind: 'accepted', action: record };
      }
    }
    const response = render(outcome);
    // The read fast path recorded this very answer with the receipt key (ReadAnswer): nothing
    // to store under the key; a replay rebuilds it (answeredRead).
    if (read && read.answered?.waitMs === waitMsOf(outcome)) return { response, replayed: false };
    // Another request stored an answer first (answeredRead's pin): it is the answer.
    const stored = await deps.idempotency.complete({
      scope,
      key,
      owner,
      response,
      now: now(),
      retentionMs: deps.config.idempotencyRetentionMs,
    });
    return { response: stored ?? response, replayed: false };
  } catch (error) {
    // Before the action exists nothing was done: free the key so the retry starts clean.
    // After, keep the claim: the retry takes it over once the lock lapses and finishes
    // this same action (StartExecution by action id is idempotent).
    if (!created) await deps.idempotency.release({ scope, key, owner }).catch(() => undefined);
    if (error instanceof LedgerThrottledError) {
      // After the action exists, the retry must wait for the claim's lock to lapse.
      throw new IntakeBusyError(created ? Math.ceil(deps.config.idempotencyLockMs / 1000) : 1, { cause: error });
    }
    throw error;
  }
}
