import middy from '@middy/core';
import { z } from 'zod';
import { writeDigest, writeReceipt } from './vault';
import { boundedErrors } from '../middleware/bounded-errors';
import { receiptsRuntime } from '../composition/receipts-runtime';

/**
 * The receipts function: WriteReceipt (the last task of every saga path) and WriteDigest
 * (hourly from EventBridge; on demand locally). Errors are thrown by name; the ASL retries
 * WriteReceipt and ends in ReceiptFailed if it keeps failing.
 */

const ActionId = z.string().regex(/^act_[0-9A-HJKMNP-TV-Z]{26}$/);

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

/** The X-Ray root of this invocation (`Root=1-…`), the same for every retry within one execution. */
function traceId(): string | null {
  const header = process.env._X_AMZN_TRACE_ID;
  const root = header?.split(';').find((part) => part.startsWith('Root='));
  return root ? root.slice('Root='.length) : null;
}

async function run(event: ReceiptsEvent): Promise<unknown> {
  const parsed = ReceiptsTaskSchema.safeParse(event);
  if (!parsed.success) throw new ReceiptsTaskInvalidError(`Invalid receipts task: ${parsed.error.issues.map((i) => i.path.join('.') || i.message).join(', ')}`);
  const runtime = await receiptsRuntime();
  if (parsed.data.task === 'WriteDigest') {
    const written = await writeDigest(runtime.deps);
    return { key: written?.key ?? null, receipts: written?.digest.receipts.length ?? 0 };
  }
  const result = await writeReceipt(runtime.deps, parsed.data.actionId, { traceId: traceId() });
  // The receipt is stored; a failed local digest must not make the saga write it again.
  await runtime.afterReceipt?.(result).catch((error: unknown) => runtime.deps.logger.warn('digest after receipt failed', { error }));
  return { key: result.key, status: result.status };
}

/** Lambda entry point. */
export const handler = middy<ReceiptsEvent, unknown>().use(boundedErrors()).handler(run);
