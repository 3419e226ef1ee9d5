import {
  CreateTableCommand,
  DescribeTableCommand,
  ResourceInUseException,
  ResourceNotFoundException,
  type CreateTableCommandInput,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { DAY_INDEX, tablesWithoutDayIndex } from '../aws/dynamo-ledger';

/** Default name of the ledger table in local mode. */
export const DEFAULT_LEDGER_TABLE = 'airlock-ledger';

/**
 * The ledger table: one table for actions, idempotency keys, steps, approvals and counters.
 * Generic `pk`/`sk` keys and one overloaded GSI (`gsi1`) so new item types need no new index,
 * plus the day index (`gsi2`, action items only).
 * The CDK construct declares the same keys; keep the two in step.
 */
export function ledgerTableDefinition(tableName: string = DEFAULT_LEDGER_TABLE): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: 'pk', AttributeType: 'S' },
      { AttributeName: 'sk', AttributeType: 'S' },
      { AttributeName: 'gsi1pk', AttributeType: 'S' },
      { AttributeName: 'gsi1sk', AttributeType: 'S' },
      { AttributeName: 'gsi2pk', AttributeType: 'S' },
      { AttributeName: 'gsi2sk', AttributeType: 'S' },
    ],
    KeySchema: [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: 'gsi1',
        KeySchema: [
          { AttributeName: 'gsi1pk', KeyType: 'HASH' },
          { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
        ],
        // As the CDK construct: ALL, the action's record being one compressed attribute (ledger.md).
        Projection: { ProjectionType: 'ALL' },
      },
      {
        // The day index (ledger.md): only action items carry its keys. What its listing filters
        // on is projected, nothing that changes: a write of the action after its creation
        // touches no attribute of it, so it writes nothing to the index (on DynamoDB).
        IndexName: DAY_INDEX,
        KeySchema: [
          { AttributeName: 'gsi2pk', KeyType: 'HASH' },
          { AttributeName: 'gsi2sk', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['principal', 'tools'] },
      },
    ],
  };
}

async function tableStatus(client: DynamoDBClient, tableName: string): Promise<string | undefined> {
  try {
    const out = await client.send(new DescribeTableCommand({ TableName: tableName }));
    // A table made before the day index GSI (a persisted local dynalite table: dynalite cannot
    // add one) keeps the separate day-index entries of before.
    const indexed = (out.Table?.GlobalSecondaryIndexes ?? []).some((index) => index.IndexName === DAY_INDEX);
    if (indexed) tablesWithoutDayIndex.delete(tableName);
    else tablesWithoutDayIndex.add(tableName);
    return out.Table?.TableStatus ?? 'UNKNOWN';
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return undefined;
    throw error;
  }
}

/**
 * Creates the ledger table when it is absent and waits until it is ACTIVE. Tolerates a
 * concurrent creator (ResourceInUseException). Returns whether this call created it.
 */
export async function ensureTables(
  client: DynamoDBClient,
  tableName: string = DEFAULT_LEDGER_TABLE,
  options: { timeoutMs?: number } = {},
): Promise<{ created: boolean }> {
  let created = false;
  if ((await tableStatus(client, tableName)) === undefined) {
    try {
      await client.send(new CreateTableCommand(ledgerTableDefinition(tableName)));
      created = true;
    } catch (error) {
      if (!(error instanceof ResourceInUseException)) throw error;
    }
  }
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  for (;;) {
    const status = await tableStatus(client, tableName);
    if (status === 'ACTIVE') return { created };
    if (Date.now() > deadline) throw new Error(`Table ${tableName} is not ACTIVE (status ${status ?? 'absent'})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
