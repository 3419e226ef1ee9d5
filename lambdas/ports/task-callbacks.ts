/**
 * Answering a `.waitForTaskToken` state: Step Functions SendTaskSuccess / SendTaskFailure in
 * AWS, the local runner's callback registry locally. The approvals function is the only
 * caller; task tokens never leave the ledger through any API.
 */
export interface TaskCallbacks {
  sendTaskSuccess(taskToken: string, output: unknown): Promise<void>;
  sendTaskFailure(taskToken: string, error: string, cause: string): Promise<void>;
}

/** The token is unknown, already answered, or its task timed out (InvalidToken / TaskTimedOut / TaskDoesNotExist). */
export class TaskTokenInvalidError extends Error {
  readonly reason: 'invalid' | 'timed_out' | 'gone';
  constructor(reason: 'invalid' | 'timed_out' | 'gone', options?: { cause?: unknown }) {
    super(`The task token is ${reason === 'timed_out' ? 'timed out' : reason === 'gone' ? 'no longer waiting' : 'invalid'}`, options);
    this.name = 'TaskTokenInvalidError';
    this.reason = reason;
  }
}
