import { createHash, randomBytes } from 'node:crypto';
import { DeleteTableCommand, ResourceNotFoundException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { localDynamoClient, startDynalite } from '../../lambdas/adapters/local/dynalite';
import { ensureTables } from '../../lambdas/adapters/local/dynamo-tables';
import { dynamoEndpointFromEnv } from '../../lambdas/adapters/local/local-dynamo';

/**
 * The DynamoDB a test uses: a fresh in-memory dynalite, or — when AIRLOCK_DYNAMODB_ENDPOINT
 * names one (DynamoDB Local in `npm run test:dynamodb-local`) — a table of its own on that
 * endpoint, deleted afterwards because the database outlives the test.
 */

/** The external endpoint tests run against, if any. */
export const testDynamoEndpoint = (): string | undefined => dynamoEndpointFromEnv();

/** A table name no other test uses: `airlock-test-<random>`. */
export function uniqueTableName(): string {
  return `airlock-test-${randomBytes(6).toString('hex')}`;
}

/** The same name for every runtime started on one state dir, so a restart finds its table. */
export function tableNameFor(stateDir: string): string {
  return `airlock-test-${createHash('sha256').update(stateDir).digest('hex').slice(0, 16)}`;
}

/** Tables on the external endpoint still to delete when this test file ends (test/setup.ts). */
const pending = new Set<string>();

/** Deletes a table on the external endpoint; a table already gone is fine. */
export async function deleteTestTable(tableName: string, endpoint = testDynamoEndpoint()): Promise<void> {
  pending.delete(tableName);
  if (!endpoint) return;
  const client = localDynamoClient(endpoint);
  try {
    await client.send(new DeleteTableCommand({ TableName: tableName }));
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
  } finally {
    client.destroy();
  }
}

/** Marks a table for deletion when the test file ends (for runtimes restarted on one state dir). */
export function deleteAtEnd(tableName: string): void {
  if (testDynamoEndpoint()) pending.add(tableName);
}

/** Deletes every table marked with deleteAtEnd; test/setup.ts runs it after each file. */
export async function deletePendingTestTables(): Promise<void> {
  for (const name of [...pending]) await deleteTestTable(name);
}

/** A ledger table for one test and the client to reach it. */
export interface TestDynamo {
  endpoint: string;
  client: DynamoDBClient;
  tableName: string;
  /** Deletes the table (external endpoint) or stops dynalite. */
  close(): Promise<void>;
}

/** A ledger table on the external endpoint when one is set, else on a fresh in-memory dynalite. */
export async function startTestDynamo(tableName = uniqueTableName()): Promise<TestDynamo> {
  const endpoint = testDynamoEndpoint();
  if (!endpoint) {
    const dynalite = await startDynalite();
    try {
      await ensureTables(dynalite.client, tableName);
    } catch (error) {
      await dynalite.close();
      throw error;
    }
    return { endpoint: dynalite.endpoint, client: dynalite.client, tableName, close: () => dynalite.close() };
  }
  const client = localDynamoClient(endpoint);
  deleteAtEnd(tableName);
  await ensureTables(client, tableName, { timeoutMs: 60_000 });
  return {
    endpoint,
    client,
    tableName,
    close: async () => {
      client.destroy();
      await deleteTestTable(tableName, endpoint);
    },
  };
}

/**
 * The table a test runtime should use: none chosen (the runtime's default) without an
 * external endpoint; otherwise a unique one, or one derived from a state dir the test
 * restarts on. The returned cleanup deletes it now (unique) or when the file ends (shared).
 */
export function runtimeTable(stateDir: string | undefined): { tableName?: string; cleanup: () => Promise<void> } {
  if (!testDynamoEndpoint()) return { cleanup: async () => undefined };
  if (stateDir === undefined) {
    const tableName = uniqueTableName();
    deleteAtEnd(tableName);
    return { tableName, cleanup: () => deleteTestTable(tableName) };
  }
  const tableName = tableNameFor(stateDir);
  deleteAtEnd(tableName);
  return { tableName, cleanup: async () => undefined };
}
