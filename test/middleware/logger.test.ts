import { describe, expect, it } from 'vitest';
import { createLogger } from '../../lambdas/middleware/powertools';

/** Lines a logger at `level` writes, parsed. */
function capture(level: 'debug' | 'info' | 'warn' = 'debug') {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level, sink: (line) => lines.push(JSON.parse(line) as Record<string, unknown>), base: { app: 'airlock' } });
  return { logger, lines };
}

describe('child loggers', () => {
  it('write the parent’s lines with their fields; a line’s own fields win; children of children merge', () => {
    const { logger, lines } = capture();
    const child = logger.child({ requestId: 'r1', route: 'POST /v1/actions' });
    child.info('first', { route: 'overridden', n: 1 });
    child.child({ actionId: 'act_1', requestId: 'r2' }).warn('second');
    expect(lines[0]).toMatchObject({ level: 'info', message: 'first', app: 'airlock', requestId: 'r1', route: 'overridden', n: 1 });
    expect(lines[1]).toMatchObject({ level: 'warn', message: 'second', app: 'airlock', requestId: 'r2', route: 'POST /v1/actions', actionId: 'act_1' });
    // The child's fields never leak onto the parent's lines.
    logger.error('third');
    expect(lines[2]).toMatchObject({ level: 'error', message: 'third' });
    expect(lines[2]).not.toHaveProperty('requestId');
  });

  it('keep the parent’s level and mask secrets in their own fields as in the line’s', () => {
    const { logger, lines } = capture('warn');
    const child = logger.child({ authorization: 'Bearer abc.def.ghi', tool: 'echo.say' });
    child.debug('dropped');
    child.info('dropped too');
    child.warn('kept', { password: 'hunter2' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ message: 'kept', tool: 'echo.say', authorization: '[redacted]', password: '[redacted]' });
    expect(JSON.stringify(lines)).not.toMatch(/abc\.def|hunter2/);
  });
});

describe('child loggers and the Lambda context', () => {
  it('keep the function and request they were made in, though the process logger moves on to another invocation', () => {
    // Locally every function shares one process logger; each invocation sets its context on it.
    const { logger, lines } = capture();
    const context = (functionName: string, awsRequestId: string) =>
      ({ functionName, awsRequestId, invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`, memoryLimitInMB: '256', functionVersion: '$LATEST', callbackWaitsForEmptyEventLoop: false, getRemainingTimeInMillis: () => 1000, done: () => undefined, fail: () => undefined, succeed: () => undefined, logGroupName: 'g', logStreamName: 's' }) as never;
    logger.powertools.addContext(context('airlock-intake', 'req-intake'));
    const intakeChild = logger.child({ route: 'POST /v1/actions' });
    logger.powertools.addContext(context('airlock-saga', 'req-saga'));
    intakeChild.info('handed off');
    expect(lines[0]).toMatchObject({ function_name: 'airlock-intake', function_request_id: 'req-intake', route: 'POST /v1/actions' });
    // A child made before any invocation (a local service's) names none, whatever runs when it writes.
    const early = capture();
    const serviceLog = early.logger.child({ localService: 'control-plane' });
    early.logger.powertools.addContext(context('airlock-saga', 'req-saga'));
    serviceLog.child({ actionId: 'act_1' }).info('settled');
    early.logger.info('root');
    expect(early.lines[0]).toMatchObject({ localService: 'control-plane', actionId: 'act_1' });
    expect(early.lines[0]).not.toHaveProperty('function_name');
    expect(JSON.stringify(early.lines[0])).not.toContain('ChildContext');
    expect(early.lines[1]).toMatchObject({ function_name: 'airlock-saga' });
  });
});
