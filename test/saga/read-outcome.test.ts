import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoLedger } from '../../lambdas/adapters/aws/dynamo-ledger';
import { DynamoSagaStore } from '../../lambdas/adapters/aws/dynamo-saga-store';
import type { ActionRecord } from '../../lambdas/actions/action';
import { readOutcomeOf } from '../../lambdas/saga/read-path';
import { newActionId } from '../../lambdas/shared/ids';
import { startTestDynamo, type TestDynamo } from '../helpers/dynamo';

/**
 * The pieces of issue 17's read path that cut ledger round trips, each held to what it must
 * not give up: intake answers with RunRead's reply only when it is this action, completed,
 * with its receipt (anything else: the ledger is read); an audit chain appended after a wrong
 * "empty" hint still chains onto the real head; a receipt key recorded from a stale copy of
 * the action is refused by the version check and written onto the current one.
 */

const ID = 'act_01M8TN0VZGAZKSXNR0FA8N8K9R';

describe("intake's check of RunRead's answer", () => {
  const good = {
    action: { id: ID, status: 'completed', receiptKey: `receipts/dt=2026-01-01/${ID}.json`, version: 4 },
    steps: [{ actionId: ID, stepId: 'call', kind: 'forward', status: 'complete' }],
  };

  it('takes a completed action with its receipt and its own steps', () => {
    expect(readOutcomeOf(good, ID)).toEqual(good);
  });

  it('refuses another action, another status, a missing receipt, or steps of another action', () => {
    expect(readOutcomeOf({ ...good, action: { ...good.action, id: 'act_other' } }, ID)).toBeUndefined();
    expect(readOutcomeOf({ ...good, action: { ...good.action, status: 'running' } }, ID)).toBeUndefined();
    expect(readOutcomeOf({ ...good, action: { ...good.action, receiptKey: undefined } }, ID)).toBeUndefined();
    expect(readOutcomeOf({ ...good, steps: [{ actionId: 'act_other' }] }, ID)).toBeUndefined();
    expect(readOutcomeOf({ status: 'completed' }, ID)).toBeUndefined();
  });

  it('answers undefined or this completed action for any JSON whatever (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.record({ action: fc.jsonValue(), steps: fc.jsonValue() })), (answer) => {
        const outcome = readOutcomeOf(answer, ID);
        if (outcome === undefined) return;
        expect(outcome.action.id).toBe(ID);
        expect(outcome.action.status).toBe('completed');
        expect(typeof outcome.action.receiptKey).toBe('string');
        for (const step of outcome.steps) expect(step.actionId).toBe(ID);
      }),
      { numRuns: 300 },
    );
  });
});

describe('ledger writes the read path saves a read for (dynalite)', () => {
  let db: TestDynamo;
  beforeAll(async () => {
    db = await startTestDynamo();
  });
  afterAll(async () => {
    await db?.close();
  });

  it('chains an event onto the real head when the "empty" hint was wrong, and forks nothing', async () => {
    const writer = new DynamoSagaStore({ client: db.client, tableName: db.tableName });
    await writer.append('act_hinted', { type: 'first', actor: 'airlock' });
    // Another instance, which never saw that event, is told the chain is empty.
    const other = new DynamoSagaStore({ client: db.client, tableName: db.tableName });
    other.hintEmpty('act_hinted');
    const second = await other.append('act_hinted', { type: 'second', actor: 'airlock' });
    const events = await other.list('act_hinted');
    expect(events.map((e) => [e.seq, e.type])).toEqual([
      [1, 'first'],
      [2, 'second'],
    ]);
    expect(second.prevHash).toBe(events[0]!.hash);
  });

  it('records a receipt key from a stale copy onto the current action, keeping what changed meanwhile', async () => {
    const ledger = new DynamoLedger({ client: db.client, tableName: db.tableName });
    const now = new Date();
    // A real action id: the ledger files each action under the day its id was minted.
    const id = newActionId(now.getTime());
    const action = {
      id,
      principal: { sub: 'alice', roles: [] },
      actor: { name: 'reader' },
      envelope: {},
      kind: 'call',
      mode: 'live',
      planHash: 'h',
      status: 'received',
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
      version: 1,
    } as unknown as ActionRecord;
    await ledger.createAction(action);
    const moved = await ledger.transition(id, 'running', {}, now, action);
    // Meanwhile another writer asks to cancel: the copy the caller holds is now stale.
    await ledger.requestCancel(id, { by: 'bob', reason: 'changed my mind', at: now.toISOString() } as never, now);
    const written = await ledger.setReceiptKey(id, 'receipts/k.json', now, moved);
    const stored = await ledger.getAction(id);
    expect(stored?.receiptKey).toBe('receipts/k.json');
    expect(stored?.cancel).toBeDefined();
    expect(written).toEqual(stored);
    // Already recorded: nothing to write.
    expect(await ledger.setReceiptKey(id, 'receipts/k.json', now, stored)).toBeUndefined();
  });
});
