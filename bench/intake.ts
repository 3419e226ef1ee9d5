/**
 * Intake throughput and latency in local mode (`npm run bench:intake`). Not a test: prints
 * numbers, asserts nothing. A read tool (echo.say) is POSTed with `Prefer: respond-async`, so
 * the figure is the front door itself (validate, claim the key, decide with Cedar, record,
 * start the saga); the sagas run in the background in the same process, as under `npm start`.
 * The "front door" rounds leave the sagas out to show intake's own cost. Rate limits are off
 * here (bench/limits.ts measures what counting costs).
 */
import { benchControlPlane, limitsWith, ms, pool, summarize } from './support';

const N = Number(process.env.BENCH_ACTIONS ?? 1_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);

async function round(label: string, duplicateShare: number, frontDoorOnly = false) {
  // Without rate limits (one principal and agent send every request): their cost is bench/limits.ts's figure.
  const cp = await benchControlPlane({ limits: limitsWith([]) });
  if (frontDoorOnly) {
    // The same adapters, but a workflow that only records: the front door's own cost,
    // without the sagas sharing the process (and its two cores) with it.
    cp.rt.controlPlane.composition.intake.workflow = { start: async () => undefined };
  }
  const body = (i: number) => ({ tool: 'echo.say', arguments: { message: `hello ${i}` }, agent: { name: 'bench' } });
  // Warm-up: Cedar, the SDK clients and the ASL parse once per process.
  await pool(50, 8, async (i) => void (await cp.post(body(-i - 1), `warm-${i}`, 'respond-async')));
  await cp.rt.controlPlane.runner.idle();
  const latencies: number[] = [];
  let accepted = 0;
  let replayed = 0;
  const started = performance.now();
  await pool(N, CONCURRENCY, async (i) => {
    // A duplicate reuses an earlier request's key and body, as a retrying agent would.
    const every = duplicateShare > 0 ? Math.round(1 / duplicateShare) : 0;
    const dup = every > 0 && i % every === every - 1;
    const j = dup ? i - 1 : i;
    const res = await cp.post(body(j), `key-${label}-${j}`, 'respond-async');
    latencies.push(res.ms);
    if (res.status === 202 || res.status === 200) accepted++;
    if (res.replayed) replayed++;
  });
  const seconds = (performance.now() - started) / 1000;
  await cp.rt.controlPlane.runner.idle();
  await cp.close();
  const s = summarize(latencies);
  console.log(
    `${label.padEnd(22)} ${String(N).padStart(5)} req  ${(N / seconds).toFixed(0).padStart(5)} req/s  accepted ${accepted} (replayed ${replayed})  p50 ${ms(s.p50)}  p90 ${ms(s.p90)}  p99 ${ms(s.p99)}`,
  );
}

console.log(`intake, local mode, echo.say, concurrency ${CONCURRENCY}`);
await round('unique keys', 0);
await round('10% duplicate keys', 0.1);
await round('front door only', 0, true);
await round('front door, 10% dup', 0.1, true);
