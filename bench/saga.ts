/**
 * Saga latency in local mode (`npm run bench:saga`). Not a test. Measures an allowed 4-step
 * travel plan end to end (POST until completed, synchronous answer) and the time to
 * compensate after the vendor refuses the 4th step (from the failure event to `compensated`).
 */
import { benchControlPlane, ms, summarize, travelPlan as plan } from './support';

const RUNS = Number(process.env.BENCH_RUNS ?? 30);


const cp = await benchControlPlane();
await cp.post(plan(999), 'warm', 'wait=20');
const endToEnd: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const res = await cp.post(plan(i), `ok-${i}`, 'wait=20');
  if (res.body.status !== 'completed') throw new Error(`run ${i} ended ${String(res.body.status)}`);
  endToEnd.push(res.ms);
}
const compensate: number[] = [];
for (let i = 0; i < RUNS; i++) {
  cp.rt.controlPlane.vendors.admin.setFaults('travel', { failNext: [{ operation: 'book_flight', count: 1, status: 400 }] });
  const res = await cp.post(plan(i), `fail-${i}`, 'wait=20');
  const id = String(res.body.id);
  await cp.rt.controlPlane.runner.idle();
  const events = await cp.rt.controlPlane.store.list(id);
  const failed = events.find((e) => e.type === 'step.failed');
  const done = events.find((e) => e.type === 'action.status' && e.data.to === 'compensated');
  if (!failed || !done) throw new Error(`run ${i} did not compensate`);
  compensate.push(Date.parse(done.at) - Date.parse(failed.at));
}
await cp.close();
const a = summarize(endToEnd);
const b = summarize(compensate);
console.log(`saga, local mode, ${RUNS} runs each`);
console.log(`4-step plan end to end     mean ${ms(a.mean)}  p50 ${ms(a.p50)}  p90 ${ms(a.p90)}  max ${ms(a.max)}`);
console.log(`compensate after step 4    mean ${ms(b.mean)}  p50 ${ms(b.p50)}  p90 ${ms(b.p90)}  max ${ms(b.max)}`);
