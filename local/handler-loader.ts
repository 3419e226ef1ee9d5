import type { Context } from 'aws-lambda';
import type { HttpEvent } from '../lambdas/middleware/http';

/** A Lambda handler as the local runtime invokes it (middy handlers fit). */
export type LambdaHandler = (event: HttpEvent, context: Context) => Promise<unknown>;

/** Resolves a route's `fn` to its handler; replaceable through LocalRuntimeOptions.loadHandler. */
export type HandlerLoader = (fn: string) => Promise<LambdaHandler>;

/** The route table named a function that nothing provides. */
export class HandlerLoadError extends Error {
  constructor(fn: string, detail: string, options?: { cause?: unknown }) {
    super(`Cannot load handler for function ${fn}: ${detail}`, options);
    this.name = 'HandlerLoadError';
  }
}

/** Caches successful loads per function; failures are retried on the next request. */
export function cachingLoader(load: HandlerLoader): HandlerLoader {
  const cache = new Map<string, Promise<LambdaHandler>>();
  return (fn) => {
    let pending = cache.get(fn);
    if (!pending) {
      pending = load(fn);
      cache.set(fn, pending);
      pending.catch(() => cache.delete(fn));
    }
    return pending;
  };
}
