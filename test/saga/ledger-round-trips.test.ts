import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoSagaStore } from '../../lambdas/adapters/aws/dynamo-saga-store';
import type { StepKey } from '../../lambdas/ports/steps';
import { newActionId } from '../../lambdas/shared/ids';
import { countDynamo, diffCounts, totalCalls, type DynamoCounter } from '../helpers/counting-dynamo';
import { startLedger } from '../helpers/ledger';
import { seedAction, TERMINALS } from '../helpers/receipts';

/**
 * The ledger reads and writes that issue 17 folded together, held to their semantics on the
 * real engine (dynalite here, DynamoDB Local in CI): a step attempt and its grant's single use
 * are one conditional write, and the receipt's action and event chain are one query.
 */

let env: Awaited<ReturnType<typeof startLedger>>;
let store: DynamoSagaStore;
let counter: DynamoCounter;

beforeAll(async () => {
  env = await startLedger();
  store = new DynamoSagaStore({ client: env.dynamo.client, tableName: env.tableName });
  counter = countDynamo(env.dynamo.client);
});
afterAll(async () => {
  counter?.detach();
  await env?.close();
});

let n = 0;
const key = (): StepKey => ({ actionId: `act_RT${String(n++).padStart(6, '0')}`, stepId: 'hold', kind: 'forward' });
/** One expiry for every grant here (computed once: records compare equal whatever second a test runs in). */
const EXP = Math.floor(Date.now() / 1000) + 300;
const grant = (jti: string) => ({ jti, scope: 'travel.hold_seat#hold', exp: EXP });
const attempt = (jti: string) => ({ tool: 'travel.hold_seat', input: { seats: 1 }, idempotencyKey: 'idem', grant: grant(jti), dryRun: false });

/** Runs `work` and answers with the commands it sent. */
async function counted<T>(work: () => Promise<T>): Promise<{ value: T; calls: number; commands: Record<string, number> }> {
  const before = counter.snapshot();
  const value = await work();
  const d = diffCounts(counter.snapshot(), before);
  return { value, calls: totalCalls(d), commands: d.calls };
}

describe('a step attempt consumes its grant in the same write', () => {
  it('begins a first attempt with one UpdateItem and no read', async () => {
    const k = key();
    const { value, calls, commands } = await counted(() => store.beginStep(k, attempt('g1'), new Date(), null));
    expect(value.state).toBe('started');
    expect(value.record).toMatchObject({ status: 'in_progress', attempts: 1, grants: [grant('g1')] });
    expect(calls).toBe(1);
    expect(commands).toEqual({ UpdateItemCommand: 1 });
  });

  it('refuses the same grant again, while the attempt runs and after it failed, and writes nothing', async () => {
    const k = key();
    await store.beginStep(k, attempt('g1'), new Date(), null);
    const running = await store.beginStep(k, attempt('g1'), new Date(), null);
    expect(running.state).toBe('replayed');
    await store.failStep(k, { name: 'VendorUnavailableError', message: '503' }, false, new Date());
    const failed = await store.beginStep(k, attempt('g1'), new Date());
    expect(failed.state).toBe('replayed');
    expect(await store.getStep(k)).toMatchObject({ attempts: 1, grants: [grant('g1')] });
  });

  it('takes a fresh grant for a retry even when the caller guessed there was no record (one refused write, one read)', async () => {
    const k = key();
    await store.beginStep(k, attempt('g1'), new Date(), null);
    const { value, commands } = await counted(() => store.beginStep(k, attempt('g2'), new Date(), null));
    expect(value.state).toBe('started');
    expect(value.record).toMatchObject({ attempts: 2, grants: [grant('g1'), grant('g2')] });
    expect(commands).toEqual({ UpdateItemCommand: 2, GetItemCommand: 1 });
    // Both grants are spent now.
    expect((await store.beginStep(k, attempt('g1'), new Date(), null)).state).toBe('replayed');
    expect((await store.beginStep(k, attempt('g2'), new Date(), null)).state).toBe('replayed');
  });

  it('answers a completed step with its output, whatever grant comes, and never reopens it', async () => {
    const k = key();
    await store.beginStep(k, attempt('g1'), new Date(), null);
    await store.completeStep(k, { holdId: 'H1' }, new Date());
    for (const jti of ['g1', 'g3']) {
      const again = await store.beginStep(k, attempt(jti), new Date(), null);
      expect(again.state).toBe('complete');
      expect(again.record.output).toEqual({ holdId: 'H1' });
    }
    expect(await store.getStep(k)).toMatchObject({ status: 'complete', attempts: 1 });
  });

  it('lets exactly one of many racing attempts with one grant begin', async () => {
    const k = key();
    const results = await Promise.all(Array.from({ length: 20 }, () => store.beginStep(k, attempt('race'), new Date(), null)));
    expect(results.filter((r) => r.state === 'started')).toHaveLength(1);
    expect(results.filter((r) => r.state === 'replayed')).toHaveLength(19);
    expect(await store.getStep(k)).toMatchObject({ attempts: 1 });
  });

  it('lets racing attempts with distinct grants each begin once, counted', async () => {
    const k = key();
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.beginStep(k, attempt(`d${i}`), new Date(), null)));
    expect(results.every((r) => r.state === 'started')).toBe(true);
    const record = await store.getStep(k);
    expect(record?.attempts).toBe(8);
    expect(new Set(results.map((r) => r.record.attempts)).size).toBe(8);
  });
});

describe('the receipt reads an action and its event chain in one query', () => {
  it.each(TERMINALS)('answers as getAction and list do (%s)', async (status) => {
    const id = newActionId();
    await seedAction({ ledger: env.ledger, store }, id, status);
    const { value, commands } = await counted(() => store.listWithAction(id));
    expect(commands).toEqual({ QueryCommand: 1 });
    expect(value.action).toEqual(await env.ledger.getAction(id));
    expect(value.events).toEqual(await store.list(id));
    expect(value.events.length).toBeGreaterThan(1);
  });

  it('answers no action and no events for an unknown id', async () => {
    expect(await store.listWithAction(newActionId())).toEqual({ action: undefined, events: [] });
  });
});
