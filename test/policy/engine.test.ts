import { describe, expect, it } from 'vitest';
import {
  createPolicyEngine,
  loadPolicyEngine,
  PolicySetInvalidError,
  policySetVersion,
  readPolicyDir,
} from '../../lambdas/policy/index';
import { alice, book, NOW, POLICY_DIR, shippedWith, steps } from './helpers';

const engine = loadPolicyEngine(POLICY_DIR);

describe('policy engine', () => {
  it('is built once per directory and names its version as the SHA-256 of the files', () => {
    expect(loadPolicyEngine(POLICY_DIR)).toBe(engine);
    expect(engine.version).toMatch(/^[0-9a-f]{64}$/);
    expect(engine.version).toBe(policySetVersion(readPolicyDir(POLICY_DIR)));
    const changed = shippedWith({ 'read.cedar': `${readPolicyDir(POLICY_DIR).policies['read.cedar']}\n// edited\n` });
    expect(policySetVersion(changed)).not.toBe(engine.version);
  });

  it('records version, timing and per-step answers on every decision', () => {
    const d = engine.decide({ principal: alice, steps: steps(book(200)), dryRun: false, now: NOW });
    expect(d).toMatchObject({ outcome: 'allow', quorum: 0, approverRule: null, policySetVersion: engine.version, shadow: [] });
    expect(d.evaluationMicros).toBeGreaterThan(0);
    expect(d.steps).toEqual([expect.objectContaining({ id: 's1', outcome: 'allow' })]);
  });

  it('denies by default with no policy id and a reason saying so', () => {
    const d = engine.decide({
      principal: alice,
      steps: steps({ tool: 'crm.delete_account', connector: 'crm', tier: 'commit', vendor: 'CRM' }),
      dryRun: false,
      now: NOW,
    });
    expect(d.outcome).toBe('deny');
    expect(d.policyIds).toEqual([]);
    expect(d.reasons[0]).toMatch(/denied by default/);
  });

  it('denies an empty plan and fails closed instead of throwing on nonsense input', () => {
    expect(engine.decide({ principal: alice, steps: [], dryRun: false, now: NOW }).outcome).toBe('deny');
    const invalidDate = engine.decide({ principal: alice, steps: steps(book(5)), dryRun: false, now: new Date(Number.NaN) });
    expect(invalidDate.outcome).toBe('deny');
    expect(invalidDate.reasons.join()).toMatch(/fail closed/);
    // A cap whose usage is not a number reads as full: the commit needs a person (the cap itself refuses in spend/caps.ts).
    const nanSpend = engine.decide({ principal: alice, steps: steps(book(5)), dryRun: false, caps: [{ id: 'principal-daily', limit: 5_000_000, used: Number.NaN }], now: NOW });
    expect(nanSpend).toMatchObject({ outcome: 'require_approval', policyIds: ['exposure.cap-near'] });
  });

  it('fails closed when a policy errors at evaluation time (Cedar would skip an erroring forbid)', () => {
    // Prepare: this forbid overflows a Long for any real amount, so Cedar reports an error.
    const overflow = '@id("x.overflow") @reason("r")\nforbid (principal, action == Airlock::Action::"request", resource)\nwhen { context.amount * 9223372036854775807 > 0 };\n';
    const e = createPolicyEngine(shippedWith({ 'x.cedar': overflow }));
    // Act
    const d = e.decide({ principal: alice, steps: steps(book(5)), dryRun: false, now: NOW });
    // Assess
    expect(d.outcome).toBe('deny');
    expect(d.reasons[0]).toMatch(/fail closed/);
  });

  it('refuses to build from an invalid set, naming the file and line', () => {
    const files = shippedWith({ 'x.cedar': '@id("x") @reason("r")\npermit (principal, action, resource) when { resource.nope };\n' });
    expect(() => createPolicyEngine(files)).toThrow(PolicySetInvalidError);
    expect(() => createPolicyEngine(files)).toThrow(/x\.cedar:2:/);
  });

  it('lists its policies with their annotations', () => {
    expect(engine.policies.find((p) => p.id === 'iam.two-security-admins')).toEqual({
      id: 'iam.two-security-admins',
      file: 'iam.cedar',
      effect: 'forbid',
      action: 'run_unattended',
      reason: expect.stringMatching(/SecurityAdmin/),
      approvals: 2,
      approvers: 'role:SecurityAdmin',
      shadow: false,
    });
  });
});

describe('shadow mode', () => {
  const strictTravel = [
    '// Candidate rule: every booking above $300 needs the manager.',
    '@id("travel.candidate-300")',
    '@reason("Bookings above $300 need the manager (candidate rule).")',
    '@approvals("1")',
    '@approvers("manager")',
    'forbid (principal, action == Airlock::Action::"run_unattended", resource)',
    'when { resource.connector == "travel" && resource.tier == "commit" && context.amount > 30000 };',
    '',
  ].join('\n');

  it('records what a shadow file would decide without changing the decision', () => {
    // Prepare
    const e = createPolicyEngine(
      shippedWith({ 'travel-candidate.cedar': strictTravel }, (c) => {
        c.files = { ...(c.files as object), 'travel-candidate.cedar': { mode: 'shadow' } };
      }),
    );
    // Act
    const d = e.decide({ principal: alice, steps: steps(book(500)), dryRun: false, now: NOW });
    // Assess
    expect(d.outcome).toBe('allow');
    expect(d.policyIds).not.toContain('travel.candidate-300');
    expect(d.shadow).toEqual([
      { file: 'travel-candidate.cedar', outcome: 'require_approval', policyIds: ['travel.candidate-300'], reasons: [expect.any(String)], quorum: 1 },
    ]);
    expect(e.policies.find((p) => p.id === 'travel.candidate-300')?.shadow).toBe(true);
  });

  it('the same file enforced changes the decision', () => {
    const e = createPolicyEngine(shippedWith({ 'travel-candidate.cedar': strictTravel }));
    const d = e.decide({ principal: alice, steps: steps(book(500)), dryRun: false, now: NOW });
    expect(d).toMatchObject({ outcome: 'require_approval', policyIds: ['travel.candidate-300'], shadow: [] });
  });

  it('a shipped file put in shadow stops deciding but still reports', () => {
    const e = createPolicyEngine(
      shippedWith({}, (c) => {
        c.files = { ...(c.files as object), 'exposure.cedar': { mode: 'shadow' } };
      }),
    );
    const d = e.decide({ principal: alice, steps: steps(book(500)), dryRun: false, caps: [{ id: 'principal-daily', limit: 5_000_000, used: 4_990_000 }], now: NOW });
    expect(d.outcome).toBe('allow');
    expect(d.shadow).toEqual([expect.objectContaining({ file: 'exposure.cedar', outcome: 'require_approval', policyIds: ['exposure.cap-near'] })]);
  });
});
