/**
 * Size limits that keep the saga's state under Step Functions' payload cap. A state input or
 * output over 256 KiB fails the execution with States.DataLimitExceeded, which no Catch on
 * States.ALL sees: no compensation, no receipt, an action stuck in `running`. So nothing that
 * can grow travels in the state:
 *
 * - a step's output is recorded in its step record (the ledger) and the connector function
 *   returns only a summary (`StepSummary`); later `$ref`s, the action view and the receipt
 *   read the output from the ledger;
 * - a step's resolved input travels once (IssueGrant → RunStep) and is capped;
 * - error messages thrown by the saga's functions are capped (they come back as `Cause`);
 * - the approval's answer is dropped from the state (ResultPath null).
 *
 * `worstCaseStateBytes` adds the bounds up; a test checks the sum is under the cap, and the
 * local runner fails an execution whose state ever exceeds it, as Step Functions would.
 */

/** Step Functions' cap on a state's input or output, and on a task's result (256 KiB). */
export const STATE_PAYLOAD_MAX_BYTES = 262_144;

/**
 * Largest output a step may record (UTF-8 bytes of its JSON). As large as a whole request
 * body: an agent reads it into its context, and 20 of them still fit one API response.
 */
export const STEP_OUTPUT_MAX_BYTES = 65_536;

/**
 * Largest resolved input of a step (its arguments after `$ref`s are replaced by earlier
 * outputs). It travels in the state once, from IssueGrant to the connector function.
 */
export const STEP_INPUT_MAX_BYTES = 131_072;

/**
 * Largest `result` kept on the action record (one DynamoDB item, 400 KB, which also holds the
 * envelope). A plan whose outputs add up to more keeps them in the step records only; the
 * action view and the receipt put `result` together from those.
 */
export const ACTION_RESULT_MAX_BYTES = 131_072;

/** Longest error message a saga function throws; Step Functions carries it in `Cause`. */
export const ERROR_MESSAGE_MAX_CHARS = 1_000;
/** Stack frames kept on such an error (the Lambda runtime sends them in `Cause` too), and their length. */
export const ERROR_STACK_MAX_FRAMES = 10;
export const ERROR_FRAME_MAX_CHARS = 300;

/** Largest grant token a connector function accepts (RunStepSchema). */
export const GRANT_TOKEN_MAX_CHARS = 8_192;

/** UTF-8 bytes of a value's JSON text: what DynamoDB stores and Step Functions counts. */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value ?? null) ?? 'null', 'utf8');
}

/** What a connector function returns into the state for a step: never the output itself. */
export interface StepSummary {
  stepId: string;
  kind: 'forward' | 'compensate';
  /** Size of the recorded output (UTF-8 bytes of its JSON). */
  outputBytes: number;
}

/** A tool's output is larger than a step may record. Not retryable: the saga compensates. */
export class StepOutputTooLargeError extends Error {
  readonly retryable = false;
  constructor(
    readonly tool: string,
    readonly bytes: number,
    options?: { cause?: unknown; committed?: boolean },
  ) {
    super(
      `${tool} returned ${bytes} bytes of output, more than the ${STEP_OUTPUT_MAX_BYTES} a step may record; narrow the request (fewer results, a smaller page)` +
        (options?.committed ? '. The vendor reported success: its side effect is not undone automatically' : ''),
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'StepOutputTooLargeError';
  }
}

/** A step's input, once its `$ref`s are resolved, is larger than a step may carry. Not retryable. */
export class StepInputTooLargeError extends Error {
  readonly retryable = false;
  constructor(stepId: string, tool: string, bytes: number) {
    super(
      `Step ${stepId} (${tool}) has ${bytes} bytes of input once its $refs are resolved, more than the ${STEP_INPUT_MAX_BYTES} a step may carry; refer to fields of earlier outputs, not whole outputs`,
    );
    this.name = 'StepInputTooLargeError';
  }
}

/**
 * Caps an error's message and stack in place, keeping its name (the ASL's ErrorEquals
 * contract) and its cause. Step Functions copies both into the state as `Cause`.
 */
export function boundError(error: Error): Error {
  const header = (message: string) => (message ? `${error.name}: ${message}` : error.name);
  const frames = (error.stack ?? '')
    .split('\n')
    .filter((line) => /^\s+at /.test(line))
    .slice(0, ERROR_STACK_MAX_FRAMES)
    .map((line) => line.slice(0, ERROR_FRAME_MAX_CHARS));
  if (error.message.length > ERROR_MESSAGE_MAX_CHARS) error.message = `${error.message.slice(0, ERROR_MESSAGE_MAX_CHARS - 1)}…`;
  error.stack = [header(error.message), ...frames].join('\n');
  return error;
}

/**
 * The largest the saga's state can get, in bytes, part by part, from the limits above. JSON
 * escapes a character into at most 6 bytes (`\u0001`); a Lambda error's `Cause` is itself JSON
 * text, escaped again inside the state, which costs at most 7 bytes per original character.
 */
export function worstCaseStateBytes(options: { maxSteps: number; maxIdChars: number; maxToolChars: number }) {
  const once = 6;
  const twice = 7;
  // Error (a name of ≤ 256 characters) and Cause: {"errorType","errorMessage","trace":[…]},
  // the message twice (errorMessage and the stack's first line), plus the kept frames.
  const error = 256 * once + (2 * ERROR_MESSAGE_MAX_CHARS + ERROR_STACK_MAX_FRAMES * ERROR_FRAME_MAX_CHARS) * twice + 1_024;
  // final.reason (FinishCompensation): the status reason plus every stuck step and its tool.
  const reason = (300 + options.maxSteps * (options.maxIdChars + options.maxToolChars + 4)) * once;
  // actionId, policy {next,count}, run/undo {index,count}, compensation, receipt {key,status}, keys.
  const fixed = 4_096;
  const topLevel = fixed + reason + error;
  // Inside ExecuteStep / CompensateStep: the grant's payload (input, token, ids), then the step
  // summary or the error of the call.
  const grant = STEP_INPUT_MAX_BYTES + GRANT_TOKEN_MAX_CHARS + 4_096;
  const branch = fixed + grant + Math.max(1_024, error);
  return { error, reason, topLevel, grant, branch, total: Math.max(topLevel, branch) };
}
