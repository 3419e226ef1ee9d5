/**
 * The policy function: re-checks the Cedar decision when the saga runs (EvaluatePolicy).
 * Placeholder so the stack can bundle and deploy it; a later issue fills it in.
 */

/** Thrown by placeholder handlers. The name is the ErrorEquals contract in the ASL. */
export class NotImplementedError extends Error {
  constructor(what: string, options?: { cause?: unknown }) {
    super(`${what} is not implemented yet`, options);
    this.name = 'NotImplementedError';
  }
}

/** Saga input from EvaluatePolicy; untrusted until validated with zod. */
export type PolicyEvent = unknown;

/** Lambda entry point. */
export async function handler(_event: PolicyEvent): Promise<never> {
  throw new NotImplementedError('The policy handler');
}
