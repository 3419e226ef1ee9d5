import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ActionRecord } from '../../lambdas/actions/action';
import { askedWaitMs, awaitChange, defaultIntakeConfig } from '../../lambdas/intake/intake';
import type { ActionStore } from '../../lambdas/ports/ledger';
import type { WorkflowStarter } from '../../lambdas/ports/workflow';

/** The long poll of GET /v1/actions/{id} (`Prefer: wait=N`), on a clock that moves only when it sleeps. */

const record = (status: ActionRecord['status'], receiptKey?: string) => ({ id: 'act_1', status, ...(receiptKey ? { receiptKey } : {}) }) as ActionRecord;

/** An action store whose action moves through `states` at the given times (ms from the start). */
function scripted(states: [number, ActionRecord][]) {
  let ms = 0;
  let reads = 0;
  const actions = {
    getAction: async () => {
      reads++;
      return [...states].reverse().find(([at]) => at <= ms)![1];
    },
  } as unknown as ActionStore;
  const deps = { actions, workflow: {} as WorkflowStarter, now: () => ms, sleep: async (d: number) => void (ms += d) };
  return { deps, at: () => ms, reads: () => reads };
}

describe('a read waiting for a change', () => {
  it('answers with the next status, at its first look after the change', async () => {
    const s = scripted([[0, record('received')], [700, record('running')]]);
    const got = await awaitChange(s.deps, record('received'), 20_000);
    expect(got.status).toBe('running');
    // Looks back off from 50 ms: 50, 100, 200, 400 → the change at 700 is seen at 750.
    expect(s.at()).toBe(750);
    expect(s.reads()).toBe(4);
  });

  it('reports an end only with its receipt, and an action already receipted at once', async () => {
    const s = scripted([[0, record('running')], [100, record('completed')], [5_000, record('completed', 'receipts/x')]]);
    const got = await awaitChange(s.deps, record('running'), 20_000);
    expect(got).toMatchObject({ status: 'completed', receiptKey: 'receipts/x' });
    const done = scripted([[0, record('completed', 'receipts/x')]]);
    expect(await awaitChange(done.deps, record('completed', 'receipts/x'), 20_000)).toMatchObject({ status: 'completed' });
    expect(done.reads()).toBe(0);
  });

  it('gives up at the deadline exactly, with the action as it then is, reading at most once a second', async () => {
    const s = scripted([[0, record('awaiting_approval')]]);
    const got = await awaitChange(s.deps, record('awaiting_approval'), 20_000);
    expect(got.status).toBe('awaiting_approval');
    expect(s.at()).toBe(20_000);
    expect(s.reads()).toBeLessThanOrEqual(25);
  });
});

describe('Prefer on a read', () => {
  it('asks for a wait only with wait=N, capped at the most a client may ask for', () => {
    expect(askedWaitMs(undefined, defaultIntakeConfig)).toBeUndefined();
    expect(askedWaitMs('respond-async', defaultIntakeConfig)).toBeUndefined();
    expect(askedWaitMs('wait=3', defaultIntakeConfig)).toBe(3_000);
    expect(askedWaitMs('handling=lenient, WAIT = 7', defaultIntakeConfig)).toBe(7_000);
    expect(askedWaitMs('wait=999999', defaultIntakeConfig)).toBe(defaultIntakeConfig.maxSyncWaitMs);
    expect(askedWaitMs('wait=-1', defaultIntakeConfig)).toBeUndefined();
  });

  it('answers any header text with no wait or a whole-second wait within the cap, never throwing', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.nat().map((n) => `wait=${n}`)), (text) => {
        const ms = askedWaitMs(text, defaultIntakeConfig);
        if (ms === undefined) return;
        expect(Number.isInteger(ms / 1000)).toBe(true);
        expect(ms).toBeGreaterThanOrEqual(0);
        expect(ms).toBeLessThanOrEqual(defaultIntakeConfig.maxSyncWaitMs);
      }),
    );
  });
});
