import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import type { Context } from 'aws-lambda';
import { boundedErrors } from './bounded-errors';
import { logger, publishMetrics, tracer } from './powertools';

/**
 * A function invoked by Step Functions, EventBridge or Secrets Manager (not API Gateway):
 * Powertools Logger (Lambda context on every line) and Tracer (a segment per invocation;
 * the response is never recorded, since a task result may carry a grant), and errors bounded
 * so their Cause fits the state; the invocation's metrics are published after it. Middleware first, handler last.
 */
export function taskHandler<TEvent, TResult>(handle: (event: TEvent, context: Context) => Promise<TResult>) {
  return middy<TEvent, TResult>()
    .use(injectLambdaContext(logger.powertools, { resetKeys: true }))
    .use(captureLambdaHandler(tracer, { captureResponse: false }))
    .use(publishMetrics())
    .use(boundedErrors())
    .handler(handle);
}
