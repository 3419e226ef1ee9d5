import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod';
import { majorToBaseMinor } from '../shared/money';
import type { ApprovalCheck, Decision, Outcome, PolicyEngine } from './types';
import { NO_CAP } from './request';

/**
 * Policy fixtures: `policies/tests/{ALLOW,DENY,APPROVAL}/<subject>_<tool>_<case>.json` hold a
 * decision request and the expected outcome; `policies/tests/APPROVER/...` hold an approval
 * eligibility question and whether it is allowed. `npm test` and `airlock policy test` run them.
 */

const PrincipalSchema = z
  .object({
    sub: z.string().min(1),
    roles: z.array(z.string()).default([]),
    manager: z.string().min(1).optional(),
    department: z.string().min(1).optional(),
  })
  .strict();

const ToolFactsSchema = z
  .object({
    tool: z.string().regex(/^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$/),
    connector: z.string().min(1),
    tier: z.enum(['read', 'draft', 'commit']),
    vendor: z.string(),
    amount: z.object({ amount: z.number(), currency: z.string() }).strict().optional(),
    counterparty: z.string().optional(),
    grantee: z.string().optional(),
    role: z.string().optional(),
  })
  .strict();

const StepsSchema = z.array(z.object({ id: z.string().min(1), facts: ToolFactsSchema }).strict());

/** Fixtures pin the clock so time-based rules stay reproducible. */
const DEFAULT_NOW = '2025-06-02T10:00:00Z';

const DecisionFixtureSchema = z
  .object({
    description: z.string().min(1),
    request: z
      .object({
        principal: PrincipalSchema,
        steps: StepsSchema,
        dryRun: z.boolean().default(false),
        /** Spend caps as they stand, major units of the base currency (converted like every amount). */
        caps: z
          .array(
            z
              .object({
                id: z.string().min(1),
                amount: z.number(),
                spent: z.number().default(0),
                connectors: z.array(z.string().min(1)).min(1).optional(),
              })
              .strict(),
          )
          .default([]),
        /** The delegation the agent acts under; budget and spent in major units of the base currency. */
        delegation: z
          .object({
            id: z.string().min(1),
            agent: z.string().min(1),
            askForCommit: z.boolean().default(false),
            budget: z.number().optional(),
            spent: z.number().default(0),
          })
          .strict()
          .optional(),
        now: z.iso.datetime({ offset: true }).default(DEFAULT_NOW),
      })
      .strict(),
    expect: z
      .object({
        outcome: z.enum(['allow', 'deny', 'require_approval']),
        /** When given, the decision's policy ids must be exactly these (any order). */
        policyIds: z.array(z.string()).optional(),
        quorum: z.number().int().nonnegative().optional(),
        approverRule: z.string().nullable().optional(),
      })
      .strict(),
  })
  .strict();

const ApproverFixtureSchema = z
  .object({
    description: z.string().min(1),
    request: z
      .object({
        approver: PrincipalSchema,
        requester: PrincipalSchema,
        steps: StepsSchema,
        now: z.iso.datetime({ offset: true }).default(DEFAULT_NOW),
      })
      .strict(),
    expect: z
      .object({
        allowed: z.boolean(),
        policyIds: z.array(z.string()).optional(),
      })
      .strict(),
  })
  .strict();

export type DecisionFixture = z.infer<typeof DecisionFixtureSchema>;
export type ApproverFixture = z.infer<typeof ApproverFixtureSchema>;

/** The fixture folders and the outcome each one asserts. */
export const FIXTURE_KINDS = {
  ALLOW: 'allow',
  DENY: 'deny',
  APPROVAL: 'require_approval',
  APPROVER: null,
} as const satisfies Record<string, Outcome | null>;

export type FixtureKind = keyof typeof FIXTURE_KINDS;

/** The result of one fixture. */
export interface FixtureResult {
  kind: FixtureKind;
  /** Path relative to the tests folder, e.g. `ALLOW/alice_travel.book_flight_at-limit.json`. */
  name: string;
  description: string;
  passed: boolean;
  /** What went wrong, one line per mismatch; empty when passed. */
  failures: string[];
  /** The engine's answer, for readable output. */
  actual: Decision | ApprovalCheck | undefined;
}

const NAME = /^[a-z0-9-]+_[a-z0-9_.-]+_[a-z0-9.-]+\.json$/;

function sameSet(a: string[], b: string[]): boolean {
  const x = [...new Set(a)].sort();
  const y = [...new Set(b)].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

function checkDecision(kind: Exclude<FixtureKind, 'APPROVER'>, f: DecisionFixture, d: Decision): string[] {
  const out: string[] = [];
  const folder = FIXTURE_KINDS[kind];
  if (f.expect.outcome !== folder) out.push(`expect.outcome is ${f.expect.outcome} but the fixture sits in ${kind}/ (${folder})`);
  if (d.outcome !== f.expect.outcome) out.push(`outcome: expected ${f.expect.outcome}, got ${d.outcome} (${d.policyIds.join(', ') || 'no policy'}: ${d.reasons.join(' ')})`);
  if (f.expect.policyIds && !sameSet(f.expect.policyIds, d.policyIds)) {
    out.push(`policyIds: expected [${f.expect.policyIds.join(', ')}], got [${d.policyIds.join(', ')}]`);
  }
  if (kind === 'APPROVAL' && f.expect.quorum === undefined) out.push('APPROVAL fixtures must state expect.quorum');
  if (f.expect.quorum !== undefined && d.quorum !== f.expect.quorum) out.push(`quorum: expected ${f.expect.quorum}, got ${d.quorum}`);
  if (f.expect.approverRule !== undefined && d.approverRule !== f.expect.approverRule) {
    out.push(`approverRule: expected ${JSON.stringify(f.expect.approverRule)}, got ${JSON.stringify(d.approverRule)}`);
  }
  return out;
}

function checkApprover(f: ApproverFixture, a: ApprovalCheck): string[] {
  const out: string[] = [];
  if (a.allowed !== f.expect.allowed) out.push(`allowed: expected ${f.expect.allowed}, got ${a.allowed} (${a.policyIds.join(', ') || 'no policy'}: ${a.reasons.join(' ')})`);
  if (f.expect.policyIds && !sameSet(f.expect.policyIds, a.policyIds)) {
    out.push(`policyIds: expected [${f.expect.policyIds.join(', ')}], got [${a.policyIds.join(', ')}]`);
  }
  return out;
}

function runOne(engine: PolicyEngine, kind: FixtureKind, name: string, raw: string): FixtureResult {
  const fail = (message: string): FixtureResult => ({ kind, name, description: '', passed: false, failures: [message], actual: undefined });
  if (!NAME.test(name.split('/').pop() ?? '')) return fail('file name must be <subject>_<tool>_<case>.json (lower case)');
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    return fail(`not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (kind === 'APPROVER') {
    const parsed = ApproverFixtureSchema.safeParse(json);
    if (!parsed.success) return fail(`invalid fixture: ${z.prettifyError(parsed.error)}`);
    const f = parsed.data;
    const actual = engine.canApprove({ ...f.request, now: new Date(f.request.now) });
    const failures = checkApprover(f, actual);
    return { kind, name, description: f.description, passed: failures.length === 0, failures, actual };
  }
  const parsed = DecisionFixtureSchema.safeParse(json);
  if (!parsed.success) return fail(`invalid fixture: ${z.prettifyError(parsed.error)}`);
  const f = parsed.data;
  const { caps, delegation, ...request } = f.request;
  const actual = engine.decide({
    ...request,
    caps: caps.map((c) => ({ id: c.id, limit: majorToBaseMinor(c.amount, engine.money), used: majorToBaseMinor(c.spent, engine.money), connectors: c.connectors })),
    ...(delegation
      ? {
          delegation: {
            id: delegation.id,
            agent: delegation.agent,
            askForCommit: delegation.askForCommit,
            budgetLimit: delegation.budget === undefined ? NO_CAP : majorToBaseMinor(delegation.budget, engine.money),
            budgetSpent: majorToBaseMinor(delegation.spent, engine.money),
          },
        }
      : {}),
    now: new Date(f.request.now),
  });
  const failures = checkDecision(kind, f, actual);
  return { kind, name, description: f.description, passed: failures.length === 0, failures, actual };
}

/** Lists fixture files as `{ kind, name, path }`, sorted, from a `tests` folder. */
export function listFixtures(testsDir: string): { kind: FixtureKind; name: string; path: string }[] {
  const out: { kind: FixtureKind; name: string; path: string }[] = [];
  for (const kind of Object.keys(FIXTURE_KINDS) as FixtureKind[]) {
    let names: string[];
    try {
      names = readdirSync(join(testsDir, kind));
    } catch {
      continue;
    }
    for (const file of names.filter((n) => n.endsWith('.json')).sort()) {
      out.push({ kind, name: `${kind}/${file}`, path: join(testsDir, kind, file) });
    }
  }
  return out;
}

/** Runs every fixture under `testsDir` against `engine`. Never throws for a bad fixture: it fails. */
export function runFixtures(engine: PolicyEngine, testsDir: string): FixtureResult[] {
  return listFixtures(testsDir).map(({ kind, name, path }) => runOne(engine, kind, name, readFileSync(path, 'utf8')));
}

/** Runs one fixture given its text (used by tests to check that bad fixtures fail). */
export function runFixtureText(engine: PolicyEngine, kind: FixtureKind, name: string, text: string): FixtureResult {
  return runOne(engine, kind, name, text);
}
