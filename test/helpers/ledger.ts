import { startDynalite, type RunningDynalite } from '../../lambdas/adapters/local/dynalite';
import { ensureTables } from '../../lambdas/adapters/local/dynamo-tables';
import { DynamoLedger } from '../../lambdas/adapters/aws/dynamo-ledger';

/** A fresh in-memory dynalite with the ledger table, and the real adapter over it. */
export async function startLedger(tableName = `ledger-${Math.random().toString(36).slice(2, 8)}`): Promise<{
  dynalite: RunningDynalite;
  ledger: DynamoLedger;
  tableName: string;
  close: () => Promise<void>;
}> {
  const dynalite = await startDynalite();
  await ensureTables(dynalite.client, tableName);
  const ledger = new DynamoLedger({ client: dynalite.client, tableName });
  return { dynalite, ledger, tableName, close: () => dynalite.close() };
}
