import { DynamoDBClient, GetItemCommand, PutItemCommand, UpdateItemCommand, DeleteItemCommand } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { createIntakeHandler } from '../../lambdas/intake/handler';
import { httpEvent, lambdaContext } from '../helpers/events';
import { intakeFunctionDeps, RecordingWorkflow } from '../helpers/intake';
import { MemoryCounters } from '../helpers/rate-limits';
import { readLimitsFile } from '../../lambdas/limits/config';
import { RateLimiter } from '../../lambdas/limits/rate-limiter';

const ddb = mockClient(DynamoDBClient);
const workflow = new RecordingWorkflow();

// Requests are still counted (the shipped policies, with room for every generated request), in
// memory: `writes()` is about the ledger's records, and no body is refused for its rate.
const counters = new MemoryCounters();
const deps = intakeFunctionDeps(
  { client: new DynamoDBClient({ region: 'us-east-1' }), tableName: 'ledger' },
  { workflow, rateLimiter: new RateLimiter({ policies: readLimitsFile().limits.rateLimits.map((r) => ({ ...r, limit: r.limit * 100 })), counters, now: () => new Date() }) },
);
const handler = createIntakeHandler(async () => deps);
beforeEach(() => {
  ddb.reset();
  ddb.on(GetItemCommand).resolves({});
});

const hostileKey = fc.constantFrom('__proto__', 'constructor', 'prototype', '$ref', '', '💥', 'tool', 'plan', 'a'.repeat(300));
const hostileString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.constant('\u0000\u202e\ud800'),
  fc.constant('x'.repeat(70_000)),
  fc.constant('{"$ref":"steps.x.output"}'),
);
const hostileValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.jsonValue(),
    hostileString,
    fc.dictionary(fc.oneof(hostileKey, fc.string()), tie('value'), { maxKeys: 4 }),
    fc.array(tie('value'), { maxLength: 4 }),
  ),
})).value;

/** Nests a value `depth` levels deep in arrays or objects. */
const deep = fc.tuple(fc.integer({ min: 30, max: 3000 }), fc.boolean()).map(([depth, arrays]) => {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = arrays ? [v] : { a: v };
  return v;
});

const envelopeLike = fc.record(
  {
    tool: fc.oneof(fc.constantFrom('echo.say', 'nope.nothing', 'ECHO.SAY', 'echo.say.more'), hostileString),
    arguments: fc.oneof(hostileValue, fc.record({ message: hostileValue }), deep),
    agent: fc.oneof(hostileValue, fc.record({ name: hostileString })),
    mode: fc.oneof(fc.constantFrom('execute', 'dry_run', 'yolo'), hostileValue),
    reason: hostileValue,
    plan: fc.oneof(fc.array(fc.record({ id: hostileString, tool: hostileString, arguments: hostileValue }), { maxLength: 25 }), hostileValue),
    extra: hostileValue,
  },
  { requiredKeys: [] },
);

/** Serializes, sometimes with prototype-polluting keys spliced into the raw text. */
const rawBody = fc.oneof(
  envelopeLike.map((v) => JSON.stringify(v)),
  hostileValue.map((v) => JSON.stringify(v) ?? 'null'),
  deep.map((v) => JSON.stringify(v)),
  fc.string(),
  fc.constant('{"__proto__":{"polluted":true},"tool":"echo.say","arguments":{"message":"x"},"agent":{"name":"a"}}'),
  fc.constant('{"tool":"echo.say","arguments":{"message":"x","constructor":{"prototype":{"p":1}}},"agent":{"name":"a"}}'),
);

function writes(): number {
  return ddb.commandCalls(PutItemCommand).length + ddb.commandCalls(UpdateItemCommand).length + ddb.commandCalls(DeleteItemCommand).length;
}

describe('POST /v1/actions with hostile bodies', () => {
  it('always answers a 4xx problem document, never 5xx, never writes', async () => {
    await fc.assert(
      fc.asyncProperty(rawBody, fc.option(fc.string({ maxLength: 300 })), async (body, key) => {
        ddb.resetHistory();
        const res = await handler(
          httpEvent({ method: 'POST', path: '/v1/actions', body, headers: key === null ? {} : { 'idempotency-key': key } }),
          lambdaContext,
        );
        const status = res.statusCode ?? 0;
        if (status === 202) return; // a generator may produce a valid call now and then
        expect(status).toBeGreaterThanOrEqual(400);
        expect(status).toBeLessThan(500);
        expect(res.headers?.['content-type']).toBe('application/problem+json');
        const doc = JSON.parse(res.body ?? '') as Record<string, unknown>;
        expect(doc.status).toBe(status);
        expect(typeof doc.type).toBe('string');
        expect(typeof doc.detail).toBe('string');
        expect(res.body).not.toMatch(/\n\s+at /);
        expect(writes()).toBe(0);
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });

  it('lists every violation with a path an LLM can act on', async () => {
    const body = JSON.stringify({
      plan: [
        { id: 'a', tool: 'echo.say', arguments: { message: 5, extra: true } },
        { id: 'b', tool: 'nope.tool', arguments: {} },
        { id: 'c', tool: 'echo.say', arguments: { message: { $ref: 'steps.d.output.message' } } },
        { id: 'd', tool: 'echo.say', arguments: { message: { $ref: 'steps.a.output.nothing' } } },
      ],
      agent: { name: 'x' },
      surprise: 1,
    });
    const res = await handler(httpEvent({ method: 'POST', path: '/v1/actions', body, headers: { 'idempotency-key': 'k' } }), lambdaContext);
    expect(res.statusCode).toBe(400);
    const doc = JSON.parse(res.body!) as { violations: { path: string; message: string }[] };
    const paths = doc.violations.map((v) => v.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/plan/0/arguments/message',
        '/plan/0/arguments',
        '/plan/1/tool',
        '/plan/2/arguments/message/$ref',
        '/plan/3/arguments/message/$ref',
        '/',
      ]),
    );
    expect(doc.violations.find((v) => v.path === '/plan/2/arguments/message/$ref')?.message).toMatch(/runs later/);
    expect(doc.violations.find((v) => v.path === '/plan/3/arguments/message/$ref')?.message).toMatch(/no output/);
    expect(writes()).toBe(0);
  });

  it('rejects plans longer than 20 steps and missing Idempotency-Key', async () => {
    const plan = Array.from({ length: 21 }, (_, i) => ({ id: `s${i}`, tool: 'echo.say', arguments: { message: 'x' } }));
    const long = await handler(
      httpEvent({ method: 'POST', path: '/v1/actions', body: JSON.stringify({ plan, agent: { name: 'a' } }), headers: { 'idempotency-key': 'k' } }),
      lambdaContext,
    );
    expect(long.statusCode).toBe(400);
    expect(long.body).toContain('/plan');
    const noKey = await handler(
      httpEvent({ method: 'POST', path: '/v1/actions', body: JSON.stringify({ tool: 'echo.say', arguments: { message: 'x' }, agent: { name: 'a' } }) }),
      lambdaContext,
    );
    expect(noKey.statusCode).toBe(400);
    expect(JSON.parse(noKey.body!).type).toBe('urn:airlock:problem:idempotency-key-missing');
  });
});
