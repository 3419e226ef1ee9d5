import { describe, expect, it } from 'vitest';
import { RateLimitSchema, type RateLimit } from '../../lambdas/limits/config';
import { RateLimiter } from '../../lambdas/limits/rate-limiter';
import { RateLimitExceededError, type RateRequest } from '../../lambdas/limits/rate-limits';
import { MemoryCounters } from '../helpers/rate-limits';
import type { Logger } from '../../lambdas/shared/logger';

/** The limiter's bookkeeping over MemoryCounters (writes counted); over DynamoDB: rate-counters.test.ts. */

const policy = (p: Partial<RateLimit> & Pick<RateLimit, 'id' | 'scope'>): RateLimit => RateLimitSchema.parse({ limit: 10, windowSeconds: 60, ...p });

/** A clock the test moves; starts mid-window (13 s into a minute). */
function clock(start = Date.UTC(2030, 0, 1, 0, 0, 13)) {
  let ms = start;
  return { now: () => new Date(ms), advance: (s: number) => (ms += s * 1000) };
}

async function admitted(limiter: RateLimiter, n: number, request: RateRequest = { principal: 'alice', tools: [] }): Promise<number> {
  let ok = 0;
  for (let i = 0; i < n; i++) {
    try {
      await limiter.admit(request);
      ok++;
    } catch (error) {
      if (!(error instanceof RateLimitExceededError)) throw error;
    }
  }
  return ok;
}

describe('the rate limiter', () => {
  it('admits exactly the limit per window, tells what is left, and starts again in the next window', async () => {
    const counters = new MemoryCounters();
    const c = clock();
    const limiter = new RateLimiter({ policies: [policy({ id: 'p', scope: 'principal', limit: 5, lease: 1 })], counters, now: c.now });
    const first = await limiter.admit({ principal: 'alice', tools: [] });
    expect(first.tightest).toMatchObject({ remaining: 4, resetSeconds: 47 });
    expect(await admitted(limiter, 10)).toBe(4);
    const refusal = await limiter.admit({ principal: 'alice', tools: [] }).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(RateLimitExceededError);
    expect((refusal as RateLimitExceededError).retryAfterSeconds).toBe(47);
    // Another principal has a counter of their own.
    expect(await admitted(limiter, 3, { principal: 'bob', tools: [] })).toBe(3);
    c.advance(47);
    expect(await admitted(limiter, 10)).toBe(5);
  });

  it('leases blocks: one write per block, and several instances together never pass the limit', async () => {
    const counters = new MemoryCounters();
    const c = clock();
    const p = policy({ id: 'p', scope: 'principal', limit: 100, lease: 10 });
    const instances = Array.from({ length: 4 }, () => new RateLimiter({ policies: [p], counters, now: c.now }));
    expect(await admitted(instances[0]!, 10)).toBe(10);
    expect(counters.takes).toBe(1);
    // Each instance holds a part-spent block: the rest of the limit is still handed out, never more.
    for (const limiter of instances.slice(1)) expect(await admitted(limiter, 3)).toBe(3);
    let total = 10 + 9;
    for (const limiter of instances) total += await admitted(limiter, 100);
    expect(total).toBe(100);
    expect(counters.total('p')).toBe(100);
  });

  it('refuses without a write once it knows a window is spent', async () => {
    const counters = new MemoryCounters();
    const limiter = new RateLimiter({ policies: [policy({ id: 'p', scope: 'principal', limit: 2, lease: 1 })], counters, now: clock().now });
    expect(await admitted(limiter, 3)).toBe(2);
    const writes = counters.takes;
    expect(await admitted(limiter, 5)).toBe(0);
    expect(counters.takes).toBe(writes);
  });

  it('spreads a hot counter over shards and still reaches its whole limit', async () => {
    const counters = new MemoryCounters();
    let r = 0;
    const limiter = new RateLimiter({
      policies: [policy({ id: 'g', scope: 'global', limit: 10, shards: 4, lease: 1 })],
      counters,
      now: clock().now,
      random: () => (r++ % 4) / 4,
    });
    expect(await admitted(limiter, 20)).toBe(10);
    expect([...counters.counts.values()].sort()).toEqual([2, 2, 3, 3]);
  });

  it('hands back what other policies took when one refuses, so a refused request uses up nothing', async () => {
    const counters = new MemoryCounters();
    const limiter = new RateLimiter({
      policies: [policy({ id: 'p', scope: 'principal', limit: 100, lease: 1 }), policy({ id: 'a', scope: 'agent', limit: 2, lease: 1 })],
      counters,
      now: clock().now,
    });
    expect(await admitted(limiter, 5, { principal: 'alice', agent: 'loop', tools: [] })).toBe(2);
    // The principal's three refused requests are in this instance's lease, not lost: 98 more fit.
    expect(await admitted(limiter, 200)).toBe(98);
    expect(counters.total('p')).toBe(100);
  });

  it('counts refusals as a metric per policy and logs an audit line without request content', async () => {
    const counted: { name: string; dims: unknown }[] = [];
    const lines: { msg: string; data: unknown }[] = [];
    const log = { info: (msg: string, data: unknown) => lines.push({ msg, data }) } as unknown as Logger;
    const limiter = new RateLimiter({
      policies: [policy({ id: 'agent-burst', scope: 'agent', limit: 1, lease: 1 })],
      counters: new MemoryCounters(),
      now: clock().now,
      metrics: { count: (name, dims) => counted.push({ name, dims }), observe: () => undefined },
    });
    const request = { principal: 'alice', agent: 'loop', tools: ['echo.say'] };
    await limiter.admit(request, log);
    await expect(limiter.admit(request, log)).rejects.toBeInstanceOf(RateLimitExceededError);
    expect(counted).toEqual([{ name: 'RateLimitRejected', dims: { policy: 'agent-burst' } }]);
    expect(lines).toEqual([{ msg: 'rate limit refused', data: { audit: 'ratelimit.refused', principal: 'alice', agent: 'loop', tools: ['echo.say'], policies: ['agent-burst'] } }]);
  });

  it("counts a kill-switch call against the kill switch's budget alone, and audits its refusal", async () => {
    const lines: { msg: string; data: unknown }[] = [];
    const log = { info: (msg: string, data: unknown) => lines.push({ msg, data }) } as unknown as Logger;
    const counters = new MemoryCounters();
    const budget = policy({ id: 'kill-switch', scope: 'principal', limit: 2, lease: 1 });
    const limiter = new RateLimiter({
      policies: [policy({ id: 'global-burst', scope: 'global', limit: 1, lease: 1 })],
      killSwitch: { role: 'KillSwitch', budget },
      counters,
      now: clock().now,
    });
    expect(limiter.killSwitchRole).toBe('KillSwitch');
    expect(await admitted(limiter, 3, { principal: 'agent-owner', tools: [] })).toBe(1);
    // The global quota is spent; the operator's halts still go through, up to the budget.
    const ops = { principal: 'ops', tools: [], killSwitch: true };
    expect((await limiter.admit(ops, log)).tightest).toMatchObject({ policy: budget, remaining: 1 });
    await limiter.admit(ops, log);
    const refusal = await limiter.admit(ops, log).catch((e: unknown) => e);
    expect((refusal as RateLimitExceededError).violated.map((v) => v.policy.id)).toEqual(['kill-switch']);
    expect(lines).toEqual([{ msg: 'rate limit refused', data: { audit: 'ratelimit.refused', principal: 'ops', tools: [], policies: ['kill-switch'] } }]);
    expect(counters.total('global-burst')).toBe(1);
    expect(counters.total('kill-switch')).toBe(2);
    // Each operator has a budget of their own; without one configured a kill-switch call counts as any other.
    expect(await admitted(limiter, 3, { principal: 'ops-2', tools: [], killSwitch: true })).toBe(2);
    const plain = new RateLimiter({ policies: [policy({ id: 'global-burst', scope: 'global', limit: 1, lease: 1 })], counters: new MemoryCounters(), now: clock().now });
    expect(await admitted(plain, 3, { principal: 'ops', tools: [], killSwitch: true })).toBe(1);
  });

  it('shows quotas read from the counters, leased blocks counted as used', async () => {
    const counters = new MemoryCounters();
    const c = clock();
    const limiter = new RateLimiter({
      policies: [policy({ id: 'p', scope: 'principal', limit: 100, lease: 10 }), policy({ id: 't', scope: 'tool', limit: 50 })],
      counters,
      now: c.now,
    });
    await limiter.admit({ principal: 'alice', tools: [] });
    expect(await limiter.quotas({ principal: 'alice', tools: ['echo.say'] })).toEqual([
      { id: 'p', scope: 'principal', subject: null, limit: 100, windowSeconds: 60, remaining: 90, resetSeconds: 47, resetAt: '2030-01-01T00:01:00.000Z' },
      { id: 't', scope: 'tool', subject: 'echo.say', limit: 50, windowSeconds: 60, remaining: 50, resetSeconds: 47, resetAt: '2030-01-01T00:01:00.000Z' },
    ]);
  });

  it('with no policies counts nothing and is disabled', async () => {
    const counters = new MemoryCounters();
    const limiter = new RateLimiter({ policies: [], counters, now: clock().now });
    expect(limiter.enabled).toBe(false);
    expect(await limiter.admit({ principal: 'alice', tools: [] })).toEqual({ tightest: undefined });
    expect(counters.takes).toBe(0);
  });
});
