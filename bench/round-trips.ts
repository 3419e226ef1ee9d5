/**
 * Read actions and plans against the store's ceiling (`npm run bench:round-trips`, part of
 * `npm run bench`). Not a test: prints numbers, asserts nothing.
 *
 * 1. The ceiling: dynalite alone (in this process, as the local runtime has it) admitting
 *    conditional puts and consistent reads at 16-way concurrency.
 * 2. DynamoDB round trips and request units per read action (echo.say) and per step of an
 *    allowed plan, counted on the runtime's one SDK client (test/helpers/counting-dynamo.ts),
 *    with the shipped rate limits on (×100 so a benchmark is never refused) and spend caps.
 * 3. Read actions/s at 16-way (synchronous answers, receipts written), p50 of one read alone
 *    and of a 4-step plan alone, and the ratio issue 17 sets its target in: read actions/s
 *    over (conditional puts/s ÷ writes per read). The load runs twice: from agents in this
 *    thread (their HTTP client shares the control plane's event loop) and from agents in a
 *    worker thread (another core, as agents are other processes); both are printed.
 */
import { PutItemCommand, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { startDynalite } from '../lambdas/adapters/local/dynalite';
import { ensureTables } from '../lambdas/adapters/local/dynamo-tables';
import { countDynamo, diffCounts, totalCalls } from '../test/helpers/counting-dynamo';
import { agentsInWorker, benchControlPlane, limitsWith, ms, pool, scaled, summarize, travelPlan as plan } from './support';

const N = Number(process.env.BENCH_ACTIONS ?? 400);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const RUNS = Number(process.env.BENCH_RUNS ?? 30);

async function ceiling() {
  const dynalite = await startDynalite();
  try {
    const TableName = 'bench-ceiling';
    await ensureTables(dynalite.client, TableName);
    const puts = 2_000;
    let t0 = performance.now();
    await pool(puts, CONCURRENCY, async (i) => {
      await dynalite.client.send(
        new PutItemCommand({ TableName, Item: { pk: { S: `C#${i}` }, sk: { S: 'C' }, v: { N: String(i) } }, ConditionExpression: 'attribute_not_exists(pk)' }),
      );
    });
    const putsPerSecond = puts / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    await pool(puts, CONCURRENCY, async (i) => {
      await dynalite.client.send(new GetItemCommand({ TableName, Key: { pk: { S: `C#${i}` }, sk: { S: 'C' } }, ConsistentRead: true }));
    });
    const readsPerSecond = puts / ((performance.now() - t0) / 1000);
    return { putsPerSecond, readsPerSecond };
  } finally {
    await dynalite.close();
  }
}

const read = (i: number) => ({ tool: 'echo.say', arguments: { message: `hello ${i}` }, agent: { name: 'bench' } });

const floor = await ceiling();
const cp = await benchControlPlane({ limits: limitsWith(scaled(100)) });
const counter = countDynamo(cp.rt.dynamo.client);
const done = async (res: Awaited<ReturnType<typeof cp.post>>) => {
  if (res.body.status !== 'completed') throw new Error(`ended ${String(res.body.status)}`);
};
// Warm-up: Cedar, the SDK client, the ASL parse, the first rate-limit leases.
await pool(20, 4, async (i) => done(await cp.post(read(-i - 1), `warm-${i}`, 'wait=20')));
await cp.rt.controlPlane.runner.idle();

// Counted one at a time. Plans are answered asynchronously (intake's polling for a synchronous
// answer is timing, not design); a read waits for its answer, which is what takes the fast path.
async function counted(times: number, body: (i: number) => unknown, tag: string, prefer = 'respond-async') {
  const before = counter.snapshot();
  for (let i = 0; i < times; i++) {
    await cp.post(body(i), `${tag}-${i}`, prefer);
    await cp.rt.controlPlane.runner.idle();
  }
  const d = diffCounts(counter.snapshot(), before);
  return { calls: totalCalls(d) / times, writes: (d.calls.PutItemCommand ?? 0) / times + (d.calls.UpdateItemCommand ?? 0) / times + (d.calls.DeleteItemCommand ?? 0) / times + (d.calls.TransactWriteItemsCommand ?? 0) / times + (d.calls.BatchWriteItemCommand ?? 0) / times, rru: d.readUnits / times, wru: d.writeUnits / times };
}
const perRead = await counted(20, read, 'count-read', 'wait=20');
const perSagaRead = await counted(20, read, 'count-saga-read');
const plan1 = await counted(5, (i) => plan(i, 1), 'count-p1');
const plan4 = await counted(5, (i) => plan(i, 4), 'count-p4');
const perStep = (plan4.calls - plan1.calls) / 3;

const alone: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const res = await cp.post(read(i), `alone-${i}`, 'wait=20');
  await done(res);
  alone.push(res.ms);
}
const plans: number[] = [];
for (let i = 0; i < Math.min(RUNS, 20); i++) {
  const res = await cp.post(plan(i), `plan-${i}`, 'wait=20');
  await done(res);
  plans.push(res.ms);
}
await cp.rt.controlPlane.runner.idle();
const latencies: number[] = [];
const t0 = performance.now();
await pool(N, CONCURRENCY, async (i) => {
  const res = await cp.post(read(i), `load-${i}`, 'wait=20');
  await done(res);
  latencies.push(res.ms);
});
const rps = N / ((performance.now() - t0) / 1000);
await cp.rt.controlPlane.runner.idle();
// The same load from agents in a worker thread (another core), as agents are other processes.
const apart = await agentsInWorker(cp, { n: N, concurrency: CONCURRENCY, tag: 'worker', prefer: 'wait=20', body: read });
const notCompleted = Object.entries(apart.statuses).filter(([k]) => k !== '200 completed' && k !== '201 completed');
if (notCompleted.length > 0) throw new Error(`worker load ended otherwise: ${JSON.stringify(apart.statuses)}`);
const rpsApart = N / apart.seconds;
await cp.rt.controlPlane.runner.idle();
counter.detach();
await cp.close();

const l = summarize(latencies);
const one = summarize(alone);
const p = summarize(plans);
const target = floor.putsPerSecond / Math.max(1, perRead.writes);
console.log(`round trips, local mode (dynalite), concurrency ${CONCURRENCY}`);
console.log(`ceiling      conditional puts ${floor.putsPerSecond.toFixed(0)}/s, consistent reads ${floor.readsPerSecond.toFixed(0)}/s`);
console.log(`read action  (fast path) ${perRead.calls.toFixed(1)} DynamoDB calls (${perRead.writes.toFixed(1)} writes), ${perRead.rru.toFixed(1)} RRU + ${perRead.wru.toFixed(1)} WRU`);
console.log(`read (saga)  ${perSagaRead.calls.toFixed(1)} DynamoDB calls (${perSagaRead.writes.toFixed(1)} writes) when sent Prefer: respond-async`);
console.log(`plan         1 step ${plan1.calls.toFixed(1)} calls, 4 steps ${plan4.calls.toFixed(1)}: ${perStep.toFixed(1)} per step, ${(plan1.calls - perStep).toFixed(1)} per action besides`);
console.log(`read alone   p50 ${ms(one.p50)}  p90 ${ms(one.p90)}   4-step plan alone p50 ${ms(p.p50)}  p90 ${ms(p.p90)}`);
const la = summarize(apart.latencies);
console.log(
  `read load    agents in a worker thread: ${rpsApart.toFixed(0)} actions/s  p50 ${ms(la.p50)}  p90 ${ms(la.p90)}  = ${((100 * rpsApart) / target).toFixed(0)}% of the ceiling ÷ writes per read`,
);
console.log(
  `read load    agents in this thread: ${rps.toFixed(0)} actions/s  p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  = ${((100 * rps) / target).toFixed(0)}% of the ceiling ÷ writes per read (${target.toFixed(0)}/s; issue 17 target ≥ 50%)`,
);
