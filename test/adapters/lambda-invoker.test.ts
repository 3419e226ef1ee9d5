import { InvokeCommand, LambdaClient, ServiceException, TooManyRequestsException } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { LambdaInvoker } from '../../lambdas/adapters/aws/lambda-invoker';
import { InvokeTimeoutError } from '../../lambdas/ports/functions';
import { readPathThrough, RUN_READ_TASK } from '../../lambdas/saga/read-path';

const lambda = mockClient(LambdaClient);
afterEach(() => lambda.reset());

const FN = 'arn:aws:lambda:us-east-1:123456789012:function:airlock-saga';
const invoker = (defaultTimeoutMs = 1_000) => new LambdaInvoker({ client: new LambdaClient({ region: 'us-east-1' }), defaultTimeoutMs });
const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)) as never;
const meta = { $metadata: {} };

describe('LambdaInvoker', () => {
  it('invokes RequestResponse with the JSON payload and returns the parsed answer', async () => {
    // Prepare
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: bytes({ status: 'completed' }) });
    // Act
    const answer = await invoker().invoke(FN, { task: 'RunRead', actionId: 'act_1' });
    // Assess
    expect(answer).toEqual({ status: 'completed' });
    const calls = lambda.commandCalls(InvokeCommand);
    expect(calls).toHaveLength(1);
    const input = calls[0]!.args[0].input;
    expect(input.FunctionName).toBe(FN);
    expect(input.InvocationType).toBe('RequestResponse');
    expect(JSON.parse(new TextDecoder().decode(input.Payload as Uint8Array))).toEqual({ task: 'RunRead', actionId: 'act_1' });
  });

  it("rethrows a function's error under the name it threw, its message bounded", async () => {
    lambda.on(InvokeCommand).resolves({
      StatusCode: 200,
      FunctionError: 'Unhandled',
      Payload: bytes({ errorType: 'VendorUnavailableError', errorMessage: 'x'.repeat(5_000), trace: ['secret stack'] }),
    });
    const error: Error = await invoker().invoke(FN, {}).then(() => new Error('no error'), (e: unknown) => e as Error);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('VendorUnavailableError');
    expect(error.message.length).toBeLessThanOrEqual(300);
    expect(error.message).not.toContain('secret stack');
  });

  it('reports a function Lambda timed out as a timeout (its work may be half done), not a failure', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, FunctionError: 'Unhandled', Payload: bytes({ errorType: 'Sandbox.Timedout', errorMessage: 'Task timed out' }) });
    await expect(invoker().invoke(FN, {})).rejects.toBeInstanceOf(InvokeTimeoutError);
  });

  it('names an unreadable error payload Lambda.Unknown', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, FunctionError: 'Unhandled', Payload: new TextEncoder().encode('not json') as never });
    await expect(invoker().invoke(FN, {})).rejects.toMatchObject({ name: 'Lambda.Unknown' });
  });

  it("names Lambda's own errors as Step Functions does (Lambda.TooManyRequestsException, Lambda.ServiceException)", async () => {
    lambda.on(InvokeCommand).rejectsOnce(new TooManyRequestsException({ message: 'Rate exceeded', $metadata: {} })).rejectsOnce(new ServiceException({ message: 'boom', $metadata: {} }));
    await expect(invoker().invoke(FN, {})).rejects.toMatchObject({ name: 'Lambda.TooManyRequestsException' });
    await expect(invoker().invoke(FN, {})).rejects.toMatchObject({ name: 'Lambda.ServiceException' });
  });

  it('stops waiting after the timeout with InvokeTimeoutError, and aborts the request', async () => {
    let signal: AbortSignal | undefined;
    lambda.on(InvokeCommand).callsFake(() => new Promise(() => undefined));
    const client = new LambdaClient({ region: 'us-east-1' });
    const send = client.send.bind(client);
    client.send = ((command: never, options?: { abortSignal?: AbortSignal }) => {
      signal = options?.abortSignal;
      return send(command, options as never);
    }) as never;
    const error = await new LambdaInvoker({ client, defaultTimeoutMs: 5_000 })
      .invoke(FN, {}, { timeoutMs: 20 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvokeTimeoutError);
    expect(signal?.aborted).toBe(true);
  });
});

describe("intake's read path over Lambda", () => {
  it("invokes the saga function's RunRead with only the action id, bounded by the caller's wait", async () => {
    lambda.on(InvokeCommand).resolves({ ...meta, StatusCode: 200, Payload: bytes({ status: 'completed' }) });
    await readPathThrough(invoker(), FN, 1_000).run('act_01ABC', { timeoutMs: 500 });
    const input = lambda.commandCalls(InvokeCommand)[0]!.args[0].input;
    expect(input.FunctionName).toBe(FN);
    expect(JSON.parse(new TextDecoder().decode(input.Payload as Uint8Array))).toEqual({ task: RUN_READ_TASK, actionId: 'act_01ABC' });
  });

  it('rejects when RunRead handed off, so intake starts the Standard saga', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, FunctionError: 'Unhandled', Payload: bytes({ errorType: 'ReadPathHandOffError', errorMessage: 'the step failed' }) });
    await expect(readPathThrough(invoker(), FN, 1_000).run('act_01ABC')).rejects.toMatchObject({ name: 'ReadPathHandOffError' });
  });
});
