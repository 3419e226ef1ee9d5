/**
 * What an action costs in AWS, from counted calls (`npm run bench:cost`; with `--write-readme`
 * it rewrites the README's cost section between its markers). Not a test: prints numbers,
 * asserts nothing.
 *
 * Four kinds of action run through the whole local runtime (the same handlers, ASL and
 * adapters as in AWS): a read (echo.say), an allowed 4-step travel plan, a 4-step plan over
 * the travel limit that the manager approves, and a 4-step plan whose last step the vendor
 * refuses (compensated). For each, counters on the real adapters give: Step Functions state
 * transitions (states entered, as the local runner reports them) and the execution type,
 * Lambda invocations and their measured duration at the stack's configured memory, DynamoDB
 * read and write request units as the engine reports them for each command, S3 PUTs to the
 * vault, Secrets Manager reads, and API Gateway requests. Prices are one table below, with the
 * date they were read; durations are measured on this machine, so they are an upper bound of
 * what Lambda bills (a warm instance on Graviton does the same work in less).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { approvalIdFor } from '../lambdas/shared/ids';
import { countDynamo, diffCounts } from '../test/helpers/counting-dynamo';
import { isoDay } from '../test/helpers/dates';
import { benchControlPlane } from './support';

/** us-east-1 list prices (USD), ARM64, no free tier, as published on the AWS pricing pages read on this date. */
export const PRICES = {
  readOn: '2025-11 (recorded then; not re-checked here, no network)',
  stepFunctionsStandardPerTransition: 0.025 / 1_000,
  stepFunctionsExpressPerRequest: 1.0 / 1_000_000,
  /** First 1,000 GB-hours a month; billed in 64 MB memory steps and 100 ms of duration. */
  stepFunctionsExpressPerGbSecond: 0.00001667,
  lambdaPerRequest: 0.2 / 1_000_000,
  lambdaArmPerGbSecond: 0.0000133334,
  dynamoPerWriteUnit: 0.625 / 1_000_000,
  dynamoPerReadUnit: 0.125 / 1_000_000,
  s3PerPut: 0.005 / 1_000,
  secretsManagerPerCall: 0.05 / 10_000,
  kmsPerRequest: 0.03 / 10_000,
  httpApiPerRequest: 1.0 / 1_000_000,
} as const;

/** What an Express execution of this size is billed for memory: the smallest step (it carries ids and counters, well under 64 MB). */
const EXPRESS_MEMORY_GB = 64 / 1024;
/** The stack's default function memory (lib/config.ts `lambda.memoryMiB`). */
const MEMORY_GB = 1024 / 1024;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

interface Counted {
  /** States entered in Standard executions (billed per transition). */
  transitions: number;
  /** States entered in Express executions (free: Express bills requests and duration). */
  expressTransitions: number;
  standardExecutions: number;
  expressExecutions: number;
  /** Express duration billed: each execution rounded up to 100 ms. */
  expressBilledMs: number;
  invocations: number;
  lambdaMs: number;
  readUnits: number;
  writeUnits: number;
  dynamoCalls: number;
  s3Puts: number;
  secretReads: number;
  apiRequests: number;
}

const cp = await benchControlPlane();
const runtime = cp.rt;
const control = runtime.controlPlane;
const counter = countDynamo(runtime.dynamo.client);
let s3Puts = 0;
const store = control.receipts.store;
const putIfAbsent = store.putIfAbsent.bind(store);
store.putIfAbsent = (...args) => (s3Puts++, putIfAbsent(...args));
let secretReads = 0;
const getSecret = runtime.secrets.getSecret.bind(runtime.secrets);
runtime.secrets.getSecret = (...args) => (secretReads++, getSecret(...args));
const bob = await runtime.issuer.sign({ sub: 'boss', roles: ['Employee', 'Manager'] }, '1h');

function travel(i: number, seats = 1) {
  const date = isoDay(1 + (i % 28));
  const amount = seats === 1 ? 274.5 : 1316;
  return {
    agent: { name: 'bench' },
    plan: [
      { id: 'search', tool: 'travel.search_flights', arguments: { origin: 'SFO', destination: 'JFK', date } },
      { id: 'hold', tool: 'travel.hold_seat', arguments: { flightId: `${seats === 1 ? 'SB102' : 'SB100'}-${date}`, seats } },
      { id: 'pay', tool: 'payments.authorize', arguments: { amount, currency: 'USD', payee: 'sandbox-air', paymentMethod: 'pm_card_visa' } },
      {
        id: 'book',
        tool: 'travel.book_flight',
        arguments: {
          holdId: { $ref: 'steps.hold.output.holdId' },
          travelers: Array.from({ length: seats }, (_, k) => ({ firstName: `T${k}`, lastName: 'Bench' })),
          contact: { email: 'ada@example.com' },
          price: { amount, currency: 'USD' },
        },
      },
    ],
  };
}

async function approve(id: string): Promise<number> {
  const approvalId = approvalIdFor(id);
  let requests = 0;
  for (const deadline = Date.now() + 20_000; ; ) {
    requests++;
    const res = await fetch(`${runtime.url}/v1/approvals/${approvalId}`, { headers: { authorization: `Bearer ${bob}` } });
    const body = (await res.json()) as { planHash?: string };
    if (res.status === 200 && body.planHash) {
      requests++;
      const decided = await fetch(`${runtime.url}/v1/approvals/${approvalId}/decision`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' },
        body: JSON.stringify({ decision: 'approve', planHash: body.planHash, comment: 'bench' }),
      });
      if (decided.status !== 200) throw new Error(`approval answered ${decided.status}`);
      return requests;
    }
    if (Date.now() > deadline) throw new Error('no approval to decide');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs one kind of action RUNS times; returns its counts per action. */
async function scenario(kind: string, body: (i: number) => unknown, expect: string, before?: () => void, approved = false, prefer = 'respond-async'): Promise<Counted> {
  const totals: Counted = { transitions: 0, expressTransitions: 0, standardExecutions: 0, expressExecutions: 0, expressBilledMs: 0, invocations: 0, lambdaMs: 0, readUnits: 0, writeUnits: 0, dynamoCalls: 0, s3Puts: 0, secretReads: 0, apiRequests: 0 };
  for (let i = 0; i < RUNS; i++) {
    before?.();
    const start = counter.snapshot();
    const [puts, secrets] = [s3Puts, secretReads];
    const direct = control.runner.directInvocations();
    const res = await cp.post(body(i), `${kind}-${i}`, prefer);
    const id = String(res.body.id);
    // The intake function's own invocation, as API Gateway bills and Lambda times it (an upper bound: the HTTP hop is in it).
    totals.invocations++;
    totals.lambdaMs += res.ms;
    totals.apiRequests++;
    if (approved) {
      const t0 = performance.now();
      const requests = await approve(id);
      totals.apiRequests += requests;
      totals.invocations += requests;
      totals.lambdaMs += performance.now() - t0;
    }
    await control.runner.idle();
    const action = await control.ledger.getAction(id);
    if (action?.status !== expect) throw new Error(`${kind} ended ${action?.status}, not ${expect}`);
    const report = control.runner.reportOf(id);
    if (report) {
      totals.transitions += report.standardTransitions;
      totals.expressTransitions += report.transitions - report.standardTransitions;
      totals.standardExecutions += report.standardExecutions;
      totals.expressExecutions += report.express.executions;
      // Measured here (one process, local calls): an upper bound of a run's wall time in AWS per
      // call, rounded up per execution as billed.
      totals.expressBilledMs += Math.ceil(report.express.ms / Math.max(1, report.express.executions) / 100) * 100 * report.express.executions;
      totals.invocations += Object.values(report.invocations).reduce((a, b) => a + b, 0);
      totals.lambdaMs += Object.values(report.invocationMs).reduce((a, b) => a + b, 0);
    }
    // The read fast path's synchronous invocations (the saga function's RunRead, the connector, receipts): no execution holds them.
    const after = control.runner.directInvocations();
    const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
    totals.invocations += sum(after.invocations) - sum(direct.invocations);
    totals.lambdaMs += sum(after.invocationMs) - sum(direct.invocationMs);
    const d = diffCounts(counter.snapshot(), start);
    totals.readUnits += d.readUnits;
    totals.writeUnits += d.writeUnits;
    totals.dynamoCalls += Object.values(d.calls).reduce((a, b) => a + b, 0);
    totals.s3Puts += s3Puts - puts;
    totals.secretReads += secretReads - secrets;
  }
  return Object.fromEntries(Object.entries(totals).map(([k, v]) => [k, v / RUNS])) as unknown as Counted;
}

function dollarsPer1000(c: Counted) {
  const p = PRICES;
  const parts = {
    stepFunctions:
      c.transitions * p.stepFunctionsStandardPerTransition +
      c.expressExecutions * p.stepFunctionsExpressPerRequest +
      (c.expressBilledMs / 1000) * EXPRESS_MEMORY_GB * p.stepFunctionsExpressPerGbSecond,
    lambda: c.invocations * p.lambdaPerRequest + (c.lambdaMs / 1000) * MEMORY_GB * p.lambdaArmPerGbSecond,
    dynamodb: c.readUnits * p.dynamoPerReadUnit + c.writeUnits * p.dynamoPerWriteUnit,
    s3: c.s3Puts * p.s3PerPut,
    // The Secrets Manager adapter caches each secret for 5 minutes per instance: at any volume
    // worth pricing, reads per action round to 0 (the counted port reads are printed, not billed).
    secrets: 0 * c.secretReads * p.secretsManagerPerCall,
    apiGateway: c.apiRequests * p.httpApiPerRequest,
  };
  const total = Object.values(parts).reduce((a, b) => a + b, 0);
  return { parts: Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, v * 1000])) as typeof parts, total: total * 1000 };
}

// Warm-up: Cedar, the SDK client, the ASL parse, the first rate-limit leases and secret reads.
await cp.post({ tool: 'echo.say', arguments: { message: 'warm' }, agent: { name: 'bench' } }, 'warm', 'wait=20');
await control.runner.idle();

const rows: { name: string; c: Counted; cost: ReturnType<typeof dollarsPer1000> }[] = [];
const add = (name: string, c: Counted) => rows.push({ name, c, cost: dollarsPer1000(c) });
const echo = (i: number) => ({ tool: 'echo.say', arguments: { message: `m${i}` }, agent: { name: 'bench' } });
add('read, fast path (RunRead)', await scenario('read-fast', echo, 'completed', undefined, false, 'wait=20'));
add('read, not waiting (Express run)', await scenario('read', echo, 'completed'));
add('4-step plan, unattended', await scenario('plan', (i) => travel(i), 'completed'));
add('4-step plan, approved', await scenario('approved', (i) => travel(i + 7, 4), 'completed', undefined, true));
add(
  '4-step plan, compensated',
  await scenario('compensated', (i) => travel(i + 14), 'compensated', () =>
    control.vendors.admin.setFaults('travel', { failNext: [{ operation: 'book_flight', count: 1, status: 400 }] }),
  ),
);
counter.detach();
await cp.close();

const f = (n: number, d = 1) => n.toFixed(d);
const usd = (n: number) => `$${n < 0.01 ? n.toFixed(4) : n.toFixed(3)}`;
const table = [
  '| per action | Step Functions Standard transitions (Express executions) | Lambda invocations (GB-s) | DynamoDB calls (RRU / WRU) | S3 PUTs | API requests | $ per 1,000 actions | of which Step Functions / DynamoDB / Lambda |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ...rows.map(
    ({ name, c, cost }) =>
      `| ${name} | ${f(c.transitions, 0)}${c.expressExecutions > 0 ? ` (${f(c.expressExecutions, 0)} Express, ${f(c.expressTransitions, 0)} states, ${f(c.expressBilledMs / Math.max(1, c.expressExecutions), 0)} ms)` : ''} | ${f(c.invocations, 0)} (${f((c.lambdaMs / 1000) * MEMORY_GB, 2)}) | ${f(c.dynamoCalls)} (${f(c.readUnits)} / ${f(c.writeUnits)}) | ${f(c.s3Puts, 0)} | ${f(c.apiRequests, 0)} | **${usd(cost.total)}** | ${usd(cost.parts.stepFunctions)} / ${usd(cost.parts.dynamodb)} / ${usd(cost.parts.lambda)} |`,
  ),
];
const section = [
  `**What it costs per 1,000 actions**, computed by \`npm run bench:cost\` from counted calls (the local runtime with counting adapters; ${RUNS} runs of each; us-east-1 list prices recorded ${PRICES.readOn.slice(0, 7)}, ARM64 at the stack's 1,024 MiB, no free tier; Lambda time as measured here, an upper bound). Regenerate this paragraph with \`npm run bench:cost -- --write-readme\`.`,
  '',
  ...table,
  '',
  `Prices used: Step Functions Standard $0.025 per 1,000 transitions, Express $1.00 per million requests + $0.00001667 per GB-s (billed at 64 MB and per 100 ms; its state transitions are free); Lambda $0.20 per million requests + $0.0000133334 per GB-s; DynamoDB on-demand $0.625 per million write and $0.125 per million read request units; S3 $0.005 per 1,000 PUTs; Secrets Manager $0.05 per 10,000 calls (the adapter caches each secret 5 minutes per instance, so reads per action round to 0); HTTP API $1.00 per million requests (the table is \`PRICES\` in bench/cost.ts). KMS requests are amortized to ~0 per action (S3 bucket keys; DynamoDB caches its table key). Fixed monthly costs are not in the table: the KMS keys ($1 each), the secrets ($0.40 each), CloudWatch Logs ingestion and retention.`,
].join('\n');

console.log(`cost per action, local runtime with counting adapters, ${RUNS} runs each (prices recorded ${PRICES.readOn})`);
for (const { name, c, cost } of rows) {
  console.log(
    `${name.padEnd(26)} ${usd(cost.total).padStart(8)} per 1,000  (SFN ${f(c.transitions, 0)} Standard transitions + ${f(c.expressExecutions, 1)} Express × ${f(c.expressBilledMs / Math.max(1, c.expressExecutions), 0)} ms (${f(c.expressTransitions, 0)} states), λ ${f(c.invocations, 0)} × ${f(c.lambdaMs / Math.max(1, c.invocations), 0)} ms, DynamoDB ${f(c.dynamoCalls)} calls ${f(c.readUnits)} RRU ${f(c.writeUnits)} WRU, S3 ${f(c.s3Puts, 0)}, secrets ${f(c.secretReads, 1)}, API ${f(c.apiRequests, 0)})`,
  );
}
if (process.argv.includes('--write-readme')) {
  const readme = join(import.meta.dirname, '..', 'README.md');
  const text = readFileSync(readme, 'utf8');
  const begin = '<!-- cost:begin (generated by npm run bench:cost -- --write-readme) -->';
  const end = '<!-- cost:end -->';
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error('README.md has no cost markers');
  writeFileSync(readme, `${text.slice(0, a + begin.length)}\n${section}\n${text.slice(b)}`);
  console.log('README.md cost section rewritten');
}
