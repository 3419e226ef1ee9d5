import middy from '@middy/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_PLAN_STEPS } from '../../lambdas/intake/envelope';
import {
  boundError,
  ERROR_FRAME_MAX_CHARS,
  ERROR_MESSAGE_MAX_CHARS,
  ERROR_STACK_MAX_FRAMES,
  GRANT_TOKEN_MAX_CHARS,
  jsonBytes,
  STATE_PAYLOAD_MAX_BYTES,
  STEP_INPUT_MAX_BYTES,
  STEP_OUTPUT_MAX_BYTES,
  worstCaseStateBytes,
} from '../../lambdas/saga/limits';
import { boundedErrors } from '../../lambdas/middleware/bounded-errors';
import { RunStepSchema } from '../../lambdas/steps/contract';

class VendorSaidTooMuchError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VendorSaidTooMuchError';
  }
}

/** What the Lambda Node.js runtime sends for a thrown error; Step Functions keeps it as `Cause`. */
const lambdaCause = (e: Error) => JSON.stringify({ errorType: e.name, errorMessage: e.message, trace: (e.stack ?? '').split('\n') });

const maxIdChars = RunStepSchema.shape.stepId.maxLength!;
const maxToolChars = RunStepSchema.shape.tool.maxLength!;
const bound = worstCaseStateBytes({ maxSteps: MAX_PLAN_STEPS, maxIdChars, maxToolChars });

describe('the worst-case saga state', () => {
  it('stays under Step Functions\' 256 KiB, with room to spare', () => {
    expect(bound.total).toBeLessThan(STATE_PAYLOAD_MAX_BYTES);
    // The largest part is the step call: its input, the grant and an error.
    expect(bound.branch).toBeGreaterThan(STEP_INPUT_MAX_BYTES);
    expect(STEP_OUTPUT_MAX_BYTES).toBeLessThanOrEqual(STEP_INPUT_MAX_BYTES);
  });

  it('uses the bounds the connector function enforces', () => {
    expect(RunStepSchema.shape.grant.maxLength).toBe(GRANT_TOKEN_MAX_CHARS);
    expect(maxIdChars).toBeLessThanOrEqual(64);
    expect(maxToolChars).toBeLessThanOrEqual(128);
  });
});

describe('boundError', () => {
  it('caps any message and stack so the Cause fits the bound, keeping name and cause (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 6_000 }), fc.integer({ min: 0, max: 40 }), (message, depth) => {
        const cause = new Error('root');
        const make = (n: number): Error => (n === 0 ? new VendorSaidTooMuchError(message, { cause }) : make(n - 1));
        const error = boundError(make(depth));
        expect(error.name).toBe('VendorSaidTooMuchError');
        expect(error.cause).toBe(cause);
        expect(error.message.length).toBeLessThanOrEqual(ERROR_MESSAGE_MAX_CHARS);
        // The header (name and message) and at most ERROR_STACK_MAX_FRAMES frames of bounded length.
        const header = `${error.name}: ${error.message}`.length;
        expect((error.stack ?? '').length).toBeLessThanOrEqual(header + ERROR_STACK_MAX_FRAMES * (ERROR_FRAME_MAX_CHARS + 1));
        expect(jsonBytes({ Error: error.name, Cause: lambdaCause(error) })).toBeLessThanOrEqual(bound.error);
      }),
      { numRuns: 200 },
    );
  });

  it('leaves a short message as it is', () => {
    const error = boundError(new VendorSaidTooMuchError('vendor said no'));
    expect(error.message).toBe('vendor said no');
    expect(error.stack?.split('\n')[0]).toBe('VendorSaidTooMuchError: vendor said no');
  });
});

describe('boundedErrors middleware', () => {
  it('caps what a saga function throws, by the same name', async () => {
    const handler = middy<unknown, unknown>()
      .use(boundedErrors())
      .handler(async () => {
        throw new VendorSaidTooMuchError('x'.repeat(1_000_000));
      });
    const thrown: Error = await handler({}, {} as never).then(
      () => new Error('did not throw'),
      (e: unknown) => e as Error,
    );
    expect(thrown).toBeInstanceOf(VendorSaidTooMuchError);
    expect(thrown.message.length).toBeLessThanOrEqual(ERROR_MESSAGE_MAX_CHARS);
    expect(lambdaCause(thrown).length).toBeLessThan(16_384);
  });
});
