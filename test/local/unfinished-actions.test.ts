import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActionRecord, ActionStatus } from '../../lambdas/actions/action';
import { unfinishedActions } from '../../local/control-plane';
import { startLedger } from '../helpers/ledger';

let env: Awaited<ReturnType<typeof startLedger>>;
beforeAll(async () => {
  env = await startLedger();
});
afterAll(async () => {
  await env.close();
});

const at = '2030-01-01T00:00:00.000Z';
function record(n: number, status: ActionStatus, receiptKey?: string): ActionRecord {
  return {
    id: `act_01J0000000000000000000000${n}`, principal: { sub: 'restart', roles: [] }, actor: { name: 'a' }, envelope: { tool: 'echo.say', arguments: {} },
    kind: 'single', mode: 'execute', planHash: 'h', status, createdAt: at, updatedAt: at, version: 1, ...(receiptKey ? { receiptKey } : {}),
  };
}

describe('what a restarted local runtime picks up again (unfinishedActions)', () => {
  it('finds mid-flight actions and settled ones without a receipt, in either item layout', async () => {
    // Compressed body (written by the ledger).
    await env.ledger.createAction(record(1, 'completed', 'receipts/1.json'));
    await env.ledger.createAction(record(2, 'completed'));
    await env.ledger.createAction(record(3, 'running'));
    // The JSON `doc` layout of items written before the body existed.
    for (const r of [record(4, 'completed', 'receipts/4.json'), record(5, 'denied')]) {
      await env.dynamo.client.send(
        new PutItemCommand({
          TableName: env.tableName,
          Item: { pk: { S: `ACTION#${r.id}` }, sk: { S: 'ACTION' }, status: { S: r.status }, version: { N: '1' }, updatedAt: { S: at }, doc: { S: JSON.stringify(r) } },
        }),
      );
    }
    expect(await unfinishedActions(env.dynamo)).toEqual([record(2, 'completed').id, record(3, 'running').id, record(5, 'denied').id]);
  });
});
