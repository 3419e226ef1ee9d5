import type { Context } from 'aws-lambda';
import type { HttpEvent } from '../lambdas/middleware/http';

/** A Lambda handler as the local runtime invokes it (middy handlers fit). */
export type LambdaHandler = (event: HttpEvent, context: Context) => Promise<unknown>;

/** Resolves a route's `fn` to its handler; replaceable through LocalRuntimeOptions.loadHandler. */
export type HandlerLoader = (fn: string) => Promise<LambdaHandler>;

/** The route table named a function whose module cannot be loaded or exports no handler. */
export class HandlerLoadError extends Error {
  constructor(fn: string, detail: string, options?: { cause?: unknown }) {
    super(`Cannot load handler for function ${fn}: ${detail}`, options);
    this.name = 'HandlerLoadError';
  }
}

const FN_NAME = /^[a-z][a-z0-9-]{0,62}$/;

/**
 * Loads `lambdas/handlers/<fn>.ts` and returns its `handler` export: the same module the
 * stack bundles for that function. Imported on first use, so a route whose module does not
 * exist yet only fails when it is called.
 */
export const loadHandlerModule: HandlerLoader = async (fn) => {
  // The name reaches a module specifier: keep it to a plain file name.
  if (!FN_NAME.test(fn)) throw new HandlerLoadError(fn, 'invalid function name');
  let mod: unknown;
  try {
    mod = await import(/* @vite-ignore */ `../lambdas/${fn}/handler`);
  } catch (cause) {
    throw new HandlerLoadError(fn, 'module failed to load', { cause });
  }
  const handler = mod !== null && typeof mod === 'object' && 'handler' in mod ? mod.handler : undefined;
  if (typeof handler !== 'function') throw new HandlerLoadError(fn, 'module has no handler export');
  return handler as LambdaHandler;
};

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
