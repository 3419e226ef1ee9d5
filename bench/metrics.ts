/**
 * The cost of the safety metrics on intake (`npm run bench:metrics`). Not a test: prints
 * numbers, asserts nothing. The front door alone (a workflow that only records, so the sagas
 * do not share the two cores) with metrics off (the floor, measured in the same run), with
 * the local JSON-lines recorder, and with Powertools EMF (serialized and discarded, as the
 * Lambda runtime would ship it to CloudWatch). Rounds alternate so drift hits all of them.
 */
import { Console } from 'node:console';
import { Writable } from 'node:stream';
import { Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics';
import { EmfMetrics } from '../lambdas/adapters/aws/emf-metrics';
import { boundedMetrics, METRICS_NAMESPACE, METRICS_SERVICE, vocabularyOf } from '../lambdas/observability/catalog';
import { loadPolicyEngine } from '../lambdas/policy/index';
import { noMetrics, type Metrics } from '../lambdas/ports/metrics';
import { toolRegistry } from '../lambdas/tools/registry';
import { benchControlPlane, limitsWith, ms, pool, summarize } from './support';

const N = Number(process.env.BENCH_ACTIONS ?? 400);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

type Mode = 'off' | 'file' | 'emf';

function emf(): { metrics: Metrics; flush: () => void } {
  const pt = new PowertoolsMetrics({ namespace: METRICS_NAMESPACE, serviceName: METRICS_SERVICE });
  // Serialized exactly as in Lambda, written nowhere.
  Object.assign(pt, { console: new Console(new Writable({ write: (_c, _e, done) => done() })) });
  const adapter = new EmfMetrics({ namespace: METRICS_NAMESPACE, serviceName: METRICS_SERVICE, powertools: pt });
  return { metrics: boundedMetrics(adapter, vocabularyOf({ tools: toolRegistry, policies: loadPolicyEngine().policies })), flush: () => adapter.flush() };
}

async function round(mode: Mode, n: number): Promise<{ latencies: number[]; wallMs: number }> {
  // Without rate limits (one principal and agent send every request): otherwise most answers
  // would be 429s and the figure would be the refusal's cost, not intake's.
  const cp = await benchControlPlane({ limits: limitsWith([]) });
  const intake = cp.rt.controlPlane.composition.intake;
  intake.workflow = { start: async () => undefined };
  const sink = mode === 'emf' ? emf() : undefined;
  if (mode === 'off') intake.metrics = noMetrics;
  if (sink) intake.metrics = sink.metrics;
  const body = (i: number) => ({ tool: 'echo.say', arguments: { message: `hello ${i}` }, agent: { name: 'bench' } });
  await pool(50, 8, async (i) => void (await cp.post(body(-i - 1), `warm-${i}`, 'respond-async')));
  const latencies: number[] = [];
  const started = performance.now();
  await pool(n, CONCURRENCY, async (i) => {
    const res = await cp.post(body(i), `key-${mode}-${i}`, 'respond-async');
    // In Lambda the middleware flushes after every invocation.
    sink?.flush();
    if (res.status !== 202) throw new Error(`expected 202 for every request, got ${res.status} (${JSON.stringify(res.body).slice(0, 200)})`);
    latencies.push(res.ms);
  });
  const wallMs = performance.now() - started;
  await cp.close();
  return { latencies, wallMs };
}

console.log(`intake front door, local mode, echo.say, concurrency ${CONCURRENCY}, ${ROUNDS} × ${N} requests per mode`);
const all: Record<Mode, number[]> = { off: [], file: [], emf: [] };
const wall: Record<Mode, number> = { off: 0, file: 0, emf: 0 };
const MODES = ['off', 'file', 'emf'] as const;
for (let r = 0; r < ROUNDS; r++) {
  // Each round starts with another mode, so a machine getting busier or quieter over the run
  // does not always favour the same one (3 rounds put every mode in every position once).
  for (const mode of [...MODES.slice(r % 3), ...MODES.slice(0, r % 3)]) {
    const { latencies, wallMs } = await round(mode, N);
    all[mode].push(...latencies);
    wall[mode] += wallMs;
  }
}
const floor = summarize(all.off);
const throughput = (mode: Mode) => (all[mode].length / wall[mode]) * 1000;
for (const mode of ['off', 'file', 'emf'] as const) {
  const s = summarize(all[mode]);
  const label = { off: 'metrics off (floor)', file: 'local recorder', emf: 'Powertools EMF' }[mode];
  console.log(
    `${label.padEnd(20)} p50 ${ms(s.p50)} (×${(s.p50 / floor.p50).toFixed(2)})  p90 ${ms(s.p90)} (×${(s.p90 / floor.p90).toFixed(2)})  p99 ${ms(s.p99)}  ` +
      `throughput ${throughput(mode).toFixed(0)} req/s (×${(throughput(mode) / throughput('off')).toFixed(2)})`,
  );
}
