import { describe, expect, it } from 'vitest';
import { validatePolicyDir, validatePolicyFiles } from '../../lambdas/policy/index';
import { POLICY_DIR, shippedWith } from './helpers';

describe('policy validation', () => {
  it('accepts the shipped set in strict mode, with no warnings', () => {
    const result = validatePolicyDir(POLICY_DIR);
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.ok).toBe(true);
  });

  it('reports a syntax error with its file, line and column', () => {
    // Prepare: line 3, column 44 is the stray `}` after `1 +`.
    const broken = '// broken on purpose\n@id("x.broken") @reason("r")\npermit (principal, action, resource) when { 1 + };\n';
    // Act
    const result = validatePolicyFiles(shippedWith({ 'broken.cedar': broken }));
    // Assess
    expect(result.ok).toBe(false);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatchObject({ file: 'broken.cedar', line: 3, column: 49 });
    expect(result.errors[0]?.message).toMatch(/unexpected token/);
  });

  it('blames an unterminated policy on its own file, not the next one', () => {
    const result = validatePolicyFiles(shippedWith({ 'aaa.cedar': '@id("a") @reason("r")\npermit (principal, action, resource)\n' }));
    expect(result.ok).toBe(false);
    expect(result.errors.map((e) => e.file)).toEqual(['aaa.cedar']);
  });

  it('reports a schema violation with file, policy id, line and column', () => {
    const wrong = [
      '// A typo in an attribute name must fail the build, not silently never match.',
      '@id("travel.typo")',
      '@reason("r")',
      'permit (principal, action == Airlock::Action::"request", resource)',
      'when { resource.conector == "travel" };',
      '',
    ].join('\n');
    const result = validatePolicyFiles(shippedWith({ 'travel.cedar': wrong }));
    expect(result.ok).toBe(false);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatchObject({ file: 'travel.cedar', policyId: 'travel.typo', line: 5, column: 8 });
    expect(result.errors[0]?.message).toMatch(/conector/);
  });

  it('reports a type error (a String compared with a Long) in strict mode', () => {
    const wrong = '@id("x.type") @reason("r")\npermit (principal, action == Airlock::Action::"request", resource)\nwhen { context.amount > "1000" };\n';
    const result = validatePolicyFiles(shippedWith({ 'x.cedar': wrong }));
    expect(result.ok).toBe(false);
    expect(result.errors[0]).toMatchObject({ file: 'x.cedar', policyId: 'x.type', line: 3 });
  });

  it('locates errors by byte offset even after non-ASCII text', () => {
    const wrong = '// Café policy — ünïcode ✓\n@id("x.u") @reason("r")\npermit (principal, action, resource) when { resource.nope };\n';
    const result = validatePolicyFiles(shippedWith({ 'x.cedar': wrong }));
    expect(result.errors[0]).toMatchObject({ file: 'x.cedar', line: 3, column: 45 });
  });

  it('requires @id and @reason, unique ids, and approvals on unattended forbids', () => {
    const text = [
      'permit (principal, action == Airlock::Action::"request", resource) when { resource.tier == "read" };',
      '@id("read.request") @reason("dup") permit (principal, action == Airlock::Action::"request", resource) when { resource.tier == "read" };',
      '@id("x.noreason") permit (principal, action == Airlock::Action::"request", resource) when { resource.tier == "read" };',
      '@id("x.gate") @reason("r") forbid (principal, action == Airlock::Action::"run_unattended", resource) when { context.amount > 5 };',
      '@id("x.badq") @reason("r") @approvals("two") @approvers("x") forbid (principal, action == Airlock::Action::"run_unattended", resource) when { context.amount > 5 };',
      '@id("x.stray") @reason("r") @approvals("1") @approvers("x") permit (principal, action == Airlock::Action::"request", resource) when { context.amount > 5 };',
      '',
    ].join('\n');
    const result = validatePolicyFiles(shippedWith({ 'x.cedar': text }));
    const messages = result.errors.map((e) => `${e.file}:${e.line} ${e.message}`);
    expect(messages).toEqual([
      expect.stringMatching(/^x\.cedar:1 Policy #1 of x.cedar has no @id/),
      expect.stringMatching(/^x\.cedar:3 Policy x\.noreason has no @reason/),
      expect.stringMatching(/^x\.cedar:4 Policy x\.gate forbids running unattended/),
      expect.stringMatching(/^x\.cedar:5 Policy x\.badq: @approvals must be a whole number/),
      expect.stringMatching(/^x\.cedar:6 Policy x\.stray has @approvals/),
      expect.stringMatching(/^x\.cedar:2 Duplicate @id\("read\.request"\): also used in read\.cedar/),
    ]);
  });

  it('reports a broken schema with its location', () => {
    const files = shippedWith();
    const result = validatePolicyFiles({ ...files, schema: files.schema.replace('tier: String,', 'tier: Strng,') });
    expect(result.ok).toBe(false);
    expect(result.errors[0]).toMatchObject({ file: 'schema.cedarschema', line: expect.any(Number), column: expect.any(Number) });
    expect(result.errors[0]?.message).toMatch(/Strng/);
  });

  it('reports config.json problems: bad JSON, bad fields, unknown files', () => {
    const bad = validatePolicyFiles({ ...shippedWith(), config: '{' });
    expect(bad.errors[0]).toMatchObject({ file: 'config.json', message: expect.stringMatching(/Not valid JSON/) });
    const fields = validatePolicyFiles(
      shippedWith({}, (c) => {
        c.vendors = { allowed: [7], denied: [] };
        c.files = { 'nope.cedar': { mode: 'shadow' } };
      }),
    );
    expect(fields.errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/^vendors\.allowed\.0:/),
    ]);
    // The daily exposure cap moved to limits.json (spendCaps): a config still carrying it is told so.
    const moved = validatePolicyFiles(shippedWith({}, (c) => {
      c.dailyExposureCap = 50_000;
    }));
    expect(moved.errors.map((e) => e.message)).toEqual([expect.stringMatching(/dailyExposureCap/)]);
    const unknown = validatePolicyFiles(shippedWith({}, (c) => {
      c.files = { 'nope.cedar': { mode: 'shadow' } };
    }));
    expect(unknown.errors.map((e) => e.message)).toEqual(['files.nope.cedar: no such policy file.']);
  });

  it('reports a missing directory instead of throwing', () => {
    const result = validatePolicyDir('/nonexistent/policies');
    expect(result.ok).toBe(false);
    expect(result.errors[0]?.message).toMatch(/Cannot read the policy directory/);
  });
});
