import { invokeTool } from '../tools/invoke';
import type { ToolRegistry } from '../ports/tools';
import { GrantInvalidError, verifyGrant, type GrantKeyring } from './grants';
import type { Logger } from '../shared/logger';
import { inputHash, type RunStep } from './contract';
import { jsonBytes, STEP_OUTPUT_MAX_BYTES, StepOutputTooLargeError } from '../saga/limits';
import type { SecretsPort } from '../ports/secrets';
import { attemptInDoubt, type StepKey, type StepRecord, type StepStore } from '../ports/steps';
import { stepIdempotencyKey } from '../shared/ids';
import { isBreakerFailure, type Breakers } from '../guardrails/breakers';
import type { Metrics } from '../ports/metrics';
import { countKpi } from '../observability/kpis';

/**
 * Running one step call inside a connector function: verify the grant against exactly this
 * call, return the recorded output if the step already completed, consume the grant once
 * (in the same write that begins the attempt), then call the vendor with the step's
 * deterministic idempotency key and record the result.
 */

export interface RunStepDeps {
  /** The connector this function serves; grants for any other audience are refused. */
  connector: string;
  /** Where the step's tool is looked up (the registry port). */
  tools: ToolRegistry;
  steps: StepStore;
  keyring: GrantKeyring;
  secrets: SecretsPort;
  baseUrls: Record<string, string>;
  logger: Logger;
  now: () => Date;
  /** Budget for the whole vendor interaction, reconcile included. */
  timeoutMs: number;
  fetch?: typeof fetch;
  /** Vendor calls, errors and latency, grant refusals, retries and compensations, per connector. */
  metrics?: Metrics;
  /** The connector's circuit breaker: every vendor call's outcome is counted (none: not counted). */
  breakers?: Breakers;
}

/** Counts a vendor call's outcome on the breaker; a failure to count never fails the step. */
async function countOutcome(deps: RunStepDeps, error: unknown, log: RunStepDeps['logger']): Promise<void> {
  if (!deps.breakers) return;
  try {
    if (error === undefined) await deps.breakers.recordSuccess(deps.connector);
    else if (isBreakerFailure(error)) await deps.breakers.recordFailure(deps.connector);
  } catch (countError) {
    log.warn('circuit breaker not updated', { error: countError instanceof Error ? countError.name : 'unknown' });
  }
}

export async function runStep(deps: RunStepDeps, payload: Omit<RunStep, 'task'> & { task?: 'RunStep' }): Promise<unknown> {
  return (await runStepRecorded(deps, payload)).output;
}

/**
 * {@link runStep}, answering with the step's completed record as the ledger holds it (the
 * write that completed it, or the read that found it complete) rather than its output alone.
 * A completed record never changes again.
 */
export async function runStepRecorded(deps: RunStepDeps, payload: Omit<RunStep, 'task'> & { task?: 'RunStep' }): Promise<StepRecord> {
  const key: StepKey = { actionId: payload.actionId, stepId: payload.stepId, kind: payload.kind };
  const log = deps.logger.child({ actionId: key.actionId, stepId: key.stepId, kind: key.kind, tool: payload.tool });
  const registered = deps.tools.find(payload.tool);
  if (!registered || registered.connector.name !== deps.connector) {
    log.warn('grant refused', { reason: 'tool not served by this connector' });
    countKpi(deps.metrics, 'GrantRefused', { reason: 'wrong_connector' });
    throw new GrantInvalidError(`${deps.connector} does not serve ${payload.tool}`);
  }
  let grant;
  try {
    grant = await verifyGrant(deps.keyring, payload.grant, {
      connector: deps.connector,
      tool: payload.tool,
      actionId: payload.actionId,
      stepId: payload.stepId,
      kind: payload.kind,
      planHash: payload.planHash,
      inputHash: inputHash(payload.input),
    }, { now: deps.now() });
  } catch (error) {
    // Audit trail for refusals: the saga records the named failure; the log says why.
    log.warn('grant refused', { reason: error instanceof Error ? error.message : 'invalid' });
    countKpi(deps.metrics, 'GrantRefused', { reason: 'invalid' });
    throw error;
  }

  if (deps.breakers && payload.kind === 'forward' && !payload.skipReason) {
    // The saga checked too, through its own short cache; this function may have just opened
    // the breaker itself, so a retry it serves fails here, before the vendor is called.
    // Compensations are never refused: they are how money comes back. Nor is a step whose
    // earlier attempt may have acted (attemptInDoubt): only this call, which reconciles by the
    // step's idempotency key, can tell, and refusing it would leave that effect undone. Nor a
    // completed one: its record answers. The record is read only when the breaker refuses.
    try {
      await deps.breakers.check(deps.connector);
    } catch (error) {
      const existing = await deps.steps.getStep(key);
      if (existing?.status === 'complete') {
        log.info('step already complete; returning the recorded output');
        return existing;
      }
      if (!attemptInDoubt(existing)) {
        log.warn('step refused: circuit breaker open', { connector: deps.connector });
        throw error;
      }
    }
  }
  const idempotencyKey = stepIdempotencyKey(key);
  // One conditional write begins the attempt and consumes the grant; it assumes no record yet
  // (the usual first attempt) and reads the record only when that guess is wrong.
  const begun = await deps.steps.beginStep(
    key,
    { tool: payload.tool, input: payload.input, idempotencyKey, grant: { jti: grant.jti, scope: grant.scope, exp: grant.exp }, dryRun: payload.dryRun },
    deps.now(),
    null,
  );
  if (begun.state === 'complete') {
    log.info('step already complete; returning the recorded output');
    return begun.record;
  }
  if (begun.state === 'replayed') {
    log.warn('grant refused', { reason: 'replayed jti', jti: grant.jti });
    countKpi(deps.metrics, 'GrantRefused', { reason: 'replayed' });
    throw new GrantInvalidError('the grant was already used');
  }
  const connector = { connector: deps.connector };
  if (begun.record.attempts > 1) countKpi(deps.metrics, 'StepRetried', { ...connector, kind: key.kind });

  const calledAt = deps.now().getTime();
  const vendorCalled = !(payload.dryRun && payload.skipReason);
  let vendorAnswered = false;
  try {
    const output = !vendorCalled
      ? { dryRun: true, check: 'skipped', details: { reason: payload.skipReason } }
      : await invokeTool(
          {
            tool: payload.tool,
            input: payload.input,
            idempotencyKey,
            dryRun: payload.dryRun,
            grant,
            deadline: deps.now().getTime() + deps.timeoutMs,
          },
          {
            tools: deps.tools,
            secrets: deps.secrets,
            baseUrls: deps.baseUrls,
            logger: log,
            ...(deps.fetch ? { fetch: deps.fetch } : {}),
          },
        ).then(
          async (out) => {
            await countOutcome(deps, undefined, log);
            return out;
          },
          async (error: unknown) => {
            await countOutcome(deps, error, log);
            throw error;
          },
        );
    vendorAnswered = true;
    if (vendorCalled) recordVendorCall(deps, connector, calledAt, false);
    // Checked before recording: the step record is one DynamoDB item, and the output flows on
    // into later inputs, the action's result and the receipt.
    const bytes = jsonBytes(output);
    if (bytes > STEP_OUTPUT_MAX_BYTES) {
      const committed = !payload.dryRun && registered.tool.tier === 'commit';
      if (committed) log.error('ALARM step output too large after a committed side effect', { bytes, idempotencyKey });
      throw new StepOutputTooLargeError(payload.tool, bytes, { committed });
    }
    const done = await deps.steps.completeStep(key, output, deps.now());
    log.info('step complete', { attempts: done.attempts });
    if (key.kind === 'compensate' && !payload.dryRun) countKpi(deps.metrics, 'CompensationExecuted', connector);
    return done;
  } catch (error) {
    if (vendorCalled && !vendorAnswered) recordVendorCall(deps, connector, calledAt, true);
    const err = error instanceof Error ? error : new Error('unknown failure');
    const retryable = (err as { retryable?: unknown }).retryable === true;
    // Only the vendor's own refusal to act (a 5xx answer, before anything it answered was
    // lost) tells that this attempt did nothing; a timeout, or a failure after it answered,
    // leaves the step in doubt.
    const told = !vendorAnswered && err.name === 'VendorUnavailableError' ? begun.record.attempts : undefined;
    await deps.steps.failStep(key, { name: err.name, message: err.message }, !retryable, deps.now(), told).catch(() => undefined);
    log.warn('step failed', { error: err.name, retryable });
    throw err;
  }
}

/** One vendor interaction: the call, its latency, and whether it failed. */
function recordVendorCall(deps: RunStepDeps, connector: { connector: string }, startedAt: number, failed: boolean): void {
  if (!deps.metrics) return;
  deps.metrics.count('VendorCall', connector);
  if (failed) deps.metrics.count('VendorError', connector);
  deps.metrics.observe('VendorLatency', Math.max(0, deps.now().getTime() - startedAt), 'Milliseconds', connector);
}
