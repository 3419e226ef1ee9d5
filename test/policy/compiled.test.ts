import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  COMPILED_POLICY_SET_FILE,
  compilePolicySet,
  createPolicyEngine,
  loadPolicyEngine,
  PolicySetInvalidError,
  readPolicyDir,
  type CompiledPolicySet,
} from '../../lambdas/policy/index';
import { alice, book, NOW, POLICY_DIR, shippedWith, steps } from './helpers';

/**
 * The policy set compiled at synth (policy/compiled.ts): used at cold start only when it was
 * compiled from exactly the files shipped beside it; anything else is analysed again, so a
 * stale or forged analysis can never stand in for the set.
 */
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A copy of the shipped policy directory with `compiled` written beside it. */
function shippedDirWith(compiled: string | undefined): string {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-compiled-'));
  dirs.push(dir);
  cpSync(POLICY_DIR, dir, { recursive: true });
  if (compiled !== undefined) writeFileSync(join(dir, COMPILED_POLICY_SET_FILE), compiled);
  return dir;
}

/** A compiled set with the permit that allows a $200 flight taken out of its analysis. */
function withoutFlightPermit(compiled: CompiledPolicySet): CompiledPolicySet {
  const allowed = createPolicyEngine(readPolicyDir(POLICY_DIR)).decide({ principal: alice, steps: steps(book(200)), dryRun: false, now: NOW });
  const permits = new Set(allowed.policyIds);
  expect(permits.size).toBeGreaterThan(0);
  return { ...compiled, analysis: { ...compiled.analysis, policies: compiled.analysis.policies.filter((p) => !permits.has(p.id)) } };
}

describe('the compiled policy set', () => {
  it('decides exactly as the analysed set, under the same version', () => {
    // Prepare
    const files = readPolicyDir(POLICY_DIR);
    const compiled = JSON.parse(JSON.stringify(compilePolicySet(files))) as CompiledPolicySet;
    // Act
    const fromCompiled = createPolicyEngine(files, { compiled });
    const analysed = createPolicyEngine(files);
    // Assess
    expect(fromCompiled.version).toBe(analysed.version);
    expect(fromCompiled.policies).toEqual(analysed.policies);
    for (const amount of [200, 2_000, 20_000]) {
      const request = { principal: alice, steps: steps(book(amount)), dryRun: false, now: NOW };
      const { evaluationMicros: _a, ...a } = fromCompiled.decide(request);
      const { evaluationMicros: _b, ...b } = analysed.decide(request);
      expect(a).toEqual(b);
    }
  });

  it('is what the engine decides from when it matches the files (the analysis is not run again)', () => {
    // Prepare: an analysis of these very files, with one permit missing.
    const files = readPolicyDir(POLICY_DIR);
    const compiled = withoutFlightPermit(compilePolicySet(files));
    // Act
    const d = createPolicyEngine(files, { compiled }).decide({ principal: alice, steps: steps(book(200)), dryRun: false, now: NOW });
    // Assess: the missing permit is missing from the decision.
    expect(d.outcome).not.toBe('allow');
  });

  it('is ignored when the files changed after it was compiled', () => {
    // Prepare: compiled from the shipped set (with a permit removed), shipped beside an edited set.
    const stale = withoutFlightPermit(compilePolicySet(readPolicyDir(POLICY_DIR)));
    const edited = shippedWith({ 'read.cedar': `${readPolicyDir(POLICY_DIR).policies['read.cedar']}\n// edited after the synth\n` });
    // Act
    const d = createPolicyEngine(edited, { compiled: stale }).decide({ principal: alice, steps: steps(book(200)), dryRun: false, now: NOW });
    // Assess: analysed afresh, the permit is back.
    expect(d.outcome).toBe('allow');
  });

  it('never lets an invalid set through, whatever the compiled file claims', () => {
    // Prepare: a valid analysis under another set's version, and one of another format.
    const invalid = shippedWith({ 'x.cedar': '@id("x") @reason("r")\npermit (principal, action, resource) when { resource.nope };\n' });
    const valid = compilePolicySet(readPolicyDir(POLICY_DIR));
    // Act + Assess
    expect(() => createPolicyEngine(invalid, { compiled: valid })).toThrow(PolicySetInvalidError);
    expect(() => createPolicyEngine(invalid, { compiled: { ...valid, format: 0 } })).toThrow(PolicySetInvalidError);
    expect(() => compilePolicySet(invalid)).toThrow(PolicySetInvalidError);
  });

  it('is read from beside the policies by loadPolicyEngine, and a broken file falls back to the analysis', () => {
    // Prepare
    const compiled = withoutFlightPermit(compilePolicySet(readPolicyDir(POLICY_DIR)));
    const request = { principal: alice, steps: steps(book(200)), dryRun: false, now: NOW };
    // Act
    const used = loadPolicyEngine(shippedDirWith(JSON.stringify(compiled))).decide(request);
    const broken = loadPolicyEngine(shippedDirWith('{ not json')).decide(request);
    const absent = loadPolicyEngine(shippedDirWith(undefined)).decide(request);
    // Assess
    expect(used.outcome).not.toBe('allow');
    expect(broken.outcome).toBe('allow');
    expect(absent.outcome).toBe('allow');
  });
});

describe('a cold start from the compiled set', () => {
  it('loads Cedar only when a request is decided, not when the engine is built', async () => {
    // Prepare: fresh instances of the policy modules, so this process counts as not having loaded Cedar.
    const files = readPolicyDir(POLICY_DIR);
    const compiled = JSON.parse(JSON.stringify(compilePolicySet(files))) as CompiledPolicySet;
    vi.resetModules();
    const fresh = await import('../../lambdas/policy/index');
    const wasm = await import('../../lambdas/policy/cedar-wasm');
    // Act
    const engine = fresh.createPolicyEngine(files, { compiled });
    const loadedWhenBuilt = wasm.cedarWasmLoaded();
    const decision = engine.decide({ principal: alice, steps: steps(book(200)), dryRun: false, now: NOW });
    // Assess: built without Cedar (a listing or a status read never pays for its wasm); the
    // first decision loads it and decides as the analysed set does.
    expect(loadedWhenBuilt).toBe(false);
    expect(wasm.cedarWasmLoaded()).toBe(true);
    const { evaluationMicros: _a, ...lazy } = decision;
    const { evaluationMicros: _b, ...analysed } = createPolicyEngine(files).decide({ principal: alice, steps: steps(book(200)), dryRun: false, now: NOW });
    expect(lazy).toEqual(analysed);
  });

  it('validates a set it has to analyse when the engine is built, loading Cedar then', async () => {
    // Prepare
    vi.resetModules();
    const fresh = await import('../../lambdas/policy/index');
    const wasm = await import('../../lambdas/policy/cedar-wasm');
    // Act
    fresh.createPolicyEngine(readPolicyDir(POLICY_DIR));
    // Assess
    expect(wasm.cedarWasmLoaded()).toBe(true);
  });
});
