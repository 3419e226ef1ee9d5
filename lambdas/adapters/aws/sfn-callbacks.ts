import { SendTaskFailureCommand, SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
import { TaskTokenInvalidError, type TaskCallbacks } from '../../ports/task-callbacks';

/**
 * Answers `.waitForTaskToken` states with Step Functions SendTaskSuccess / SendTaskFailure.
 * The token is the capability: it goes to Step Functions and nowhere else (no logging here,
 * and errors carry the SDK error as `cause`, whose message never includes the token).
 */

/** SendTaskFailure limits `error` to 256 characters and `cause` to 32,768. */
const MAX_ERROR_CHARS = 256;
const MAX_CAUSE_CHARS = 32_768;

/** SDK error names that mean "nobody is waiting on this token any more". */
const TOKEN_ERRORS: Readonly<Record<string, TaskTokenInvalidError['reason']>> = {
  InvalidToken: 'invalid',
  TaskTimedOut: 'timed_out',
  TaskDoesNotExist: 'gone',
};

function translate(error: unknown): unknown {
  if (error instanceof Error) {
    const reason = TOKEN_ERRORS[error.name];
    if (reason) return new TaskTokenInvalidError(reason, { cause: error });
  }
  return error;
}

export interface StepFunctionsCallbacksOptions {
  client?: SFNClient;
}

/** The AWS implementation of {@link TaskCallbacks}. */
export class StepFunctionsCallbacks implements TaskCallbacks {
  private readonly client: SFNClient;

  constructor(options: StepFunctionsCallbacksOptions = {}) {
    this.client = options.client ?? new SFNClient({});
  }

  async sendTaskSuccess(taskToken: string, output: unknown): Promise<void> {
    try {
      await this.client.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(output ?? {}) }));
    } catch (error) {
      throw translate(error);
    }
  }

  async sendTaskFailure(taskToken: string, error: string, cause: string): Promise<void> {
    try {
      await this.client.send(
        new SendTaskFailureCommand({ taskToken, error: error.slice(0, MAX_ERROR_CHARS), cause: cause.slice(0, MAX_CAUSE_CHARS) }),
      );
    } catch (err) {
      throw translate(err);
    }
  }
}
