import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../../lib/constructs/airlock-function';

/**
 * The conformance baseline (test/mcp/conformance-baseline.yml) may excuse only scenarios that
 * need fixtures Airlock does not serve (prompts, resources, completions, input-required
 * rounds): never a tools, auth, stateless-lifecycle or error-handling scenario (issue 16's
 * rule). Those pass, against the fixture tools where the suite needs its own.
 */
const BASELINE = join(PROJECT_ROOT, 'test/mcp/conformance-baseline.yml');

/** Scenario names no baseline entry may name. */
export function forbiddenBaselineEntry(entry: string): boolean {
  const scenario = entry.split(':')[0]!.trim().toLowerCase();
  return scenario.startsWith('tools-') || scenario.startsWith('auth') || scenario.startsWith('server-stateless') || scenario.includes('error');
}

function entries(): string[] {
  const doc = parse(readFileSync(BASELINE, 'utf8')) as Record<string, unknown>;
  return Object.values(doc).flatMap((list) => (Array.isArray(list) ? list.map(String) : []));
}

describe('conformance baseline', () => {
  it('names no tools, auth, stateless or error-handling scenario', () => {
    const all = entries();
    expect(all.length).toBeGreaterThan(0);
    expect(all.filter(forbiddenBaselineEntry)).toEqual([]);
  });

  it('has one line of reason for every group of entries', () => {
    const lines = readFileSync(BASELINE, 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (!/^\s+- /.test(line) || line.includes('#')) return;
      // An entry without its own comment sits under a comment, or under entries that do.
      let j = i - 1;
      while (j >= 0 && /^\s+- /.test(lines[j]!) && !lines[j]!.includes('#')) j--;
      expect(lines[j]?.trim().startsWith('#') || lines[j]?.includes('#'), `entry without a reason: ${line.trim()}`).toBe(true);
    });
  });

  it('the rule catches what it must', () => {
    for (const entry of ['tools-call-simple-text:tools-call-simple-text', 'tools-list', 'auth/metadata-default', 'auth-token', 'server-stateless:sep-2575-x', 'tools-call-error', 'sep-2164-error-handling', 'Error-Codes']) {
      expect(forbiddenBaselineEntry(entry), entry).toBe(true);
    }
    for (const entry of ['prompts-list', 'resources-read-text', 'caching:sep-2549-prompts-list-caching-hints', 'sep-2164-resource-not-found:sep-2164-error-code', 'completion-complete']) {
      expect(forbiddenBaselineEntry(entry), entry).toBe(false);
    }
  });
});
