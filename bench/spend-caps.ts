import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoSpendCapStore } from '../lambdas/adapters/aws/dynamo-spend-caps';
import { noMetrics } from '../lambdas/ports/metrics';
import { reserveStepSpend } from '../lambdas/spend/reservations';
import { SpendCaps } from '../lambdas/spend/caps';
import { startTestDynamo } from '../test/helpers/dynamo';
import { ms } from './support';

/**
 * Spend caps under a burst (local, dynalite): 200 commit steps reserve at once against a
 * principal cap and a tenant cap ($1,000 a day of procurement for one buyer, mixed order
 * sizes), through the saga's reserve path. Prints admitted vs refused, total reserved vs the
 * cap (it must never pass it), and the burst's wall time as a ratio to a floor measured in the
 * same run: 200 unconditional ADDs on one counter item. `npm run bench:spend` (COMMITS=200).
 */
const COMMITS = Number(process.env.COMMITS ?? 200);
const money = { baseCurrency: 'USD', rates: { USD: 1, EUR: 1.1 } };
const caps = SpendCaps.from(
  [
    { id: 'procurement-buyer-daily', scope: 'principal', period: 'day', amount: 1000, connectors: ['procurement'] },
    { id: 'tenant-monthly', scope: 'tenant', period: 'month', amount: 2_000_000 },
  ],
  money,
);

async function main(): Promise<void> {
  const db = await startTestDynamo();
  try {
    const store = new DynamoSpendCapStore({ client: db.client, tableName: db.tableName });
    const now = new Date();
    // Floor: the same number of writes on one hot item, with no condition and no reservation record.
    let t = performance.now();
    await Promise.all(
      Array.from({ length: COMMITS }, () =>
        db.client.send(new UpdateItemCommand({ TableName: db.tableName, Key: { pk: { S: 'BENCH#floor' }, sk: { S: 'X' } }, UpdateExpression: 'ADD n :one', ExpressionAttributeValues: { ':one': { N: '1' } } })),
      ),
    );
    const floorMs = performance.now() - t;

    // Orders of $20–$79.99 (some in EUR) by one buyer, all at once.
    const amounts = Array.from({ length: COMMITS }, (_, i) => ({ amount: 20 + ((i * 37) % 6000) / 100, currency: i % 5 === 0 ? 'EUR' : 'USD' }));
    t = performance.now();
    const outcomes = await Promise.all(
      amounts.map(async (amount, i) => {
        try {
          const r = await reserveStepSpend(
            { caps, store, metrics: noMetrics },
            {
              actionId: `act_bench_${i}`,
              stepId: 'order',
              principal: { sub: 'buyer' },
              connector: 'procurement',
              items: [{ tier: 'commit', connector: 'procurement', counterparty: 'acme-office', amount }],
              index: 0,
            },
            now,
          );
          return r.amount;
        } catch {
          return -1;
        }
      }),
    );
    const burstMs = performance.now() - t;
    const admitted = outcomes.filter((a) => a > 0);
    const key = caps.forPrincipal({ sub: 'buyer' }, now)[0]!.key;
    const counter = (await store.usage([key])).get(key)!;
    const cap = caps.find('procurement-buyer-daily')!.limit;
    const smallestRefused = Math.min(...amounts.map((a, i) => (outcomes[i]! < 0 ? Math.round(a.amount * (a.currency === 'EUR' ? 110 : 100)) : Infinity)));
    console.log(`spend caps: ${COMMITS} concurrent commit steps against a $${(cap / 100).toFixed(2)} buyer cap (dynalite, ${store['transactions'] === false ? 'stepwise' : 'transactions'})`);
    console.log(`  admitted ${admitted.length}, refused ${COMMITS - admitted.length}`);
    console.log(`  total reserved ${counter.used} of cap ${cap} minor units (${((counter.used / cap) * 100).toFixed(2)}%; room left ${cap - counter.used}, smallest refused ${smallestRefused})`);
    console.log(`  sum of admitted amounts ${admitted.reduce((a, b) => a + b, 0)} (= total reserved: ${admitted.reduce((a, b) => a + b, 0) === counter.used})`);
    console.log(`  never past the cap: ${counter.used <= cap}`);
    console.log(`  burst ${ms(burstMs)} vs floor ${ms(floorMs)} (${COMMITS} plain ADDs on one item): ${(burstMs / floorMs).toFixed(1)}× the floor`);
  } finally {
    await db.close();
  }
}

await main();
