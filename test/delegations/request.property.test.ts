import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_DELEGATION_DAYS, validateDelegationRequest } from '../../lambdas/delegations/delegations';
import { DelegationRequestInvalidError } from '../../lambdas/delegations/errors';
import { toolRegistry } from '../../lambdas/tools/registry';
import { delegationProblem } from '../../lambdas/delegations/http';

/**
 * The trust boundary of POST /v1/delegations: whatever the body, validation either accepts a
 * request that satisfies every rule (known tools and connectors, at least one, a non-negative
 * budget in a currency with a rate, an expiry in the future and within the limit) or throws
 * DelegationRequestInvalidError, which is a 400 problem listing violations. Nothing else.
 */

const money = { baseCurrency: 'USD', rates: { USD: 1, EUR: 1.1 } };
const NOW = new Date('2031-05-06T07:08:09Z');
const tools = toolRegistry.all().map((t) => t.fullName);
const connectors = [...new Set(toolRegistry.all().map((t) => t.connector.name))];

const day = 86_400_000;
const expiry = fc.oneof(
  fc.integer({ min: -400, max: 400 }).map((d) => new Date(NOW.getTime() + d * day).toISOString()),
  fc.integer({ min: -10_000, max: 10_000 }).map((ms) => new Date(NOW.getTime() + ms).toISOString()),
  fc.string(),
  fc.constant('2031-05-06T08:00:00+02:00'),
);
const body = fc.record(
  {
    agent: fc.oneof(fc.constantFrom('trip-bot', 'a', 'x'.repeat(256), 'x'.repeat(257), 'two words', ''), fc.string(), fc.integer()),
    tools: fc.oneof(fc.array(fc.oneof(fc.constantFrom(...tools), fc.string({ maxLength: 140 })), { maxLength: 4 }), fc.string()),
    connectors: fc.array(fc.oneof(fc.constantFrom(...connectors), fc.string({ maxLength: 70 })), { maxLength: 3 }),
    budget: fc.oneof(
      fc.record({
        amount: fc.oneof(fc.double({ noNaN: false }), fc.integer({ min: -5, max: 5_000 })),
        currency: fc.constantFrom('USD', 'eur', 'XYZ', 'US', '$$$'),
        period: fc.constantFrom('day', 'month', 'total', 'week'),
      }),
      fc.constant(null),
    ),
    expiresAt: expiry,
    rules: fc.oneof(fc.record({ askForCommit: fc.boolean() }), fc.record({ askForCommit: fc.string() }), fc.constant({ sudo: true })),
    purpose: fc.string({ maxLength: 600 }),
    extra: fc.anything(),
  },
  { requiredKeys: [] },
);

/** Bodies near the boundary: mostly valid members, each one sometimes just wrong. */
const nearlyValid = fc.record(
  {
    agent: fc.constantFrom('trip-bot', 'ci-agent', 'x y'),
    tools: fc.array(fc.oneof(fc.constantFrom(...tools), fc.constantFrom(...tools), fc.constant('travel.teleport')), { maxLength: 3 }),
    connectors: fc.array(fc.constantFrom(...connectors, 'moon'), { maxLength: 2 }),
    budget: fc.record({ amount: fc.integer({ min: -2, max: 10_000 }), currency: fc.constantFrom('USD', 'EUR', 'XYZ'), period: fc.constantFrom('day', 'month', 'total') }),
    expiresAt: fc.integer({ min: -3, max: 400 }).map((d) => new Date(NOW.getTime() + d * day + 1).toISOString()),
    rules: fc.record({ askForCommit: fc.boolean() }),
  },
  { requiredKeys: ['agent', 'expiresAt'] },
);

describe('the delegation request boundary', () => {
  it('accepts only requests that keep every rule, and refuses everything else with violations', () => {
    const seen = { accepted: 0, refused: 0 };
    fc.assert(
      fc.property(fc.oneof(body, nearlyValid, fc.anything()), (input) => {
        let accepted;
        try {
          accepted = validateDelegationRequest(input, { tools: toolRegistry, money }, NOW);
        } catch (error) {
          expect(error).toBeInstanceOf(DelegationRequestInvalidError);
          const violations = (error as DelegationRequestInvalidError).violations;
          expect(violations.length).toBeGreaterThan(0);
          const problem = delegationProblem(error)!;
          expect(problem.problem).toMatchObject({ status: 400, type: 'urn:airlock:problem:validation' });
          seen.refused += 1;
          return;
        }
        const scope = [...(accepted.tools ?? []), ...(accepted.connectors ?? [])];
        expect(scope.length).toBeGreaterThan(0);
        for (const t of accepted.tools ?? []) expect(tools).toContain(t);
        for (const c of accepted.connectors ?? []) expect(connectors).toContain(c);
        if (accepted.budget) {
          expect(accepted.budget.amount).toBeGreaterThanOrEqual(0);
          expect(Number.isFinite(accepted.budget.amount)).toBe(true);
          expect(['USD', 'EUR']).toContain(accepted.budget.currency.toUpperCase());
        }
        const expires = Date.parse(accepted.expiresAt);
        expect(expires).toBeGreaterThan(NOW.getTime());
        expect(expires - NOW.getTime()).toBeLessThanOrEqual(MAX_DELEGATION_DAYS * day);
        expect(accepted.agent).toMatch(/^\S{1,256}$/);
        seen.accepted += 1;
      }),
      { numRuns: 600 },
    );
    // Both sides of the boundary were exercised.
    expect(seen.accepted).toBeGreaterThan(0);
    expect(seen.refused).toBeGreaterThan(0);
  });
});
