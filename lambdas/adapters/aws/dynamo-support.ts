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
import { z } from 'zod';
import { InvalidCursorError, LedgerThrottledError } from '../../ports/ledger';

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

/** What a gsi1 listing's cursor must name: its own partition, and keys of its own item type. */
export interface GsiCursorShape {
  gsi1pk: string;
  /** Prefix of the table partition key of the listed items (`ACTION#`). */
  pkPrefix: string;
  /** Sort key of the listed items (`ACTION`). */
  sk: string;
  /** Prefix every gsi1 sort key of the listing has (the key condition's begins_with, or ''). */
  gsi1skPrefix: string;
}

// DynamoDB refuses an empty string in any key attribute, and a start key outside the key
// condition's range: both would surface as a ValidationException (a 500) if let through.
const KeyString = z.string().min(1).max(300);
const CursorSchema = z.object({ pk: KeyString, sk: KeyString, gsi1pk: KeyString, gsi1sk: KeyString }).strict();

/**
 * A listing cursor: a gsi1 page's LastEvaluatedKey as base64url JSON. Opaque to clients but
 * not secret, so decoding treats it as untrusted input.
 */
export function encodeGsiCursor(key: Item | undefined): string | undefined {
  if (!key) return undefined;
  const plain: Record<string, string> = {};
  for (const [k, v] of Object.entries(key)) if (v.S !== undefined) plain[k] = v.S;
  return Buffer.from(JSON.stringify(plain), 'utf8').toString('base64url');
}

/** Decodes a client's cursor into an ExclusiveStartKey for `shape`'s listing, or throws InvalidCursorError. */
export function decodeGsiCursor(cursor: string, shape: GsiCursorShape): Item {
  try {
    const parsed = CursorSchema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
    // A cursor only continues the caller's own listing, from a key of the listed kind.
    if (parsed.gsi1pk !== shape.gsi1pk) throw new Error('cursor belongs to another listing');
    if (!parsed.pk.startsWith(shape.pkPrefix) || parsed.pk === shape.pkPrefix || parsed.sk !== shape.sk) {
      throw new Error('cursor names another kind of item');
    }
    if (!parsed.gsi1sk.startsWith(shape.gsi1skPrefix)) throw new Error('cursor lies outside the listing');
    return { pk: S(parsed.pk), sk: S(parsed.sk), gsi1pk: S(parsed.gsi1pk), gsi1sk: S(parsed.gsi1sk) };
  } catch (cause) {
    throw new InvalidCursorError({ cause });
  }
}

/**
 * Runs a query that continues from a client's cursor. The query is well-formed without the
 * start key, so when the engine refuses it (ValidationException: a key rule dynalite and
 * DynamoDB enforce differently), the cursor is at fault: a 400, not a 500.
 */
export async function fromCursor<T>(start: Item | undefined, query: () => Promise<T>): Promise<T> {
  try {
    return await guard(query);
  } catch (error) {
    if (start && error instanceof Error && error.name === 'ValidationException') throw new InvalidCursorError({ cause: error });
    throw error;
  }
}
