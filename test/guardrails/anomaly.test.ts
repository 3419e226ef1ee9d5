import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DynamoGuardrailStore } from '../../lambdas/adapters/aws/dynamo-guardrails';
import { ANOMALY_GUARD_ACTOR, AnomalyGuard } from '../../lambdas/guardrails/anomaly';
import { HaltGuard, subjectOf, type HaltDeps } from '../../lambdas/guardrails/halts';
import { ActionHaltedError } from '../../lambdas/guardrails/errors';
import { InvalidLimitsError, parseLimits, readLimitsFile, type AnomalySettings, type LoadedLimits } from '../../lambdas/limits/config';
import { toolRegistry } from '../../lambdas/tools/registry';
import { quietBreakers, startTestControlPlane } from '../helpers/control-plane';
import { isoDay } from '../helpers/dates';
import { startTestDynamo, type TestDynamo } from '../helpers/dynamo';

/**
 * The anomaly guard: per-agent rolling baselines in memory, a sharp departure raising an
 * alert and (when configured) a kill-switch halt on the agent, audited with its figures.
 * Time moves through an injected clock, never by sleeping.
 */

const settings: AnomalySettings = {
  bucketSeconds: 60,
  baselineBuckets: 10,
  minBaselineBuckets: 3,
  factor: 5,
  floors: { requests: 20, denials: 10, retries: 10, spend: 5000 },
  action: 'halt',
  haltMode: 'stop',
  cooldownSeconds: 600,
};
const money = { baseCurrency: 'USD', rates: { USD: 1, EUR: 1.1 } };

function limitsWith(anomaly: AnomalySettings | undefined): LoadedLimits {
  const shipped = readLimitsFile().limits;
  return parseLimits(JSON.stringify({ ...shipped, anomaly }), 'test-limits.json');
}

let db: TestDynamo;
let store: DynamoGuardrailStore;
beforeAll(async () => {
  db = await startTestDynamo();
  store = new DynamoGuardrailStore({ client: db.client, tableName: db.tableName });
});
afterAll(async () => {
  await db?.close();
});

function guardAt(clock: { t: number }, over: Partial<AnomalySettings> = {}) {
  const limits = limitsWith({ ...settings, ...over });
  const halts: HaltDeps = { halts: store, tools: toolRegistry, limits, now: () => new Date(clock.t) };
  const counted: string[] = [];
  const guard = new AnomalyGuard({
    settings: limits.limits.anomaly!,
    now: () => new Date(clock.t),
    halts,
    tools: toolRegistry,
    money,
    metrics: { count: (name, dims) => counted.push(`${name}:${dims?.signal}:${dims?.action}`), observe: () => undefined },
  });
  return { guard, halts, counted };
}

const request = (agent: string, over: Partial<{ denied: boolean; retry: boolean; spendMinor: number }> = {}) => ({
  agent,
  principal: 'alice',
  denied: false,
  retry: false,
  spendMinor: 0,
  ...over,
});

describe('the anomaly guard', () => {
  it('an agent that starts looping is halted, audited with the figures, and its new work refused', async () => {
    // Prepare: five minutes of steady traffic (3 requests a minute).
    const clock = { t: Date.parse('2026-03-01T00:00:00Z') };
    const { guard, halts, counted } = guardAt(clock);
    for (let minute = 0; minute < 5; minute++) {
      for (let i = 0; i < 3; i++) expect(await guard.record(request('loop-bot'))).toBeUndefined();
      clock.t += 60_000;
    }
    // Act: it loops, 30 requests in a minute.
    const raised = [];
    for (let i = 0; i < 30; i++) {
      const a = await guard.record(request('loop-bot'));
      if (a) raised.push({ at: i + 1, a });
    }
    // Assess: one anomaly, at the 20th request (the floor, 6.7x the baseline of 3).
    expect(raised).toHaveLength(1);
    expect(raised[0]!.at).toBe(20);
    const anomaly = raised[0]!.a;
    expect(anomaly).toMatchObject({ agent: 'loop-bot', signal: 'requests', observed: 20, baseline: 3, action: 'halt', haltId: expect.stringMatching(/^hlt_/) });
    expect(counted).toEqual(['AnomalyDetected:requests:halt']);
    const halt = await store.getHalt(anomaly.haltId!);
    expect(halt).toMatchObject({ scope: 'agent', target: 'loop-bot', mode: 'stop', status: 'active', createdBy: { sub: ANOMALY_GUARD_ACTOR } });
    expect(halt!.reason).toMatch(/requests 20 in 60s/);
    const trail = (await store.listHaltEvents()).filter((e) => e.type === 'anomaly.detected' && e.data.haltId === anomaly.haltId);
    expect(trail).toHaveLength(1);
    expect(trail[0]!.data).toMatchObject({ observed: 20, baseline: 3, ratio: expect.any(Number), floor: 20, factor: 5 });
    await expect(new HaltGuard(halts).refuseNew(subjectOf(toolRegistry, { sub: 'alice' }, 'loop-bot', ['travel.hold_seat']))).rejects.toBeInstanceOf(ActionHaltedError);
    // Other agents are not touched.
    await expect(new HaltGuard(halts).refuseNew(subjectOf(toolRegistry, { sub: 'alice' }, 'trip-bot', ['travel.hold_seat']))).resolves.toBeUndefined();
  });

  it('watches denials, retries and spend velocity, each against its own baseline; alert mode halts nothing', async () => {
    for (const [signal, over] of [
      ['denials', { denied: true }],
      ['retries', { retry: true }],
      ['spend', { spendMinor: 100_000 }],
    ] as const) {
      const clock = { t: Date.parse('2026-03-02T00:00:00Z') };
      const { guard } = guardAt(clock, { action: 'alert', floors: { [signal]: settings.floors[signal] } });
      for (let minute = 0; minute < 4; minute++) {
        await guard.record(request(`${signal}-bot`, signal === 'spend' ? { spendMinor: 1000 } : {}));
        clock.t += 60_000;
      }
      let anomaly;
      for (let i = 0; i < 15 && !anomaly; i++) anomaly = await guard.record(request(`${signal}-bot`, over));
      expect(anomaly, signal).toMatchObject({ signal, action: 'alert' });
      expect(anomaly!.haltId).toBeUndefined();
    }
  });

  it('no alert before an agent has a baseline, and at most one per cooldown', async () => {
    const clock = { t: Date.parse('2026-03-03T00:00:00Z') };
    const { guard } = guardAt(clock, { action: 'alert' });
    for (let i = 0; i < 100; i++) expect(guard.observe(request('new-bot'))).toBeUndefined();
    for (let minute = 0; minute < 3; minute++) {
      guard.observe(request('calm-bot'));
      clock.t += 60_000;
    }
    const seen = Array.from({ length: 100 }, () => guard.observe(request('calm-bot'))).filter(Boolean);
    expect(seen).toHaveLength(1);
  });

  it('property: traffic that stays within the factor of its own steady rate never alerts', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.array(fc.double({ min: 0.5, max: 1.5, noNaN: true }), { minLength: 8, maxLength: 30 }), (rate, wobble) => {
        const clock = { t: Date.parse('2026-03-04T00:00:00Z') };
        const guard = new AnomalyGuard({ settings: { ...settings, action: 'alert' }, now: () => new Date(clock.t), halts: {} as HaltDeps, tools: toolRegistry, money });
        for (const w of wobble) {
          const n = Math.max(1, Math.round(rate * w));
          for (let i = 0; i < n; i++) if (guard.observe(request('steady-bot'))) return false;
          clock.t += 60_000;
        }
        return true;
      }),
      { numRuns: 100 },
    );
  });

  it('limits.json: thresholds are validated, each problem named by its path', () => {
    const bad = [
      [{ ...settings, factor: 1 }, 'anomaly.factor'],
      [{ ...settings, floors: {} }, 'anomaly.floors'],
      [{ ...settings, minBaselineBuckets: 50 }, 'anomaly.minBaselineBuckets'],
      [{ ...settings, action: 'panic' }, 'anomaly.action'],
      [{ ...settings, floors: { requests: -1 } }, 'anomaly.floors.requests'],
      [{ ...settings, extra: true }, 'anomaly'],
    ] as const;
    for (const [anomaly, path] of bad) {
      const text = JSON.stringify({ ...readLimitsFile().limits, anomaly });
      let error: unknown;
      try {
        parseLimits(text, 'x.json');
      } catch (e) {
        error = e;
      }
      expect(error, path).toBeInstanceOf(InvalidLimitsError);
      expect((error as InvalidLimitsError).problems.map((p) => p.path), path).toContain(path);
    }
    expect(readLimitsFile().limits.anomaly).toBeDefined();
  });
});

describe('the anomaly guard at cold start', () => {
  it('converts its spend floor when first compared, not when built (no currency data for an instance that serves no action)', async () => {
    // Prepare: fresh modules, so the money module's cache of minor units is empty.
    vi.resetModules();
    const { AnomalyGuard: FreshGuard } = await import('../../lambdas/guardrails/anomaly');
    const formats = vi.spyOn(Intl, 'NumberFormat');
    try {
      const clock = { t: Date.parse('2031-01-01T00:00:00Z') };
      const limits = limitsWith(settings);
      // Act
      const guard = new FreshGuard({ settings: limits.limits.anomaly!, now: () => new Date(clock.t), halts: { halts: store, tools: toolRegistry, limits, now: () => new Date(clock.t) }, tools: toolRegistry, money });
      const readAtBuild = formats.mock.calls.length;
      const anomaly = guard.observe(request('spender', { spendMinor: 1000 }));
      // Assess: built without ICU; the floor is converted when first compared (the spend test
      // above holds that it still stops a spender).
      expect(readAtBuild).toBe(0);
      expect(anomaly).toBeUndefined();
    } finally {
      formats.mockRestore();
    }
  });
});

describe('the anomaly guard in the control plane', () => {
  it('a looping agent is halted through the kill switch and its next action is refused with 403 halted', async () => {
    const clock = { t: Date.parse('2026-03-05T00:00:00Z') };
    const cp = await startTestControlPlane({
      controlPlane: {
        limits: parseLimits(JSON.stringify({ ...quietBreakers().limits, anomaly: { ...settings, floors: { denials: 5 } } }), 'test-limits.json'),
        anomalyClock: () => new Date(clock.t),
        reconcileIntervalMs: 0,
      },
    });
    try {
      const alice = await cp.token('alice', { roles: ['employee'], manager: 'bob', department: 'sales' });
      const search = (n: string, args: Record<string, unknown> = { origin: 'SFO', destination: 'JFK', date: isoDay(10) }) =>
        cp.post(alice, { agent: { name: 'loop-bot' }, tool: 'travel.search_flights', arguments: args }, { key: `k-${n}` });
      for (let minute = 0; minute < 4; minute++) {
        expect((await search(`ok-${minute}`)).status).toBe(200);
        clock.t += 60_000;
      }
      // It starts looping on a call it gets wrong: every one refused.
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) statuses.push((await search(`bad-${i}`, { origin: 'nowhere' })).status);
      expect(statuses.every((s) => s === 400 || s === 403)).toBe(true);
      const next = await search('after', { origin: 'SFO', destination: 'JFK', date: isoDay(11) });
      expect(next.status).toBe(403);
      expect(next.body.type).toMatch(/halted/);
      const trail = (await cp.cp.composition.guardrails.listHaltEvents()).filter((e) => e.type === 'anomaly.detected');
      expect(trail).toEqual([expect.objectContaining({ actor: ANOMALY_GUARD_ACTOR, data: expect.objectContaining({ agent: 'loop-bot', signal: 'denials', observed: 5 }) })]);
    } finally {
      await cp.close();
    }
  });
});
