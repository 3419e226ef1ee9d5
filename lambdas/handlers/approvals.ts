/**
 * The approvals function: records approval votes and answers WaitForApproval with SendTaskSuccess / SendTaskFailure.
 * Placeholder so the stack can bundle and deploy it; a later issue fills it in.
 */

/** Thrown by placeholder handlers. The name is the ErrorEquals contract in the ASL. */
export class NotImplementedError extends Error {
  constructor(what: string, options?: { cause?: unknown }) {
    super(`${what} is not implemented yet`, options);
    this.name = 'NotImplementedError';
  }
}

/** API Gateway v2 event, or the WaitForApproval payload with the task token; untrusted until validated with zod. */
export type ApprovalsEvent = unknown;

/** Lambda entry point. */
export async function handler(_event: ApprovalsEvent): Promise<never> {
  throw new NotImplementedError('The approvals handler');
}
