/**
 * Every DynamoDB call one action makes, in order, with the item it addresses, the request
 * units the engine reported and the code that made it (`npm run bench:calls`; `-- plan` for
 * a 4-step allowed plan, `-- read` for a read on the fast path, the default). Not a test:
 * prints the breakdown behind the counts of `npm run bench:cost` and
 * test/saga/round-trips.test.ts, so a cut can be aimed at a named call.
 *
 * Calls on items cached or leased per instance (BREAKER, HALTS, RATE) are marked `timed`:
 * whether one lands in a given action depends on the clock, and under load they amortize to
 * almost nothing.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { TIMED_KINDS } from '../test/helpers/counting-dynamo';
import { benchControlPlane, travelPlan as plan } from './support';

interface Call {
  command: string;
  item: string;
  units: number;
  caller: string;
  timed: boolean;
}

type Attr = { S?: string } | undefined;
type Keyed = { pk?: Attr; sk?: Attr };

/** `ACTION#act_…` → `ACTION#…`: the item's kind and sort key, not its ids. */
function itemOf(input: Record<string, unknown>): string {
  const short = (key: Keyed | undefined) => (key?.pk?.S ? `${key.pk.S.split('#')[0]}${key.sk?.S ? ` / ${key.sk.S.replace(/#.*/, '#…')}` : ''}` : '');
  if (input.Key || input.Item) return short((input.Key ?? input.Item) as Keyed);
  const values = input.ExpressionAttributeValues as Record<string, Attr> | undefined;
  if (values?.[':pk']?.S) return `${values[':pk'].S.split('#')[0]} (query)`;
  const request = input.RequestItems as Record<string, { Keys?: Keyed[] }> | undefined;
  if (request) {
    const keys = Object.values(request).flatMap((r) => r.Keys ?? []);
    return `${keys.length} keys: ${[...new Set(keys.map((k) => k.pk?.S?.split('#')[0]))].join(', ')}`;
  }
  return '';
}

/** The first frame in domain code (not an adapter, not the SDK): who asked for the call. */
function callerOf(stack: string): string {
  // RecordingEventLog (the read path's) only passes appends on: the caller is the frame below it.
  const frames = stack.split('\n').filter((l) => l.includes('/lambdas/') && !l.includes('/adapters/') && !l.includes('RecordingEventLog.'));
  const frame = frames[0]?.trim().replace(/^at (async )?/, '') ?? '';
  const m = /^(\S+) \(.*\/lambdas\/(.+?):(\d+):\d+\)$/.exec(frame) ?? /^.*\/lambdas\/(.+?):(\d+):\d+$/.exec(frame);
  if (!m) return frame;
  return m.length === 4 ? `${m[1]} (${m[2]}:${m[3]})` : `${m[1]}:${m[2]}`;
}

function record(client: DynamoDBClient, calls: { list?: Call[] }) {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = String((context as { commandName?: string }).commandName ?? 'unknown').replace(/Command$/, '');
      const input = args.input as Record<string, unknown>;
      const stack = new Error().stack ?? '';
      const out = await next({ ...args, input: { ...input, ReturnConsumedCapacity: 'TOTAL' } });
      const consumed = (out.output as { ConsumedCapacity?: { CapacityUnits?: number } | { CapacityUnits?: number }[] }).ConsumedCapacity;
      const units = (Array.isArray(consumed) ? consumed : consumed ? [consumed] : []).reduce((a, c) => a + (c.CapacityUnits ?? 0), 0);
      delete (out.output as unknown as Record<string, unknown>).ConsumedCapacity;
      const item = itemOf(input);
      calls.list?.push({ command, item, units, caller: callerOf(stack), timed: TIMED_KINDS.includes(item.split(/[ /(]/)[0]!) });
      return out;
    },
    { step: 'initialize', name: 'bench-calls' },
  );
}

const which = process.argv[2] === 'plan' ? 'plan' : 'read';
const cp = await benchControlPlane();
const calls: { list?: Call[] } = {};
record(cp.rt.dynamo.client, calls);
const read = (i: number) => ({ tool: 'echo.say', arguments: { message: `hello ${i}` }, agent: { name: 'bench' } });
// Warm-up: first leases, first cap counters, the policy set, both paths once.
for (let i = 0; i < 2; i++) {
  await cp.post(read(-i - 1), `warm-read-${i}`, 'wait=20');
  await cp.post(plan(-i - 1), `warm-plan-${i}`, 'respond-async');
  await cp.rt.controlPlane.runner.idle();
}
calls.list = [];
if (which === 'read') await cp.post(read(0), 'calls-read', 'wait=20');
else await cp.post(plan(0), 'calls-plan', 'respond-async');
await cp.rt.controlPlane.runner.idle();
const list = calls.list;
calls.list = undefined;
await cp.close();

console.log(`DynamoDB calls of one ${which === 'read' ? 'read action (echo.say, fast path)' : '4-step allowed plan (travel, respond-async)'}, shipped limits, in order`);
console.log(`${'#'.padStart(3)}  ${'command'.padEnd(14)} ${'item'.padEnd(34)} ${'units'.padStart(5)}  caller`);
list.forEach((c, i) => console.log(`${String(i + 1).padStart(3)}  ${c.command.padEnd(14)} ${c.item.slice(0, 34).padEnd(34)} ${String(c.units).padStart(5)}  ${c.caller}${c.timed ? '  [timed]' : ''}`));
const timed = list.filter((c) => c.timed).length;
console.log(`total ${list.length} calls (${list.length - timed} untimed, ${timed} timed), ${list.reduce((a, c) => a + c.units, 0)} request units`);
