import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoApprovalStore } from '../../lambdas/adapters/aws/dynamo-approvals';
import { DynamoSagaStore } from '../../lambdas/adapters/aws/dynamo-saga-store';
import { attemptInDoubt, type AuditEvent } from '../../lambdas/ports/steps';
import { eventChainIntact } from '../../lambdas/receipts/build';
import type { ActionRecord } from '../../lambdas/actions/action';
import { InvalidCursorError } from '../../lambdas/ports/ledger';
import { startLedger } from '../helpers/ledger';
import { echoCall } from '../helpers/intake';

/**
 * Where dynalite and DynamoDB (DynamoDB Local in `npm run test:dynamodb-local`) differ, pinned
 * down against whichever engine this run uses. Each case was a difference found by running
 * the suites against the real engine.
 */

let env: Awaited<ReturnType<typeof startLedger>>;
let approvals: DynamoApprovalStore;

beforeAll(async () => {
  env = await startLedger();
  approvals = new DynamoApprovalStore({ client: env.dynamo.client, tableName: env.tableName });
});
afterAll(async () => {
  await env.close();
});

function action(id: string, sub: string): ActionRecord {
  const at = new Date().toISOString();
  return {
    id, principal: { sub, roles: [] }, actor: { name: 'a' }, envelope: echoCall(), kind: 'single', mode: 'execute',
    planHash: 'h', status: 'received', createdAt: at, updatedAt: at, version: 1,
  };
}

/** Resolves to 'ok' or 'invalid-cursor'; anything else (a ValidationException: a 500) rejects. */
async function outcome(listing: Promise<unknown>): Promise<'ok' | 'invalid-cursor'> {
  try {
    await listing;
    return 'ok';
  } catch (error) {
    if (error instanceof InvalidCursorError) return 'invalid-cursor';
    throw error;
  }
}

describe('listing positions are untrusted input', () => {
  beforeAll(async () => {
    for (const n of [1, 2, 3]) await env.ledger.createAction(action(`act_01J0000000000000000000CRR${n}`, 'cursor-owner'));
  });

  // The stores rebuild the start key from a checked id (the HMAC'd cursor already names one);
  // an id that does not fit the listing must never reach the engine, whose ValidationException
  // would be a 500. Both engines refuse empty or out-of-range key strings, each in its own words.
  it('a position that is not an id of the listing is refused as invalid, not a server error', async () => {
    for (const startAfter of ['', 'ACTION#x', 'act_', 'act_01J0000000000000000000CRR', 'apr_01J0000000000000000000CRR1']) {
      await expect(env.ledger.listActions({ principalSub: 'cursor-owner', limit: 2, startAfter })).rejects.toBeInstanceOf(InvalidCursorError);
    }
    for (const startAfter of ['', 'APPROVAL#a', 'act_01J0000000000000000000CRR1']) {
      await expect(approvals.listApprovals({ status: 'pending', limit: 2, startAfter })).rejects.toBeInstanceOf(InvalidCursorError);
    }
  });

  it('a genuine position still pages through every action once', async () => {
    const page1 = await env.ledger.listActions({ principalSub: 'cursor-owner', limit: 2 });
    expect(page1.lastEvaluated).toBeDefined();
    const page2 = await env.ledger.listActions({ principalSub: 'cursor-owner', limit: 2, startAfter: page1.lastEvaluated! });
    const ids = [...page1.items, ...page2.items].map((a) => a.id);
    expect(new Set(ids).size).toBe(3);
  });

  it('any position yields a page or InvalidCursorError on this engine (property)', async () => {
    const position = fc.oneof(
      fc.constantFrom('', 'ACTION', 'ACTION#', 'act_01J0000000000000000000CRR2', 'apr_01J0000000000000000000CRR2', 'act_ZZZZZZZZZZZZZZZZZZZZZZZZZZ'),
      fc.string({ maxLength: 40 }),
      fc.stringMatching(/^(act|apr)_[0-9A-HJKMNP-TV-Z]{26}$/),
      fc.string({ minLength: 290, maxLength: 320 }),
    );
    await fc.assert(
      fc.asyncProperty(position, async (startAfter) => {
        expect(await outcome(env.ledger.listActions({ principalSub: 'cursor-owner', limit: 2, startAfter }))).toMatch(/^(ok|invalid-cursor)$/);
        expect(await outcome(approvals.listApprovals({ status: 'pending', limit: 2, startAfter }))).toMatch(/^(ok|invalid-cursor)$/);
      }),
      { numRuns: 60 },
    );
  });
});

describe('key sizes stay inside DynamoDB limits', () => {
  // DynamoDB Local refuses a gsi1 partition key over 2048 bytes and a sort key over 1024 bytes
  // ("Size limit exceeded"); dynalite stores them. Keys built from a principal's `sub` (at most
  // 256 characters) must fit even when every character takes three bytes in UTF-8.
  const widest = '中'.repeat(256);

  it('an action of a principal with the longest, widest sub is stored and listed', async () => {
    const id = 'act_01J0000000000000000000WIDE';
    expect(await env.ledger.createAction(action(id, widest))).toBe('created');
    const page = await env.ledger.listActions({ principalSub: widest, limit: 5 });
    expect(page.items.map((a) => a.id)).toEqual([id]);
  });

  it('a vote by the longest, widest sub is stored and read back', async () => {
    const approvalId = 'apr_01J0000000000000000000WIDE';
    const at = new Date().toISOString();
    await approvals.createApproval(
      {
        id: approvalId, actionId: 'act_01J0000000000000000000WIDE', status: 'pending', planHash: 'h', quorum: 1, approverRule: 'manager',
        requester: widest, grantees: [], createdAt: at, updatedAt: at, expiresAt: new Date(Date.now() + 3600_000).toISOString(),
      },
      'token',
    );
    const put = await approvals.putVote({ approvalId, voter: widest, decision: 'approve', planHash: 'h', at });
    expect(put.outcome).toBe('recorded');
    expect((await approvals.getVote(approvalId, widest))?.voter).toBe(widest);
  });
});

describe('audit chain: appendOnce under a race', () => {
  it('thirty writers of one event and ten of others: that event once, the rest all there, the chain intact', async () => {
    const events = new DynamoSagaStore({ client: env.dynamo.client, tableName: env.tableName });
    const id = 'act_01J0000000000000000000APP1';
    const same = (e: AuditEvent) => e.type === 'approval.vote' && e.data.voter === 'fiona';
    const results = await Promise.all([
      ...Array.from({ length: 30 }, () => events.appendOnce(id, { type: 'approval.vote', actor: 'fiona', data: { voter: 'fiona' } }, same)),
      ...Array.from({ length: 10 }, (_, i) => events.append(id, { type: 'other', actor: 'airlock', data: { i } })),
    ]);
    const written = results.slice(0, 30) as { appended: boolean; event: AuditEvent }[];
    expect(written.filter((r) => r.appended)).toHaveLength(1);
    expect(new Set(written.map((r) => r.event.seq)).size).toBe(1);
    const chain = await events.list(id);
    expect(chain.filter(same)).toHaveLength(1);
    expect(chain).toHaveLength(11);
    expect(eventChainIntact(chain)).toBe(true);
  });
});

describe('the cancel mark on an action', () => {
  it('keeps the first request, leaves the status alone, never marks an ended action, and says when there is none', async () => {
    const id = 'act_01J0000000000000000000CNC1';
    await env.ledger.createAction(action(id, 'cancel-owner'));
    const first = await env.ledger.requestCancel(id, { by: 'alice', at: '2026-01-01T00:00:00.000Z', reason: 'first' });
    expect(first).toMatchObject({ status: 'received', cancel: { by: 'alice', reason: 'first' } });
    const second = await env.ledger.requestCancel(id, { by: 'olivia', at: '2026-01-01T00:00:01.000Z', reason: 'second' });
    expect(second?.cancel).toEqual(first?.cancel);
    // A status move keeps the mark (the saga reads it with the action).
    expect((await env.ledger.transition(id, 'running'))).toMatchObject({ cancel: { by: 'alice' } });

    const ended = 'act_01J0000000000000000000CNC2';
    await env.ledger.createAction(action(ended, 'cancel-owner'));
    await env.ledger.transition(ended, 'denied');
    expect((await env.ledger.requestCancel(ended, { by: 'alice', at: '2026-01-01T00:00:00.000Z', reason: 'late' }))?.cancel).toBeUndefined();
    expect(await env.ledger.requestCancel('act_01J0000000000000000000CNC3', { by: 'alice', at: '2026-01-01T00:00:00.000Z', reason: 'none' })).toBeUndefined();
  });
});

describe('a forward step stays in doubt until the vendor tells', () => {
  // Found by CI's chaos storm: a 5xx to a retry cleared the doubt an earlier attempt's lost
  // answer had left, so compensation skipped a step that had committed. Whatever the sequence
  // of attempts, the step is in doubt exactly when some attempt's outcome was never told (a
  // timeout, or a crash before its end was recorded); a 5xx tells only of its own attempt.
  it('whatever the attempts: in doubt iff one of them timed out or never ended (property)', async () => {
    const store = new DynamoSagaStore({ client: env.dynamo.client, tableName: env.tableName });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom('unavailable', 'timeout', 'crash'), { minLength: 1, maxLength: 5 }), async (outcomes) => {
        const key = { actionId: `act_01J00000000000000000DBT${String(n++).padStart(3, '0')}`, stepId: 'hold', kind: 'forward' as const };
        for (const [i, outcome] of outcomes.entries()) {
          const begun = await store.beginStep(key, { tool: 'travel.hold_seat', input: {}, idempotencyKey: 'k', grant: { jti: `j${n}-${i}`, scope: 's', exp: 1 }, dryRun: false }, new Date());
          expect(begun.state).toBe('started');
          if (outcome === 'crash' || begun.state !== 'started') continue;
          const name = outcome === 'timeout' ? 'VendorTimeoutError' : 'VendorUnavailableError';
          await store.failStep(key, { name, message: 'injected' }, false, new Date(), outcome === 'unavailable' ? begun.record.attempts : undefined);
        }
        const record = await store.getStep(key);
        expect(record?.attempts).toBe(outcomes.length);
        expect(attemptInDoubt(record)).toBe(outcomes.some((o) => o !== 'unavailable'));
        // Completing ends the doubt; the record no longer says it.
        await store.completeStep(key, { ok: true }, new Date());
        expect((await store.getStep(key))?.inDoubt).toBeUndefined();
      }),
      { numRuns: 40 },
    );
  }, 60_000);
});
