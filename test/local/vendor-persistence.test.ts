import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startSandboxVendors, VendorStateCorruptError } from '../../local/vendors/index';
import { decodeSnapshot, encodeSnapshot } from '../../local/vendors/state-file';
import { startHarness, type Harness } from '../tools/harness';

/**
 * The sandbox vendors keep their state on disk, as real vendors do: a restarted `npm start`
 * resumes and compensates steps against vendors that still know the holds, payments, orders
 * and role grants they answered for, and still replay idempotent requests.
 */

const date = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
const shipTo = { name: 'Ada', street: '1 Loop Rd', city: 'Springfield', postalCode: '12345', country: 'US' };

let stateDir: string;
const started: Harness[] = [];

beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'airlock-vendors-'));
});
afterEach(async () => {
  for (const h of started.splice(0)) await h.vendors.close();
  await rm(stateDir, { recursive: true, force: true });
});

async function vendorsOn(dir: string, credentials?: Record<string, string>): Promise<Harness> {
  const h = await startHarness({ stateDir: dir, ...(credentials ? { credentials } : {}) });
  started.push(h);
  return h;
}

async function restart(h: Harness): Promise<Harness> {
  await h.vendors.close();
  started.splice(started.indexOf(h), 1);
  return vendorsOn(stateDir, h.credentials);
}

describe('sandbox vendors with a state dir', () => {
  it('finish and undo after a restart what they started before it, and replay idempotent calls', async () => {
    // Prepare: one committed effect per vendor, and one more to undo later.
    const first = await vendorsOn(stateDir);
    const holdKey = randomUUID();
    const held = (await first.call('travel.hold_seat', { flightId: `SB102-${date}`, seats: 1 }, { idempotencyKey: holdKey })) as { holdId: string; total: unknown };
    const heldToRelease = (await first.call('travel.hold_seat', { flightId: `SB100-${date}`, seats: 1 })) as { holdId: string };
    const auth = (await first.call('payments.authorize', { amount: 274.5, currency: 'USD', payee: 'sandbox-air', paymentMethod: 'pm_card_visa' })) as { authorizationId: string };
    const order = (await first.call('procurement.place_order', {
      supplierId: 'acme-office', lines: [{ sku: 'ACME-PAPER-A4', quantity: 2 }], shipTo, maxTotal: { amount: 100, currency: 'USD' },
    })) as { orderId: string };
    await first.call('iam.grant_role', { principalId: 'carol', role: 'editor', reason: 'project' });
    const before = Object.fromEntries(['travel', 'payments', 'procurement', 'iam'].map((v) => [v, first.vendors.admin.stats(v).sideEffects]));
    first.vendors.admin.setFaults('payments', { latencyMs: 5_000 });

    // Act: a new process on the same folder.
    const second = await restart(first);

    // Assess: the counters survived, the faults did not, and every object can be used or undone.
    for (const [v, effects] of Object.entries(before)) expect(second.vendors.admin.stats(v).sideEffects).toEqual(effects);
    const replayed = await second.call('travel.hold_seat', { flightId: `SB102-${date}`, seats: 1 }, { idempotencyKey: holdKey });
    expect(replayed).toEqual(held);
    expect(second.vendors.admin.stats('travel').sideEffects).toEqual(before.travel);
    const booking = (await second.call('travel.book_flight', {
      holdId: held.holdId, travelers: [{ firstName: 'Ada', lastName: 'Lovelace' }], contact: { email: 'ada@example.com' }, price: held.total,
    })) as { status: string };
    expect(booking.status).toBe('confirmed');
    expect(await second.call('travel.release_hold', { holdId: heldToRelease.holdId })).toMatchObject({ status: 'released' });
    expect(await second.call('payments.void_authorization', { authorizationId: auth.authorizationId })).toMatchObject({ status: 'voided' });
    expect(await second.call('procurement.cancel_order', { orderId: order.orderId })).toMatchObject({ status: 'cancelled' });
    await second.call('iam.revoke_role', { principalId: 'carol', role: 'editor', reason: 'done' });
    expect(second.vendors.admin.stats('travel').sideEffects).toEqual({ hold_seat: 2, book_flight: 1, release_hold: 1 });
    expect(second.vendors.admin.stats('iam').sideEffects).toEqual({ grant_role: 1, revoke_role: 1 });
  });

  it('write the state before they answer, privately, one file per vendor that changed', async () => {
    const h = await vendorsOn(stateDir);
    const held = (await h.call('travel.hold_seat', { flightId: `SB102-${date}`, seats: 1 })) as { holdId: string };
    // Nothing ran between the answer and this read: the answer implied the file.
    expect(readFileSync(join(stateDir, 'travel.json'), 'utf8')).toContain(held.holdId);
    expect(await readdir(stateDir)).toEqual(['travel.json']);
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
    for (const file of await readdir(stateDir)) expect(statSync(join(stateDir, file)).mode & 0o777).toBe(0o600);
  });

  it('ignore a half-written temp file a killed process left, and refuse to start on a corrupt state file', async () => {
    const h = await vendorsOn(stateDir);
    await h.call('travel.hold_seat', { flightId: `SB102-${date}`, seats: 1 });
    const credentials = h.credentials;
    await h.vendors.close();
    started.splice(0);
    await writeFile(join(stateDir, 'travel.json.tmp'), '{"version":1,"vend');
    const again = await vendorsOn(stateDir, credentials);
    expect(again.vendors.admin.stats('travel').sideEffects).toEqual({ hold_seat: 1 });
    expect(existsSync(join(stateDir, 'travel.json.tmp'))).toBe(false);
    await again.vendors.close();
    started.splice(0);

    await writeFile(join(stateDir, 'payments.json'), '{"version":1,"vendor":"payments","state":"not a state"}');
    await expect(startSandboxVendors({ credentials, stateDir })).rejects.toBeInstanceOf(VendorStateCorruptError);
    await writeFile(join(stateDir, 'payments.json'), await readFile(join(stateDir, 'travel.json'), 'utf8'));
    await expect(startSandboxVendors({ credentials, stateDir })).rejects.toThrow(/payments\.json is unreadable/);
  });

  it('keep no state on disk without a state dir', async () => {
    const h = await startHarness();
    started.push(h);
    await h.call('travel.hold_seat', { flightId: `SB102-${date}`, seats: 1 });
    expect(await readdir(stateDir)).toEqual([]);
  });
});

describe('the state file codec', () => {
  it('round-trips JSON values with Maps nested anywhere (property)', () => {
    const leaf = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null));
    const { tree } = fc.letrec((tie) => ({
      tree: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('tree'), { maxLength: 4 }), fc.dictionary(fc.string().filter((k) => k !== '$map' && k !== '__proto__'), tie('tree'), { maxKeys: 4 }), fc.array(fc.tuple(fc.string(), tie('tree')), { maxLength: 4 }).map((e) => new Map(e))),
    }));
    fc.assert(
      fc.property(tree, (value) => {
        expect(decodeSnapshot(encodeSnapshot(value))).toEqual(value);
      }),
    );
  });

  it('turns any text into a value or a thrown error, never a half-built state (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.jsonValue().map((v) => JSON.stringify({ $map: v }))), (text) => {
        try {
          decodeSnapshot(text);
        } catch (error) {
          expect(error).toBeInstanceOf(Error);
        }
      }),
    );
  });
});
