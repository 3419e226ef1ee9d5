import { DynamoLedger } from '../../lambdas/adapters/aws/dynamo-ledger';
import { startTestDynamo, uniqueTableName, type TestDynamo } from './dynamo';

/**
 * A fresh ledger table (in-memory dynalite, or a table of its own on AIRLOCK_DYNAMODB_ENDPOINT)
 * and the real adapter over it.
 */
export async function startLedger(tableName = uniqueTableName()): Promise<{
  dynamo: TestDynamo;
  ledger: DynamoLedger;
  tableName: string;
  close: () => Promise<void>;
}> {
  const dynamo = await startTestDynamo(tableName);
  const ledger = new DynamoLedger({ client: dynamo.client, tableName });
  return { dynamo, ledger, tableName, close: () => dynamo.close() };
}
