import { newActionId } from '../../lambdas/shared/ids';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoLedger } from '../../lambdas/adapters/aws/dynamo-ledger';
import { DynamoSagaStore } from '../../lambdas/adapters/aws/dynamo-saga-store';
import type { ActionRecord } from '../../lambdas/actions/action';
import { completedRecordOf, handedAction, readOutcomeOf } from '../../lambdas/saga/read-path';
import { heldRecordsOf } from '../../lambdas/receipts/vault';
import { canonicalJson, sha256Hex } from '../../lambdas/shared/canonical-json';
import type { AuditEvent } from '../../lambdas/ports/steps';
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

describe('what the read path takes instead of a read', () => {
  const received = { id: ID, status: 'received', version: 1, planHash: 'h'.repeat(64), principal: { sub: 'alice', roles: [] }, decision: { outcome: 'allow' } };

  it("takes intake's record only when it is this action, received, decided", () => {
    expect(handedAction(received, ID)).toBe(received);
    for (const wrong of [
      { ...received, id: 'act_other' },
      { ...received, status: 'running' },
      { ...received, version: '1' },
      { ...received, decision: undefined },
      { ...received, principal: {} },
      null,
      'act',
    ]) {
      expect(handedAction(wrong, ID)).toBeUndefined();
    }
  });

  it("takes the connector's step record only when it is this call's step, completed", () => {
    const call = { actionId: ID, stepId: 'call', kind: 'forward' as const };
    const record = { ...call, status: 'complete', attempts: 1, grants: [], output: { ok: true } };
    expect(completedRecordOf({ stepId: 'call', kind: 'forward', outputBytes: 11, record }, call)).toBe(record);
    expect(completedRecordOf({ stepId: 'call', kind: 'forward', outputBytes: 11 }, call)).toBeUndefined();
    expect(completedRecordOf({ record: { ...record, status: 'in_progress' } }, call)).toBeUndefined();
    expect(completedRecordOf({ record: { ...record, stepId: 'other' } }, call)).toBeUndefined();
    expect(completedRecordOf({ record: { ...record, kind: 'compensate' } }, call)).toBeUndefined();
    expect(completedRecordOf({ record: { ...record, actionId: 'act_other' } }, call)).toBeUndefined();
  });

  /** A chain of `types` as the ledger writes it (dynamo-saga-store.ts putAfter). */
  function chain(actionId: string, types: string[]): AuditEvent[] {
    const out: AuditEvent[] = [];
    let prevHash = '0'.repeat(64);
    types.forEach((type, i) => {
      const body = { actionId, seq: i + 1, type, at: '2031-01-01T00:00:00.000Z', actor: 'airlock', data: {} };
      const hash = sha256Hex(`${prevHash}\n${canonicalJson(body)}`);
      out.push({ ...body, hash, prevHash });
      prevHash = hash;
    });
    return out;
  }

  it('builds a receipt from held records only when they are this settled action, a whole intact chain and its own steps', () => {
    const events = chain(ID, ['policy.evaluated', 'action.status', 'grant.issued', 'action.status']);
    const held = { action: { ...received, status: 'completed' }, events, steps: [{ actionId: ID, stepId: 'call' }] };
    expect(heldRecordsOf(held, ID)).toEqual(held);
    const tampered = events.map((e, i) => (i === 2 ? { ...e, actor: 'mallory' } : e));
    for (const wrong of [
      { ...held, action: { ...held.action, status: 'running' } },
      { ...held, action: { ...held.action, id: 'act_other' } },
      // Not from the first event, a gap, another order, an event changed, another action's chain.
      { ...held, events: events.slice(1) },
      { ...held, events: [events[0], events[2], events[3]] },
      { ...held, events: [events[1], events[0], events[2], events[3]] },
      { ...held, events: tampered },
      { ...held, events: chain('act_other', ['a']) },
      { ...held, steps: [{ actionId: 'act_other', stepId: 'call' }] },
      { ...held, steps: undefined },
      undefined,
    ]) {
      expect(heldRecordsOf(wrong, ID)).toBeUndefined();
    }
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
    // A real id: the ledger files each new action under the day its id was minted.
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
