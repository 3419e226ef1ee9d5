/**
 * Calling another function of the stack and waiting for its answer (Lambda's RequestResponse
 * invoke; locally, the runtime's handler of that name). The read fast path uses it: intake
 * calls the saga function's RunRead, which calls a connector function and the receipts
 * function, the same functions the saga's Task states call.
 */
export interface FunctionInvoker {
  /**
   * Resolves with the function's answer; rejects with an error named as the function named it
   * (a thrown `VendorUnavailableError` arrives as one), or {@link InvokeTimeoutError} when no
   * answer came within `timeoutMs`: the function may still be running and finish its work.
   */
  invoke(functionName: string, payload: unknown, options?: { timeoutMs?: number }): Promise<unknown>;
}

/**
 * No answer in time. The callee was not stopped (a Lambda invocation runs to its own end), so
 * whatever it does may still happen: callers treat the outcome as unknown, never as failed.
 */
export class InvokeTimeoutError extends Error {
  constructor(functionName: string, timeoutMs: number, options?: { cause?: unknown }) {
    super(`${functionName} did not answer within ${timeoutMs} ms`, options);
    this.name = 'InvokeTimeoutError';
  }
}

/** A function answered with an error: its name is the one the function threw. */
export class InvokedFunctionError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}
