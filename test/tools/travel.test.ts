import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { VendorAuthError, VendorRejectedError, VendorTimeoutError, VendorUnavailableError } from '../../lambdas/tools/errors';
import { ToolInputInvalidError, invokeTool } from '../../lambdas/tools/invoke';
import { DEFAULT_HOLD_TTL_MS } from '../../local/vendors/index';
import { isoDay } from '../helpers/dates';
import { failure, startHarness, type Harness } from './harness';

const date = isoDay(30);
const flightId = `SB100-${date}`;
const traveler = { firstName: 'Ada', lastName: 'Lovelace', passportNumber: 'X1234567' };
const contact = { email: 'ada@example.com' };

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.vendors.close();
});
afterEach(() => {
  h.vendors.admin.reset('travel');
  h.clock.now = Date.now();
});

const hold = async (seats = 1) => (await h.call('travel.hold_seat', { flightId, seats })) as { holdId: string; total: { amount: number; currency: string }; expiresAt: string };

describe('travel connector', () => {
  it('rejects bad input before calling the vendor', async () => {
    // Prepare / Act
    const unknownField = await failure(h.call('travel.hold_seat', { flightId, seats: 1, simulateFailure: true }));
    const badSeats = await failure(h.call('travel.hold_seat', { flightId, seats: 0 }));
    const badEmail = await failure(h.call('travel.book_flight', { holdId: 'hold_x', travelers: [traveler], contact: { email: 'nope' }, price: { amount: 1, currency: 'USD' } }));
    // Assess
    for (const err of [unknownField, badSeats, badEmail]) {
      expect(err).toBeInstanceOf(ToolInputInvalidError);
      expect(err.name).toBe('ToolInputInvalidError');
      expect(err.retryable).toBe(false);
    }
    expect(h.vendors.admin.stats('travel').requests).toEqual({});
  });

  it('searches, holds, books, changes and cancels (happy path)', async () => {
    const search = (await h.call('travel.search_flights', { origin: 'SFO', destination: 'JFK', date })) as { flights: { flightId: string; farePerSeat: { amount: number } }[] };
    expect(search.flights.map((f) => f.flightId)).toContain(flightId);
    expect(search.flights[0]!.farePerSeat.amount).toBe(329);

    const held = await hold(2);
    expect(held.total).toEqual({ amount: 658, currency: 'USD' });

    const booking = (await h.call('travel.book_flight', { holdId: held.holdId, travelers: [traveler, { firstName: 'Charles', lastName: 'Babbage' }], contact, price: held.total })) as {
      bookingId: string;
      status: string;
    };
    expect(booking.status).toBe('confirmed');

    const changed = (await h.call('travel.change_booking', { bookingId: booking.bookingId, contact: { email: 'new@example.com' } })) as {
      previousContact: { email: string };
      booking: { contact: { email: string } };
    };
    expect(changed.previousContact.email).toBe('ada@example.com');
    expect(changed.booking.contact.email).toBe('new@example.com');

    const read = (await h.call('travel.get_booking', { bookingId: booking.bookingId })) as { status: string };
    expect(read.status).toBe('confirmed');
    const cancelled = (await h.call('travel.cancel_booking', { bookingId: booking.bookingId })) as { status: string };
    expect(cancelled.status).toBe('cancelled');
    // Cancelling again converges (compensations are retried) without a second side effect.
    await h.call('travel.cancel_booking', { bookingId: booking.bookingId });
    expect(h.vendors.admin.stats('travel').sideEffects).toEqual({ hold_seat: 1, book_flight: 1, change_booking: 1, cancel_booking: 1 });
  });

  it('bookings need a valid hold; holds expire after their TTL', async () => {
    const unknown = await failure(h.call('travel.book_flight', { holdId: 'hold_missing', travelers: [traveler], contact, price: { amount: 329, currency: 'USD' } }));
    expect(unknown).toBeInstanceOf(VendorRejectedError);
    expect(unknown.vendorStatus).toBe(404);

    const held = await hold();
    h.clock.now += DEFAULT_HOLD_TTL_MS + 1;
    const expired = await failure(h.call('travel.book_flight', { holdId: held.holdId, travelers: [traveler], contact, price: held.total }));
    expect(expired).toBeInstanceOf(VendorRejectedError);
    expect(expired.vendorCode).toBe('hold_expired');
    // Releasing an expired hold (a compensation) converges instead of failing.
    const released = (await h.call('travel.release_hold', { holdId: held.holdId })) as { status: string };
    expect(released.status).toBe('expired');
  });

  it('refuses a booking whose price differs from the quote', async () => {
    const held = await hold();
    const err = await failure(h.call('travel.book_flight', { holdId: held.holdId, travelers: [traveler], contact, price: { amount: 1, currency: 'USD' } }));
    expect(err).toBeInstanceOf(VendorRejectedError);
    expect(err.vendorCode).toBe('price_changed');
    expect(err.vendorStatus).toBe(409);
  });

  it('maps vendor failures to the named errors', async () => {
    h.vendors.admin.setFaults('travel', { failNext: [{ operation: 'hold_seat', count: 1, status: 503 }] });
    const unavailable = await failure(h.call('travel.hold_seat', { flightId, seats: 1 }));
    expect(unavailable).toBeInstanceOf(VendorUnavailableError);
    expect(unavailable.retryable).toBe(true);

    h.vendors.admin.setFaults('travel', { failNext: [{ operation: 'hold_seat', count: 1, status: 429 }] });
    expect(await failure(h.call('travel.hold_seat', { flightId, seats: 1 }))).toBeInstanceOf(VendorUnavailableError);

    h.vendors.admin.setFaults('travel', { failNext: [{ operation: 'hold_seat', count: 1, status: 400, code: 'bad_flight' }] });
    const rejected = await failure(h.call('travel.hold_seat', { flightId, seats: 1 }));
    expect(rejected).toBeInstanceOf(VendorRejectedError);
    expect(rejected.vendorCode).toBe('bad_flight');

    const conflict = await failure(h.call('travel.hold_seat', { flightId: `SB100-2000-01-01`, seats: 1 }));
    expect(conflict).toBeInstanceOf(VendorRejectedError);
    expect(conflict.vendorCode).toBe('flight_departed');

    h.vendors.admin.setFaults('travel', { timeoutNext: [{ operation: 'search_flights', count: 1 }] });
    const timeout = await failure(h.call('travel.search_flights', { origin: 'SFO', destination: 'JFK', date }));
    expect(timeout).toBeInstanceOf(VendorTimeoutError);

    const badKey = await failure(
      invokeTool(
        { tool: 'travel.search_flights', input: { origin: 'SFO', destination: 'JFK', date }, idempotencyKey: randomUUID(), dryRun: false, deadline: Date.now() + 2_000 },
        { ...h.deps, secrets: { getSecret: async () => 'sk_wrong_key' } },
      ),
    );
    expect(badKey).toBeInstanceOf(VendorAuthError);
    expect(badKey.vendorStatus).toBe(401);
    // No credential in any error message or log line.
    for (const text of [unavailable.message, rejected.message, badKey.message, ...h.logs]) {
      expect(text).not.toContain(h.credentials.travel);
      expect(text).not.toContain('sk_wrong_key');
    }
  });

  it('dry run checks availability and price at the vendor without side effects', async () => {
    const preview = (await h.call('travel.hold_seat', { flightId, seats: 3 }, { dryRun: true })) as { dryRun: true; quote: { amount: number } };
    expect(preview.dryRun).toBe(true);
    expect(preview.quote.amount).toBe(987);
    const held = await hold();
    const bookPreview = (await h.call('travel.book_flight', { holdId: held.holdId, travelers: [traveler], contact, price: held.total }, { dryRun: true })) as { check: string };
    expect(bookPreview.check).toBe('quote');
    const tooMany = await failure(h.call('travel.hold_seat', { flightId, seats: 9 }, { dryRun: true }));
    expect(tooMany).toBeInstanceOf(VendorRejectedError);
    expect(tooMany.vendorCode).toBe('seats_unavailable');
    expect(h.vendors.admin.stats('travel').sideEffects).toEqual({ hold_seat: 1 });
  });

  it('reusing an idempotency key performs the side effect once', async () => {
    const key = randomUUID();
    const first = await h.call('travel.hold_seat', { flightId, seats: 1 }, { idempotencyKey: key });
    const second = await h.call('travel.hold_seat', { flightId, seats: 1 }, { idempotencyKey: key });
    expect(second).toEqual(first);
    expect(h.vendors.admin.stats('travel').sideEffects.hold_seat).toBe(1);
    // Same key with a different request is refused by the vendor (422).
    const misuse = await failure(h.call('travel.hold_seat', { flightId, seats: 2 }, { idempotencyKey: key }));
    expect(misuse).toBeInstanceOf(VendorRejectedError);
    expect(misuse.vendorCode).toBe('idempotency_key_reused');
  });

  it.each(['hang', 'destroy'] as const)('reconciles after commit-then-drop (%s): exactly one booking', async (mode) => {
    const held = await hold();
    h.vendors.admin.setFaults('travel', { commitThenDrop: [{ operation: 'book_flight', count: 1, mode }] });
    const booking = (await h.call('travel.book_flight', { holdId: held.holdId, travelers: [traveler], contact, price: held.total })) as { bookingId: string; holdId: string };
    expect(booking.holdId).toBe(held.holdId);
    expect(h.vendors.admin.stats('travel').sideEffects.book_flight).toBe(1);
    expect(h.logs.some((l) => l.includes('reconciled: the vendor had already applied'))).toBe(true);
  });

  it('retries once when reconcile shows nothing happened, and gives up with VendorTimeoutError when reconcile is impossible', async () => {
    h.vendors.admin.setFaults('travel', { timeoutNext: [{ operation: 'hold_seat', count: 1 }] });
    await h.call('travel.hold_seat', { flightId, seats: 1 });
    expect(h.vendors.admin.stats('travel').sideEffects.hold_seat).toBe(1);

    h.vendors.admin.setFaults('travel', {
      commitThenDrop: [{ operation: 'hold_seat', count: 1 }],
      failNext: [{ operation: 'list_holds', count: 1, status: 503 }],
    });
    const err = await failure(h.call('travel.hold_seat', { flightId, seats: 1 }));
    expect(err).toBeInstanceOf(VendorTimeoutError);
    expect(err.message).toContain('reconcile failed');
  });

  it('compensation release_hold converges after commit-then-drop', async () => {
    const held = await hold();
    h.vendors.admin.setFaults('travel', { commitThenDrop: [{ operation: 'release_hold', count: 1 }] });
    const released = (await h.call('travel.release_hold', { holdId: held.holdId })) as { status: string };
    expect(released.status).toBe('released');
    expect(h.vendors.admin.stats('travel').sideEffects.release_hold).toBe(1);
  });

  it('answers a search with ~1 MB when told to through the admin endpoint, then normally again', async () => {
    // Prepare: the fault lives on the admin endpoint, never in the request.
    const faults = await fetch(`${h.vendors.baseUrls.travel}/_admin/faults`, {
      method: 'POST',
      headers: { 'x-admin-token': h.vendors.adminTokens.travel!, 'content-type': 'application/json' },
      body: JSON.stringify({ oversizeNext: [{ operation: 'search_flights', count: 1, bytes: 1_000_000 }] }),
    });
    expect(faults.status).toBe(200);
    // Act
    const big = (await h.call('travel.search_flights', { origin: 'SFO', destination: 'JFK', date })) as { flights: { flightId: string }[] };
    const normal = (await h.call('travel.search_flights', { origin: 'SFO', destination: 'JFK', date })) as { flights: { flightId: string }[] };
    // Assess: the same flights, repeated; the next search is back to normal.
    expect(Buffer.byteLength(JSON.stringify(big))).toBeGreaterThan(900_000);
    expect(new Set(big.flights.map((f) => f.flightId))).toEqual(new Set(normal.flights.map((f) => f.flightId)));
    expect(normal.flights.length).toBeLessThan(10);
    expect(h.vendors.admin.stats('travel').sideEffects).toEqual({});
    // Refused when malformed, like every fault.
    const bad = await fetch(`${h.vendors.baseUrls.travel}/_admin/faults`, {
      method: 'POST',
      headers: { 'x-admin-token': h.vendors.adminTokens.travel!, 'content-type': 'application/json' },
      body: JSON.stringify({ oversizeNext: [{ operation: 'search_flights', count: 1, bytes: 1e12 }] }),
    });
    expect(bad.status).toBe(400);
  });
});
