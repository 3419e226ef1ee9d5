import { fileURLToPath } from 'node:url';
import { readPolicyDir, type PolicyFiles } from '../../lambdas/policy/index';
import type { PlanStep, ToolFacts } from '../../lambdas/policy/index';
import type { Principal } from '../../lambdas/shared/principal';

/** The shipped policy directory and its fixtures. */
export const POLICY_DIR = fileURLToPath(new URL('../../policies/', import.meta.url));
export const TESTS_DIR = fileURLToPath(new URL('../../policies/tests/', import.meta.url));

/** The shipped files, with some replaced or added (file name → text); `null` removes a file. */
export function shippedWith(changes: Partial<Record<string, string | null>> = {}, config?: (c: Record<string, unknown>) => void): PolicyFiles {
  const files = readPolicyDir(POLICY_DIR);
  const policies = { ...files.policies };
  for (const [name, text] of Object.entries(changes)) {
    if (text === null) delete policies[name];
    else if (text !== undefined) policies[name] = text;
  }
  let configText = files.config;
  if (config) {
    const parsed: Record<string, unknown> = JSON.parse(files.config) as Record<string, unknown>;
    config(parsed);
    configText = JSON.stringify(parsed);
  }
  return { ...files, config: configText, policies };
}

export const alice: Principal = { sub: 'alice', roles: ['Employee'], manager: 'maria' };
export const NOW = new Date('2025-06-02T10:00:00Z');

export function book(amount: number): ToolFacts {
  return { tool: 'travel.book_flight', connector: 'travel', tier: 'commit', vendor: 'Sandbox Travel', amount: { amount, currency: 'USD' }, counterparty: 'airline-ua' };
}

export function steps(...facts: ToolFacts[]): PlanStep[] {
  return facts.map((f, i) => ({ id: `s${i + 1}`, facts: f }));
}
