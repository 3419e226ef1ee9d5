import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_APPROVAL_TIMEOUT_SECONDS } from '../../lambdas/approvals/approvals';
import {
  applySagaTimeouts,
  DEFAULT_SAGA_TIMEOUTS,
  deriveSagaTimeouts,
  EXPRESS_MAX_EXECUTION_SECONDS,
  EXPRESS_TASK_MAX_SECONDS,
  SagaTimeoutError,
  sagaTimeoutProblems,
  STANDARD_MAX_EXECUTION_SECONDS,
  TASK_TIMEOUT_MARGIN_SECONDS,
} from '../../lambdas/saga/timeouts';

const saga = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'statemachines', 'action-saga.asl.json'), 'utf8')) as unknown;
const run = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'statemachines', 'action-run.asl.json'), 'utf8')) as unknown;

/** A small saga whose bound is worked out by hand below. */
const sample = {
  StartAt: 'Decide',
  States: {
    Decide: {
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: { FunctionName: '${SagaFunctionArn}', Payload: {} },
      Retry: [{ ErrorEquals: ['X'], IntervalSeconds: 1, MaxAttempts: 3, BackoffRate: 2, MaxDelaySeconds: 8 }],
      Next: 'Wait',
    },
    Wait: {
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
      Parameters: { FunctionName: '${ApprovalsFunctionArn}', Payload: { 'token.$': '$$.Task.Token' } },
      Retry: [{ ErrorEquals: ['X'], IntervalSeconds: 3, MaxAttempts: 1 }],
      Next: 'Loop',
    },
    Loop: { Type: 'Choice', Choices: [{ Variable: '$.i', NumericLessThan: 4, Next: 'Step' }], Default: 'Done' },
    Step: {
      Type: 'Parallel',
      Branches: [
        {
          StartAt: 'Call',
          States: {
            Call: {
              Type: 'Task',
              Resource: 'arn:aws:states:::lambda:invoke',
              Parameters: { 'FunctionName.$': '$.fn', 'Payload.$': '$' },
              Retry: [{ ErrorEquals: ['Y'], IntervalSeconds: 5, MaxAttempts: 2, BackoffRate: 1 }],
              End: true,
            },
          },
        },
      ],
      Retry: [{ ErrorEquals: ['Z'], IntervalSeconds: 2, MaxAttempts: 1 }],
      Next: 'Loop',
    },
    Done: { Type: 'Succeed' },
  },
};

describe('deriveSagaTimeouts', () => {
  it('follows the documented bound, worked out by hand', () => {
    const config = { approvalTimeoutSeconds: 100, functionTimeoutSeconds: 10, connectorTimeoutSeconds: 20, maxSteps: 4 };
    const t = deriveSagaTimeouts(sample, config);
    // The wait: the approval's 100 s plus the approvals function's own 10 + 10 s.
    expect(t.tasks).toEqual({ Decide: 20, Wait: 120, Call: 30 });
    // Decide: 4 attempts × 20 s + back-off 1 + 2 + 4, plus 1 s for the transition.
    const decide = 4 * 20 + 7 + 1;
    // Wait: 1 failed invoke (10 + 10 s) + the wait (120 s) + 3 s back-off, plus 1.
    const wait = 20 + 120 + 3 + 1;
    // Loop and Step are on a cycle: 4 visits each. Step: 2 attempts × (Call: 3 × 30 + 5 + 5, + 1) + 2, + 1.
    const loop = 4 * 1;
    const step = 4 * (2 * (3 * 30 + 10 + 1) + 2 + 1);
    const done = 1;
    expect(t.executionSeconds).toBe(decide + wait + loop + step + done);
    expect(t.runSeconds).toBe(t.executionSeconds - 100);
  });

  it('writes the derived values into a copy, nested Tasks included', () => {
    const t = deriveSagaTimeouts(sample, { ...DEFAULT_SAGA_TIMEOUTS, maxSteps: 4 });
    const out = applySagaTimeouts(sample, t) as typeof sample & { TimeoutSeconds: number };
    expect(out.TimeoutSeconds).toBe(t.executionSeconds);
    expect((out.States.Step.Branches[0]!.States.Call as { TimeoutSeconds?: number }).TimeoutSeconds).toBe(
      DEFAULT_SAGA_TIMEOUTS.connectorTimeoutSeconds + TASK_TIMEOUT_MARGIN_SECONDS,
    );
    expect('TimeoutSeconds' in sample).toBe(false);
  });

  it('refuses a Task whose timeout it cannot derive', () => {
    const odd = { StartAt: 'Put', States: { Put: { Type: 'Task', Resource: 'arn:aws:states:::dynamodb:putItem', Parameters: {}, End: true } } };
    expect(() => deriveSagaTimeouts(odd, DEFAULT_SAGA_TIMEOUTS)).toThrow(SagaTimeoutError);
    expect(() => deriveSagaTimeouts(odd, DEFAULT_SAGA_TIMEOUTS)).toThrow(/Task Put/);
  });

  it('uses the approvals function default for the approval wait', () => {
    expect(DEFAULT_SAGA_TIMEOUTS.approvalTimeoutSeconds).toBe(DEFAULT_APPROVAL_TIMEOUT_SECONDS);
  });

  it('bounds the action saga: approval + run, each Task over its Lambda, and refuses exactly what exceeds a year', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 60, max: STANDARD_MAX_EXECUTION_SECONDS }),
        fc.integer({ min: 1, max: 900 }),
        fc.integer({ min: 1, max: 900 }),
        fc.integer({ min: 1, max: 50 }),
        (approval, fn, connector, maxSteps) => {
          const config = { approvalTimeoutSeconds: approval, functionTimeoutSeconds: fn, connectorTimeoutSeconds: connector, maxSteps };
          const t = deriveSagaTimeouts(saga, config);
          expect(t.executionSeconds).toBe(approval + t.runSeconds);
          // The steps run in the Express run: its worst case is at least every step once at its
          // connector's timeout (what the cap cuts short, the saga resumes).
          const r = deriveSagaTimeouts(run, config, { express: true });
          expect(r.runSeconds).toBeGreaterThan(maxSteps * (connector + fn));
          expect(r.executionSeconds).toBe(EXPRESS_MAX_EXECUTION_SECONDS);
          for (const [name, seconds] of Object.entries(r.tasks)) {
            expect(seconds, name).toBeGreaterThanOrEqual(Math.min(fn, connector) + TASK_TIMEOUT_MARGIN_SECONDS);
          }
          // The saga waits for whole runs, each at most the Express cap.
          expect(t.tasks.RunAction).toBe(EXPRESS_MAX_EXECUTION_SECONDS + TASK_TIMEOUT_MARGIN_SECONDS);
          expect(t.runSeconds).toBeGreaterThan(t.tasks.RunAction!);
          for (const [name, seconds] of Object.entries(t.tasks)) {
            if (name !== 'RunAction') expect(seconds, name).toBeGreaterThanOrEqual(fn + TASK_TIMEOUT_MARGIN_SECONDS);
            expect(seconds, name).toBeLessThan(t.executionSeconds);
          }
          // A step that cannot fit in one run is refused by name.
          const runProblems = sagaTimeoutProblems(r, config, { express: true });
          expect(runProblems.length > 0).toBe(Math.max(fn, connector) + TASK_TIMEOUT_MARGIN_SECONDS > EXPRESS_TASK_MAX_SECONDS);
          for (const p of runProblems) expect(p).toMatch(/lambda\.connectorTimeoutSeconds/);
          const problems = sagaTimeoutProblems(t, config);
          expect(problems.length > 0).toBe(t.executionSeconds > STANDARD_MAX_EXECUTION_SECONDS);
          for (const p of problems) expect(p).toMatch(/approvalTimeoutSeconds.*lambda\.timeoutSeconds.*lambda\.connectorTimeoutSeconds/);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('grows with every input it depends on', () => {
    const base = deriveSagaTimeouts(run, DEFAULT_SAGA_TIMEOUTS, { express: true });
    for (const key of ['functionTimeoutSeconds', 'connectorTimeoutSeconds', 'maxSteps'] as const) {
      const more = deriveSagaTimeouts(run, { ...DEFAULT_SAGA_TIMEOUTS, [key]: DEFAULT_SAGA_TIMEOUTS[key] + 1 }, { express: true });
      expect(more.runSeconds, key).toBeGreaterThan(base.runSeconds);
    }
  });
});
