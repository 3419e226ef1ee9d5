import { describe, expect, it } from 'vitest';
import { createPolicyEngine, readPolicyDir } from '../../lambdas/policy/index';
import { listFixtures, runFixtures, runFixtureText } from '../../lambdas/policy/fixtures';
import { POLICY_DIR, TESTS_DIR } from './helpers';

// Request validation on: proves every context the engine builds fits the schema.
const strictEngine = createPolicyEngine(readPolicyDir(POLICY_DIR), { validateRequests: true });
const fastEngine = createPolicyEngine(readPolicyDir(POLICY_DIR));
const results = runFixtures(strictEngine, TESTS_DIR);

describe('policy fixtures', () => {
  it('has fixtures of every kind', () => {
    const kinds = new Set(listFixtures(TESTS_DIR).map((f) => f.kind));
    expect([...kinds].sort()).toEqual(['ALLOW', 'APPROVAL', 'APPROVER', 'DENY']);
  });

  it.each(results.map((r) => [r.name, r] as const))('%s', (_name, result) => {
    expect(result.failures).toEqual([]);
    expect(result.passed).toBe(true);
  });

  it('gives the same answers when it sends Cedar only what each policy set reads', () => {
    // The strict engine sends whole entities and contexts (the schema demands them); the
    // default one trims them per policy set. Any difference would be a trimming bug.
    const answer = (r: (typeof results)[number]) => {
      const a = r.actual;
      if (!a) return undefined;
      return 'outcome' in a
        ? { outcome: a.outcome, policyIds: a.policyIds, quorum: a.quorum, steps: a.steps.map((s) => [s.outcome, s.policyIds]) }
        : { allowed: a.allowed, policyIds: a.policyIds };
    };
    const fast = runFixtures(fastEngine, TESTS_DIR);
    expect(fast.map((r) => [r.name, answer(r)])).toEqual(results.map((r) => [r.name, answer(r)]));
  });

  it('exercises every shipped policy in at least one fixture', () => {
    // Prepare: every id any fixture's answer names.
    const named = new Set(
      results.flatMap((r) => {
        const a = r.actual;
        if (!a) return [];
        return 'outcome' in a ? [...a.policyIds, ...a.steps.flatMap((s) => s.policyIds)] : a.policyIds;
      }),
    );
    // Assess
    const unexercised = strictEngine.policies.map((p) => p.id).filter((id) => !named.has(id));
    expect(unexercised).toEqual([]);
  });

  it('fails a fixture whose expectation is wrong, and a fixture in the wrong folder', () => {
    const text = JSON.stringify({
      description: 'wrong on purpose',
      request: { principal: { sub: 'a', roles: [] }, steps: [{ id: 's1', facts: { tool: 'travel.search_flights', connector: 'travel', tier: 'read', vendor: 'V' } }] },
      expect: { outcome: 'allow', quorum: 3 },
    });
    const wrongQuorum = runFixtureText(strictEngine, 'ALLOW', 'ALLOW/a_travel.search_flights_x.json', text);
    expect(wrongQuorum.passed).toBe(false);
    expect(wrongQuorum.failures.join()).toMatch(/quorum: expected 3, got 0/);
    const wrongFolder = runFixtureText(strictEngine, 'DENY', 'DENY/a_travel.search_flights_x.json', text);
    expect(wrongFolder.failures.join()).toMatch(/sits in DENY/);
  });

  it('rejects malformed fixtures and names that do not follow subject_tool_case', () => {
    expect(runFixtureText(strictEngine, 'ALLOW', 'ALLOW/a_b_c.json', '{"description":"x"}').failures.join()).toMatch(/invalid fixture/);
    expect(runFixtureText(strictEngine, 'ALLOW', 'ALLOW/Bad Name.json', '{}').failures.join()).toMatch(/file name/);
    expect(runFixtureText(strictEngine, 'ALLOW', 'ALLOW/a_b_c.json', '{').failures.join()).toMatch(/not valid JSON/);
  });
});
