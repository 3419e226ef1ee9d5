import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoSpendCapStore } from '../../lambdas/adapters/aws/dynamo-spend-caps';
import type { CapCharge, ReserveResult } from '../../lambdas/ports/spend-caps';
import { startTestDynamo, type TestDynamo } from '../helpers/dynamo';

/**
 * The spend-cap store against a real DynamoDB engine (dynalite here; DynamoDB Local, with
 * transactions, in `npm run test:dynamodb-local`): a burst of concurrent reservations never
 * takes a counter past its cap and admits exactly the ones that fit; retries count once;
 * settling is final or gives the room back, once.
 */

let db: TestDynamo;
let store: DynamoSpendCapStore;
const NOW = new Date('2031-05-06T07:08:09Z');
const EXPIRES = Date.parse('2031-06-01T00:00:00Z') / 1000;
let n = 0;
/** Counters of their own for each test. */
const fresh = () => `t${n++}`;

beforeAll(async () => {
  db = await startTestDynamo();
  store = new DynamoSpendCapStore({ client: db.client, tableName: db.tableName });
}, 60_000);
afterAll(async () => {
  await db?.close();
});

function caps(prefix: string, tenantLimit: number): CapCharge[] {
  // The binding cap is charged second, so the stepwise path (dynalite) rolls back the first.
  return [
    { key: `${prefix}-roomy#2031-05#*`, capId: 'roomy', limit: 1_000_000_000, expiresAt: EXPIRES },
    { key: `${prefix}-tenant#2031-05#*`, capId: 'tenant-monthly', limit: tenantLimit, expiresAt: EXPIRES },
  ];
}

describe('DynamoSpendCapStore', () => {
  it('admits exactly the reservations that fit out of 200 concurrent ones, and the total never passes the cap', async () => {
    // Prepare: $100.00 of room; each step asks $1.37, so exactly 72 fit (72 × 137 = 9,864).
    const p = fresh();
    const charges = caps(p, 10_000);
    // Act
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => store.reserve({ actionId: `act_${p}_${i}`, stepId: 'order', connector: 'procurement', amount: 137, caps: charges }, NOW)),
    );
    // Assess
    const admitted = results.filter((r) => r.outcome === 'reserved');
    const refused = results.filter((r): r is Extract<ReserveResult, { outcome: 'refused' }> => r.outcome === 'refused');
    expect(admitted).toHaveLength(72);
    expect(refused).toHaveLength(128);
    expect(new Set(refused.map((r) => r.capId))).toEqual(new Set(['tenant-monthly']));
    const usage = await store.usage(charges.map((c) => c.key));
    expect(usage.get(charges[1]!.key)).toEqual({ used: 9_864, reserved: 9_864, committed: 0 });
    // The roomy cap holds exactly the admitted ones too: every refusal was undone everywhere.
    expect(usage.get(charges[0]!.key)).toEqual({ used: 9_864, reserved: 9_864, committed: 0 });
  }, 120_000);

  it('with mixed amounts, never passes the cap and refuses only what could not fit', async () => {
    const p = fresh();
    const charges = caps(p, 25_000);
    const amounts = Array.from({ length: 200 }, (_, i) => 50 + ((i * 7919) % 400));
    const results = await Promise.all(
      amounts.map((amount, i) => store.reserve({ actionId: `act_${p}_${i}`, stepId: 's', connector: 'payments', amount, caps: charges }, NOW)),
    );
    const admittedTotal = amounts.filter((_, i) => results[i]!.outcome === 'reserved').reduce((a, b) => a + b, 0);
    const used = (await store.usage([charges[1]!.key])).get(charges[1]!.key)!.used;
    expect(used).toBe(admittedTotal);
    expect(used).toBeLessThanOrEqual(25_000);
    // Counters only grew during the burst, so a refused amount did not fit at its moment and does not fit now.
    amounts.forEach((amount, i) => {
      if (results[i]!.outcome === 'refused') expect(used + amount).toBeGreaterThan(25_000);
    });
    expect(results.some((r) => r.outcome === 'refused')).toBe(true);
  }, 120_000);

  it('a retried reservation of the same action and step counts once, even 20 at a time', async () => {
    const p = fresh();
    const charges = caps(p, 10_000);
    const ask = () => store.reserve({ actionId: `act_${p}`, stepId: 'book', connector: 'travel', amount: 2_500, caps: charges }, NOW);
    expect(await ask()).toEqual({ outcome: 'reserved' });
    const again = await Promise.all(Array.from({ length: 20 }, ask));
    expect(again.every((r) => r.outcome === 'replayed')).toBe(true);
    expect((await store.usage([charges[1]!.key])).get(charges[1]!.key)).toEqual({ used: 2_500, reserved: 2_500, committed: 0 });
    expect(await store.listReservations(`act_${p}`)).toEqual([
      { actionId: `act_${p}`, stepId: 'book', connector: 'travel', amount: 2_500, caps: charges.map((c) => ({ key: c.key, capId: c.capId })), state: 'held' },
    ]);
  }, 60_000);

  it('concurrent first attempts at the same step, racing other steps for the last room, never leave a counter below what its held reservations charged', async () => {
    // The stepwise path's races (dynalite): one attempt refused and giving back what the step
    // had charged while another attempt of the same step goes on charging and holds it. Every
    // counter must still carry every held reservation (over-counting is the safe side).
    for (let trial = 0; trial < 40; trial++) {
      const p = fresh();
      // Room for one or two of the three steps on the binding cap (charged second).
      const charges = caps(p, trial % 2 === 0 ? 1_000 : 1_500);
      const ask = (action: string) => store.reserve({ actionId: action, stepId: 'order', connector: 'procurement', amount: 700, caps: charges }, NOW);
      const actions = [`act_${p}_a`, `act_${p}_b`, `act_${p}_c`];
      // Attempts start staggered by event-loop turns, so a later one finds an earlier one mid-way.
      const after = async (turns: number) => {
        for (let t = 0; t < turns; t++) await new Promise((resolve) => setImmediate(resolve));
      };
      await Promise.all(actions.flatMap((a, i) => Array.from({ length: 6 }, (_, k) => after(((trial + i) * 7 + k * 5) % 40).then(() => ask(a)))));
      const held = (await Promise.all(actions.map((a) => store.listReservations(a)))).flat().filter((r) => r.state === 'held');
      const usage = await store.usage(charges.map((c) => c.key));
      for (const c of charges) {
        const carried = held.reduce((sum, r) => sum + r.amount, 0);
        expect(usage.get(c.key)?.used ?? 0, `trial ${trial}, ${c.capId}`).toBeGreaterThanOrEqual(carried);
        expect(usage.get(c.key)?.used ?? 0, `trial ${trial}, ${c.capId}`).toBeLessThanOrEqual(c.limit);
      }
    }
  }, 120_000);

  it('a reservation a crash left half given back is started afresh, never continued on counters already returned', async () => {
    const p = fresh();
    const charges = caps(p, 1_000);
    const request = { actionId: `act_${p}`, stepId: 'order', connector: 'procurement', amount: 700, caps: charges };
    // What a refused attempt leaves when killed while giving back: the reservation marked, the
    // first counter already returned.
    await db.client.send(
      new PutItemCommand({
        TableName: db.tableName,
        Item: {
          pk: { S: `RESERVE#act_${p}` },
          sk: { S: 'order' },
          connector: { S: 'procurement' },
          amount: { N: '700' },
          caps: { S: JSON.stringify(charges.map((c) => ({ key: c.key, capId: c.capId }))) },
          state: { S: 'aborted' },
          applied: { N: '1' },
          reservedAt: { S: NOW.toISOString() },
          expiresAt: { N: String(EXPIRES) },
        },
      }),
    );
    // The stepwise path (what dynalite always takes; DynamoDB Local takes it when told to).
    const stepwise = new DynamoSpendCapStore({ client: db.client, tableName: db.tableName, transactions: false });
    expect(await stepwise.reserve(request, NOW)).toEqual({ outcome: 'reserved' });
    const usage = await store.usage(charges.map((c) => c.key));
    expect(usage.get(charges[0]!.key)).toEqual({ used: 700, reserved: 700, committed: 0 });
    expect(usage.get(charges[1]!.key)).toEqual({ used: 700, reserved: 700, committed: 0 });
    expect((await store.listReservations(`act_${p}`)).map((r) => r.state)).toEqual(['held']);
  }, 60_000);

  it('final moves reserved to committed, release gives the room back, and settling twice changes nothing', async () => {
    const p = fresh();
    const charges = caps(p, 10_000);
    await store.reserve({ actionId: `act_${p}_a`, stepId: 's1', connector: 'payments', amount: 6_000, caps: charges }, NOW);
    await store.reserve({ actionId: `act_${p}_b`, stepId: 's1', connector: 'payments', amount: 4_000, caps: charges }, NOW);
    // Full: the next cent is refused.
    expect(await store.reserve({ actionId: `act_${p}_c`, stepId: 's1', connector: 'payments', amount: 1, caps: charges }, NOW)).toEqual({
      outcome: 'refused',
      capId: 'tenant-monthly',
    });
    // Act: a completes (final), b is compensated (released), each settled twice, concurrently.
    const settled = await Promise.all([
      store.settle(`act_${p}_a`, 's1', 'final', NOW),
      store.settle(`act_${p}_a`, 's1', 'final', NOW),
      store.settle(`act_${p}_b`, 's1', 'released', NOW),
      store.settle(`act_${p}_b`, 's1', 'released', NOW),
    ]);
    // Assess
    expect(settled.filter(Boolean)).toHaveLength(2);
    expect(await store.settle(`act_${p}_a`, 's1', 'released', NOW)).toBe(false);
    expect(await store.settle(`act_nothing`, 's1', 'final', NOW)).toBe(false);
    expect((await store.usage([charges[1]!.key])).get(charges[1]!.key)).toEqual({ used: 6_000, reserved: 0, committed: 6_000 });
    expect((await store.listReservations(`act_${p}_b`))[0]?.state).toBe('released');
    // The released room is there again; the committed spend is not.
    expect(await store.reserve({ actionId: `act_${p}_d`, stepId: 's1', connector: 'payments', amount: 4_000, caps: charges }, NOW)).toEqual({ outcome: 'reserved' });
    expect(await store.reserve({ actionId: `act_${p}_e`, stepId: 's1', connector: 'payments', amount: 1, caps: charges }, NOW)).toMatchObject({ outcome: 'refused' });
  }, 60_000);

  it('refuses an amount larger than a cap without writing anything, and reads unknown counters as zero', async () => {
    const p = fresh();
    const charges = caps(p, 1_000);
    expect(await store.reserve({ actionId: `act_${p}`, stepId: 's', connector: 'payments', amount: 1_001, caps: charges }, NOW)).toEqual({
      outcome: 'refused',
      capId: 'tenant-monthly',
    });
    expect(await store.listReservations(`act_${p}`)).toEqual([]);
    expect((await store.usage(charges.map((c) => c.key))).size).toBe(0);
    await expect(store.reserve({ actionId: `act_${p}`, stepId: 's', connector: 'payments', amount: 0, caps: charges }, NOW)).rejects.toThrow(RangeError);
  });
});
