import {
  ConditionalCheckFailedException,
  QueryCommand,
  type AttributeValue,
  type DeleteItemCommand,
  type DynamoDBClient,
  type PutItemCommand,
  type QueryCommandInput,
  type UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { LedgerRequestRejectedError, LedgerThrottledError } from '../../ports/ledger';

/** Helpers every ledger adapter shares: attribute builders, throttling and condition checks. */

export type Item = Record<string, AttributeValue>;
export const S = (value: string): AttributeValue => ({ S: value });
export const N = (value: number): AttributeValue => ({ N: String(value) });

const THROTTLE_NAMES = new Set(['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded']);

/**
 * Every ledger call goes through here, so DynamoDB's errors are translated in one place:
 * throttling becomes LedgerThrottledError (the edge: 503 + Retry-After) and a request
 * DynamoDB refuses as malformed (ValidationException: a bad key, an oversized value) becomes
 * LedgerRequestRejectedError (the edge: 400), never an unexplained 500.
 */
export async function guard<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (error) {
    if (error instanceof Error && THROTTLE_NAMES.has(error.name)) throw new LedgerThrottledError({ cause: error });
    if (error instanceof Error && error.name === 'ValidationException') throw new LedgerRequestRejectedError({ cause: error });
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

/**
 * Sends a conditional write: true when it was applied, false when its condition did not hold
 * (a lost race or a replay); throttling becomes LedgerThrottledError, anything else is thrown.
 */
export async function conditionalWrite(
  client: DynamoDBClient,
  command: PutItemCommand | UpdateItemCommand | DeleteItemCommand,
): Promise<boolean> {
  try {
    // The union defeats send()'s overloads; each member is a command this client accepts.
    await guard(() => client.send(command as PutItemCommand));
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}
