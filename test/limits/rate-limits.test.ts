import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RateLimitSchema, type RateLimit } from '../../lambdas/limits/config';
import { rateLimitProblem } from '../../lambdas/limits/http';
import {
  applicablePolicies,
  leaseSize,
  rateLimitFields,
  RateLimitExceededError,
  rateRequestOf,
  secondsToReset,
  shardCount,
  shardLimit,
  subjectKey,
  tightest,
  windowOf,
  type PolicyState,
} from '../../lambdas/limits/rate-limits';
import { openApiDocument } from '../../lambdas/api/openapi';
import { toolRegistry } from '../../lambdas/tools/registry';

const policy = (p: Partial<RateLimit> & Pick<RateLimit, 'id' | 'scope'>): RateLimit => RateLimitSchema.parse({ limit: 100, windowSeconds: 60, ...p });
const at = (iso: string) => new Date(iso);
const isTool = (name: string) => toolRegistry.find(name) !== undefined;

/** The header patterns the published contract holds every response to. */
const headerPattern = (name: 'RateLimitPolicy' | 'RateLimit') => {
  const headers = (openApiDocument().components as { headers: Record<string, { schema: { pattern: string } }> }).headers;
  return new RegExp(headers[name]!.schema.pattern);
};

describe('windows', () => {
  it('are whole multiples of their length since the epoch, daily ones UTC days', () => {
    expect(windowOf(at('2030-01-01T00:00:59.999Z'), 60)).toEqual({ start: 1_893_456_000, end: 1_893_456_060 });
    expect(windowOf(at('2030-01-01T00:01:00.000Z'), 60).start).toBe(1_893_456_060);
    const day = windowOf(at('2030-01-01T13:14:15Z'), 86_400);
    expect(new Date(day.start * 1000).toISOString()).toBe('2030-01-01T00:00:00.000Z');
    expect(new Date(day.end * 1000).toISOString()).toBe('2030-01-02T00:00:00.000Z');
  });

  it('reset in whole seconds, never 0, and contain the moment they were made for', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4_102_444_800_000 }), fc.integer({ min: 1, max: 31 * 86_400 }), (ms, w) => {
        const moment = new Date(ms);
        const window = windowOf(moment, w);
        expect(window.end - window.start).toBe(w);
        expect(window.start * 1000).toBeLessThanOrEqual(ms);
        expect(window.end * 1000).toBeGreaterThan(ms);
        const t = secondsToReset(window, moment);
        expect(t).toBeGreaterThanOrEqual(1);
        expect(t).toBeLessThanOrEqual(w);
      }),
    );
    expect(secondsToReset(windowOf(at('2030-01-01T00:00:43.200Z'), 60), at('2030-01-01T00:00:43.200Z'))).toBe(17);
    expect(secondsToReset(windowOf(at('2030-01-01T00:00:00Z'), 60), at('2030-01-01T00:00:00Z'))).toBe(60);
  });
});

describe('shards and leases', () => {
  it('split a limit into shares that differ by at most one and sum to it exactly', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 1, max: 64 }), (limit, shards) => {
        const p = policy({ id: 'p', scope: 'global', limit, shards: Math.min(shards, limit) });
        const shares = Array.from({ length: shardCount(p) }, (_, i) => shardLimit(p, i));
        expect(shares.reduce((a, b) => a + b, 0)).toBe(limit);
        expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
        for (let i = 0; i < shares.length; i++) {
          expect(leaseSize(p, i)).toBeGreaterThanOrEqual(1);
          expect(leaseSize(p, i)).toBeLessThanOrEqual(shares[i]!);
        }
      }),
    );
  });

  it('shard hot scopes by default and never into more shards than the limit', () => {
    expect(shardCount(policy({ id: 'g', scope: 'global' }))).toBe(8);
    expect(shardCount(policy({ id: 'c', scope: 'connector' }))).toBe(8);
    expect(shardCount(policy({ id: 'p', scope: 'principal' }))).toBe(1);
    expect(shardCount(policy({ id: 'tiny', scope: 'global', limit: 3 }))).toBe(3);
    expect(leaseSize(policy({ id: 'p', scope: 'principal', limit: 600 }), 0)).toBe(6);
    expect(leaseSize(policy({ id: 'p', scope: 'principal', limit: 600, lease: 1 }), 0)).toBe(1);
  });

  it('refuse a file with more shards than its limit, naming the field', () => {
    expect(() => RateLimitSchema.parse({ id: 'x', scope: 'global', limit: 10, windowSeconds: 60, shards: 65 })).toThrow();
  });
});

describe('which policies count a request', () => {
  const policies = [
    policy({ id: 'g', scope: 'global' }),
    policy({ id: 'p', scope: 'principal' }),
    policy({ id: 'a', scope: 'agent' }),
    policy({ id: 't', scope: 'tool' }),
    policy({ id: 'c', scope: 'connector' }),
    policy({ id: 'pay', scope: 'connector', only: ['payments'] }),
  ];

  it('global and principal always; agent when named; tools and connectors of an action, `only` honoured', () => {
    const read = applicablePolicies(policies, { principal: 'alice', tools: [] });
    expect(read.map((a) => a.policy.id)).toEqual(['g', 'p']);
    const action = applicablePolicies(policies, { principal: 'alice', agent: 'bot', tools: ['travel.hold_seat', 'travel.book_flight', 'payments.charge'] });
    expect(action.map((a) => `${a.policy.id}:${a.label}`)).toEqual([
      'g:null',
      'p:alice',
      'a:bot',
      't:travel.hold_seat',
      't:travel.book_flight',
      't:payments.charge',
      'c:travel',
      'c:payments',
      'pay:payments',
    ]);
  });

  it('scope agents to their principal, so one person cannot use up another\'s agent quota', () => {
    const [alice] = applicablePolicies([policies[2]!], { principal: 'alice', agent: 'bot', tools: [] });
    const [bob] = applicablePolicies([policies[2]!], { principal: 'bob', agent: 'bot', tools: [] });
    expect(alice!.subject).not.toBe(bob!.subject);
  });

  it('key subjects by a fixed-size hash of scope and name, whatever the name (fast-check)', () => {
    fc.assert(
      fc.property(fc.constantFrom('global', 'principal', 'agent', 'tool', 'connector' as const), fc.string({ maxLength: 300, unit: 'grapheme' }), fc.string({ maxLength: 300 }), (scope, a, b) => {
        const key = subjectKey(scope, a);
        expect(key).toMatch(/^[A-Za-z0-9_-]{22}$/);
        if (a !== b) expect(subjectKey(scope, b)).not.toBe(key);
        expect(subjectKey(scope === 'tool' ? 'connector' : 'tool', a)).not.toBe(key);
      }),
    );
  });

  it('reads agent and tools from any body without throwing, counting only registered tools (fast-check)', () => {
    const envelope = fc.record(
      {
        agent: fc.oneof(fc.record({ name: fc.oneof(fc.string({ maxLength: 200 }), fc.jsonValue()) }), fc.jsonValue()),
        tool: fc.oneof(fc.constantFrom(...toolRegistry.all().map((t) => t.fullName)), fc.string(), fc.jsonValue()),
        plan: fc.oneof(fc.array(fc.record({ tool: fc.oneof(fc.constantFrom('travel.hold_seat', 'nope.never'), fc.jsonValue()) }), { maxLength: 40 }), fc.jsonValue()),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(envelope, fc.jsonValue(), fc.constant(undefined)), fc.boolean(), (body, countsTools) => {
        const request = rateRequestOf('alice', body, { countsTools, isTool });
        expect(request.principal).toBe('alice');
        if (request.agent !== undefined) expect(request.agent.length).toBeGreaterThan(0);
        if (request.agent !== undefined) expect(request.agent.length).toBeLessThanOrEqual(128);
        if (!countsTools) expect(request.tools).toEqual([]);
        for (const tool of request.tools) expect(isTool(tool)).toBe(true);
        expect(request.tools.length).toBeLessThanOrEqual(21);
      }),
    );
    expect(rateRequestOf('alice', { tool: 'echo.say', agent: { name: 'bot' } }, { countsTools: true, isTool })).toEqual({ principal: 'alice', agent: 'bot', tools: ['echo.say'] });
    expect(rateRequestOf('alice', { tool: 'made.up', agent: { name: 'x'.repeat(129) } }, { countsTools: true, isTool })).toEqual({ principal: 'alice', tools: [] });
  });
});

describe('the RateLimit fields', () => {
  const state = (id: string, remaining: number, resetSeconds: number, limit = 100, windowSeconds = 60): PolicyState => ({
    policy: policy({ id, scope: 'principal', limit, windowSeconds }),
    remaining,
    resetSeconds,
  });

  it('render as draft-ietf-httpapi-ratelimit-headers writes them', () => {
    expect(rateLimitFields(state('burst', 42, 17))).toEqual({ 'ratelimit-policy': '"burst";q=100;w=60', ratelimit: '"burst";r=42;t=17' });
  });

  it('always match the pattern the OpenAPI document publishes (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z][a-z0-9-]{0,62}$/),
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.integer({ min: 1, max: 31 * 86_400 }),
        fc.double({ min: -5, max: 1e7, noNaN: true }),
        (id, limit, w, remaining) => {
          const fields = rateLimitFields(state(id, remaining, Math.max(1, Math.ceil(w / 2)), limit, w));
          expect(fields['ratelimit-policy']).toMatch(headerPattern('RateLimitPolicy'));
          expect(fields.ratelimit).toMatch(headerPattern('RateLimit'));
        },
      ),
    );
  });

  it('name the tightest policy: least remaining, then the longest wait', () => {
    expect(tightest([state('a', 5, 10), state('b', 3, 50), state('c', 3, 80)])!.policy.id).toBe('c');
    expect(tightest([])).toBeUndefined();
  });
});

describe('the 429', () => {
  it('is the IANA quota-exceeded problem with violated-policies, Retry-After and the fields of the violated policy', () => {
    const error = new RateLimitExceededError([
      { policy: policy({ id: 'agent-burst', scope: 'agent', limit: 120 }), remaining: 0, resetSeconds: 17 },
      { policy: policy({ id: 'principal-daily', scope: 'principal', limit: 20_000, windowSeconds: 86_400 }), remaining: 0, resetSeconds: 3_600 },
    ]);
    const problem = rateLimitProblem(error)!;
    expect(problem.problem).toMatchObject({
      type: 'https://iana.org/assignments/http-problem-types#quota-exceeded',
      status: 429,
      'violated-policies': ['agent-burst', 'principal-daily'],
      retryAfter: 3_600,
    });
    expect(problem.headers).toEqual({ 'retry-after': '3600', 'ratelimit-policy': '"principal-daily";q=20000;w=86400', ratelimit: '"principal-daily";r=0;t=3600' });
    expect(rateLimitProblem(new Error('other'))).toBeUndefined();
  });
});
