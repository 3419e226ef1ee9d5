import type middy from '@middy/core';
import { boundError } from '../saga/limits';

/**
 * Caps the message and stack of whatever a saga function throws. Step Functions puts them in
 * the state as `Cause` (ResultPath `$.error`), and a state over 256 KiB fails the execution
 * beyond any Catch. The error keeps its name, which the ASL's ErrorEquals match on.
 */
export function boundedErrors(): middy.MiddlewareObj {
  return {
    onError: (request) => {
      if (request.error instanceof Error) boundError(request.error);
    },
  };
}
