/**
 * The receipts function: writes receipts and digests to the audit vault (WriteReceipt) and serves them.
 * Placeholder so the stack can bundle and deploy it; a later issue fills it in.
 */

/** Thrown by placeholder handlers. The name is the ErrorEquals contract in the ASL. */
export class NotImplementedError extends Error {
  constructor(what: string, options?: { cause?: unknown }) {
    super(`${what} is not implemented yet`, options);
    this.name = 'NotImplementedError';
  }
}

/** Saga input from WriteReceipt, or an API Gateway v2 event; untrusted until validated with zod. */
export type ReceiptsEvent = unknown;

/** Lambda entry point. */
export async function handler(_event: ReceiptsEvent): Promise<never> {
  throw new NotImplementedError('The receipts handler');
}
