import * as z from 'zod';
import { defineConnector, defineTool, lazySchema, type VendorRecord } from '../sdk';
import { callOptions, commitOnce, fromMinor, moneyOutputSchema, moneySchema, reachGoalState, toMinor } from '../vendor-http';
import { createTravelClient, type TravelClient, type VendorBooking, type VendorBookingChange, type VendorHold } from './client';

/** Travel: search flights, hold seats (which expire), book on a valid hold, change and cancel bookings. */

const iata = z.string().regex(/^[A-Z]{3}$/, 'IATA airport code, e.g. SFO');
const flightId = z.string().min(1).max(64);
const holdId = z.string().min(1).max(64);
const bookingId = z.string().min(1).max(64);
const contact = z
  .object({ email: z.string().email().max(254), phone: z.string().regex(/^\+?[0-9 ()-]{5,20}$/).optional() })
  .strict();

const holdOutput = lazySchema(() => z.object({
  holdId: z.string(),
  flightId: z.string(),
  seats: z.number().int(),
  status: z.enum(['held', 'released', 'booked', 'expired']),
  expiresAt: z.string(),
  total: moneyOutputSchema,
}));

const bookingOutput = lazySchema(() => z.object({
  bookingId: z.string(),
  holdId: z.string(),
  flightId: z.string(),
  seats: z.number().int(),
  status: z.enum(['confirmed', 'cancelled']),
  price: moneyOutputSchema,
  travelers: z.array(z.object({ firstName: z.string(), lastName: z.string() })),
  contact: z.object({ email: z.string(), phone: z.string().optional() }),
}));

function holdOut(h: VendorHold): z.infer<ReturnType<typeof holdOutput>> {
  return {
    holdId: h.holdId,
    flightId: h.flightId,
    seats: h.seats,
    status: h.status,
    expiresAt: h.expiresAt,
    total: fromMinor(h.fare.amountMinor * h.seats, h.fare.currency),
  };
}

function bookingOut(b: VendorBooking): z.infer<ReturnType<typeof bookingOutput>> {
  return {
    bookingId: b.bookingId,
    holdId: b.holdId,
    flightId: b.flightId,
    seats: b.seats,
    status: b.status,
    price: fromMinor(b.price.amountMinor, b.price.currency),
    travelers: b.travelers.map((t) => ({ firstName: t.firstName, lastName: t.lastName })),
    contact: { email: b.contact.email, ...(b.contact.phone ? { phone: b.contact.phone } : {}) },
  };
}

const searchFlights = defineTool({
  name: 'search_flights',
  description: 'Lists flights between two airports on a date, with the fare per seat and the seats still available.',
  tier: 'read',
  input: () => z.object({ origin: iata, destination: iata, date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'YYYY-MM-DD') }).strict(),
  output: () => z.object({
    flights: z.array(
      z.object({
        flightId: z.string(),
        carrier: z.string(),
        origin: z.string(),
        destination: z.string(),
        departureTime: z.string(),
        arrivalTime: z.string(),
        farePerSeat: moneyOutputSchema,
        seatsAvailable: z.number().int(),
      }),
    ),
  }),
  async execute(client: TravelClient, input, ctx) {
    const res = await client.searchFlights(input, callOptions(ctx));
    return {
      flights: res.data.map((f) => ({
        flightId: f.flightId,
        carrier: f.carrier,
        origin: f.origin,
        destination: f.destination,
        departureTime: f.departureTime,
        arrivalTime: f.arrivalTime,
        farePerSeat: fromMinor(f.fare.amountMinor, f.fare.currency),
        seatsAvailable: f.seatsAvailable,
      })),
    };
  },
});

const holdSeat = defineTool({
  name: 'hold_seat',
  description: 'Holds seats on a flight for a limited time (the vendor sets the expiry) so they can be booked. Release the hold to undo.',
  tier: 'commit',
  input: () => z.object({ flightId, seats: z.number().int().min(1).max(9) }).strict(),
  output: holdOutput,
  compensation: { tool: 'release_hold', input: (_input, output) => ({ holdId: output.holdId }) },
  async preview(client: TravelClient, input, ctx) {
    const res = await client.validateHold(input, callOptions(ctx));
    return { dryRun: true, check: 'availability', quote: fromMinor(res.quote.amountMinor, res.quote.currency), details: { flightId: input.flightId, seats: input.seats } };
  },
  async execute(client: TravelClient, input, ctx) {
    const o = callOptions(ctx);
    const hold = await commitOnce(ctx, {
      send: () => client.createHold(input, o),
      lookup: async () => (await client.findHolds(ctx.idempotencyKey, o)).data[0],
    });
    return holdOut(hold);
  },
});

const releaseHold = defineTool({
  name: 'release_hold',
  description: 'Releases a seat hold so the seats return to sale. Succeeds if the hold is already released or expired.',
  tier: 'commit',
  compensationOnly: true,
  input: () => z.object({ holdId }).strict(),
  output: holdOutput,
  async preview(client: TravelClient, input, ctx) {
    const hold = await client.getHold(input.holdId, callOptions(ctx));
    return { dryRun: true, check: 'lookup', details: { holdId: hold.holdId, status: hold.status } };
  },
  async execute(client: TravelClient, input, ctx) {
    const o = callOptions(ctx);
    const hold = await reachGoalState(
      { send: () => client.releaseHold(input.holdId, o), current: () => client.getHold(input.holdId, o), reached: (h) => h.status === 'released' || h.status === 'expired' },
      ['already_released', 'hold_expired'],
    );
    return holdOut(hold);
  },
});

const traveler = z
  .object({
    firstName: z.string().min(1).max(100),
    lastName: z.string().min(1).max(100),
    dateOfBirth: z.string().regex(/^\d{4}-\d{2}-\d{2}$/).optional(),
    passportNumber: z.string().regex(/^[A-Z0-9]{5,20}$/).optional(),
  })
  .strict();

const bookFlightInput = lazySchema(() => z
  .object({
    holdId,
    travelers: z.array(traveler).min(1).max(9),
    contact,
    /** The total the traveler agreed to; the vendor refuses the booking if its price differs. */
    price: moneySchema,
  })
  .strict());

function newBooking(input: z.infer<ReturnType<typeof bookFlightInput>>) {
  return { holdId: input.holdId, travelers: input.travelers, contact: input.contact, price: { amountMinor: toMinor(input.price), currency: input.price.currency } };
}

const bookFlight = defineTool({
  name: 'book_flight',
  description: 'Books the held seats for the named travelers at the agreed total price. Needs a valid, unexpired hold with one seat per traveler.',
  tier: 'commit',
  input: bookFlightInput,
  output: bookingOutput,
  compensation: { tool: 'cancel_booking', input: (_input, output) => ({ bookingId: output.bookingId }) },
  pii: {
    input: ['travelers.*.firstName', 'travelers.*.lastName', 'travelers.*.dateOfBirth', 'travelers.*.passportNumber', 'contact.email', 'contact.phone'],
    output: ['travelers.*.firstName', 'travelers.*.lastName', 'contact.email', 'contact.phone'],
  },
  money: (input) => ({ amount: input.price.amount, currency: input.price.currency }),
  async preview(client: TravelClient, input, ctx) {
    const res = await client.validateBooking(newBooking(input), callOptions(ctx));
    return { dryRun: true, check: 'quote', quote: fromMinor(res.quote.amountMinor, res.quote.currency), details: { holdId: input.holdId } };
  },
  async execute(client: TravelClient, input, ctx) {
    const o = callOptions(ctx);
    const booking = await commitOnce(ctx, {
      send: () => client.createBooking(newBooking(input), o),
      lookup: async () => (await client.findBookings(ctx.idempotencyKey, o)).data[0],
    });
    return bookingOut(booking);
  },
});

const changeBooking = defineTool({
  name: 'change_booking',
  description: "Changes a confirmed booking's contact details. The output keeps the previous contact so the change can be undone.",
  tier: 'commit',
  input: () => z.object({ bookingId, contact }).strict(),
  output: () => z.object({ booking: bookingOutput(), previousContact: z.object({ email: z.string(), phone: z.string().optional() }) }),
  compensation: {
    tool: 'change_booking',
    input: (input, output) => ({ bookingId: input.bookingId, contact: output.previousContact }),
  },
  pii: {
    input: ['contact.email', 'contact.phone'],
    output: ['booking.travelers.*.firstName', 'booking.travelers.*.lastName', 'booking.contact.email', 'booking.contact.phone', 'previousContact.email', 'previousContact.phone'],
  },
  async preview(client: TravelClient, input, ctx) {
    const booking = await client.getBooking(input.bookingId, callOptions(ctx));
    return { dryRun: true, check: 'lookup', details: { bookingId: booking.bookingId, status: booking.status, wouldSucceed: booking.status === 'confirmed' } };
  },
  async execute(client: TravelClient, input, ctx) {
    const o = callOptions(ctx);
    const change: VendorBookingChange = await commitOnce(ctx, {
      send: () => client.changeBooking(input.bookingId, input.contact, o),
      lookup: async () => (await client.findBookingChanges(input.bookingId, ctx.idempotencyKey, o)).data[0],
    });
    const prev = change.previous.contact;
    return { booking: bookingOut(change.booking), previousContact: { email: prev.email, ...(prev.phone ? { phone: prev.phone } : {}) } };
  },
});

const cancelBooking = defineTool({
  name: 'cancel_booking',
  description: 'Cancels a booking and returns its seats. Succeeds if the booking is already cancelled. Cannot be undone.',
  tier: 'commit',
  input: () => z.object({ bookingId }).strict(),
  output: bookingOutput,
  pii: { output: ['travelers.*.firstName', 'travelers.*.lastName', 'contact.email', 'contact.phone'] },
  async preview(client: TravelClient, input, ctx) {
    const booking = await client.getBooking(input.bookingId, callOptions(ctx));
    return { dryRun: true, check: 'lookup', quote: fromMinor(booking.price.amountMinor, booking.price.currency), details: { bookingId: booking.bookingId, status: booking.status } };
  },
  async execute(client: TravelClient, input, ctx) {
    const o = callOptions(ctx);
    const booking = await reachGoalState(
      { send: () => client.cancelBooking(input.bookingId, o), current: () => client.getBooking(input.bookingId, o), reached: (b) => b.status === 'cancelled' },
      ['already_cancelled'],
    );
    return bookingOut(booking);
  },
});

const getBooking = defineTool({
  name: 'get_booking',
  description: 'Reads a booking: flight, seats, status, price, travelers and contact.',
  tier: 'read',
  input: () => z.object({ bookingId }).strict(),
  output: bookingOutput,
  pii: { output: ['travelers.*.firstName', 'travelers.*.lastName', 'contact.email', 'contact.phone'] },
  async execute(client: TravelClient, input, ctx) {
    return bookingOut(await client.getBooking(input.bookingId, callOptions(ctx)));
  },
});

/** The travel connector. */
export const travel = defineConnector<TravelClient>({
  name: 'travel',
  description: 'Flights: search, seat holds that expire, bookings on a valid hold, changes and cancellations.',
  vendor: { name: 'Sandbox Travel', defaultBaseUrl: 'http://127.0.0.1:8791', createClient: createTravelClient },
  tools: [searchFlights, holdSeat, releaseHold, bookFlight, changeBooking, cancelBooking, getBooking],
  reconcile: {
    tools: ['hold_seat', 'book_flight'],
    async lookup(client: TravelClient, query, ctx) {
      const o = callOptions(ctx);
      if (query.tool === 'hold_seat') return (await client.findHolds(query.clientReference, o)).data.map(holdRecord);
      if (query.tool === 'book_flight') return (await client.findBookings(query.clientReference, o)).data.map(bookingRecord);
      return [];
    },
    async recent(client: TravelClient, ctx) {
      const o = callOptions(ctx);
      // Holds expire on their own within minutes; bookings are what a lost step leaves behind.
      return (await client.listBookings(o)).data.map(bookingRecord);
    },
  },
});

function holdRecord(h: VendorHold): VendorRecord {
  return { tool: 'hold_seat', id: h.holdId, clientReference: h.clientReference, live: h.status === 'held' || h.status === 'booked', output: holdOut(h) };
}

function bookingRecord(b: VendorBooking): VendorRecord {
  return { tool: 'book_flight', id: b.bookingId, clientReference: b.clientReference, live: b.status === 'confirmed', output: bookingOut(b) };
}
