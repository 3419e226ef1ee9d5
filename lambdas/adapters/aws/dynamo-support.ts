import { ConditionalCheckFailedException, QueryCommand, type AttributeValue, type DynamoDBClient, type QueryCommandInput } from '@aws-sdk/client-dynamodb';
import { LedgerThrottledError } from '../../ports/ledger';

/** Helpers every ledger adapter shares: attribute builders, throttling and condition checks. */

export type Item = Record<string, AttributeValue>;
export const S = (value: string): AttributeValue => ({ S: value });
export const N = (value: number): AttributeValue => ({ N: String(value) });

const THROTTLE_NAMES = new Set(['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded']);

/** Turns DynamoDB throttling into LedgerThrottledError, which the HTTP edge answers with 503 + Retry-After. */
export async function guard<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (error) {
    if (error instanceof Error && THROTTLE_NAMES.has(error.name)) throw new LedgerThrottledError({ cause: error });
    throw error;
  }
}

/** A conditional write lost (also when the error crossed a module boundary and lost its class). */
export function isConditionFailure(error: unknown): boolean {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error instanceof Error && error.name === 'ConditionalCheckFailedException')
  );
}

/** Every item of a partition query, page by page (consistent reads unless told otherwise). */
export async function queryAll(client: DynamoDBClient, input: QueryCommandInput): Promise<Item[]> {
  const items: Item[] = [];
  let start: Item | undefined;
  do {
    const out = await guard(() =>
      client.send(new QueryCommand({ ConsistentRead: true, ...input, ...(start ? { ExclusiveStartKey: start } : {}) })),
    );
    items.push(...(out.Items ?? []));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}
