import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../lambdas/middleware/powertools';
import { STATE_PAYLOAD_MAX_BYTES } from '../../lambdas/saga/limits';
import { DEFAULT_SAGA_TIMEOUTS, EXPRESS_MAX_EXECUTION_SECONDS, SagaTimeoutError } from '../../lambdas/saga/timeouts';
import { LOCAL_RUN_ARN, LOCAL_SAGA_ARN, LocalSagaRunner, localFunctionArn, MAX_TIMER_SECONDS, type LocalFunction } from '../../local/saga-runner';
import { ACTION_RUN_ASL, renderAsl } from '../../lib/constructs/saga';

const dir = mkdtempSync(join(tmpdir(), 'airlock-runner-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const logs: string[] = [];
const logger = createLogger({ level: 'debug', sink: (line) => logs.push(line) });
const substitutions = {
  SagaFunctionArn: localFunctionArn('saga'),
  ApprovalsFunctionArn: localFunctionArn('approvals'),
  ReceiptsFunctionArn: localFunctionArn('receipts'),
};

const retry = [{ ErrorEquals: ['Lambda.ServiceException'], MaxAttempts: 2, IntervalSeconds: 1 }];
const catchAll = [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Caught' }];
const blobTask = (field: string, next: string) => ({
  Type: 'Task',
  Resource: 'arn:aws:states:::lambda:invoke',
  Parameters: { FunctionName: '${SagaFunctionArn}', Payload: { 'size.$': `$.${field}` } },
  ResultSelector: { 'blob.$': '$.Payload.blob' },
  ResultPath: `$.${field}Result`,
  Retry: retry,
  Catch: catchAll,
  Next: next,
});
const recordTask = (task: string) => ({
  Type: 'Task',
  Resource: 'arn:aws:states:::lambda:invoke',
  Parameters: { FunctionName: '${ReceiptsFunctionArn}', Payload: { task } },
  ResultPath: null,
  Retry: [{ ErrorEquals: ['States.ALL'], MaxAttempts: 2, IntervalSeconds: 1 }],
  End: true,
});

/** First and Second return a blob of the asked size into the state; Third runs only if nothing was too large. */
const definitionPath = join(dir, 'blobs.asl.json');
writeFileSync(
  definitionPath,
  JSON.stringify({
    StartAt: 'First',
    States: { First: blobTask('first', 'Second'), Second: blobTask('second', 'Third'), Third: recordTask('third'), Caught: recordTask('caught') },
  }),
);

function blobRunner() {
  const ran: string[] = [];
  const functions = new Map<string, LocalFunction>([
    [localFunctionArn('saga'), async (event) => ({ blob: 'x'.repeat((event as { size: number }).size) })],
    [localFunctionArn('receipts'), async (event) => void ran.push((event as { task: string }).task)],
  ]);
  const runner = new LocalSagaRunner({ functions, substitutions, logger, definitionPath, retryIntervalMs: 1 });
  return { runner, ran };
}

async function runBlobs(first: number, second: number) {
  const { runner, ran } = blobRunner();
  const id = `act_${first}_${second}`;
  await runner.start(id, { actionId: id, first, second } as never);
  await runner.idle();
  await runner.close();
  return { report: runner.reportOf(id)!, ran };
}

describe('local saga runner: the 256 KiB state cap, as on Step Functions', () => {
  it('runs to the end when every payload fits, and reports the largest', async () => {
    const { report, ran } = await runBlobs(1_000, 2_000);
    expect(report.failure).toBeUndefined();
    expect(ran).toEqual(['third']);
    expect(report.largestPayload.bytes).toBeGreaterThan(3_000);
    expect(report.largestPayload.bytes).toBeLessThan(4_000);
  });

  it('stops at a task result over the cap: no Catch runs, nothing after it runs', async () => {
    const { report, ran } = await runBlobs(STATE_PAYLOAD_MAX_BYTES + 10, 1);
    expect(report.failure).toMatchObject({ error: 'States.DataLimitExceeded', state: 'First' });
    expect(report.failure?.cause).toMatch(/task result of state First/);
    expect(ran).toEqual([]);
  });

  it('stops at a state output over the cap even when each task result fits', async () => {
    const half = Math.ceil(STATE_PAYLOAD_MAX_BYTES / 2) + 100;
    const { report, ran } = await runBlobs(half, half);
    expect(report.failure).toMatchObject({ error: 'States.DataLimitExceeded', state: 'Second' });
    expect(report.failure?.cause).toMatch(/output of state Second/);
    expect(ran).toEqual([]);
    expect(logs.some((l) => l.includes('States.DataLimitExceeded'))).toBe(true);
  });
});

describe('local saga runner: the same TimeoutSeconds as the stack', () => {
  const runnerWith = (timeouts: Partial<typeof DEFAULT_SAGA_TIMEOUTS>) =>
    new LocalSagaRunner({ functions: new Map(), substitutions, logger, timeouts });

  it('derives exactly what the stack deploys for the same config', () => {
    for (const config of [DEFAULT_SAGA_TIMEOUTS, { ...DEFAULT_SAGA_TIMEOUTS, approvalTimeoutSeconds: 90, functionTimeoutSeconds: 7, connectorTimeoutSeconds: 45 }]) {
      const local = runnerWith(config);
      // Only the ARNs differ: the stack's come from definitionSubstitutions.
      const localText = (deployed: Record<string, unknown>) => {
        let text = JSON.stringify(deployed);
        for (const [name, arn] of Object.entries({ ...substitutions, SagaWorkflowArn: LOCAL_SAGA_ARN, RunWorkflowArn: LOCAL_RUN_ARN })) text = text.replaceAll(`\${${name}}`, arn);
        return JSON.parse(text) as unknown;
      };
      expect(local.definition).toEqual(localText(JSON.parse(renderAsl(config).text) as Record<string, unknown>));
      expect(local.definition.TimeoutSeconds).toBe(local.timeouts.executionSeconds);
      // The Express run too, its execution capped at what Express allows.
      expect(local.runDefinition).toEqual(localText(JSON.parse(renderAsl(config, ACTION_RUN_ASL).text) as Record<string, unknown>));
      expect(local.runDefinition?.TimeoutSeconds).toBe(EXPRESS_MAX_EXECUTION_SECONDS);
      expect(local.runTimeouts?.executionSeconds).toBe(EXPRESS_MAX_EXECUTION_SECONDS);
    }
  });

  it('refuses an approval wait a Node.js timer cannot hold, and one no Standard workflow can', () => {
    expect(() => runnerWith({ approvalTimeoutSeconds: MAX_TIMER_SECONDS + 1 })).toThrow(SagaTimeoutError);
    expect(() => runnerWith({ approvalTimeoutSeconds: MAX_TIMER_SECONDS + 1 })).toThrow(/Node\.js timer.*approvalTimeoutSeconds/);
    expect(() => runnerWith({ approvalTimeoutSeconds: 31_536_000 })).toThrow(/approvalTimeoutSeconds.*one year/);
    // The wait also covers the approvals function's own Task time (10 + 10 s by default).
    expect(() => runnerWith({ approvalTimeoutSeconds: MAX_TIMER_SECONDS - 20 })).not.toThrow();
    expect(() => runnerWith({ approvalTimeoutSeconds: MAX_TIMER_SECONDS - 19 })).toThrow(/Node\.js timer/);
  });
});

describe('local saga runner: the approval wait outlasts the stored expiry as the deployed Task does', () => {
  // Found by the chaos storm under load: the local wait gave up at the approval's expiresAt
  // exactly, so a quorum vote accepted a moment before it settled the approval as granted and
  // then found the saga gone: the action ended expired with a granted approval in its receipt.
  // The deployed Task waits the approvals function's time longer (timeouts.ts); so does this one.
  const waitPath = join(dir, 'wait.asl.json');
  writeFileSync(
    waitPath,
    JSON.stringify({
      StartAt: 'WaitForApproval',
      States: {
        WaitForApproval: {
          Type: 'Task',
          Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
          Parameters: { FunctionName: '${ApprovalsFunctionArn}', Payload: { 'taskToken.$': '$$.Task.Token' } },
          ResultPath: '$.approval',
          Catch: catchAll,
          Next: 'Approved',
        },
        Approved: recordTask('approved'),
        Caught: recordTask('caught'),
      },
    }),
  );

  it('a vote that answers after expiresAt but within the function time still reaches the saga', async () => {
    let token: string | undefined;
    const expiresAt = Date.now() + 50;
    const ran: string[] = [];
    const functions = new Map<string, LocalFunction>([
      [
        localFunctionArn('approvals'),
        async (event) => {
          token = (event as { taskToken: string }).taskToken;
          return { approvalId: 'apr_1', status: 'pending', expiresAt: new Date(expiresAt).toISOString() };
        },
      ],
      [localFunctionArn('receipts'), async (event) => void ran.push((event as { task: string }).task)],
    ]);
    const runner = new LocalSagaRunner({ functions, substitutions, logger, definitionPath: waitPath, retryIntervalMs: 1, timeouts: { approvalTimeoutSeconds: 1, functionTimeoutSeconds: 30 } });
    await runner.start('act_wait', { actionId: 'act_wait' } as never);
    // The quorum's answer comes once the expiry has passed (as a vote accepted just before it would).
    await expect.poll(() => token !== undefined && Date.now() > expiresAt + 200, { timeout: 10_000, interval: 20 }).toBe(true);
    await runner.sendTaskSuccess(token!, { approvalId: 'apr_1' });
    await runner.idle();
    await runner.close();
    expect(ran).toEqual(['approved']);
  });
});

describe('local saga runner: a timed-out approval wait asks the ledger once more, as the deployed Task does', () => {
  // The wait's timer is not the judge: a quorum the approvals function accepted before the
  // expiry but whose answer never reached the saga (its function died after the deciding write,
  // or answered after the timeout) must still run, and the receipt and the outcome must agree.
  // The shipped WaitForApproval retries States.Timeout once; RequestApproval then answers at
  // once from the ledger. The retrier is read from the shipped ASL, not copied.
  const shipped = JSON.parse(readFileSync(join(__dirname, '../../statemachines/action-saga.asl.json'), 'utf8')) as {
    States: { WaitForApproval: { Retry: { ErrorEquals: string[] }[] } };
  };
  const retryPath = join(dir, 'wait-retry.asl.json');
  writeFileSync(
    retryPath,
    JSON.stringify({
      StartAt: 'WaitForApproval',
      States: {
        WaitForApproval: {
          Type: 'Task',
          Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
          Parameters: { FunctionName: '${ApprovalsFunctionArn}', Payload: { 'taskToken.$': '$$.Task.Token' } },
          ResultPath: '$.approval',
          Retry: shipped.States.WaitForApproval.Retry,
          Catch: catchAll,
          Next: 'Approved',
        },
        Approved: recordTask('approved'),
        Caught: recordTask('caught'),
      },
    }),
  );

  it('retries States.Timeout once', () => {
    expect(shipped.States.WaitForApproval.Retry).toEqual(expect.arrayContaining([expect.objectContaining({ ErrorEquals: ['States.Timeout'], MaxAttempts: 1 })]));
  });

  it('a quorum whose answer was lost: the retried RequestApproval answers from the ledger and the action runs', async () => {
    const tokens: string[] = [];
    const expiresAt = Date.now() + 50;
    const ran: string[] = [];
    let runner!: LocalSagaRunner;
    const functions = new Map<string, LocalFunction>([
      [
        localFunctionArn('approvals'),
        async (event) => {
          const token = (event as { taskToken: string }).taskToken;
          tokens.push(token);
          // The second request finds the approval decided in the ledger and answers at once.
          if (tokens.length === 2) await runner.sendTaskSuccess(token, { approvalId: 'apr_1' });
          return { approvalId: 'apr_1', status: tokens.length === 2 ? 'approved' : 'pending', expiresAt: new Date(expiresAt).toISOString() };
        },
      ],
      [localFunctionArn('receipts'), async (event) => void ran.push((event as { task: string }).task)],
    ]);
    runner = new LocalSagaRunner({ functions, substitutions, logger, definitionPath: retryPath, retryIntervalMs: 1, timeouts: { approvalTimeoutSeconds: 1, functionTimeoutSeconds: 1 } });
    await runner.start('act_retry', { actionId: 'act_retry' } as never);
    await expect.poll(() => ran.length, { timeout: 15_000, interval: 20 }).toBe(1);
    await runner.idle();
    await runner.close();
    expect(ran).toEqual(['approved']);
    expect(tokens).toHaveLength(2);
  });

  it('an approval nobody decided: the retried RequestApproval answers ApprovalExpired and the action ends caught, once', async () => {
    let calls = 0;
    const expiresAt = Date.now() + 50;
    const ran: string[] = [];
    let runner!: LocalSagaRunner;
    const functions = new Map<string, LocalFunction>([
      [
        localFunctionArn('approvals'),
        async (event) => {
          calls++;
          if (calls === 2) await runner.sendTaskFailure((event as { taskToken: string }).taskToken, 'ApprovalExpired', 'no quorum');
          return { approvalId: 'apr_2', status: calls === 2 ? 'expired' : 'pending', expiresAt: new Date(expiresAt).toISOString() };
        },
      ],
      [localFunctionArn('receipts'), async (event) => void ran.push((event as { task: string }).task)],
    ]);
    runner = new LocalSagaRunner({ functions, substitutions, logger, definitionPath: retryPath, retryIntervalMs: 1, timeouts: { approvalTimeoutSeconds: 1, functionTimeoutSeconds: 1 } });
    await runner.start('act_expired', { actionId: 'act_expired' } as never);
    await expect.poll(() => ran.length, { timeout: 15_000, interval: 20 }).toBe(1);
    await runner.idle();
    await runner.close();
    expect(ran).toEqual(['caught']);
    expect(calls).toBe(2);
  });
});
