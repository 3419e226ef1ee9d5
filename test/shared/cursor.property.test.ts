import { randomBytes } from 'node:crypto';
import { DynamoDBClient, GetItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { CursorCodec, CursorKeyError, type CursorScope } from '../../lambdas/shared/cursor';
import { ActionIdPattern } from '../../lambdas/shared/ids';
import { ProblemType } from '../../lambdas/shared/problem';
import { createIntakeHandler } from '../../lambdas/intake/handler';
import { ApprovalIdPattern } from '../../lambdas/shared/ids';
import { InvalidCursorError } from '../../lambdas/ports/ledger';
import { httpEvent, lambdaContext } from '../helpers/events';
import { intakeFunctionDeps } from '../helpers/intake';
import { MemoryCounters } from '../helpers/rate-limits';
import { readLimitsFile } from '../../lambdas/limits/config';
import { RateLimiter } from '../../lambdas/limits/rate-limiter';

/** Page cursors: authenticated, bound to caller and filter, and checked before any store is asked. */

const codec = new CursorCodec(randomBytes(32));
const ulid = fc.string({ unit: fc.constantFrom(...'0123456789ABCDEFGHJKMNPQRSTVWXYZ'), minLength: 26, maxLength: 26 });
const actionId = ulid.map((u) => `act_${u}`);
const scope: fc.Arbitrary<CursorScope> = fc.record({
  listing: fc.constantFrom('actions', 'approvals'),
  caller: fc.string({ minLength: 1, maxLength: 40 }),
  filter: fc.constantFrom('', 'pending', 'completed'),
});

function opens(s: CursorScope, cursor: string, pattern = ActionIdPattern): string | 'invalid' {
  try {
    return codec.open(s, cursor, pattern);
  } catch (error) {
    if (error instanceof InvalidCursorError) return 'invalid';
    throw error;
  }
}

describe('CursorCodec', () => {
  it('opens what it sealed, for the same scope', () => {
    fc.assert(
      fc.property(scope, actionId, (s, id) => {
        expect(opens(s, codec.seal(s, id))).toBe(id);
      }),
    );
  });

  it('refuses a cursor issued for another caller, listing or filter', () => {
    fc.assert(
      fc.property(scope, scope, actionId, (issued, used, id) => {
        fc.pre(JSON.stringify(issued) !== JSON.stringify(used));
        expect(opens(used, codec.seal(issued, id))).toBe('invalid');
      }),
    );
  });

  it('refuses any change to a cursor, one character or more', () => {
    fc.assert(
      fc.property(scope, actionId, fc.nat(), fc.constantFrom(...'ABCDEFabcdef0123456789-_.'), (s, id, at, c) => {
        const cursor = codec.seal(s, id);
        const i = at % cursor.length;
        fc.pre(cursor[i] !== c);
        expect(opens(s, cursor.slice(0, i) + c + cursor.slice(i + 1))).toBe('invalid');
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses every string it did not seal, without throwing anything else', () => {
    const s: CursorScope = { listing: 'actions', caller: 'alice', filter: '' };
    const forged = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.string({ maxLength: 300, unit: 'binary-ascii' }),
      fc.string({ maxLength: 40, unit: 'grapheme' }),
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? '').toString('base64url')),
      fc.tuple(actionId, fc.base64String()).map(([id, mac]) => `${Buffer.from(id).toString('base64url')}.${mac.replace(/=+$/, '')}`),
      actionId.map((id) => `${Buffer.from(id).toString('base64url')}.${'A'.repeat(43)}`),
    );
    fc.assert(
      fc.property(forged, (cursor) => {
        expect(opens(s, cursor)).toBe('invalid');
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses an authentic cursor whose position is not what the listing pages by', () => {
    const s: CursorScope = { listing: 'approvals', caller: 'bob', filter: 'pending' };
    expect(opens(s, codec.seal(s, 'act_01J00000000000000000000010'), ApprovalIdPattern)).toBe('invalid');
    expect(opens(s, codec.seal(s, 'apr_01J00000000000000000000010'), ApprovalIdPattern)).toBe('apr_01J00000000000000000000010');
  });

  it('refuses another deployment’s cursors, and keys too short to trust', () => {
    const s: CursorScope = { listing: 'actions', caller: 'alice', filter: '' };
    const other = new CursorCodec(randomBytes(32));
    expect(opens(s, other.seal(s, 'act_01J00000000000000000000010'))).toBe('invalid');
    expect(() => new CursorCodec('short')).toThrow(CursorKeyError);
    expect(() => new CursorCodec(randomBytes(31))).toThrow(CursorKeyError);
  });
});

describe('GET /v1/actions?cursor=… at the handler (DynamoDB mocked)', () => {
  const ddb = mockClient(DynamoDBClient);
  const listed = (query: Record<string, string>, sub = 'alice') =>
    handler(httpEvent({ method: 'GET', path: '/v1/actions', query, claims: { sub, roles: ['Employee'] } }), lambdaContext);

  const handler = createIntakeHandler(async () =>
    intakeFunctionDeps(
      { client: new DynamoDBClient({ region: 'us-east-1' }), tableName: 'ledger' },
      // Requests are counted in memory: this DynamoDB is mocked for the listing's reads.
      { cursors: async () => codec, rateLimiter: new RateLimiter({ policies: readLimitsFile().limits.rateLimits.map((r) => ({ ...r, limit: r.limit * 100 })), counters: new MemoryCounters(), now: () => new Date() }) },
    ),
  );
  beforeEach(() => {
    ddb.reset();
    ddb.on(GetItemCommand).resolves({});
    ddb.on(QueryCommand).resolves({ Items: [] });
  });

  /** The forged cursors from the report: the old format, a DynamoDB key in base64url JSON. */
  const oldStyle = (key: Record<string, string>) => Buffer.from(JSON.stringify(key)).toString('base64url');
  it.each([
    ['empty key attributes', oldStyle({ pk: '', sk: '', gsi1pk: 'PRINCIPAL#alice', gsi1sk: '' })],
    ['mismatching key attributes', oldStyle({ pk: 'APPROVAL#x', sk: 'VOTE#y', gsi1pk: 'PRINCIPAL#alice', gsi1sk: 'ACTION#z' })],
    ['another principal’s partition', oldStyle({ pk: 'ACTION#a', sk: 'ACTION', gsi1pk: 'PRINCIPAL#bob', gsi1sk: 'ACTION#a' })],
    ['a number where a string goes', Buffer.from('{"pk":{"N":"1"}}').toString('base64url')],
  ])('answers a forged cursor (%s) with 400 before asking DynamoDB', async (_label, cursor) => {
    const res = await listed({ cursor });
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body!)).toMatchObject({ type: ProblemType.validation, violations: [{ path: 'query:cursor', message: 'invalid cursor' }] });
    expect(ddb.commandCalls(QueryCommand)).toHaveLength(0);
  });

  it('answers any cursor string it did not seal with a 400 problem, and never asks DynamoDB', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 400 }), async (cursor) => {
        ddb.resetHistory();
        const res = await listed({ cursor });
        expect(res.statusCode).toBe(400);
        expect(res.headers?.['content-type']).toBe('application/problem+json');
        expect(ddb.commandCalls(QueryCommand)).toHaveLength(0);
      }),
      { numRuns: 300 },
    );
  });

  it('starts DynamoDB at a key it builds from the sealed id, and seals the next position', async () => {
    const id = 'act_01J00000000000000000000010';
    const scopeOf: CursorScope = { listing: 'actions', caller: 'alice', filter: '' };
    ddb.on(QueryCommand).resolves({
      Items: [],
      LastEvaluatedKey: { pk: { S: 'ACTION#act_01J00000000000000000000009' }, sk: { S: 'ACTION' }, gsi1pk: { S: 'PRINCIPAL#alice' }, gsi1sk: { S: 'ACTION#act_01J00000000000000000000009' } },
    });
    const res = await listed({ cursor: codec.seal(scopeOf, id) });
    expect(res.statusCode).toBe(200);
    expect(ddb.commandCalls(QueryCommand)[0]!.args[0].input.ExclusiveStartKey).toEqual({
      pk: { S: `ACTION#${id}` },
      sk: { S: 'ACTION' },
      gsi1pk: { S: 'PRINCIPAL#alice' },
      gsi1sk: { S: `ACTION#${id}` },
    });
    const next = (JSON.parse(res.body!) as { nextCursor: string }).nextCursor;
    expect(codec.open(scopeOf, next, ActionIdPattern)).toBe('act_01J00000000000000000000009');
    // Bound to the caller and the filter it was issued with.
    expect((await listed({ cursor: next }, 'mallory')).statusCode).toBe(400);
    expect((await listed({ cursor: next, status: 'completed' })).statusCode).toBe(400);
  });

  it('maps a DynamoDB ValidationException to a 400 problem, not a 500', async () => {
    ddb.on(QueryCommand).rejects(Object.assign(new Error('The provided starting key is invalid'), { name: 'ValidationException' }));
    const res = await listed({});
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body!)).toMatchObject({ type: ProblemType.validation, status: 400 });
    expect(res.body).not.toMatch(/starting key/);
  });
});
