import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadPolicyEngine, PolicyConfigSchema, readPolicyDir, type ToolFacts } from '../../lambdas/policy/index';
import { preparePlan, sanitizeCaps, stepContext, toolEntity, userEntity } from '../../lambdas/policy/request';
import type { CapContext } from '../../lambdas/policy/types';
import type { Principal } from '../../lambdas/shared/principal';
import { POLICY_DIR } from './helpers';

const engine = loadPolicyEngine(POLICY_DIR);
const files = readPolicyDir(POLICY_DIR);
const config = PolicyConfigSchema.parse(JSON.parse(files.config));

// Each forbid on its own beside a permit-everything policy: a deny then means "this forbid
// matches", decided by Cedar independently of the engine's combining logic.
const forbids = engine.policies.filter((p) => p.effect === 'forbid' && (p.action === 'request' || p.action === 'run_unattended'));
const texts = new Map<string, string>();
{
  const parts = cedar.policySetTextToParts(Object.values(files.policies).join('\n'));
  if (parts.type !== 'success') throw new Error('shipped policies do not parse');
  for (const text of parts.policies) {
    const json = cedar.policyToJson(text);
    if (json.type === 'success' && json.json.annotations?.id) texts.set(json.json.annotations.id, text);
  }
}
for (const f of forbids) {
  const answer = cedar.preparsePolicySet(`property:${f.id}`, { staticPolicies: { everything: 'permit (principal, action, resource);', [f.id]: texts.get(f.id) ?? '' } });
  if (answer.type !== 'success') throw new Error(`cannot preparse ${f.id}`);
}

function forbidsMatching(principal: Principal, stepsIn: { id: string; facts: ToolFacts }[], dryRun: boolean, caps: CapContext[], now: Date) {
  const plan = preparePlan(stepsIn, config);
  const shared = {
    dryRun,
    caps: sanitizeCaps(caps),
    planTotal: plan.planTotal,
    byConnector: plan.byConnector,
    planSteps: stepsIn.length,
    hour: now.getUTCHours(),
    weekday: now.getUTCDay(),
    allowedVendors: config.vendors.allowed,
    deniedVendors: config.vendors.denied,
  };
  return plan.steps.map((s) => {
    const matched: { id: string; action: string }[] = [];
    for (const f of forbids) {
      const answer = cedar.statefulIsAuthorized({
        principal: { type: 'Airlock::User', id: principal.sub },
        action: { type: 'Airlock::Action', id: f.action ?? '' },
        resource: { type: 'Airlock::Tool', id: s.step.facts.tool },
        context: stepContext(shared, s),
        entities: [userEntity(principal), toolEntity(s.step)],
        preparsedPolicySetId: `property:${f.id}`,
      });
      if (answer.type === 'success' && answer.response.decision === 'deny') matched.push({ id: f.id, action: f.action ?? '' });
    }
    return { id: s.step.id, matched };
  });
}

const TOOLS: Omit<ToolFacts, 'amount' | 'counterparty' | 'grantee'>[] = [
  { tool: 'travel.search_flights', connector: 'travel', tier: 'read', vendor: 'Sandbox Travel' },
  { tool: 'travel.hold_seat', connector: 'travel', tier: 'commit', vendor: 'Sandbox Travel' },
  { tool: 'travel.book_flight', connector: 'travel', tier: 'commit', vendor: 'Sandbox Travel' },
  { tool: 'travel.cancel_booking', connector: 'travel', tier: 'commit', vendor: 'Sandbox Travel' },
  { tool: 'payments.authorize', connector: 'payments', tier: 'commit', vendor: 'Sandbox Payments' },
  { tool: 'payments.capture', connector: 'payments', tier: 'commit', vendor: 'Sandbox Payments' },
  { tool: 'payments.get_payment', connector: 'payments', tier: 'read', vendor: 'Sandbox Payments' },
  { tool: 'procurement.place_order', connector: 'procurement', tier: 'commit', vendor: 'Sandbox Procurement' },
  { tool: 'procurement.search_catalog', connector: 'procurement', tier: 'read', vendor: 'Sandbox Procurement' },
  { tool: 'iam.grant_role', connector: 'iam', tier: 'commit', vendor: 'Sandbox IAM' },
  { tool: 'iam.get_role_assignments', connector: 'iam', tier: 'read', vendor: 'Sandbox IAM' },
  { tool: 'crm.export', connector: 'crm', tier: 'draft', vendor: 'CRM' },
];

const sub = fc.oneof(fc.constantFrom('alice', 'bob', 'maria', 'sam', 'fiona'), fc.string({ maxLength: 12 }));
const principal: fc.Arbitrary<Principal> = fc.record(
  {
    sub,
    roles: fc.uniqueArray(fc.oneof(fc.constantFrom('Employee', 'Manager', 'Procurement', 'SecurityAdmin', 'FinanceAdmin'), fc.string({ maxLength: 8 })), { maxLength: 4 }),
    manager: sub,
    department: fc.string({ maxLength: 8 }),
  },
  { requiredKeys: ['sub', 'roles'] },
);
const major = fc.oneof(
  fc.constantFrom(0, 199.99, 200, 1000, 1000.01, 5000, 5000.01, 10000, 10000.01, 50000, 50000.01, -1, 1e20),
  fc.double({ min: -10, max: 60_000, noNaN: false }),
  fc.integer({ min: 0, max: 60_000 }),
);
const facts: fc.Arbitrary<ToolFacts> = fc
  .record(
    {
      base: fc.constantFrom(...TOOLS),
      amount: fc.record({ amount: major, currency: fc.constantFrom('USD', 'EUR', 'usd', 'XYZ', '') }),
      counterparty: fc.constantFrom('acme-office', 'globex-industrial', 'shady-supplies', 'airline-ua', 'merchant-1', ''),
      grantee: sub,
      role: fc.constantFrom('Admin', 'Viewer'),
    },
    { requiredKeys: ['base'] },
  )
  .map(({ base, ...rest }) => ({ ...base, ...rest }));
const planSteps = fc.array(facts, { minLength: 1, maxLength: 4 }).map((fs) => fs.map((f, i) => ({ id: `s${i + 1}`, facts: f })));
const request = fc.record({
  principal,
  steps: planSteps,
  dryRun: fc.boolean(),
  caps: fc.array(
    fc.record(
      {
        id: fc.constantFrom('principal-daily', 'procurement-buyer-daily', 'payments-tenant-monthly'),
        limit: fc.oneof(fc.constantFrom(0, 100_000, 5_000_000), fc.double({ min: -100, max: 1e9, noNaN: false })),
        used: fc.oneof(fc.constantFrom(0, 4_900_000, 5_000_000), fc.double({ min: -100, max: 1e9, noNaN: false })),
        connectors: fc.constantFrom(['procurement'], ['payments'], ['travel', 'payments']),
      },
      { requiredKeys: ['id', 'limit', 'used'] },
    ),
    { maxLength: 3 },
  ),
  now: fc.date({ min: new Date('2024-01-01T00:00:00Z'), max: new Date('2030-01-01T00:00:00Z'), noInvalidDate: true }),
});

describe('policy engine properties', () => {
  it('never allows when a forbid matches, and never throws', () => {
    const seen = { request: 0, run_unattended: 0 };
    fc.assert(
      fc.property(request, (req) => {
        const d = engine.decide(req);
        expect(['allow', 'deny', 'require_approval']).toContain(d.outcome);
        const matches = forbidsMatching(req.principal, req.steps, req.dryRun, req.caps, req.now);
        for (const m of matches) {
          const step = d.steps.find((s) => s.id === m.id);
          for (const x of m.matched) seen[x.action === 'request' ? 'request' : 'run_unattended'] += 1;
          if (m.matched.some((x) => x.action === 'request')) {
            expect(step?.outcome).toBe('deny');
            expect(d.outcome).toBe('deny');
          }
          if (!req.dryRun && m.matched.some((x) => x.action === 'run_unattended')) {
            expect(step?.outcome).not.toBe('allow');
            expect(d.outcome).not.toBe('allow');
          }
        }
        if (d.outcome === 'require_approval') expect(d.quorum).toBeGreaterThanOrEqual(1);
        else expect(d.quorum).toBe(0);
      }),
      { numRuns: 150 },
    );
    // The property means nothing if the generators never hit a forbid.
    expect(seen.request).toBeGreaterThan(20);
    expect(seen.run_unattended).toBeGreaterThan(20);
  });

  it('never lets the requester approve their own action, and never throws', () => {
    fc.assert(
      fc.property(principal, planSteps, fc.option(principal, { nil: undefined }), (requester, s, other) => {
        const self = engine.canApprove({ approver: requester, requester, steps: s });
        expect(self.allowed).toBe(false);
        if (other) expect(typeof engine.canApprove({ approver: other, requester, steps: s }).allowed).toBe('boolean');
      }),
      { numRuns: 150 },
    );
  });
});
