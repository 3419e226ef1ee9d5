import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoApprovalStore } from '../../lambdas/adapters/aws/dynamo-approvals';
import type { ActionRecord } from '../../lambdas/core/action';
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

const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');

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

describe('listing cursors are untrusted input', () => {
  beforeAll(async () => {
    for (const n of [1, 2, 3]) await env.ledger.createAction(action(`act_01J0000000000000000000CUR${n}`, 'cursor-owner'));
  });

  // Both engines refuse an empty key string or a start key outside the key condition with a
  // ValidationException, each in its own words; neither may reach the client as a 500.
  it('a forged cursor with empty or out-of-range keys is refused as invalid, not a server error', async () => {
    const forged = [
      { pk: '', sk: '', gsi1pk: 'PRINCIPAL#cursor-owner', gsi1sk: '' },
      { pk: 'ACTION#x', sk: 'ACTION', gsi1pk: 'PRINCIPAL#cursor-owner', gsi1sk: '' },
      { pk: 'ACTION#x', sk: 'ACTION', gsi1pk: 'PRINCIPAL#cursor-owner', gsi1sk: 'ZZZ' },
      { pk: 'x', sk: 'y', gsi1pk: 'PRINCIPAL#cursor-owner', gsi1sk: 'ACTION#x' },
    ];
    for (const cursor of forged) {
      await expect(env.ledger.listActions({ principalSub: 'cursor-owner', limit: 2, cursor: cursorOf(cursor) })).rejects.toBeInstanceOf(InvalidCursorError);
    }
    await expect(
      approvals.listApprovals({ status: 'pending', limit: 2, cursor: cursorOf({ pk: 'APPROVAL#a', sk: 'APPROVAL', gsi1pk: 'APPROVALS#pending', gsi1sk: '' }) }),
    ).rejects.toBeInstanceOf(InvalidCursorError);
  });

  it('a genuine cursor still pages through every action once', async () => {
    const page1 = await env.ledger.listActions({ principalSub: 'cursor-owner', limit: 2 });
    const page2 = await env.ledger.listActions({ principalSub: 'cursor-owner', limit: 2, cursor: page1.nextCursor! });
    const ids = [...page1.items, ...page2.items].map((a) => a.id);
    expect(new Set(ids).size).toBe(3);
  });

  it('any cursor a client can send yields a page or InvalidCursorError (property)', async () => {
    const keyString = fc.oneof(
      fc.constantFrom('', 'ACTION', 'ACTION#', 'APPROVAL', 'APPROVAL#', 'ACTION#act_01J0000000000000000000CUR2', 'PRINCIPAL#cursor-owner', 'APPROVALS#pending'),
      fc.string({ maxLength: 40 }),
      fc.string({ maxLength: 20 }).map((s) => `ACTION#${s}`),
      fc.string({ minLength: 290, maxLength: 320 }),
    );
    const cursor = fc.oneof(
      fc.record({ pk: keyString, sk: keyString, gsi1pk: keyString, gsi1sk: keyString }).map(cursorOf),
      fc.record({ pk: keyString, sk: fc.constant('ACTION'), gsi1pk: fc.constant('PRINCIPAL#cursor-owner'), gsi1sk: keyString }).map(cursorOf),
      fc.record({ pk: keyString, sk: fc.constant('APPROVAL'), gsi1pk: fc.constant('APPROVALS#pending'), gsi1sk: keyString }).map(cursorOf),
      fc.jsonValue().map(cursorOf),
      fc.string({ maxLength: 60 }),
    );
    await fc.assert(
      fc.asyncProperty(cursor, async (c) => {
        expect(await outcome(env.ledger.listActions({ principalSub: 'cursor-owner', limit: 2, cursor: c }))).toMatch(/^(ok|invalid-cursor)$/);
        expect(await outcome(approvals.listApprovals({ status: 'pending', limit: 2, cursor: c }))).toMatch(/^(ok|invalid-cursor)$/);
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
