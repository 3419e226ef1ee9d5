/**
 * The connector function: runs one connector's tools under a verified, single-use grant (CONNECTOR_NAME).
 * Placeholder so the stack can bundle and deploy it; a later issue fills it in.
 */

/** Thrown by placeholder handlers. The name is the ErrorEquals contract in the ASL. */
export class NotImplementedError extends Error {
  constructor(what: string, options?: { cause?: unknown }) {
    super(`${what} is not implemented yet`, options);
    this.name = 'NotImplementedError';
  }
}

/** Saga step input carrying a grant; untrusted until validated with zod. */
export type ConnectorEvent = unknown;

/** Lambda entry point. */
export async function handler(_event: ConnectorEvent): Promise<never> {
  throw new NotImplementedError('The connector handler');
}
