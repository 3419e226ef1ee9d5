import { describe, expect, it } from 'vitest';
import { createLogger } from '../../lambdas/middleware/powertools';
import { LocalSagaRunner, localFunctionArn, type LocalFunction } from '../../local/saga-runner';

/**
 * close() and the task handlers it leaves behind: aborting an execution does not stop a Task
 * handler already running, and one that writes after close() returned would race the next
 * runtime on a database that outlives this one (DynamoDB Local, a real endpoint).
 */

function runnerWith(policy: LocalFunction, closeTimeoutMs?: number) {
  const logged: string[] = [];
  const functions = new Map<string, LocalFunction>([[localFunctionArn('saga'), policy]]);
  const runner = new LocalSagaRunner({
    functions,
    substitutions: {
      SagaFunctionArn: localFunctionArn('saga'),
      ApprovalsFunctionArn: localFunctionArn('approvals'),
      ReceiptsFunctionArn: localFunctionArn('receipts'),
    },
    logger: createLogger({ level: 'error', sink: (line) => logged.push(line) }),
    ...(closeTimeoutMs !== undefined ? { closeTimeoutMs } : {}),
  });
  return { runner, logged };
}

describe('LocalSagaRunner.close', () => {
  it('waits for a task handler that is still running, so nothing writes after it returns', async () => {
    // Prepare: the first Task's handler is slow and "writes" when it ends.
    const writes: string[] = [];
    let release!: () => void;
    const { runner } = runnerWith(async () => {
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      writes.push('ledger write');
      return { next: 'deny', count: 0 };
    });
    await runner.start('act_01J00000000000000000000001', { actionId: 'act_01J00000000000000000000001' });
    await expect.poll(() => runner.inFlightTasks).toBe(1);
    // Act
    const closed = runner.close();
    let returned = false;
    void closed.then(() => (returned = true));
    await Promise.resolve();
    expect(returned).toBe(false);
    release();
    await closed;
    // Assess
    expect(writes).toEqual(['ledger write']);
    expect(runner.inFlightTasks).toBe(0);
    await expect(runner.start('act_01J00000000000000000000002', { actionId: 'act_01J00000000000000000000002' })).rejects.toThrow(/closed/);
  });

  it('gives up on a handler that never ends after closeTimeoutMs, and says so', async () => {
    const { runner, logged } = runnerWith(() => new Promise(() => undefined), 50);
    await runner.start('act_01J00000000000000000000003', { actionId: 'act_01J00000000000000000000003' });
    await expect.poll(() => runner.inFlightTasks).toBe(1);
    await runner.close();
    expect(runner.inFlightTasks).toBe(1);
    expect(logged.map((l) => JSON.parse(l) as { message: string; count: number })).toEqual([
      expect.objectContaining({ message: 'task handlers still running after close', count: 1 }),
    ]);
  });
});
