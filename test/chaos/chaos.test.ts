import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AGENT_RETRY, isRetryable, operatorCall, retryDelayMs, serverDelayMs, waitIsOver } from '../../scripts/chaos/agent-retry';
import { INJECTORS } from '../../scripts/chaos/injectors';
import {
  approvalsDecide,
  checkAll,
  compensationsOnceInReverse,
  noSecretsInLogs,
  cancelsHold,
  BREAKER_GRACE_MS,
  breakersHold,
  openSpans,
  PAUSE_GRACE_MS,
  PAUSE_OUTLASTS_RETRIES_MS,
  pausesHold,
  noUndeclared5xx,
  overflowingWindow,
  parseEffectKey,
  rateLimitsHold,
  refusalsAudited,
  receiptsAndAudit,
  sideEffectsMatchOutcomes,
  spendWithinCaps,
} from '../../scripts/chaos/invariants';
import { CHAOS_BREAKER_RESET_SECONDS, chaosLimits } from '../../scripts/chaos/limits';
import { readLimitsFile } from '../../lambdas/limits/config';
import type { Finding } from '../../lambdas/receipts/verify';
import { derive } from '../../scripts/chaos/rng';
import { actionAt, envelopeOf, sliceSchedule, type ActionSpec, type Schedule } from '../../scripts/chaos/schedule';
import { breakerMovesIn, type ActionRun, type FinalView, type Observations } from '../../scripts/chaos/storm';

/**
 * The storm's own machinery: the schedule is a function of the seed, slices are the same
 * actions, and every invariant fails on the violation it names (so a green table means
 * something). The storm itself runs in CI (.ci/run) and by hand (`npm run chaos`).
 */

const schedule = (seed: number, n: number, crashes = 2): Schedule => {
  const actions = Array.from({ length: n }, (_, i) => actionAt(seed, i));
  return { seed, actions, events: INJECTORS.flatMap((inj) => inj.plan({ seed, actions: n, crashes }, actions)) };
};

describe('the seeded schedule', () => {
  it('is the same for the same seed, different for another, and a slice keeps its actions and events', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 }), fc.integer({ min: 1, max: 120 }), (seed, n) => {
        const a = schedule(seed, n);
        expect(schedule(seed, n)).toEqual(a);
        const from = Math.floor(n / 3);
        const slice = sliceSchedule(a, from, n);
        expect(slice.actions).toEqual(a.actions.slice(from));
        expect(slice.events.every((e) => e.at >= from)).toBe(true);
        expect(slice.events.length).toBe(a.events.filter((e) => e.at >= from).length);
      }),
      { numRuns: 30 },
    );
    expect(schedule(1, 50)).not.toEqual(schedule(2, 50));
  });

  it('plans exactly the crashes asked for, inside the storm, and covers every connector, dry runs and every retry and approval style', () => {
    const s = schedule(21, 300);
    const crashes = s.events.filter((e) => e.injector === 'sigkill');
    expect(crashes).toHaveLength(2);
    for (const c of crashes) expect(c.at).toBeGreaterThan(0);
    const tools = new Set(s.actions.flatMap((a) => a.steps.map((x) => x.tool.split('.')[0])));
    expect([...tools].sort()).toEqual(['iam', 'payments', 'procurement', 'travel']);
    expect(new Set(s.actions.map((a) => a.retry))).toEqual(new Set(['plain', 'duplicate', 'abort-retry', 'late-retry']));
    expect(new Set(s.actions.map((a) => a.approval))).toEqual(new Set(['approve', 'reject', 'expire', 'race', 'self-vote']));
    expect(s.actions.some((a) => a.dryRun)).toBe(true);
    const kinds = new Set(s.events.filter((e) => e.injector === 'vendor-faults').map((e) => e.data.kind));
    expect(kinds).toEqual(new Set(['transient-5xx', 'exhausting-5xx', 'refusal', 'timeout', 'commit-then-drop', 'compensation-5xx']));
    // Halts, each resumed later in the storm, over several scopes; cancels of earlier actions.
    const halts = s.events.filter((e) => e.injector === 'halts');
    const made = halts.filter((e) => e.data.op === 'halt');
    expect(made.length).toBeGreaterThan(2);
    for (const h of made) expect(halts.find((e) => e.data.op === 'resume' && e.data.key === h.data.key)!.at).toBeGreaterThan(h.at);
    expect(new Set(made.map((e) => e.data.scope)).size).toBeGreaterThan(1);
    const cancels = s.events.filter((e) => e.injector === 'cancels');
    expect(cancels.length).toBeGreaterThan(3);
    for (const c of cancels) expect(Number(c.data.target)).toBeLessThan(c.at);
  });

  it('derives independent streams and fills flight dates from the clock it is given', () => {
    expect(derive(1, 1, 2)()).not.toBe(derive(1, 2, 1)());
    const travel = Array.from({ length: 200 }, (_, i) => actionAt(3, i)).find((a) => a.scenario === 'travel')!;
    const body = JSON.stringify(envelopeOf(travel, Date.UTC(2030, 0, 1)));
    expect(body).not.toContain('@DAY');
    expect(body).toContain(new Date(Date.UTC(2030, 0, 1) + travel.day * 86_400_000).toISOString().slice(0, 10));
  });
});

// ── how simulated agents retry ───────────────────────────────────────────────

describe('a simulated agent retrying POST /v1/actions', () => {
  const headers = (h: Record<string, string>) => new Headers(h);

  it('waits at least what the server asks: Retry-After (seconds or a date), else the RateLimit reset', () => {
    const now = Date.parse('2030-01-01T00:00:00.000Z');
    expect(serverDelayMs(headers({ 'retry-after': '3' }), now)).toBe(3_000);
    expect(serverDelayMs(headers({ 'retry-after': 'Tue, 01 Jan 2030 00:00:05 GMT' }), now)).toBe(5_000);
    expect(serverDelayMs(headers({ ratelimit: '"chaos-grant-burst";r=0;t=1, "agent-burst";r=0;t=17' }), now)).toBe(17_000);
    expect(serverDelayMs(headers({}), now)).toBeUndefined();
  });

  it('retries 429, 503 and a 409 in progress, nothing else', () => {
    const a = (status: number, type?: string, h: Record<string, string> = {}) => ({ status, type, headers: headers(h) });
    expect(isRetryable(a(429, 'https://iana.org/assignments/http-problem-types#quota-exceeded'))).toBe(true);
    expect(isRetryable(a(503, 'urn:airlock:problem:circuit-open', { 'retry-after': '20' }))).toBe(true);
    expect(isRetryable(a(409, 'urn:airlock:problem:idempotency-in-progress'))).toBe(true);
    for (const s of [200, 202, 403, 409, 422, 500]) expect(isRetryable(a(s, 'urn:airlock:problem:other'))).toBe(false);
  });

  it('never comes back sooner than asked, spreads a refused cohort over the backoff, and gives up within its bounds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 }), fc.integer({ min: 1, max: AGENT_RETRY.maxRetries }), fc.integer({ min: 0, max: 30_000 }), (seed, retry, server) => {
        const wait = retryDelayMs(AGENT_RETRY, retry, server, 0, derive(seed, 8))!;
        expect(wait).toBeGreaterThanOrEqual(server);
        const backoff = Math.min(AGENT_RETRY.capMs, AGENT_RETRY.baseMs * 2 ** (retry - 1));
        expect(wait).toBeLessThan(server + (server > 0 ? Math.min(backoff, Math.max(AGENT_RETRY.baseMs, server)) : backoff));
      }),
      { numRuns: 200 },
    );
    // Twenty agents refused in one 1 s window do not all return at its reset.
    const third = Array.from({ length: 20 }, (_, i) => retryDelayMs(AGENT_RETRY, 3, 1_000, 0, derive(7, 8, i))!);
    expect(new Set(third.map((w) => Math.floor(w / 100))).size).toBeGreaterThan(4);
    // Nor, asked to come back in 1 s, does one wait 20 s more once its backoff has grown.
    const late = Array.from({ length: 20 }, (_, i) => retryDelayMs(AGENT_RETRY, 10, 1_000, 0, derive(7, 8, i))!);
    expect(Math.max(...late)).toBeLessThan(2_000);
    expect(new Set(late.map((w) => Math.floor(w / 100))).size).toBeGreaterThan(4);
    // Out of retries, or out of time: give up.
    expect(retryDelayMs(AGENT_RETRY, AGENT_RETRY.maxRetries + 1, 0, 0, derive(1, 8))).toBeUndefined();
    expect(retryDelayMs(AGENT_RETRY, 2, 30_000, AGENT_RETRY.budgetMs - 10_000, derive(1, 8))).toBeUndefined();
  });

  it('meets breakers that open, refuse and half-open as shipped, only resetting sooner', () => {
    const shipped = readLimitsFile().limits.breakers;
    const storm = chaosLimits(1_000).loaded.limits.breakers;
    expect(storm.default).toEqual({ ...shipped.default, resetSeconds: Math.min(shipped.default.resetSeconds, CHAOS_BREAKER_RESET_SECONDS) });
    expect(Object.keys(storm.connectors)).toEqual(Object.keys(shipped.connectors));
  });

  it('waits the whole bound from when it began, however long ago the last restart was', () => {
    const restart = 1_000_000;
    const bound = 110_000;
    // Seed 7 at 1,000 actions: a wait begun 200 s after the last restart ended at its first look.
    const began = restart + 200_000;
    expect(waitIsOver(began + 1_000, began, restart, bound)).toBe(false);
    expect(waitIsOver(began + bound + 1, began, restart, bound)).toBe(true);
    // A restart during the wait gives it the bound again.
    expect(waitIsOver(began + bound + 1, began, began + 50_000, bound)).toBe(false);
  });
});

// ── invariants on hand-made observations ─────────────────────────────────────

const spec = (over: Partial<ActionSpec> = {}): ActionSpec => ({
  index: 0,
  scenario: 'travel',
  requester: 'u1',
  single: false,
  dryRun: false,
  steps: [
    { id: 'h', tool: 'travel.hold_seat', commit: true, arguments: { flightId: 'SB102-2030-01-01', seats: 1 } },
    { id: 'p', tool: 'payments.authorize', commit: true, arguments: { amount: 100, currency: 'USD', payee: 'x', paymentMethod: 'pm_card_visa' } },
  ],
  day: 10,
  retry: 'plain',
  approval: 'approve',
  approvers: ['m1'],
  prefer: 'respond-async',
  ...over,
});

const run = (over: Partial<ActionRun> = {}): ActionRun => ({
  spec: spec(),
  key: 'k0',
  ids: ['act_A'],
  answer: { status: 202, type: undefined },
  id: 'act_A',
  waitedForApproval: false,
  votes: [],
  problems: [],
  ...over,
});

const view = (status: string, over: Partial<FinalView> = {}): FinalView => ({
  id: 'act_A',
  status,
  mode: 'execute',
  principal: { sub: 'u1' },
  steps: [
    { id: 'h', tool: 'travel.hold_seat', status: 'completed' },
    { id: 'p', tool: 'payments.authorize', status: status === 'completed' ? 'completed' : 'failed' },
  ],
  decision: { outcome: 'allow', quorum: 0 },
  createdAt: '2030-01-01T00:00:00.000Z',
  ...over,
});

function obs(over: Partial<Observations> = {}): Observations {
  return {
    schedule: { seed: 1, actions: [spec()], events: [] },
    runs: [run()],
    views: new Map([['act_A', view('compensated')]]),
    effects: {
      travel: [
        { seq: 1, operation: 'hold_seat', idempotencyKey: 'act_A.h', status: 201 },
        { seq: 3, operation: 'release_hold', idempotencyKey: 'act_A.h.undo', status: 200 },
      ],
      payments: [],
    },
    sideEffectCounters: { travel: { hold_seat: 1, release_hold: 1 }, payments: {} },
    live: { travel: [], payments: [] },
    receipts: new Map([['act_A', [{ outcome: { status: 'compensated' } }]]]),
    strayReceipts: [],
    audit: { code: 0, output: 'ok' },
    texts: [{ name: 'log control-plane-1.log', text: 'nothing to see' }],
    secrets: [{ name: 'secret vendor-travel', value: 'sk_live_0123456789abcdef' }],
    responses: [{ method: 'POST', path: '/v1/actions', status: 202, retryAfter: null, type: undefined }],
    settle: { boundMs: 60_000, tookMs: 10, unsettled: [] },
    crashes: 0,
    restartMs: [],
    durationMs: 1,
    cpu: { harness: 0, controlPlane: 0, vendors: 0 },
    home: '/tmp/x',
    limits: chaosLimits(100).loaded,
    auditLines: [],
    breakerMoves: [],
    halts: [],
    ...over,
  };
}

const vote = (voter: string, decision: 'approve' | 'reject') => ({ voter, decision, at: '2030-01-01T00:00:01.000Z' });
/** A receipt with one approval of quorum 2, as the receipts builder writes it from the audit chain. */
const receiptWith = (votes: ReturnType<typeof vote>[], outcome: 'granted' | 'rejected' | 'expired' | 'pending') => ({
  outcome: { status: 'completed' },
  approvals: [{ approvalId: 'apr_A', quorum: 2, votes, outcome }],
});

describe("the storm's operator halting and resuming", () => {
  const answer = (status: number, headers: Record<string, string> = {}, body: unknown = undefined) => ({ status, type: undefined, body, headers: new Headers(headers) });
  /** A clock that moves only when the operator waits. */
  const clock = () => {
    let ms = Date.UTC(2030, 0, 1);
    const waits: number[] = [];
    return { now: () => ms, sleep: async (d: number) => void (waits.push(d), (ms += d)), waits };
  };

  it('keeps at a halt refused by a rate limit or a busy service, waiting what the server asks', async () => {
    const c = clock();
    const answers = [answer(429, { 'retry-after': '31' }), answer(503, { 'retry-after': '2' }), answer(503), answer(201)];
    let sent = 0;
    const res = await operatorCall(async () => answers[sent++], { sleep: c.sleep, now: c.now, recorded: async () => undefined });
    expect(res?.status).toBe(201);
    expect(sent).toBe(4);
    expect(c.waits).toEqual([10_000, 2_000, 1_000]);
  });

  it('after a 503 takes the halt it finds recorded instead of sending another; a 429 recorded nothing, so it is never looked up', async () => {
    const c = clock();
    let sent = 0;
    let looked = 0;
    const found = answer(201, {}, { id: 'hlt_1' });
    const res = await operatorCall(async () => (sent++ === 0 ? answer(429, { 'retry-after': '1' }) : answer(503, { 'retry-after': '1' })), {
      sleep: c.sleep,
      now: c.now,
      recorded: async () => (looked++ === 0 ? undefined : found),
    });
    expect(res).toBe(found);
    expect([sent, looked]).toEqual([3, 2]);
  });

  it('gives up with the last answer when its budget runs out, and never waits for an answer that is final', async () => {
    const c = clock();
    let sent = 0;
    const res = await operatorCall(async () => (sent++, answer(429, { 'retry-after': '5' })), { sleep: c.sleep, now: c.now, budgetMs: 60_000 });
    expect(res?.status).toBe(429);
    expect(sent).toBe(13);
    const final = await operatorCall(async () => answer(403), { sleep: c.sleep, now: c.now });
    expect(final?.status).toBe(403);
  });
});

describe('the invariants', () => {
  it('all hold on a consistent compensated action', () => {
    const { rows, ok } = checkAll(obs());
    expect(rows.filter((r) => r.result.violations.length > 0).map((r) => [r.invariant.name, r.result.violations])).toEqual([]);
    expect(ok).toBe(true);
  });

  it('name a doubled effect, an orphan, a counter that disagrees and a completed action whose effect is gone', () => {
    const doubled = obs({
      effects: { travel: [{ seq: 1, operation: 'hold_seat', idempotencyKey: 'act_A.h', status: 201 }, { seq: 2, operation: 'hold_seat', idempotencyKey: 'act_A.h', status: 201 }] },
      sideEffectCounters: { travel: { hold_seat: 1 } },
      live: { travel: [{ object: 'hold hold_1', clientReference: 'act_A.h' }] },
    });
    const found = sideEffectsMatchOutcomes.check(doubled).violations.join('\n');
    expect(found).toMatch(/doubled: act_A\.h/);
    expect(found).toMatch(/orphan: act_A .*hold hold_1/);
    expect(found).toMatch(/counter says 1, effect log has 2/);
    const gone = obs({ views: new Map([['act_A', view('completed')]]), effects: { travel: [{ seq: 1, operation: 'hold_seat', idempotencyKey: 'act_A.h', status: 201 }], payments: [{ seq: 2, operation: 'authorize', idempotencyKey: 'act_A.p', status: 201 }] }, sideEffectCounters: { travel: { hold_seat: 1 }, payments: { authorize: 1 } } });
    expect(sideEffectsMatchOutcomes.check(gone).violations.join('\n')).toMatch(/missing: .*no longer in effect/);
    const dry = obs({ views: new Map([['act_A', view('completed', { mode: 'dry_run' })]]) });
    expect(sideEffectsMatchOutcomes.check(dry).violations.join('\n')).toMatch(/dry run left 2 vendor effect/);
  });

  it('name compensations run twice, before their step, or in plan order', () => {
    const bad = obs({
      effects: {
        travel: [
          { seq: 1, operation: 'hold_seat', idempotencyKey: 'act_A.h', status: 201 },
          { seq: 3, operation: 'release_hold', idempotencyKey: 'act_A.h.undo', status: 200 },
          { seq: 5, operation: 'release_hold', idempotencyKey: 'act_A.h.undo', status: 200 },
        ],
        payments: [
          { seq: 2, operation: 'authorize', idempotencyKey: 'act_A.p', status: 201 },
          { seq: 4, operation: 'void_authorization', idempotencyKey: 'act_A.p.undo', status: 200 },
        ],
      },
    });
    const found = compensationsOnceInReverse.check(bad).violations.join('\n');
    expect(found).toMatch(/step h compensated 2 times/);
    expect(found).toMatch(/out of order: h → p/);
  });

  it('name racing approvers told different outcomes, and a run without its quorum', () => {
    const raced = obs({
      runs: [
        run({
          waitedForApproval: true,
          spec: spec({ approval: 'race' }),
          votes: [
            { voter: 'm1', decision: 'approve', status: 200, type: undefined, counted: true, outcome: 'approved' },
            { voter: 'm2', decision: 'reject', status: 200, type: undefined, counted: true, outcome: 'rejected' },
          ],
        }),
      ],
      views: new Map([['act_A', view('completed', { decision: { outcome: 'require_approval', quorum: 2 } })]]),
      receipts: new Map([['act_A', [receiptWith([vote('m1', 'approve'), vote('m2', 'reject')], 'granted')]]]),
    });
    const found = approvalsDecide.check(raced).violations.join('\n');
    expect(found).toMatch(/told both approved and rejected/);
    expect(found).toMatch(/ran \(completed\) with 1 of 2 approvals/);
  });

  // Seed 21's finding: sa1's vote counted, SIGKILL cut its answer, the retry was told
  // `recorded: false` (a repeat). The receipt, not the agent's view, says who approved.
  const twoOfTwo = (votes: ActionRun['votes'], receiptVotes: ReturnType<typeof vote>[], status = 'completed') =>
    obs({
      runs: [run({ waitedForApproval: true, spec: spec({ approvers: ['sa1', 'sa0'] }), votes })],
      views: new Map([['act_A', view(status, { decision: { outcome: 'require_approval', quorum: 2 } })]]),
      receipts: new Map([['act_A', [receiptWith(receiptVotes, 'granted')]]]),
    });

  it('count the votes in the receipt, not the answers a crash cut off', () => {
    const cut = twoOfTwo(
      [
        { voter: 'sa1', decision: 'approve', status: 200, type: undefined, counted: false, outcome: 'pending' },
        { voter: 'sa0', decision: 'approve', status: 200, type: undefined, counted: true, outcome: 'approved' },
      ],
      [vote('sa1', 'approve'), vote('sa0', 'approve')],
    );
    expect(approvalsDecide.check(cut).violations).toEqual([]);
  });

  it('name a run whose receipt holds 1 of 2 approvals, however many the agents were told counted', () => {
    const bypass = twoOfTwo(
      [
        { voter: 'sa1', decision: 'approve', status: 200, type: undefined, counted: true, outcome: 'pending' },
        { voter: 'sa0', decision: 'approve', status: 200, type: undefined, counted: true, outcome: 'approved' },
      ],
      [vote('sa0', 'approve')],
    );
    const found = approvalsDecide.check(bypass).violations.join('\n');
    expect(found).toMatch(/ran \(completed\) with 1 of 2 approvals in its receipt/);
    expect(found).toMatch(/receipt says granted with 1 of 2 approvals/);
    expect(found).toMatch(/sa1's approve was answered as recorded but is not in the receipt/);
    // A receipt that understates the quorum does not hide it: the decision's quorum counts too.
    const understated = twoOfTwo([], [vote('sa0', 'approve')]);
    (understated.receipts.get('act_A')![0] as { approvals: { quorum: number }[] }).approvals[0]!.quorum = 1;
    expect(approvalsDecide.check(understated).violations.join('\n')).toMatch(/ran \(completed\) with 1 of 2 approvals/);
  });

  // Seed 21, #178 (CI, stop 26): a plan over iam and payments asks for approvers who may approve
  // both; nobody may, so sa0's rejection is refused as ineligible and expiry is the right end.
  // A rejection that counted, or one the storm could have placed, still has to reject.
  it('accept the expiry of an approval nobody may decide, and nothing else in place of a rejection', () => {
    const refused = { voter: 'sa0', decision: 'reject' as const, status: 403, type: 'urn:airlock:problem:approval-refused', counted: false, outcome: undefined };
    const undecidable = (over: Partial<ActionRun>) =>
      obs({
        runs: [run({ waitedForApproval: true, spec: spec({ approval: 'reject', approvers: ['sa0'] }), votes: [refused], ...over })],
        views: new Map([
          ['act_A', view('expired', { decision: { outcome: 'require_approval', quorum: 2 }, steps: [{ id: 'h', tool: 'travel.hold_seat', status: 'pending' }] })],
        ]),
        receipts: new Map([['act_A', [receiptWith([], 'expired')]]]),
      });
    expect(approvalsDecide.check(undecidable({ noEligibleApprover: true })).violations).toEqual([]);
    expect(approvalsDecide.check(undecidable({})).violations.join('\n')).toMatch(/rejected by sa0, yet it ended expired/);
    const counted = { ...refused, status: 200, counted: true, outcome: 'rejected' };
    expect(approvalsDecide.check(undecidable({ noEligibleApprover: true, votes: [counted] })).violations.join('\n')).toMatch(/told rejected, the action ended expired/);
  });

  it('accept the expiry of an approval whose rejections were all refused by a rate limit, and name a self-approval refused by the rule, not by a limit, missing from the receipt', () => {
    const throttled = { voter: 'sa0', decision: 'reject' as const, status: 429, type: 'https://iana.org/assignments/http-problem-types#quota-exceeded', counted: false, outcome: undefined };
    const expired = (votes: ActionRun['votes']) =>
      obs({
        runs: [run({ waitedForApproval: true, spec: spec({ approval: 'reject', approvers: ['sa0'] }), votes })],
        views: new Map([['act_A', view('expired', { decision: { outcome: 'require_approval', quorum: 1 }, steps: [{ id: 'h', tool: 'travel.hold_seat', status: 'pending' }] })]]),
        receipts: new Map([['act_A', [receiptWith([], 'expired')]]]),
      });
    expect(approvalsDecide.check(expired([throttled])).violations).toEqual([]);
    expect(approvalsDecide.check(expired([throttled, { ...throttled, status: 403, type: 'urn:airlock:problem:forbidden' }])).violations.join('\n')).toMatch(/rejected by sa0, yet it ended expired/);
    // u1 is the requester: a self-vote answered 429 never reached the approval; one answered 403 did.
    const selfVote = { voter: 'u1', decision: 'approve' as const, counted: false, outcome: undefined };
    const receipts = (status: number) => receiptsAndAudit.check(expired([{ ...selfVote, status, type: undefined }])).violations.join('\n');
    expect(receipts(429)).not.toMatch(/refused self-approval/);
    expect(receipts(403)).toMatch(/u1's refused self-approval \(403\) is not in the receipt/);
  });

  it('name the requester\'s vote in a receipt, and an approval missing from the receipt', () => {
    const self = twoOfTwo([], [vote('u1', 'approve'), vote('sa0', 'approve')]);
    const found = approvalsDecide.check(self).violations.join('\n');
    expect(found).toMatch(/requester's own vote is in the receipt/);
    expect(found).toMatch(/with 1 of 2 approvals/);
    const none = twoOfTwo([], []);
    none.receipts.set('act_A', [{ outcome: { status: 'completed' } }]);
    expect(approvalsDecide.check(none).violations.join('\n')).toMatch(/receipt records no approval/);
  });

  it('name spend over the daily cap, a missing receipt, a failing audit verify, a leaked secret and an undeclared 5xx', () => {
    const big = spec({ steps: [{ id: 'p', tool: 'payments.authorize', commit: true, arguments: { amount: 60_000, currency: 'USD', payee: 'x', paymentMethod: 'pm_card_visa' } }] });
    const spent = obs({ runs: [run({ spec: big })], views: new Map([['act_A', view('completed', { steps: [{ id: 'p', tool: 'payments.authorize', status: 'completed' }] })]]) });
    expect(spendWithinCaps.check(spent).violations.join('\n')).toMatch(/principal-daily u1 2030-01-01: committed 6000000 minor units of USD, cap 5000000/);
    const vault = obs({ receipts: new Map(), audit: { code: 1, output: 'MISSING receipts/x.json' } });
    const r = receiptsAndAudit.check(vault).violations.join('\n');
    expect(r).toMatch(/has 0 receipts/);
    expect(r).toMatch(/audit verify exited 1/);
    const leaked = obs({ texts: [{ name: 'log control-plane-1.log', text: 'Authorization: sk_live_0123456789abcdef' }] });
    expect(noSecretsInLogs.check(leaked).violations).toEqual(['secret vendor-travel appears in log control-plane-1.log']);
    const fivexx = obs({ responses: [{ method: 'GET', path: '/v1/actions/:id', status: 500, retryAfter: null, type: 'urn:airlock:problem:internal' }, { method: 'POST', path: '/v1/actions', status: 503, retryAfter: '1', type: undefined }] });
    expect(noUndeclared5xx.check(fivexx).violations).toEqual(['GET /v1/actions/:id → 500 urn:airlock:problem:internal (no Retry-After)']);
  });

  it('excuse a GAP only for the outage of a SIGKILL the storm sent, and name every other verify finding', () => {
    // Seed 7 at 1,000 actions: the control plane was killed 31 s after its last digest, was
    // up again 6 s later, and wrote its next digest a whole interval (60 s) after that: a 97 s GAP.
    const t0 = Date.parse('2030-01-01T00:00:00.000Z');
    const at = (s: number) => new Date(t0 + s * 1000).toISOString();
    const before = { key: 'digests/dt=2030-01-01/A.json', endTime: at(0), previous: null, heartbeat: { intervalSeconds: 60 } };
    const gapAt = (afterSeconds: number, crashTimes: Observations['crashTimes'], extra: Finding[] = []) =>
      receiptsAndAudit.check(
        obs({
          audit: { code: 1, output: '{}', findings: [{ kind: 'digest-gap', key: 'digests/dt=2030-01-01/B.json', detail: 'no digest for 97 s' }, ...extra] },
          digests: [before, { key: 'digests/dt=2030-01-01/B.json', endTime: at(afterSeconds), previous: before.key, heartbeat: { intervalSeconds: 60 } }],
          crashTimes,
        }),
      ).violations;
    const crash = [{ killedAt: t0 + 31_000, readyAt: t0 + 37_000 }];
    // The restarted writer waited an interval: the gap is wider than the outage.
    expect(gapAt(97, crash)).toEqual(['airlock audit verify: digest-gap digests/dt=2030-01-01/B.json: no digest for 97 s']);
    // It caught up before READY: the GAP marks the outage (docs/audit.md), no violation.
    expect(gapAt(36, crash)).toEqual([]);
    // No crash, or a kill after the heartbeat was already overdue (60 s + 10 s): a real gap.
    expect(gapAt(36, [])).toHaveLength(1);
    expect(gapAt(80, [{ killedAt: t0 + 75_000, readyAt: t0 + 81_000 }])).toHaveLength(1);
    // Any other finding beside an explained GAP is named.
    const missing: Finding = { kind: 'missing-anchor', key: 'ab'.repeat(32), detail: 'no digest in the vault has this SHA-256' };
    expect(gapAt(36, crash, [missing])).toEqual([`airlock audit verify: missing-anchor ${'ab'.repeat(32)}: no digest in the vault has this SHA-256`]);
    // A failing verify without its JSON report is named as before.
    expect(receiptsAndAudit.check(obs({ audit: { code: 1, output: 'crashed' } })).violations).toEqual(['airlock audit verify exited 1: crashed']);
  });

  it('name an integrity ALARM in the control plane\'s log (a receipt that would differ), not a failing compensation', () => {
    const line = (message: string, actionId: string) => JSON.stringify({ level: 'error', message, actionId, key: `receipts/dt=2030-01-01/${actionId}.json` });
    const logged = obs({
      texts: [
        { name: 'log control-plane-2.log', text: [line('ALARM receipt differs from the one already in the vault', 'act_A'), line('ALARM receipt differs from the one already in the vault', 'act_A'), line('ALARM compensation failed', 'act_A')].join('\n') },
      ],
    });
    expect(receiptsAndAudit.check(logged).violations).toEqual(['logged ALARM receipt differs from the one already in the vault (act_A) ×2']);
  });

  it('read effect keys as the connectors write them', () => {
    expect(parseEffectKey('act_1.hold')).toEqual({ actionId: 'act_1', stepId: 'hold', undo: false });
    expect(parseEffectKey('act_1.hold.undo')).toEqual({ actionId: 'act_1', stepId: 'hold', undo: true });
    expect(parseEffectKey('free-form')).toBeUndefined();
  });

  it('name a window that admitted more than its quota, and only when no placement of the spans fits', () => {
    expect(overflowingWindow([{ lo: 1, hi: 1 }, { lo: 1, hi: 1 }, { lo: 1, hi: 1 }], 2)).toBe(1);
    // A request answered just after the boundary may have been admitted before it.
    expect(overflowingWindow([{ lo: 0, hi: 1 }, { lo: 1, hi: 1 }, { lo: 1, hi: 1 }], 2)).toBeUndefined();
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 3 })), { maxLength: 60 }), fc.integer({ min: 1, max: 4 }), (raw, limit) => {
        const spans = raw.map(([lo, d]) => ({ lo, hi: lo + d }));
        const w = overflowingWindow(spans, limit);
        // Spans confined to one window each overflow exactly when a window holds more than the limit.
        const exact = spans.filter((s) => s.lo === s.hi);
        const counts = new Map<number, number>();
        for (const s of exact) counts.set(s.lo, (counts.get(s.lo) ?? 0) + 1);
        if ([...counts.values()].some((n) => n > limit)) expect(w).toBeDefined();
        if (spans.length <= limit) expect(w).toBeUndefined();
      }),
    );
    const tight = (at: number, status = 202) => ({ method: 'POST', path: '/v1/actions', status, retryAfter: null, type: undefined, sub: 'u1', sentAt: at, at: at + 5, tools: ['iam.grant_role'] });
    const over = obs({ responses: [tight(10_100), tight(10_200), tight(10_300), tight(10_400, 429)] });
    expect(rateLimitsHold.check(over).violations.join('\n')).toMatch(/chaos-grant-burst iam.grant_role: more than 2 requests admitted/);
    expect(rateLimitsHold.check(obs({ responses: [tight(10_100), tight(10_200), tight(11_300), tight(10_400, 429)] })).violations).toEqual([]);
  });

  it('name a 429 or a halted 403 without its audit line, and a bare 403', () => {
    const refused = (status: number, haltId?: string) => ({ method: 'POST', path: '/v1/actions', status, retryAfter: null, type: undefined, sub: 'u1', ...(haltId ? { haltId } : {}) });
    const missing = obs({ responses: [refused(429), refused(429), refused(403, 'hlt_1')], auditLines: [{ audit: 'ratelimit.refused', principal: 'u1' }] });
    const found = refusalsAudited.check(missing).violations.join('\n');
    expect(found).toMatch(/u1 got 2 × 429, the audit trail has 1 ratelimit.refused/);
    expect(found).toMatch(/u1 got 1 × 403 halted, the audit trail has 0 halt.refused_new/);
    const audited = obs({
      responses: [refused(429), refused(403, 'hlt_1')],
      auditLines: [{ audit: 'ratelimit.refused', principal: 'u1' }, { audit: 'halt.refused_new', principal: 'u1' }],
    });
    expect(refusalsAudited.check(audited).violations).toEqual([]);
    const bare = obs({ runs: [run({ ids: [], id: undefined, answer: { status: 403, type: 'urn:airlock:problem:forbidden' } })] });
    expect(refusalsAudited.check(bare).violations.join('\n')).toMatch(/refused 403 with no action id and no halt/);
  });

  it('name a cancel that did not hold: ran after a 200, or left its effects in place', () => {
    const ranAnyway = obs({ runs: [run({ cancels: [{ status: 200 }] })], views: new Map([['act_A', view('compensated')]]) });
    const found = cancelsHold.check(ranAnyway).violations.join('\n');
    expect(found).toMatch(/cancelled before it started \(200\), yet it ended compensated/);
    expect(found).toMatch(/cancelled before it started, yet 1 vendor effect/);
    const orphan = obs({
      runs: [run({ cancels: [{ status: 202 }] })],
      views: new Map([['act_A', view('cancelled')]]),
      effects: { travel: [{ seq: 1, operation: 'hold_seat', idempotencyKey: 'act_A.h', status: 201 }], payments: [] },
      sideEffectCounters: { travel: { hold_seat: 1 }, payments: {} },
      live: { travel: [{ object: 'hold hold_1', clientReference: 'act_A.h' }], payments: [] },
    });
    expect(cancelsHold.check(orphan).violations.join('\n')).toMatch(/orphan: cancelled act_A: step h/);
    const clean = obs({ runs: [run({ cancels: [{ status: 202 }] })], views: new Map([['act_A', view('cancelled')]]) });
    expect(cancelsHold.check(clean).violations).toEqual([]);
  });

  it('name a step that reached its vendor while its pause was in force, and a paused action that gave up on a pause lifted in time', () => {
    const pause = { key: 'halt-1', id: 'hlt_1', scope: 'connector', target: 'payments', mode: 'pause' as const, at: 10_000, resumeSentAt: 30_000, resumedAt: 30_100 };
    const effects = (paymentAt: number, attempts = 1) =>
      obs({
        halts: [pause],
        views: new Map([['act_A', view('completed')]]),
        effects: {
          travel: [{ seq: 1, operation: 'hold_seat', idempotencyKey: 'act_A.h', status: 201, at: 12_000 }],
          payments: [{ seq: 2, operation: 'authorize', idempotencyKey: 'act_A.p', status: 201, at: paymentAt }],
        },
        receipts: new Map([['act_A', [{ outcome: { status: 'completed' }, steps: [{ stepId: 'p', kind: 'forward', attempts }] }]]]),
      });
    // The travel step is not covered (the pause is on payments); the payment 12 s into the pause is.
    expect(pausesHold.check(effects(22_000)).violations).toEqual([expect.stringMatching(/payments\.authorize of step p ran 12 s into pause hlt_1/)]);
    // Within the grace after the halt, after the resume, or an in-doubt retry: allowed.
    expect(pausesHold.check(effects(10_000 + PAUSE_GRACE_MS - 1)).violations).toEqual([]);
    expect(pausesHold.check(effects(30_001)).violations).toEqual([]);
    expect(pausesHold.check(effects(22_000, 2)).violations).toEqual([]);
    // Stops are not pauses.
    expect(pausesHold.check({ ...effects(22_000), halts: [{ ...pause, mode: 'stop' }] }).violations).toEqual([]);

    const gaveUp = (resumeSentAt: number) =>
      obs({ halts: [{ ...pause, resumeSentAt }], views: new Map([['act_A', view('compensated', { statusReason: 'step p failed: ActionPausedError: paused by hlt_1' })]]) });
    expect(pausesHold.check(gaveUp(25_000)).violations).toEqual([expect.stringMatching(/ended compensated on a pause that was lifted in time \(hlt_1\)/)]);
    expect(pausesHold.check(gaveUp(10_000 + PAUSE_OUTLASTS_RETRIES_MS)).violations).toEqual([]);
  });
  it('name a forward step that reached its vendor while its breaker was open, not a compensation, a retry or a trial call', () => {
    // Payments opened at 10 s until 40 s (retryAt); travel never opened.
    const moves = [
      { connector: 'payments', from: 'closed', to: 'open', at: 10_000, retryAt: 40_000 },
      { connector: 'payments', from: 'open', to: 'half_open', at: 41_000 },
      { connector: 'payments', from: 'half_open', to: 'closed', at: 42_000 },
    ];
    const effects = (paymentAt: number, attempts = 1, key = 'act_A.p') =>
      obs({
        breakerMoves: moves,
        views: new Map([['act_A', view('completed')]]),
        effects: {
          travel: [{ seq: 1, operation: 'hold_seat', idempotencyKey: 'act_A.h', status: 201, at: 20_000 }],
          payments: [{ seq: 2, operation: key.endsWith('.undo') ? 'void' : 'authorize', idempotencyKey: key, status: 201, at: paymentAt }],
        },
        receipts: new Map([['act_A', [{ outcome: { status: 'completed' }, steps: [{ stepId: 'p', kind: 'forward', attempts }] }]]]),
      });
    expect(breakersHold.check(effects(25_000)).violations).toEqual([expect.stringMatching(/payments\.authorize of step p ran 15 s after the payments breaker opened/)]);
    // Within the grace, past the reset (a trial call), a retried step, a compensation: allowed.
    expect(breakersHold.check(effects(10_000 + BREAKER_GRACE_MS - 1)).violations).toEqual([]);
    expect(breakersHold.check(effects(40_500)).violations).toEqual([]);
    expect(breakersHold.check(effects(25_000, 2)).violations).toEqual([]);
    expect(breakersHold.check(effects(25_000, 1, 'act_A.p.undo')).violations).toEqual([]);
    // A trial call failing reopens it: the new span counts from its own move.
    const reopened = [...moves.slice(0, 2), { connector: 'payments', from: 'half_open', to: 'open', at: 41_500, retryAt: 70_000 }];
    expect(breakersHold.check({ ...effects(50_000), breakerMoves: reopened }).violations).toEqual([expect.stringMatching(/ran 8\.5 s after the payments breaker opened/)]);
  });

  it('read open spans that end at the reset or the next move, whichever is first, per connector', () => {
    const spans = openSpans([
      { connector: 'iam', from: 'closed', to: 'open', at: 5_000, retryAt: 30_000 },
      { connector: 'travel', from: 'closed', to: 'open', at: 1_000, retryAt: 20_000 },
      // A crash lost the half-open line: the reset still ends the span.
      { connector: 'travel', from: 'half_open', to: 'closed', at: 60_000 },
      { connector: 'iam', from: 'open', to: 'half_open', at: 9_000 },
    ]);
    expect(spans.get('travel')).toEqual([{ from: 1_000, until: 20_000 }]);
    expect(spans.get('iam')).toEqual([{ from: 5_000, until: 9_000 }]);
  });

  it('read breaker moves from control plane log lines, and nothing else', () => {
    const line = (fields: Record<string, unknown>) => JSON.stringify({ level: 'warn', time: '2030-01-01T00:00:01.000Z', message: 'circuit breaker moved', service: 'airlock', ...fields });
    const text = [
      line({ connector: 'payments', from: 'closed', to: 'open', retryAt: 1_893_456_031_000 }),
      'not json "circuit breaker moved"',
      JSON.stringify({ level: 'info', time: '2030-01-01T00:00:00.000Z', message: 'request', note: 'circuit breaker moved' }),
      line({ connector: 'payments', from: 'open', to: 'half_open', time: '2030-01-01T00:00:00.500Z' }),
    ].join('\n');
    expect(breakerMovesIn(text)).toEqual([
      { connector: 'payments', from: 'open', to: 'half_open', at: Date.parse('2030-01-01T00:00:00.500Z') },
      { connector: 'payments', from: 'closed', to: 'open', at: Date.parse('2030-01-01T00:00:01.000Z'), retryAt: 1_893_456_031_000 },
    ]);
  });
});
