import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { COMPILED_LIMITS_FILE, compileLimits, defaultLimitsFile, InvalidLimitsError, LIMITS_FILE, parseLimits, readLimitsFile } from '../../lambdas/limits/config';
import { addAirlock } from '../../lib/airlock-app';
import { parseConfig } from '../../lib/config';
import { TEST_CONFIG_INPUT, testApp } from '../infra/support';

const shipped = JSON.parse(readFileSync(defaultLimitsFile(), 'utf8')) as Record<string, unknown>;
const dir = mkdtempSync(join(tmpdir(), 'airlock-bad-limits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The problems parseLimits reports for `value`, as `path: message` lines. */
function problemsOf(value: unknown): string[] {
  try {
    parseLimits(JSON.stringify(value));
  } catch (error) {
    if (error instanceof InvalidLimitsError) return error.problems.map((p) => `${p.path}: ${p.message}`);
    throw error;
  }
  return [];
}

describe('the limits file', () => {
  it('ships valid, and its version is a stable hash of its content', () => {
    const a = readLimitsFile();
    const b = parseLimits(JSON.stringify(shipped, null, 7));
    expect(a.version).toMatch(/^[0-9a-f]{64}$/);
    // Formatting does not change the version; content does.
    expect(b.version).toBe(a.version);
    const changed = structuredClone(shipped) as { killSwitch: { propagationSeconds: number } };
    changed.killSwitch.propagationSeconds = 4;
    expect(parseLimits(JSON.stringify(changed)).version).not.toBe(a.version);
  });

  it('reads the limits compiled at synth for that very text, and parses any other text', () => {
    // Prepare: a function's asset: the file and its compiled form beside it.
    const asset = mkdtempSync(join(dir, 'asset-'));
    const file = join(asset, LIMITS_FILE);
    const text = readFileSync(defaultLimitsFile(), 'utf8');
    writeFileSync(file, text);
    writeFileSync(join(asset, COMPILED_LIMITS_FILE), JSON.stringify(compileLimits(text)));
    // Act + Assess: the compiled form is the parse of the text.
    expect(readLimitsFile(file)).toEqual(parseLimits(text));
    // A compiled form whose limits differ from its text's parse shows which one was read.
    const marked = { ...compileLimits(text), version: 'compiled' };
    writeFileSync(join(asset, COMPILED_LIMITS_FILE), JSON.stringify(marked));
    expect(readLimitsFile(file).version).toBe('compiled');
    // Another text beside it (edited after synth): parsed and validated, the compiled form ignored.
    const changed = structuredClone(shipped) as { killSwitch: { propagationSeconds: number } };
    changed.killSwitch.propagationSeconds = 4;
    writeFileSync(file, JSON.stringify(changed));
    expect(readLimitsFile(file)).toEqual(parseLimits(JSON.stringify(changed)));
    writeFileSync(file, JSON.stringify({ ...shipped, rateLimit: [] }));
    expect(() => readLimitsFile(file)).toThrow(InvalidLimitsError);
    // compileLimits refuses what parseLimits refuses.
    expect(() => compileLimits(JSON.stringify({ ...shipped, rateLimit: [] }))).toThrow(InvalidLimitsError);
  });

  it.each([
    ['an unknown top-level field', { ...shipped, rateLimit: [] }, /\(root\): .*rateLimit/],
    ['a duplicate rate-limit id', { ...shipped, rateLimits: [{ id: 'x', scope: 'global', limit: 1, windowSeconds: 60 }, { id: 'x', scope: 'agent', limit: 1, windowSeconds: 60 }] }, /^rateLimits\.1\.id: duplicate id "x"/],
    ['a zero limit', { ...shipped, rateLimits: [{ id: 'x', scope: 'global', limit: 0, windowSeconds: 60 }] }, /^rateLimits\.0\.limit: /],
    ['an unknown scope', { ...shipped, rateLimits: [{ id: 'x', scope: 'planet', limit: 1, windowSeconds: 60 }] }, /^rateLimits\.0\.scope: /],
    ['`only` on a global limit', { ...shipped, rateLimits: [{ id: 'x', scope: 'global', limit: 1, windowSeconds: 60, only: ['travel'] }] }, /^rateLimits\.0\.only: /],
    ['a negative cap', { ...shipped, spendCaps: [{ id: 'c', scope: 'tenant', period: 'day', amount: -5 }] }, /^spendCaps\.0\.amount: /],
    ['a lower-case currency', { ...shipped, spendCaps: [{ id: 'c', scope: 'tenant', period: 'day', amount: 5, currency: 'usd' }] }, /^spendCaps\.0\.currency: /],
    ['a weekly period', { ...shipped, spendCaps: [{ id: 'c', scope: 'tenant', period: 'week', amount: 5 }] }, /^spendCaps\.0\.period: /],
    ['a breaker jitter over 50 %', { ...shipped, breakers: { default: { failures: 5, windowSeconds: 30, resetSeconds: 30, jitter: 0.9, halfOpenSuccesses: 1 } } }, /^breakers\.default\.jitter: /],
    ['a kill switch slower than 5 s', { ...shipped, killSwitch: { role: 'KillSwitch', propagationSeconds: 60 } }, /^killSwitch\.propagationSeconds: /],
    ['no kill switch', { ...shipped, killSwitch: undefined }, /^killSwitch: /],
    ['a rate limit taking the kill switch budget\'s id', { ...shipped, rateLimits: [{ id: 'kill-switch', scope: 'principal', limit: 1, windowSeconds: 60 }] }, /^rateLimits\.0\.id: "kill-switch" is the kill switch's own budget/],
    ['an empty kill-switch budget', { ...shipped, killSwitch: { role: 'KillSwitch', propagationSeconds: 5, budget: { limit: 0, windowSeconds: 60 } } }, /^killSwitch\.budget\.limit: /],
    ['another format version', { ...shipped, version: 2 }, /^version: /],
  ])('refuses %s, naming the field', (_name, value, expected) => {
    const problems = problemsOf(value);
    expect(problems.some((p) => expected.test(p)), problems.join('\n')).toBe(true);
  });

  it('refuses text that is not JSON, naming the file', () => {
    expect(() => parseLimits('{ "version": 1,', '/x/limits.json')).toThrow(/\/x\/limits\.json is invalid:\n  \(file\): not JSON/);
  });

  it('answers any JSON value with the parsed limits or InvalidLimitsError, never another error', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.record({ version: fc.constant(1), rateLimits: fc.array(fc.jsonValue()), killSwitch: fc.jsonValue() })), (value) => {
        try {
          parseLimits(JSON.stringify(value));
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidLimitsError);
          expect((error as InvalidLimitsError).problems.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('stops cdk synth when invalid, naming the field', () => {
    const file = join(dir, 'limits.json');
    writeFileSync(file, JSON.stringify({ ...shipped, spendCaps: [{ id: 'c', scope: 'tenant', period: 'day', amount: 0 }] }));
    const synth = () => addAirlock(testApp(), parseConfig(TEST_CONFIG_INPUT), { limitsFile: file });
    expect(synth).toThrow(InvalidLimitsError);
    expect(synth).toThrow(/spendCaps\.0\.amount: /);
  });
});
