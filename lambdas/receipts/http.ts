import { notFound, type ProblemError } from '../shared/problem';
import { ReceiptNotFoundError } from './read';

/** Which problem document each of the receipts' errors is; undefined for anything else. */
export function receiptsProblem(error: unknown): ProblemError | undefined {
  if (error instanceof ReceiptNotFoundError) return notFound(error.message);
  return undefined;
}
