import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoGuardrailStore } from '../../lambdas/adapters/aws/dynamo-guardrails';
import {
  ActionHaltedError,
  HaltAlreadyResumedError,
  HaltForbiddenError,
  HaltNotFoundError,
  HaltRequestInvalidError,
} from '../../lambdas/guardrails/errors';
import { createHalt, haltCovers, HaltGuard, listHalts, resumeHalt, subjectOf, type HaltDeps } from '../../lambdas/guardrails/halts';
import { guardrailProblem } from '../../lambdas/guardrails/http';
import { readLimitsFile } from '../../lambdas/limits/config';
import type { Halt } from '../../lambdas/ports/guardrails';
import { toolRegistry } from '../../lambdas/tools/registry';
import { startTestDynamo, type TestDynamo } from '../helpers/dynamo';

/**
 * The kill switch over the real DynamoDB adapter: who may flip it (the limits file's role;
 * refusals audited), what a halt covers, and how late a function may notice one — at most
 * `killSwitch.propagationSeconds`, proven by moving an injected clock, never by sleeping.
 */

let db: TestDynamo;
let store: DynamoGuardrailStore;
const limits = readLimitsFile();
const ROLE = limits.limits.killSwitch.role;
const PROPAGATION_MS = limits.limits.killSwitch.propagationSeconds * 1000;

beforeAll(async () => {
  db = await startTestDynamo();
  store = new DynamoGuardrailStore({ client: db.client, tableName: db.tableName });
});
afterAll(async () => {
  await db?.close();
});

const operator = { sub: 'olivia', roles: ['Employee', ROLE] };
const mallory = { sub: 'mallory', roles: ['Employee', 'SecurityAdmin'] };

function depsAt(clock: { t: number }): HaltDeps {
  return { halts: store, tools: toolRegistry, limits, now: () => new Date(clock.t) };
}

const subject = (over: Partial<{ principal: string; agent: string; tools: string[] }> = {}) =>
  subjectOf(toolRegistry, { sub: over.principal ?? 'alice' }, over.agent ?? 'trip-bot', over.tools ?? ['travel.hold_seat', 'payments.authorize']);

describe('who may halt and resume', () => {
  it('refuses a principal without the role (403 forbidden), and audits who tried and with which roles', async () => {
    const clock = { t: Date.parse('2026-02-01T00:00:00Z') };
    const error = await createHalt(depsAt(clock), mallory, { scope: 'all', reason: 'let me' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HaltForbiddenError);
    expect(guardrailProblem(error)?.problem).toMatchObject({ status: 403, type: 'urn:airlock:problem:forbidden', requiredRole: ROLE });
    await expect(listHalts(depsAt(clock), mallory)).rejects.toBeInstanceOf(HaltForbiddenError);
    await expect(resumeHalt(depsAt(clock), mallory, 'hlt_01JABCDEFGHJKMNPQRSTVWXYZ0', { reason: 'x' })).rejects.toBeInstanceOf(HaltForbiddenError);
    const refused = (await store.listHaltEvents()).filter((e) => e.type === 'halt.refused' && e.actor === 'mallory');
    expect(refused.map((e) => e.data.attempted)).toEqual(['halt', 'list', 'resume']);
    expect(refused[0]!.data).toMatchObject({ roles: ['Employee', 'SecurityAdmin'], requiredRole: ROLE });
    expect((await store.listHalts()).filter((h) => h.createdBy.sub === 'mallory')).toEqual([]);
  });

  it('refuses unknown targets (400 naming the field), a target on `all` and a missing one', async () => {
    const deps = depsAt({ t: Date.now() });
    for (const body of [
      { scope: 'connector', target: 'teleport', reason: 'r' },
      { scope: 'tool', target: 'travel.teleport', reason: 'r' },
      { scope: 'all', target: 'travel', reason: 'r' },
      { scope: 'agent', reason: 'r' },
      { scope: 'tool', target: 'travel.hold_seat', reason: '' },
      { scope: 'everything', reason: 'r' },
      { scope: 'all', reason: 'r', mode: 'hover' },
      { scope: 'all', reason: 'r', extra: 1 },
    ]) {
      const error = await createHalt(deps, operator, body).catch((e: unknown) => e);
      expect(error, JSON.stringify(body)).toBeInstanceOf(HaltRequestInvalidError);
      expect(guardrailProblem(error)?.problem).toMatchObject({ status: 400, type: 'urn:airlock:problem:validation', violations: [expect.objectContaining({ path: expect.stringMatching(/^\//) })] });
    }
  });

  it('answers any body with a halt or a 400, never anything else (property)', async () => {
    const deps = depsAt({ t: Date.now() });
    const nobody = { sub: 'nobody', roles: [ROLE] };
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.anything(),
          fc.record({
            scope: fc.constantFrom('all', 'connector', 'tool', 'agent', 'principal', 'x'),
            target: fc.option(fc.oneof(fc.string(), fc.constantFrom('travel', 'travel.hold_seat')), { nil: undefined }),
            reason: fc.string(),
            mode: fc.option(fc.constantFrom('stop', 'pause', 'other'), { nil: undefined }),
          }, { requiredKeys: [] }),
        ),
        async (body) => {
          try {
            const halt = await createHalt(deps, nobody, body);
            // Every halt the property makes is ended at once so it cannot affect other tests.
            await resumeHalt(deps, nobody, halt.id, { reason: 'property' });
          } catch (error) {
            expect(error).toBeInstanceOf(HaltRequestInvalidError);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('what a halt covers', () => {
  const halt = (scope: Halt['scope'], target: string | null): Halt => ({
    id: 'hlt_x', scope, target, mode: 'stop', reason: 'r', createdBy: { sub: 'o', roles: [] }, createdAt: '', status: 'active',
  });

  it('matches everything, a connector or tool the plan names, its agent or its principal — and nothing resumed', () => {
    const s = subject();
    expect(haltCovers(halt('all', null), s)).toBe(true);
    expect(haltCovers(halt('connector', 'payments'), s)).toBe(true);
    expect(haltCovers(halt('connector', 'iam'), s)).toBe(false);
    expect(haltCovers(halt('tool', 'travel.hold_seat'), s)).toBe(true);
    expect(haltCovers(halt('tool', 'travel.book_flight'), s)).toBe(false);
    expect(haltCovers(halt('agent', 'trip-bot'), s)).toBe(true);
    expect(haltCovers(halt('agent', 'other-bot'), s)).toBe(false);
    expect(haltCovers(halt('principal', 'alice'), s)).toBe(true);
    expect(haltCovers(halt('principal', 'bob'), s)).toBe(false);
    expect(haltCovers({ ...halt('all', null), status: 'resumed' }, s)).toBe(false);
  });
});

describe('propagation, resume and restarts', () => {
  it('reaches a function that cached "no halt" within propagationSeconds, and no later (clock moved, no sleep)', async () => {
    const clock = { t: Date.parse('2026-03-01T00:00:00Z') };
    const elsewhere = new HaltGuard(depsAt(clock));
    const who = subject({ agent: 'prop-bot' });
    await elsewhere.refuseNew(who); // caches the empty list at t0
    const halt = await createHalt(depsAt(clock), operator, { scope: 'agent', target: 'prop-bot', reason: 'looping', mode: 'stop' });
    clock.t += PROPAGATION_MS - 1;
    await elsewhere.refuseNew(who); // still its cached copy: allowed
    clock.t += 1;
    const refused = await elsewhere.refuseNew(who).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ActionHaltedError);
    expect(guardrailProblem(refused)?.problem).toMatchObject({ status: 403, type: 'urn:airlock:problem:halted', haltId: halt.id, reason: 'looping', haltScope: 'agent', haltTarget: 'prop-bot', haltMode: 'stop' });

    // Resuming propagates the same way.
    await resumeHalt(depsAt(clock), operator, halt.id, { reason: 'fixed the loop' });
    clock.t += PROPAGATION_MS - 1;
    await expect(elsewhere.refuseNew(who)).rejects.toBeInstanceOf(ActionHaltedError);
    clock.t += 1;
    await elsewhere.refuseNew(who);
  });

  it('survives a restart (a new function instance reads it from the ledger), and a stop wins over a pause', async () => {
    const clock = { t: Date.parse('2026-03-02T00:00:00Z') };
    const pause = await createHalt(depsAt(clock), operator, { scope: 'principal', target: 'restart-alice', reason: 'investigating', mode: 'pause' });
    const afterRestart = new HaltGuard(depsAt(clock));
    expect((await afterRestart.covering(subject({ principal: 'restart-alice' })))?.id).toBe(pause.id);
    const stop = await createHalt(depsAt(clock), operator, { scope: 'tool', target: 'payments.authorize', reason: 'fraud', mode: 'stop' });
    const later = new HaltGuard(depsAt(clock));
    expect((await later.covering(subject({ principal: 'restart-alice' })))?.id).toBe(stop.id);
    await resumeHalt(depsAt(clock), operator, stop.id, { reason: 'cleared' });
    await resumeHalt(depsAt(clock), operator, pause.id, { reason: 'cleared' });
  });

  it('resumes once, with who and why; a second resume is 409 and an unknown id 404', async () => {
    const clock = { t: Date.parse('2026-03-03T00:00:00Z') };
    const deps = depsAt(clock);
    const halt = await createHalt(deps, operator, { scope: 'connector', target: 'iam', reason: 'vendor incident' });
    expect(halt.mode).toBe('stop');
    clock.t += 60_000;
    const resumed = await resumeHalt(deps, { sub: 'oscar', roles: [ROLE] }, halt.id, { reason: 'vendor recovered' });
    expect(resumed).toMatchObject({ status: 'resumed', resumedBy: { sub: 'oscar' }, resumeReason: 'vendor recovered', resumedAt: new Date(clock.t).toISOString() });
    const again = await resumeHalt(deps, operator, halt.id, { reason: 'again' }).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(HaltAlreadyResumedError);
    expect(guardrailProblem(again)?.problem.status).toBe(409);
    expect(await resumeHalt(deps, operator, 'hlt_01JABCDEFGHJKMNPQRSTVWXYZ0', { reason: 'x' }).catch((e: unknown) => e)).toBeInstanceOf(HaltNotFoundError);
    expect(await resumeHalt(deps, operator, '../../etc', { reason: 'x' }).catch((e: unknown) => e)).toBeInstanceOf(HaltNotFoundError);
    await expect(resumeHalt(deps, operator, halt.id, { reason: '' })).rejects.toBeInstanceOf(HaltRequestInvalidError);

    const trail = (await store.listHaltEvents()).filter((e) => e.data.haltId === halt.id);
    expect(trail.map((e) => [e.type, e.actor])).toEqual([
      ['halt.created', 'olivia'],
      ['halt.resumed', 'oscar'],
    ]);
    expect(trail[1]!.data).toMatchObject({ reason: 'vendor incident', resumeReason: 'vendor recovered' });
    expect((await listHalts(deps, operator)).find((h) => h.id === halt.id)?.status).toBe('resumed');
  });

  it('marks an action affected once per halt and effect', async () => {
    const at = new Date();
    expect(await store.markAffected('hlt_A', 'act_1', 'paused', at)).toBe(true);
    expect(await store.markAffected('hlt_A', 'act_1', 'paused', at)).toBe(false);
    expect(await store.markAffected('hlt_A', 'act_1', 'stopped', at)).toBe(true);
  });
});

describe('gauges', () => {
  it('samples the halts in force and, apart, those on everything (the alarmed one), on each read', async () => {
    const at = (scope: Halt['scope'], status: Halt['status'] = 'active') => ({ id: `hlt_${scope}_${status}`, scope, status }) as unknown as Halt;
    const observed: [string, number][] = [];
    const guard = new HaltGuard({
      ...depsAt({ t: 0 }),
      halts: { listHalts: async () => [at('all'), at('agent'), at('all', 'resumed'), at('tool')] } as unknown as HaltDeps['halts'],
      metrics: { count: () => undefined, observe: (name, value) => void observed.push([name, value]) },
    });
    await guard.active();
    expect(observed).toEqual([
      ['HaltsActive', 3],
      ['HaltsEverythingActive', 1],
    ]);
  });
});

describe('refused new work is audited', () => {
  it('every request a halt refuses leaves an audit line (who, agent, tools, halt), and nothing of its content', async () => {
    const clock = { t: Date.parse('2026-03-03T00:00:00Z') };
    const lines: Array<{ message: string; fields: Record<string, unknown> }> = [];
    const logger = {
      debug: () => undefined,
      info: (message: string, fields: Record<string, unknown> = {}) => lines.push({ message, fields }),
      warn: () => undefined,
      error: () => undefined,
      child() {
        return logger;
      },
    };
    const halt = await createHalt(depsAt(clock), operator, { scope: 'connector', target: 'iam', reason: 'audit test', mode: 'stop' });
    const guard = new HaltGuard({ ...depsAt(clock), logger });
    const who = subjectOf(toolRegistry, { sub: 'audit-alice' }, 'audit-bot', ['iam.grant_role']);
    for (let i = 0; i < 3; i++) await expect(guard.refuseNew(who)).rejects.toBeInstanceOf(ActionHaltedError);
    await guard.refuseNew(subjectOf(toolRegistry, { sub: 'audit-alice' }, 'audit-bot', ['travel.search_flights'])); // not covered: no line
    const audited = lines.filter((l) => l.fields.audit === 'halt.refused_new');
    expect(audited).toHaveLength(3);
    expect(audited[0]!.fields).toEqual({ audit: 'halt.refused_new', principal: 'audit-alice', agent: 'audit-bot', tools: ['iam.grant_role'], haltId: halt.id, scope: 'connector' });
    await resumeHalt(depsAt(clock), operator, halt.id, { reason: 'done' });
  });
});
