/**
 * Policy decision latency (`npm run bench:policy`). Not a test: it prints numbers for the
 * issue's targets (p50 ≤ 200 µs, p99 ≤ 1 ms with 200 policies) and asserts nothing.
 *
 * - warm: decisions per scenario against the shipped set and the shipped set plus 200
 *   generated policies, after a warm-up, timed one by one with hrtime;
 * - cold: fresh Node processes that load the wasm, read + validate + preparse the set and make
 *   a first decision, as a Lambda cold start would.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DecisionRequest, PolicyEngine, PolicyFiles, ToolFacts } from '../lambdas/policy/index';

const WARMUP = 1_000;
const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 5_000);
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 5);
const GENERATED = 200;

const now = new Date('2025-06-02T10:00:00Z');
const alice = { sub: 'alice', roles: ['Employee'], manager: 'maria' };
const travel = (amount: number): ToolFacts => ({
  tool: 'travel.book_flight',
  connector: 'travel',
  tier: 'commit',
  vendor: 'Sandbox Travel',
  amount: { amount, currency: 'USD' },
  counterparty: 'airline-ua',
});
const scenarios: Record<string, DecisionRequest> = {
  'allow (1 step)': { principal: alice, steps: [{ id: 's1', facts: travel(500) }], dryRun: false, now },
  'approval (1 step)': {
    principal: alice,
    steps: [{ id: 's1', facts: { tool: 'iam.grant_role', connector: 'iam', tier: 'commit', vendor: 'Sandbox IAM', grantee: 'bob', role: 'Admin' } }],
    dryRun: false,

    now,
  },
  'deny (1 step)': {
    principal: alice,
    steps: [{ id: 's1', facts: { tool: 'procurement.place_order', connector: 'procurement', tier: 'commit', vendor: 'Sandbox Procurement', amount: { amount: 50, currency: 'USD' }, counterparty: 'shady-supplies' } }],
    dryRun: false,

    now,
  },
  'plan (3 steps)': {
    principal: alice,
    steps: [
      { id: 's1', facts: { tool: 'travel.search_flights', connector: 'travel', tier: 'read', vendor: 'Sandbox Travel' } },
      { id: 's2', facts: { tool: 'travel.hold_seat', connector: 'travel', tier: 'commit', vendor: 'Sandbox Travel' } },
      { id: 's3', facts: travel(800) },
    ],
    dryRun: false,

    now,
  },
};

/** 200 policies in the shapes real ones take (scoped action, attribute tests, sets, arithmetic), on connectors no scenario uses. */
function generatedPolicies(n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const connector = `gen${i % 40}`;
    const limit = 1_000 + i * 137;
    switch (i % 4) {
      case 0:
        out.push(`@id("gen.${i}.request") @reason("generated")\npermit (principal, action == Airlock::Action::"request", resource)\nwhen { resource.connector == "${connector}" && principal.roles.contains("Role${i}") };`);
        break;
      case 1:
        out.push(`@id("gen.${i}.deny") @reason("generated")\nforbid (principal, action == Airlock::Action::"request", resource)\nwhen { resource.connector == "${connector}" && context has counterparty && context.deniedVendors.contains(context.counterparty) };`);
        break;
      case 2:
        out.push(`@id("gen.${i}.limit") @reason("generated") @approvals("${1 + (i % 3)}") @approvers("role:Gen${i}")\nforbid (principal, action == Airlock::Action::"run_unattended", resource)\nwhen { resource.connector == "${connector}" && context.connectorTotal > ${limit} };`);
        break;
      default:
        out.push(`@id("gen.${i}.cap") @reason("generated")\nforbid (principal, action == Airlock::Action::"request", resource)\nwhen { resource.connector == "${connector}" && context.capSpent + context.planTotal > ${limit * 10} };`);
    }
  }
  return `${out.join('\n\n')}\n`;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function measure(engine: PolicyEngine, req: DecisionRequest): { p50: number; p99: number; mean: number } {
  for (let i = 0; i < WARMUP; i++) engine.decide(req);
  const samples = new Array<number>(ITERATIONS);
  for (let i = 0; i < ITERATIONS; i++) {
    const t = process.hrtime.bigint();
    engine.decide(req);
    samples[i] = Number(process.hrtime.bigint() - t) / 1_000;
  }
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), mean: samples.reduce((a, b) => a + b, 0) / samples.length };
}

/** One cold start, in this (fresh) process: prints JSON timings and exits. */
async function coldOnce(): Promise<void> {
  const t0 = performance.now();
  await import('@cedar-policy/cedar-wasm/nodejs');
  const t1 = performance.now();
  const policy = await import('../lambdas/policy/index');
  const t2 = performance.now();
  const engine = policy.createPolicyEngine(policy.readPolicyDir());
  const t3 = performance.now();
  const req = scenarios['allow (1 step)'];
  if (req) engine.decide(req);
  const t4 = performance.now();
  process.stdout.write(JSON.stringify({ wasm: t1 - t0, modules: t2 - t1, preparse: t3 - t2, first: t4 - t3 }));
}

async function main(): Promise<void> {
  if (process.argv.includes('--cold-once')) return coldOnce();
  const { createPolicyEngine, readPolicyDir } = await import('../lambdas/policy/index');
  const shipped: PolicyFiles = readPolicyDir();
  const withGenerated: PolicyFiles = { ...shipped, policies: { ...shipped.policies, 'generated.cedar': generatedPolicies(GENERATED) } };
  const engines: [string, PolicyEngine][] = [
    ['shipped', createPolicyEngine(shipped)],
    [`shipped + ${GENERATED}`, createPolicyEngine(withGenerated)],
    [`shipped + ${GENERATED}, validateRequests`, createPolicyEngine(withGenerated, { validateRequests: true })],
  ];

  const rows: string[][] = [];
  for (const [name, engine] of engines) {
    for (const [scenario, req] of Object.entries(scenarios)) {
      const m = measure(engine, req);
      rows.push([name, String(engine.policies.length), scenario, m.p50.toFixed(0), m.p99.toFixed(0), m.mean.toFixed(0)]);
    }
  }
  const header = ['policy set', 'policies', 'scenario', 'p50 µs', 'p99 µs', 'mean µs'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const fmt = (r: string[]) => r.map((c, i) => (i >= 3 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ');
  console.log(`\nWarm decisions (${ITERATIONS} per row after ${WARMUP} warm-up; target p50 ≤ 200 µs, p99 ≤ 1000 µs with 200 policies)`);
  console.log(fmt(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(fmt(r));

  const self = fileURLToPath(import.meta.url);
  const colds: Record<string, number>[] = [];
  for (let i = 0; i < COLD_RUNS; i++) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', self, '--cold-once'], { encoding: 'utf8' });
    const parsed: unknown = JSON.parse(out);
    if (parsed && typeof parsed === 'object') colds.push(Object.fromEntries(Object.entries(parsed).filter((e): e is [string, number] => typeof e[1] === 'number')));
  }
  const median = (k: string) => {
    const xs = colds.map((c) => c[k] ?? Number.NaN).sort((a, b) => a - b);
    return (xs[Math.floor(xs.length / 2)] ?? Number.NaN).toFixed(1);
  };
  console.log(`\nCold start, shipped set (median of ${COLD_RUNS} fresh processes, ms)`);
  console.log(`load wasm ${median('wasm')} | engine modules (tsx) ${median('modules')} | read + validate + preparse ${median('preparse')} | first decision ${median('first')}`);
}

await main();
