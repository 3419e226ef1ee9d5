import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { delegationCounterKey } from '../../lambdas/delegations/model';
import { snapshotOf, type DelegationGate } from '../../lambdas/delegations/gate';
import { DelegationBudgetExceededError, DelegationRequiredError } from '../../lambdas/delegations/errors';
import { acceptAction, previewDecision } from '../../lambdas/intake/intake';
import { readLimitsFile } from '../../lambdas/limits/config';
import { deciderFor } from '../../lambdas/policy/decider';
import { loadPolicyEngine } from '../../lambdas/policy/index';
import type { Delegation, DelegationAuditEvent } from '../../lambdas/ports/delegations';
import type { CapUsage } from '../../lambdas/ports/spend-caps';
import type { Principal } from '../../lambdas/shared/principal';
import { SpendCaps } from '../../lambdas/spend/caps';
import { toolRegistry } from '../../lambdas/tools/registry';
import { isoDay } from '../helpers/dates';
import { intakeDeps } from '../helpers/intake';
import { startLedger } from '../helpers/ledger';

/**
 * `POST /v1/decisions` and `POST /v1/actions` agree: for random delegations (scope, budget and
 * what is spent of it, rules, revoked or expired, any agent) and random requests (agent or
 * none, tools, amounts, mode), with `requireDelegation` on or off, the preview refuses exactly
 * when intake refuses, with the same problem, and otherwise names the same decision (outcome,
 * policy ids) from the same Cedar context — and the preview records nothing.
 */

const engine = loadPolicyEngine();
const caps = SpendCaps.from(readLimitsFile().limits.spendCaps, engine.money);
const NOW = Date.now();
const HOUR = 3_600_000;
let ledger: Awaited<ReturnType<typeof startLedger>>;
let n = 0;

beforeAll(async () => {
  ledger = await startLedger();
}, 60_000);
afterAll(async () => {
  await ledger?.close();
});

const date = isoDay(20);
const steps = {
  echo: { id: 'echo', tool: 'echo.say', arguments: { message: 'hi' } },
  search: { id: 'search', tool: 'travel.search_flights', arguments: { origin: 'SFO', destination: 'JFK', date } },
  pay: (amount: number) => ({ id: 'pay', tool: 'payments.authorize', arguments: { amount, currency: 'USD', payee: 'merchant-1', paymentMethod: 'pm_card_visa' } }),
  book: (amount: number) => ({
    id: 'book',
    tool: 'travel.book_flight',
    arguments: { holdId: 'hold_1', travelers: [{ firstName: 'A', lastName: 'B' }], contact: { email: 'a@example.com' }, price: { amount, currency: 'USD' } },
  }),
};

const delegationArb = fc.record({
  agent: fc.constantFrom('trip-bot', 'other-bot'),
  tools: fc.subarray(['echo.say', 'travel.search_flights', 'travel.book_flight', 'payments.authorize']),
  connectors: fc.subarray(['travel', 'payments', 'echo']),
  budget: fc.option(fc.record({ amount: fc.integer({ min: 0, max: 3_000 }), period: fc.constantFrom('day', 'month', 'total') as fc.Arbitrary<'day' | 'month' | 'total'> }), { nil: null }),
  spent: fc.integer({ min: 0, max: 300_000 }),
  askForCommit: fc.boolean(),
  status: fc.constantFrom('active', 'active', 'revoked', 'expired') as fc.Arbitrary<Delegation['status']>,
  expiresInHours: fc.constantFrom(-1, 2, 48),
});

const requestArb = fc.record({
  agent: fc.constantFrom(undefined, 'trip-bot', 'other-bot'),
  plan: fc.oneof(
    fc.constant([steps.echo]),
    fc.constant([steps.search]),
    fc.integer({ min: 1, max: 4_000 }).map((a) => [steps.pay(a)]),
    fc.integer({ min: 1, max: 4_000 }).map((a) => [steps.search, steps.book(a)]),
  ),
  mode: fc.constantFrom('execute', 'dry_run'),
  required: fc.boolean(),
  roles: fc.constantFrom(['Employee'], ['Employee', 'Manager']),
});

type Outcome = { refused: string; detail: Record<string, unknown> } | { outcome: string; policyIds: string[] };

async function outcomeOf(run: () => Promise<{ outcome: string; policyIds: string[] }>): Promise<Outcome> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof DelegationRequiredError) return { refused: error.name, detail: { missing: error.missing, agent: error.agent, tools: error.tools } };
    if (error instanceof DelegationBudgetExceededError) return { refused: error.name, detail: { id: error.delegationId, limit: error.limit, used: error.used, requested: error.requested } };
    throw error;
  }
}

describe('previews and intake', () => {
  it('agree on the decision for random delegations and requests; the preview records nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(delegationArb, { maxLength: 3 }), requestArb, async (granted, req) => {
        const principal: Principal = { sub: `p${n++}`, roles: [...req.roles], manager: 'boss', department: 'sales', ...(req.agent ? { agent: req.agent } : {}) };
        const now = new Date(NOW);
        const delegations: Delegation[] = granted.map((g, i) => {
          const id = `dlg_01JH${String(n * 10 + i).padStart(22, '0')}`;
          return {
            id,
            principal: principal.sub,
            agent: g.agent,
            tools: g.tools,
            connectors: g.connectors,
            budget: g.budget ? { amount: g.budget.amount, currency: 'USD', period: g.budget.period } : null,
            rules: { askForCommit: g.askForCommit },
            purpose: null,
            createdAt: new Date(NOW - HOUR).toISOString(),
            expiresAt: new Date(NOW + g.expiresInHours * HOUR).toISOString(),
            status: g.status,
            policySetVersion: 'a'.repeat(64),
            limitsVersion: 'b'.repeat(64),
            consentReceiptKey: `receipts/dt=2031-01-01/${id}.consent.json`,
          };
        });
        // Newest first, as the store lists them.
        delegations.reverse();
        const used = new Map<string, number>(delegations.map((d, i) => [delegationCounterKey(snapshotOf(d, engine.money), now), granted[granted.length - 1 - i]!.spent]));
        const usage = async (keys: readonly string[]) => new Map<string, CapUsage>(keys.map((k) => [k, { used: used.get(k) ?? 0, reserved: 0, committed: 0 }]));
        const events: DelegationAuditEvent[] = [];
        const gate: DelegationGate = {
          store: { listDelegations: async () => delegations, recordDelegationEvent: async (_p, e) => void events.push(e) },
          required: req.required,
          tools: toolRegistry,
          money: engine.money,
          spend: { usage },
        };
        const decider = deciderFor(engine, toolRegistry, { caps, usage });
        const body = { agent: { name: 'declared-name' }, plan: req.plan, ...(req.mode === 'dry_run' ? { mode: 'dry_run' } : {}) };

        const preview = await outcomeOf(async () => (await previewDecision({ principal, body }, { decider, tools: toolRegistry, now: () => NOW, delegations: gate })).decision);
        expect(events).toEqual([]);
        const deps = intakeDeps(ledger.ledger, { decider, delegations: gate, now: () => NOW });
        const intake = await outcomeOf(async () => {
          const { response } = await acceptAction({ principal, idempotencyKey: `k-${n}-${Math.random()}`, body, prefer: 'respond-async' }, deps, (o) => ({
            status: 200,
            headers: {},
            body: o.action.decision,
          }));
          return response.body as { outcome: string; policyIds: string[] };
        });
        const pick = (o: Outcome) => ('refused' in o ? o : { outcome: o.outcome, policyIds: [...o.policyIds].sort() });
        expect(pick(preview)).toEqual(pick(intake));
        // Intake audits its refusals (one event); the preview none.
        expect(events).toHaveLength('refused' in intake ? 1 : 0);
      }),
      { numRuns: 80 },
    );
  }, 120_000);
});
