import * as z from 'zod';
import { lazySchema, type VendorClientConfig } from '../sdk';
import { VendorHttp, vendorMoneySchema, type CallOptions } from '../vendor-http';

/** Response shapes of the travel vendor, parsed because the vendor is untrusted. */
export const vendorFlight = lazySchema(() => z.object({
  flightId: z.string(),
  carrier: z.string(),
  origin: z.string(),
  destination: z.string(),
  departureTime: z.string(),
  arrivalTime: z.string(),
  fare: vendorMoneySchema,
  seatsAvailable: z.number().int(),
}));

export const vendorHold = lazySchema(() => z.object({
  holdId: z.string(),
  flightId: z.string(),
  seats: z.number().int(),
  fare: vendorMoneySchema,
  status: z.enum(['held', 'released', 'booked', 'expired']),
  expiresAt: z.string(),
  clientReference: z.string().nullable(),
}));

const vendorContact = lazySchema(() => z.object({ email: z.string(), phone: z.string().optional() }));

export const vendorBooking = lazySchema(() => z.object({
  bookingId: z.string(),
  holdId: z.string(),
  flightId: z.string(),
  seats: z.number().int(),
  travelers: z.array(
    z.object({ firstName: z.string(), lastName: z.string(), dateOfBirth: z.string().optional(), passportNumber: z.string().optional() }),
  ),
  contact: vendorContact(),
  price: vendorMoneySchema,
  status: z.enum(['confirmed', 'cancelled']),
  clientReference: z.string().nullable(),
}));

export const vendorBookingChange = lazySchema(() => z.object({
  booking: vendorBooking(),
  previous: z.object({ contact: vendorContact() }),
  clientReference: z.string().nullable(),
}));

const vendorQuote = lazySchema(() => z.object({ valid: z.literal(true), quote: vendorMoneySchema }));

export type VendorFlight = z.infer<ReturnType<typeof vendorFlight>>;
export type VendorHold = z.infer<ReturnType<typeof vendorHold>>;
export type VendorBooking = z.infer<ReturnType<typeof vendorBooking>>;
export type VendorBookingChange = z.infer<ReturnType<typeof vendorBookingChange>>;

export interface NewBooking {
  holdId: string;
  travelers: { firstName: string; lastName: string; dateOfBirth?: string | undefined; passportNumber?: string | undefined }[];
  contact: { email: string; phone?: string | undefined };
  price: { amountMinor: number; currency: string };
}

/** Typed calls to the travel vendor's HTTP API. */
export class TravelClient {
  constructor(private readonly http: VendorHttp) {}

  searchFlights(q: { origin: string; destination: string; date: string }, o: CallOptions) {
    return this.http.get('/v1/flights', z.object({ data: z.array(vendorFlight()) }), o, q);
  }
  getFlight(flightId: string, o: CallOptions) {
    return this.http.get(`/v1/flights/${encodeURIComponent(flightId)}`, vendorFlight(), o);
  }
  validateHold(body: { flightId: string; seats: number }, o: CallOptions) {
    return this.http.check('/v1/holds/validate', body, vendorQuote(), o);
  }
  createHold(body: { flightId: string; seats: number }, o: CallOptions) {
    return this.http.mutate('POST', '/v1/holds', { ...body, clientReference: o.idempotencyKey }, vendorHold(), o);
  }
  getHold(holdId: string, o: CallOptions) {
    return this.http.get(`/v1/holds/${encodeURIComponent(holdId)}`, vendorHold(), o);
  }
  findHolds(clientReference: string, o: CallOptions) {
    return this.http.get('/v1/holds', z.object({ data: z.array(vendorHold()) }), o, { clientReference });
  }
  releaseHold(holdId: string, o: CallOptions) {
    return this.http.mutate('POST', `/v1/holds/${encodeURIComponent(holdId)}/release`, {}, vendorHold(), o);
  }
  validateBooking(body: NewBooking, o: CallOptions) {
    return this.http.check('/v1/bookings/validate', body, vendorQuote(), o);
  }
  createBooking(body: NewBooking, o: CallOptions) {
    return this.http.mutate('POST', '/v1/bookings', { ...body, clientReference: o.idempotencyKey }, vendorBooking(), o);
  }
  getBooking(bookingId: string, o: CallOptions) {
    return this.http.get(`/v1/bookings/${encodeURIComponent(bookingId)}`, vendorBooking(), o);
  }
  /** Every booking this credential holds at the vendor (reconciliation). */
  listBookings(o: CallOptions) {
    return this.http.get('/v1/bookings', z.object({ data: z.array(vendorBooking()) }), o);
  }
  findBookings(clientReference: string, o: CallOptions) {
    return this.http.get('/v1/bookings', z.object({ data: z.array(vendorBooking()) }), o, { clientReference });
  }
  changeBooking(bookingId: string, contact: { email: string; phone?: string | undefined }, o: CallOptions) {
    return this.http.mutate('PATCH', `/v1/bookings/${encodeURIComponent(bookingId)}`, { contact, clientReference: o.idempotencyKey }, vendorBookingChange(), o);
  }
  findBookingChanges(bookingId: string, clientReference: string, o: CallOptions) {
    return this.http.get(`/v1/bookings/${encodeURIComponent(bookingId)}/changes`, z.object({ data: z.array(vendorBookingChange()) }), o, { clientReference });
  }
  cancelBooking(bookingId: string, o: CallOptions) {
    return this.http.mutate('POST', `/v1/bookings/${encodeURIComponent(bookingId)}/cancel`, {}, vendorBooking(), o);
  }
}

/** Builds the travel client for one credential. */
export function createTravelClient(config: VendorClientConfig): TravelClient {
  return new TravelClient(new VendorHttp({ ...config, vendorName: 'Sandbox Travel' }));
}
