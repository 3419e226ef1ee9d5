import { z } from 'zod';
import { fail, parseBody, type Reply, type Route, type SandboxEnv, type SandboxVendorSpec } from './sandbox-server';

/**
 * Sandbox Travel: flights, seat holds that expire, bookings that need a valid hold. Money is
 * integer minor units, as real airline and payment APIs send it.
 */

/** How long a seat hold lasts unless configured: long enough for an approval, short enough to free seats. */
export const DEFAULT_HOLD_TTL_MS = 15 * 60 * 1000;
const SEATS_PER_FLIGHT = 9;

interface Flight {
  flightId: string;
  carrier: string;
  origin: string;
  destination: string;
  departureTime: string;
  arrivalTime: string;
  fare: { amountMinor: number; currency: string };
}

interface Hold {
  holdId: string;
  flightId: string;
  seats: number;
  fare: { amountMinor: number; currency: string };
  status: 'held' | 'released' | 'booked' | 'expired';
  expiresAt: number;
  clientReference: string | null;
  createdAt: number;
}

interface Contact {
  email: string;
  phone?: string | undefined;
}

interface Booking {
  bookingId: string;
  holdId: string;
  flightId: string;
  seats: number;
  travelers: { firstName: string; lastName: string; dateOfBirth?: string | undefined; passportNumber?: string | undefined }[];
  contact: Contact;
  price: { amountMinor: number; currency: string };
  status: 'confirmed' | 'cancelled';
  clientReference: string | null;
  createdAt: number;
  changes: { clientReference: string | null; previous: { contact: Contact }; at: number }[];
}

interface TravelState {
  holds: Map<string, Hold>;
  bookings: Map<string, Booking>;
  holdTtlMs: number;
}

const routesTable: { carrier: string; number: number; origin: string; destination: string; depart: string; minutes: number; fareMinor: number; currency: string }[] = [
  { carrier: 'SB', number: 100, origin: 'SFO', destination: 'JFK', depart: '07:00', minutes: 330, fareMinor: 32_900, currency: 'USD' },
  { carrier: 'SB', number: 102, origin: 'SFO', destination: 'JFK', depart: '13:30', minutes: 335, fareMinor: 27_450, currency: 'USD' },
  { carrier: 'SB', number: 101, origin: 'JFK', destination: 'SFO', depart: '09:15', minutes: 380, fareMinor: 31_000, currency: 'USD' },
  { carrier: 'SB', number: 200, origin: 'LHR', destination: 'CDG', depart: '08:05', minutes: 75, fareMinor: 12_900, currency: 'EUR' },
  { carrier: 'SB', number: 201, origin: 'CDG', destination: 'LHR', depart: '18:40', minutes: 80, fareMinor: 11_900, currency: 'EUR' },
  { carrier: 'SB', number: 300, origin: 'NRT', destination: 'SFO', depart: '17:00', minutes: 600, fareMinor: 98_000, currency: 'JPY' },
  { carrier: 'SB', number: 400, origin: 'SFO', destination: 'SEA', depart: '08:30', minutes: 125, fareMinor: 42_000, currency: 'USD' },
  { carrier: 'SB', number: 500, origin: 'SFO', destination: 'LHR', depart: '16:10', minutes: 630, fareMinor: 120_000, currency: 'USD' },
];

const dateSchema = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);

/** Flights exist for every date: the timetable repeats daily, ids carry the date. */
function flightsOn(date: string): Flight[] {
  return routesTable.map((r) => {
    const departure = new Date(`${date}T${r.depart}:00Z`);
    return {
      flightId: `${r.carrier}${r.number}-${date}`,
      carrier: r.carrier,
      origin: r.origin,
      destination: r.destination,
      departureTime: departure.toISOString(),
      arrivalTime: new Date(departure.getTime() + r.minutes * 60_000).toISOString(),
      fare: { amountMinor: r.fareMinor, currency: r.currency },
    };
  });
}

function findFlight(flightId: string): Flight | undefined {
  const m = /^[A-Z]{2}\d+-(\d{4}-\d{2}-\d{2})$/.exec(flightId);
  if (!m || Number.isNaN(Date.parse(m[1]!))) return undefined;
  return flightsOn(m[1]!).find((f) => f.flightId === flightId);
}

/** A hold whose time is up reads as expired, whether or not anyone looked at it before. */
function refresh(hold: Hold, env: SandboxEnv): Hold {
  if (hold.status === 'held' && env.now() >= hold.expiresAt) hold.status = 'expired';
  return hold;
}

function seatsTaken(state: TravelState, flightId: string, env: SandboxEnv): number {
  let taken = 0;
  for (const h of state.holds.values()) if (h.flightId === flightId && refresh(h, env).status === 'held') taken += h.seats;
  for (const b of state.bookings.values()) if (b.flightId === flightId && b.status === 'confirmed') taken += b.seats;
  return taken;
}

function flightView(state: TravelState, f: Flight, env: SandboxEnv) {
  return { ...f, seatsAvailable: SEATS_PER_FLIGHT - seatsTaken(state, f.flightId, env) };
}

function holdView(h: Hold) {
  return { ...h, expiresAt: new Date(h.expiresAt).toISOString(), createdAt: new Date(h.createdAt).toISOString() };
}

function bookingView(b: Booking) {
  const { changes: _changes, ...rest } = b;
  return { ...rest, createdAt: new Date(b.createdAt).toISOString() };
}

const money = z.object({ amountMinor: z.number().int(), currency: z.string() });
const savedContact = z.object({ email: z.string(), phone: z.string().optional() });
const savedHold: z.ZodType<Hold> = z.object({
  holdId: z.string(),
  flightId: z.string(),
  seats: z.number().int(),
  fare: money,
  status: z.enum(['held', 'released', 'booked', 'expired']),
  expiresAt: z.number(),
  clientReference: z.string().nullable(),
  createdAt: z.number(),
});
const savedBooking: z.ZodType<Booking> = z.object({
  bookingId: z.string(),
  holdId: z.string(),
  flightId: z.string(),
  seats: z.number().int(),
  travelers: z.array(
    z.object({ firstName: z.string(), lastName: z.string(), dateOfBirth: z.string().optional(), passportNumber: z.string().optional() }),
  ),
  contact: savedContact,
  price: money,
  status: z.enum(['confirmed', 'cancelled']),
  clientReference: z.string().nullable(),
  createdAt: z.number(),
  changes: z.array(z.object({ clientReference: z.string().nullable(), previous: z.object({ contact: savedContact }), at: z.number() })),
});
/** What the state file holds; the hold TTL is configuration, not state (holds keep their expiry). */
const SavedTravelSchema = z.object({ holds: z.map(z.string(), savedHold), bookings: z.map(z.string(), savedBooking), holdTtlMs: z.number().optional() });

const holdBody = z.object({
  flightId: z.string().min(1),
  seats: z.number().int().min(1).max(SEATS_PER_FLIGHT),
  clientReference: z.string().max(255).optional(),
});

const contactBody = z.object({ email: z.string().email(), phone: z.string().max(40).optional() });

const bookingBody = z.object({
  holdId: z.string().min(1),
  travelers: z
    .array(
      z.object({
        firstName: z.string().min(1),
        lastName: z.string().min(1),
        dateOfBirth: z.string().optional(),
        passportNumber: z.string().optional(),
      }),
    )
    .min(1),
  contact: contactBody,
  price: z.object({ amountMinor: z.number().int().nonnegative(), currency: z.string() }),
  clientReference: z.string().max(255).optional(),
});

const changeBody = z.object({ contact: contactBody, clientReference: z.string().max(255).optional() });

function checkHold(state: TravelState, input: { flightId: string; seats: number }, env: SandboxEnv): Reply | Flight {
  const flight = findFlight(input.flightId);
  if (!flight) return fail(404, 'flight_not_found', `no flight ${input.flightId}`);
  if (Date.parse(flight.departureTime) <= env.now()) return fail(409, 'flight_departed', 'the flight has departed');
  const available = SEATS_PER_FLIGHT - seatsTaken(state, flight.flightId, env);
  if (available < input.seats) return fail(409, 'seats_unavailable', `only ${available} seats left`);
  return flight;
}

function checkBooking(state: TravelState, input: z.infer<typeof bookingBody>, env: SandboxEnv): Reply | Hold {
  const hold = state.holds.get(input.holdId);
  if (!hold) return fail(404, 'hold_not_found', `no hold ${input.holdId}`);
  refresh(hold, env);
  if (hold.status === 'expired') return fail(409, 'hold_expired', 'the hold has expired');
  if (hold.status === 'released') return fail(409, 'hold_released', 'the hold was released');
  if (hold.status === 'booked') return fail(409, 'hold_consumed', 'the hold was already booked');
  if (input.travelers.length !== hold.seats) return fail(400, 'traveler_count_mismatch', `the hold is for ${hold.seats} seats`);
  const total = hold.fare.amountMinor * hold.seats;
  if (input.price.currency !== hold.fare.currency || input.price.amountMinor !== total) {
    return fail(409, 'price_changed', `the price is ${total} ${hold.fare.currency} (minor units)`);
  }
  return hold;
}

function byClientReference<T extends { clientReference: string | null }>(items: Iterable<T>, ref: string | null): T[] {
  return ref ? [...items].filter((i) => i.clientReference === ref) : [...items];
}

/** Options of the travel sandbox. */
export interface TravelVendorOptions {
  /** Seat hold lifetime in milliseconds; 15 minutes unless given. */
  holdTtlMs?: number;
}

/** The travel sandbox's state and routes. */
export function travelVendor(options: TravelVendorOptions = {}): SandboxVendorSpec<TravelState> {
  const routes: Route<TravelState>[] = [
    {
      method: 'GET',
      path: '/v1/flights',
      operation: 'search_flights',
      sideEffect: false,
      handle({ query }, state, env) {
        const date = dateSchema.safeParse(query.get('date'));
        if (!date.success) return fail(400, 'invalid_request', 'date must be YYYY-MM-DD');
        const origin = query.get('origin');
        const destination = query.get('destination');
        const data = flightsOn(date.data)
          .filter((f) => (!origin || f.origin === origin) && (!destination || f.destination === destination))
          .map((f) => flightView(state, f, env));
        return { status: 200, body: { data } };
      },
    },
    {
      method: 'GET',
      path: '/v1/flights/:id',
      operation: 'get_flight',
      sideEffect: false,
      handle({ params }, state, env) {
        const f = findFlight(params.id!);
        return f ? { status: 200, body: flightView(state, f, env) } : fail(404, 'flight_not_found', `no flight ${params.id}`);
      },
    },
    {
      method: 'POST',
      path: '/v1/holds/validate',
      operation: 'validate_hold',
      sideEffect: false,
      handle({ body }, state, env) {
        const p = parseBody(holdBody, body);
        if (!p.ok) return p.reply;
        const flight = checkHold(state, p.value, env);
        if ('status' in flight) return flight;
        return {
          status: 200,
          body: { valid: true, flightId: flight.flightId, seats: p.value.seats, quote: { amountMinor: flight.fare.amountMinor * p.value.seats, currency: flight.fare.currency } },
        };
      },
    },
    {
      method: 'POST',
      path: '/v1/holds',
      operation: 'hold_seat',
      sideEffect: true,
      handle({ body }, state, env) {
        const p = parseBody(holdBody, body);
        if (!p.ok) return p.reply;
        const flight = checkHold(state, p.value, env);
        if ('status' in flight) return flight;
        const hold: Hold = {
          holdId: env.newId('hold'),
          flightId: flight.flightId,
          seats: p.value.seats,
          fare: flight.fare,
          status: 'held',
          expiresAt: env.now() + state.holdTtlMs,
          clientReference: p.value.clientReference ?? null,
          createdAt: env.now(),
        };
        state.holds.set(hold.holdId, hold);
        return { status: 201, body: holdView(hold) };
      },
    },
    {
      method: 'GET',
      path: '/v1/holds',
      operation: 'list_holds',
      sideEffect: false,
      handle({ query }, state, env) {
        return { status: 200, body: { data: byClientReference(state.holds.values(), query.get('clientReference')).map((h) => holdView(refresh(h, env))) } };
      },
    },
    {
      method: 'GET',
      path: '/v1/holds/:id',
      operation: 'get_hold',
      sideEffect: false,
      handle({ params }, state, env) {
        const h = state.holds.get(params.id!);
        return h ? { status: 200, body: holdView(refresh(h, env)) } : fail(404, 'hold_not_found', `no hold ${params.id}`);
      },
    },
    {
      method: 'POST',
      path: '/v1/holds/:id/release',
      operation: 'release_hold',
      sideEffect: true,
      handle({ params }, state, env) {
        const h = state.holds.get(params.id!);
        if (!h) return fail(404, 'hold_not_found', `no hold ${params.id}`);
        refresh(h, env);
        if (h.status === 'released') return fail(409, 'already_released', 'the hold was already released');
        if (h.status === 'expired') return fail(409, 'hold_expired', 'the hold has expired');
        if (h.status === 'booked') return fail(409, 'hold_consumed', 'the hold was booked; cancel the booking instead');
        h.status = 'released';
        return { status: 200, body: holdView(h) };
      },
    },
    {
      method: 'POST',
      path: '/v1/bookings/validate',
      operation: 'validate_booking',
      sideEffect: false,
      handle({ body }, state, env) {
        const p = parseBody(bookingBody, body);
        if (!p.ok) return p.reply;
        const hold = checkBooking(state, p.value, env);
        if ('body' in hold) return hold;
        return {
          status: 200,
          body: { valid: true, holdId: hold.holdId, flightId: hold.flightId, quote: { amountMinor: hold.fare.amountMinor * hold.seats, currency: hold.fare.currency } },
        };
      },
    },
    {
      method: 'POST',
      path: '/v1/bookings',
      operation: 'book_flight',
      sideEffect: true,
      handle({ body }, state, env) {
        const p = parseBody(bookingBody, body);
        if (!p.ok) return p.reply;
        const hold = checkBooking(state, p.value, env);
        if ('body' in hold) return hold;
        hold.status = 'booked';
        const booking: Booking = {
          bookingId: env.newId('bkg'),
          holdId: hold.holdId,
          flightId: hold.flightId,
          seats: hold.seats,
          travelers: p.value.travelers,
          contact: p.value.contact,
          price: p.value.price,
          status: 'confirmed',
          clientReference: p.value.clientReference ?? null,
          createdAt: env.now(),
          changes: [],
        };
        state.bookings.set(booking.bookingId, booking);
        return { status: 201, body: bookingView(booking) };
      },
    },
    {
      method: 'GET',
      path: '/v1/bookings',
      operation: 'list_bookings',
      sideEffect: false,
      handle({ query }, state) {
        return { status: 200, body: { data: byClientReference(state.bookings.values(), query.get('clientReference')).map(bookingView) } };
      },
    },
    {
      method: 'GET',
      path: '/v1/bookings/:id',
      operation: 'get_booking',
      sideEffect: false,
      handle({ params }, state) {
        const b = state.bookings.get(params.id!);
        return b ? { status: 200, body: bookingView(b) } : fail(404, 'booking_not_found', `no booking ${params.id}`);
      },
    },
    {
      method: 'GET',
      path: '/v1/bookings/:id/changes',
      operation: 'list_booking_changes',
      sideEffect: false,
      handle({ params, query }, state) {
        const b = state.bookings.get(params.id!);
        if (!b) return fail(404, 'booking_not_found', `no booking ${params.id}`);
        const ref = query.get('clientReference');
        const data = b.changes.filter((c) => !ref || c.clientReference === ref).map((c) => ({ booking: bookingView(b), previous: c.previous, clientReference: c.clientReference }));
        return { status: 200, body: { data } };
      },
    },
    {
      method: 'PATCH',
      path: '/v1/bookings/:id',
      operation: 'change_booking',
      sideEffect: true,
      handle({ params, body }, state, env) {
        const b = state.bookings.get(params.id!);
        if (!b) return fail(404, 'booking_not_found', `no booking ${params.id}`);
        if (b.status === 'cancelled') return fail(409, 'booking_cancelled', 'the booking is cancelled');
        const p = parseBody(changeBody, body);
        if (!p.ok) return p.reply;
        const previous = { contact: { ...b.contact } };
        b.contact = p.value.contact;
        b.changes.push({ clientReference: p.value.clientReference ?? null, previous, at: env.now() });
        return { status: 200, body: { booking: bookingView(b), previous, clientReference: p.value.clientReference ?? null } };
      },
    },
    {
      method: 'POST',
      path: '/v1/bookings/:id/cancel',
      operation: 'cancel_booking',
      sideEffect: true,
      handle({ params }, state) {
        const b = state.bookings.get(params.id!);
        if (!b) return fail(404, 'booking_not_found', `no booking ${params.id}`);
        if (b.status === 'cancelled') return fail(409, 'already_cancelled', 'the booking was already cancelled');
        b.status = 'cancelled';
        // The seats return to sale, so the hold the booking consumed is released with it: a
        // saga undoing hold → book in reverse order then finds the hold already released.
        const hold = state.holds.get(b.holdId);
        if (hold?.status === 'booked') hold.status = 'released';
        return { status: 200, body: bookingView(b) };
      },
    },
  ];
  return {
    name: 'travel',
    createState: () => ({ holds: new Map(), bookings: new Map(), holdTtlMs: options.holdTtlMs ?? DEFAULT_HOLD_TTL_MS }),
    // A booked hold lives on in its booking (cancelling the booking releases it).
    live: (state, env) => [
      ...[...state.holds.values()].filter((h) => ['held', 'booked'].includes(refresh(h, env).status)).map((h) => ({ object: `hold ${h.holdId}`, clientReference: h.clientReference })),
      ...[...state.bookings.values()].filter((b) => b.status === 'confirmed').map((b) => ({ object: `booking ${b.bookingId}`, clientReference: b.clientReference })),
    ],
    lose: (state, id) => state.bookings.delete(id) || state.holds.delete(id),
    restoreState: (saved) => {
      const { holds, bookings } = SavedTravelSchema.parse(saved);
      return { holds, bookings, holdTtlMs: options.holdTtlMs ?? DEFAULT_HOLD_TTL_MS };
    },
    routes,
  };
}
