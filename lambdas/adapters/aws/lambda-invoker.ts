import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { InvokedFunctionError, InvokeTimeoutError, type FunctionInvoker } from '../../ports/functions';

/** Lambda's own errors, named as Step Functions names them, so callers classify both alike. */
const LAMBDA_ERRORS = new Set(['ServiceException', 'AWSLambdaException', 'SdkClientException', 'TooManyRequestsException']);

/** How much of an error's name and message crosses into our errors (a payload is the callee's text). */
const MAX_NAME = 100;
const MAX_MESSAGE = 300;

/**
 * The client {@link LambdaInvoker} needs (one attempt, see below). Made here, with the adapter,
 * so the composition loads both in one chunk on the first invoke, with only the commands used.
 */
export function lambdaClient(): LambdaClient {
  return new LambdaClient({ maxAttempts: 1 });
}

/**
 * Synchronous invocations of the stack's own functions (InvocationType RequestResponse). The
 * client must be built with `maxAttempts: 1`: an invoke the SDK retries after a dropped
 * connection would run the callee twice behind the caller's back, and the read path already
 * has its fallback (the Standard saga) for an invoke that did not answer.
 */
export class LambdaInvoker implements FunctionInvoker {
  constructor(private readonly options: { client: LambdaClient; defaultTimeoutMs: number }) {}

  async invoke(functionName: string, payload: unknown, options: { timeoutMs?: number } = {}): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? this.options.defaultTimeoutMs;
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    // The race, not only the signal: an answer that never comes must not hold the caller past its bound.
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort();
        reject(new InvokeTimeoutError(functionName, timeoutMs));
      }, timeoutMs);
    });
    let out;
    try {
      const sent = this.options.client.send(
        new InvokeCommand({ FunctionName: functionName, InvocationType: 'RequestResponse', Payload: new TextEncoder().encode(JSON.stringify(payload)) }),
        { abortSignal: abort.signal },
      );
      sent.catch(() => undefined);
      out = await Promise.race([sent, late]);
    } catch (error) {
      if (error instanceof InvokeTimeoutError) throw error;
      const name = error instanceof Error ? error.name : '';
      if (name === 'AbortError') throw new InvokeTimeoutError(functionName, timeoutMs, { cause: error });
      if (LAMBDA_ERRORS.has(name)) throw new InvokedFunctionError(`Lambda.${name}`, error instanceof Error ? error.message.slice(0, MAX_MESSAGE) : '');
      throw error;
    } finally {
      clearTimeout(timer);
    }
    const text = out.Payload ? new TextDecoder().decode(out.Payload) : '';
    if (out.FunctionError) {
      const failure = parseJson(text) as { errorType?: unknown; errorMessage?: unknown } | undefined;
      const type = typeof failure?.errorType === 'string' ? failure.errorType.slice(0, MAX_NAME) : 'Lambda.Unknown';
      // Lambda's own end of a function that ran out of time: the callee's work may be half done.
      if (type === 'Sandbox.Timedout') throw new InvokeTimeoutError(functionName, timeoutMs);
      throw new InvokedFunctionError(type, typeof failure?.errorMessage === 'string' ? failure.errorMessage.slice(0, MAX_MESSAGE) : '');
    }
    return text.length === 0 ? undefined : parseJson(text);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
