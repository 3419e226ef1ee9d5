import { z } from 'zod';
import { ActionIdSchema } from '../shared/ids';
import { writeDigest, writeReceipt } from './vault';
import { receiptsDeps } from '../composition/aws';
import type { Lazy, ReceiptsFunctionDeps } from '../composition/deps';
import { annotate, tracer } from '../middleware/powertools';
import { taskHandler } from '../middleware/task';

/**
 * The receipts function: WriteReceipt (the last task of every saga path) and WriteDigest
 * (hourly from EventBridge; on demand locally). Errors are thrown by name; the ASL retries
 * WriteReceipt and ends in ReceiptFailed if it keeps failing.
 */

const ActionId = ActionIdSchema;

export const ReceiptsTaskSchema = z.discriminatedUnion('task', [
  z.object({ task: z.literal('WriteReceipt'), actionId: ActionId }).strict(),
  z.object({ task: z.literal('WriteDigest') }).strict(),
]);
export type ReceiptsTask = z.infer<typeof ReceiptsTaskSchema>;

/** Saga input from WriteReceipt or the digest schedule; untrusted until validated with zod. */
export type ReceiptsEvent = unknown;

/** A task payload that does not match the contract: a bug in the ASL or the schedule, never retried. */
export class ReceiptsTaskInvalidError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ReceiptsTaskInvalidError';
  }
}

/** Runs one receipts task. */
async function run(runtime: ReceiptsFunctionDeps, event: ReceiptsEvent): Promise<unknown> {
  const parsed = ReceiptsTaskSchema.safeParse(event);
  if (!parsed.success) throw new ReceiptsTaskInvalidError(`Invalid receipts task: ${parsed.error.issues.map((i) => i.path.join('.') || i.message).join(', ')}`);
  if (parsed.data.task === 'WriteDigest') {
    const written = await writeDigest(runtime.deps);
    return { key: written?.key ?? null, receipts: written?.digest.receipts.length ?? 0 };
  }
  annotate({ actionId: parsed.data.actionId });
  // The X-Ray root of this invocation, the same for every retry within one execution.
  const result = await writeReceipt(runtime.deps, parsed.data.actionId, { traceId: tracer.getRootXrayTraceId() ?? null });
  // The receipt is stored; a failed local digest must not make the saga write it again.
  await runtime.afterReceipt?.(result).catch((error: unknown) => runtime.deps.logger.warn('digest after receipt failed', { error }));
  return { key: result.key, status: result.status };
}

/** The receipts function's handler over `deps`. */
export function createReceiptsHandler(deps: Lazy<ReceiptsFunctionDeps>) {
  return taskHandler(async (event: ReceiptsEvent) => run(await deps(), event));
}

/** Lambda entry point. */
export const handler = createReceiptsHandler(receiptsDeps);
