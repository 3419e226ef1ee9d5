import { parseArgs } from 'node:util';
import { AGENT_RETRY } from './agent-retry';
import { INJECTORS } from './injectors';
import { CHAOS_BREAKER_RESET_SECONDS, chaosLimits, chaosRateLimit, chaosSpendCaps } from './limits';
import { checkAll, formatTable } from './invariants';
import { actionAt, sliceSchedule, type Schedule } from './schedule';
import { runStorm, type RunOptions } from './storm';

/**
 * `npm run chaos -- --seed N --actions K [--crashes C] [--agents A] [--slice FROM:TO]`:
 * builds the seeded schedule, runs the storm, prints the invariants table, and on a violation
 * exits 1 with the seed and the smallest failing slice found by halving the action list.
 */

const usage = `Usage: npm run chaos -- --seed N --actions K [options]

  --seed N            seed of the schedule (default 1)
  --actions K         actions in the storm (default 300)
  --crashes C         SIGKILLs of the control plane (default 2)
  --agents A          concurrent simulated agents (default 32)
  --slice FROM:TO     run only actions FROM..TO-1 of the schedule (what shrinking prints)
  --no-shrink         on a violation, do not search for a smaller failing schedule
  --max-shrink-runs R reruns spent shrinking (default 8)
  --approval-timeout S seconds an approval waits before it expires (default 20)
`;

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    actions: { type: 'string', default: '300' },
    crashes: { type: 'string', default: '2' },
    agents: { type: 'string', default: '32' },
    slice: { type: 'string' },
    'no-shrink': { type: 'boolean', default: false },
    'max-shrink-runs': { type: 'string', default: '8' },
    'approval-timeout': { type: 'string', default: '20' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (values.help) {
  process.stdout.write(usage);
  process.exit(0);
}
const int = (name: string, value: string, min: number) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`--${name} must be an integer ≥ ${min}\n${usage}`);
    process.exit(2);
  }
  return n;
};
const seed = int('seed', values.seed, 0);
const actions = int('actions', values.actions, 1);
const crashes = int('crashes', values.crashes, 0);
const agents = int('agents', values.agents, 1);
const approvalTimeoutSeconds = int('approval-timeout', values['approval-timeout'], 3);

/** The whole seeded schedule: K actions and every injector's events. */
export function buildSchedule(): Schedule {
  const list = Array.from({ length: actions }, (_, i) => actionAt(seed, i));
  const events = INJECTORS.flatMap((inj) => inj.plan({ seed, actions, crashes }, list)).sort((a, b) => a.at - b.at);
  return { seed, actions: list, events };
}

let schedule = buildSchedule();
if (values.slice) {
  const m = /^(\d+):(\d+)$/.exec(values.slice);
  if (!m) {
    process.stderr.write(`--slice must be FROM:TO\n`);
    process.exit(2);
  }
  schedule = sliceSchedule(schedule, Number(m[1]), Number(m[2]));
}

const out = (line: string) => process.stdout.write(`${line}\n`);
const limits = chaosLimits(actions);
const runOptions: RunOptions = {
  agents,
  limits,
  approvalTimeoutSeconds,
  settleBoundMs: (approvalTimeoutSeconds + 90) * 1000,
  ...(values.keep ? { keepHome: true } : {}),
  log: out,
};

const describe = (s: Schedule) => {
  const first = s.actions[0]?.index ?? 0;
  const last = (s.actions[s.actions.length - 1]?.index ?? 0) + 1;
  return { first, last };
};

async function runOnce(s: Schedule) {
  const obs = await runStorm(s, runOptions);
  const checked = checkAll(obs);
  return { obs, ...checked };
}

const { first, last } = describe(schedule);
out(`chaos: seed ${seed}, actions ${schedule.actions.length} (#${first}..#${last - 1}), crashes ${schedule.events.filter((e) => e.injector === 'sigkill').length}, agents ${agents}, injectors: ${INJECTORS.map((i) => i.name).join(', ')}`);
{
  const r = chaosRateLimit(actions);
  out(`limits: shipped policies/limits.json + ${r.id} (${r.limit} ${r.only!.join(', ')} per ${r.windowSeconds} s), ${chaosSpendCaps(actions).map((c) => `${c.id} (${c.amount} per ${c.period})`).join(', ')}; breakers reset after ${CHAOS_BREAKER_RESET_SECONDS} s`);
}
const first_ = await runOnce(schedule);
const o = first_.obs;
const rate = schedule.actions.length / (o.durationMs / 1000);
const statuses: Record<string, number> = {};
for (const v of o.views.values()) statuses[v.status] = (statuses[v.status] ?? 0) + 1;
const effects = Object.values(o.effects).reduce((n, l) => n + l.length, 0);
out(
  `storm: ${(o.durationMs / 1000).toFixed(1)} s, ${rate.toFixed(1)} actions/s, ${o.responses.length} HTTP answers, ${effects} vendor side effects, ` +
    `${o.crashes} crash(es) (restart ${o.restartMs.map((m) => `${(m / 1000).toFixed(1)} s`).join(', ') || '-'}), settled ${(o.settle.tookMs / 1000).toFixed(1)} s after the agents`,
);
out(
  `cpu: harness ${o.cpu.harness.toFixed(1)} s, control plane ${o.cpu.controlPlane.toFixed(1)} s (${((o.cpu.controlPlane * 1000) / schedule.actions.length).toFixed(0)} ms per action), vendors ${o.cpu.vendors.toFixed(1)} s ` +
    `(${((o.cpu.harness + o.cpu.controlPlane + o.cpu.vendors) * 1000 / schedule.actions.length).toFixed(0)} ms per action in all)`,
);
const byRoute: Record<string, number> = {};
for (const r of o.responses) {
  const route = `${r.method} ${r.path}`;
  byRoute[route] = (byRoute[route] ?? 0) + 1;
}
out(`http: ${Object.entries(byRoute).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')}`);
out(`outcomes: ${Object.entries(statuses).sort().map(([k, n]) => `${k} ${n}`).join(', ')}`);
{
  // Agents retry as well-behaved ones do (agent-retry.ts); those whose budget ran out say so here.
  const retries = o.runs.reduce((n, r) => n + (r.retries ?? 0), 0);
  const gaveUp = o.runs.filter((r) => r.gaveUp && r.ids.length === 0);
  out(`agents: ${retries} POST retries (same key, Retry-After + jittered backoff, at most ${AGENT_RETRY.maxRetries} and ${AGENT_RETRY.budgetMs / 1000} s); ${gaveUp.length} gave up without an action`);
  for (const r of gaveUp) {
    const g = r.gaveUp!;
    const tally = Object.entries(g.answers ?? {}).map(([k, n]) => `${n} × ${k}`).join(', ');
    out(`  gave up: #${r.spec.index} (${r.spec.scenario}, ${r.spec.retry}) by ${r.spec.requester}: last ${g.status} ${g.type ?? ''}${g.policies ? ` (${g.policies.join(', ')})` : ''} after ${g.retries} retries over ${(g.waitedMs / 1000).toFixed(0)} s (${tally})`);
  }
}
out('');
out(formatTable(first_.rows));
if (values.keep) out(`state kept in ${o.home}`);
if (first_.ok) process.exit(0);

out('');
out(`VIOLATION with seed ${seed} (npm run chaos -- --seed ${seed} --actions ${actions} --crashes ${crashes} --agents ${agents}${values.slice ? ` --slice ${values.slice}` : ''})`);
if (values['no-shrink']) process.exit(1);

// Shrink: keep whichever half still fails, until neither does or the budget is spent.
let smallest = schedule;
let budget = int('max-shrink-runs', values['max-shrink-runs'], 0);
while (smallest.actions.length > 1 && budget > 0) {
  const mid = Math.floor(smallest.actions.length / 2);
  const halves = [smallest.actions.slice(0, mid), smallest.actions.slice(mid)].map((list) => sliceSchedule(smallest, list[0]!.index, list[list.length - 1]!.index + 1));
  let found: Schedule | undefined;
  for (const half of halves) {
    if (budget-- <= 0) break;
    const r = describe(half);
    out(`shrinking: trying #${r.first}..#${r.last - 1} (${half.actions.length} actions)`);
    if (!(await runOnce(half)).ok) {
      found = half;
      break;
    }
  }
  if (!found) break;
  smallest = found;
}
const s = describe(smallest);
out('');
out(`smallest failing schedule: seed ${seed}, actions #${s.first}..#${s.last - 1} (${smallest.actions.length})`);
out(`  reproduce: npm run chaos -- --seed ${seed} --actions ${actions} --crashes ${crashes} --agents ${agents} --slice ${s.first}:${s.last} --no-shrink`);
if (smallest.actions.length <= 40) {
  for (const a of smallest.actions) {
    out(`  #${a.index} ${a.scenario}${a.dryRun ? ' (dry run)' : ''} by ${a.requester}: ${a.steps.map((x) => `${x.id}=${x.tool}`).join(', ')}; retry ${a.retry}; approval ${a.approval}`);
  }
  for (const e of smallest.events) out(`  event @#${e.at} ${e.injector} ${JSON.stringify(e.data)}`);
}
process.exit(1);
