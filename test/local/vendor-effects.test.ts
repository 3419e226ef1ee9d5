import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../tools/harness';

/**
 * What the chaos storm reads from the sandbox vendors: a durable log of the side effects they
 * performed (numbered across vendors, with the Idempotency-Key each carried), the objects
 * still in effect by the key that made them, and faults aimed at one step's key.
 */

const date = new Date(Date.now() + 45 * 86_400_000).toISOString().slice(0, 10);
let stateDir: string;
const started: Harness[] = [];

beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'airlock-effects-'));
});
afterEach(async () => {
  for (const h of started.splice(0)) await h.vendors.close();
  await rm(stateDir, { recursive: true, force: true });
});

async function vendors(credentials?: Record<string, string>): Promise<Harness> {
  const h = await startHarness({ stateDir, ...(credentials ? { credentials } : {}) });
  started.push(h);
  return h;
}

describe('sandbox vendor effect log, live objects and key-aimed faults', () => {
  it('logs each effect once, in one numbering across vendors, kept across a restart; live objects follow compensation', async () => {
    const first = await vendors();
    const hold = (await first.call('travel.hold_seat', { flightId: `SB102-${date}`, seats: 1 }, { idempotencyKey: 'act_X.hold' })) as { holdId: string };
    // A retry with the same key is replayed, not performed again.
    await first.call('travel.hold_seat', { flightId: `SB102-${date}`, seats: 1 }, { idempotencyKey: 'act_X.hold' });
    await first.call('payments.authorize', { amount: 10, currency: 'USD', payee: 'sandbox-air', paymentMethod: 'pm_card_visa' }, { idempotencyKey: 'act_X.pay' });
    // Each effect carries the wall-clock time it was performed (halt and breaker invariants judge by it).
    const before = Date.now();
    expect(first.vendors.admin.effects('travel')).toEqual([{ seq: 1, operation: 'hold_seat', idempotencyKey: 'act_X.hold', status: 201, at: expect.any(Number) }]);
    expect(first.vendors.admin.effects('payments')).toEqual([{ seq: 2, operation: 'authorize', idempotencyKey: 'act_X.pay', status: 201, at: expect.any(Number) }]);
    const heldAt = first.vendors.admin.effects('travel')[0]!.at!;
    expect(heldAt).toBeLessThanOrEqual(before);
    expect(first.vendors.admin.effects('payments')[0]!.at!).toBeGreaterThanOrEqual(heldAt);
    expect(first.vendors.admin.live('travel')).toEqual([{ object: `hold ${hold.holdId}`, clientReference: 'act_X.hold' }]);

    await first.vendors.close();
    started.splice(0);
    const second = await vendors(first.credentials);
    await second.call('travel.release_hold', { holdId: hold.holdId }, { idempotencyKey: 'act_X.hold.undo' });
    // The numbering goes on after the restart; the log still has the first run's effects.
    expect(second.vendors.admin.effects('travel').map((e) => [e.seq, e.idempotencyKey])).toEqual([
      [1, 'act_X.hold'],
      [3, 'act_X.hold.undo'],
    ]);
    // Kept across the restart, with its time.
    expect(second.vendors.admin.effects('travel')[0]!.at).toBe(heldAt);
    expect(second.vendors.admin.live('travel')).toEqual([]);
    expect(second.vendors.admin.live('payments')).toHaveLength(1);
  });

  it('fails only the calls whose key ends with keySuffix, and adds faults without dropping the others', async () => {
    const h = await vendors();
    h.vendors.admin.addFaults('travel', { failNext: [{ operation: '*', count: 1, status: 409, code: 'chaos_refused', keySuffix: '.s7x1' }] });
    h.vendors.admin.addFaults('travel', { latencyMs: 1 });
    // Another step's key passes; the aimed one is refused once, then passes.
    await expect(h.call('travel.hold_seat', { flightId: `SB100-${date}`, seats: 1 }, { idempotencyKey: 'act_Y.s17x1' })).resolves.toBeDefined();
    await expect(h.call('travel.hold_seat', { flightId: `SB100-${date}`, seats: 1 }, { idempotencyKey: 'act_Y.s7x1' })).rejects.toThrow(/chaos_refused|409/);
    await expect(h.call('travel.hold_seat', { flightId: `SB100-${date}`, seats: 1 }, { idempotencyKey: 'act_Y.s7x1' })).resolves.toBeDefined();
    expect(h.vendors.admin.effects('travel').map((e) => e.idempotencyKey)).toEqual(['act_Y.s17x1', 'act_Y.s7x1']);
  });
});
