import * as z from 'zod';
import { lazySchema, type VendorClientConfig } from '../sdk';
import { VendorHttp, vendorMoneySchema, type CallOptions } from '../vendor-http';

/** Response shapes of the payments vendor, parsed because the vendor is untrusted. */
export const vendorCapture = lazySchema(() => z.object({
  captureId: z.string(),
  authorizationId: z.string(),
  amountMinor: z.number().int().nonnegative(),
  currency: z.string(),
  refundedMinor: z.number().int().nonnegative(),
  clientReference: z.string().nullable(),
}));

export const vendorRefund = lazySchema(() => z.object({
  refundId: z.string(),
  captureId: z.string(),
  amountMinor: z.number().int().nonnegative(),
  currency: z.string(),
  reason: z.string().nullable(),
  clientReference: z.string().nullable(),
}));

export const vendorAuthorization = lazySchema(() => z.object({
  authorizationId: z.string(),
  amountMinor: z.number().int().nonnegative(),
  currency: z.string(),
  payee: z.string(),
  description: z.string().nullable(),
  customerEmail: z.string().nullable(),
  status: z.enum(['authorized', 'captured', 'voided']),
  clientReference: z.string().nullable(),
  captures: z.array(vendorCapture()),
  refunds: z.array(vendorRefund()),
}));

const vendorQuote = lazySchema(() => z.object({ valid: z.literal(true), quote: vendorMoneySchema }));

export type VendorAuthorization = z.infer<ReturnType<typeof vendorAuthorization>>;
export type VendorCapture = z.infer<ReturnType<typeof vendorCapture>>;
export type VendorRefund = z.infer<ReturnType<typeof vendorRefund>>;

export interface NewAuthorization {
  amountMinor: number;
  currency: string;
  payee: string;
  paymentMethod: string;
  description?: string | undefined;
  customerEmail?: string | undefined;
}

export interface AmountRequest {
  amountMinor: number;
  currency: string;
  reason?: string | undefined;
}

const list = <T extends z.ZodType>(item: T) => z.object({ data: z.array(item) });
const seg = encodeURIComponent;

/** Typed calls to the payments vendor's HTTP API. */
export class PaymentsClient {
  constructor(private readonly http: VendorHttp) {}

  validateAuthorization(body: NewAuthorization, o: CallOptions) {
    return this.http.check('/v1/authorizations/validate', body, vendorQuote(), o);
  }
  authorize(body: NewAuthorization, o: CallOptions) {
    return this.http.mutate('POST', '/v1/authorizations', { ...body, clientReference: o.idempotencyKey }, vendorAuthorization(), o);
  }
  findAuthorizations(clientReference: string, o: CallOptions) {
    return this.http.get('/v1/authorizations', list(vendorAuthorization()), o, { clientReference });
  }
  getAuthorization(id: string, o: CallOptions) {
    return this.http.get(`/v1/authorizations/${seg(id)}`, vendorAuthorization(), o);
  }
  void(id: string, o: CallOptions) {
    return this.http.mutate('POST', `/v1/authorizations/${seg(id)}/void`, {}, vendorAuthorization(), o);
  }
  validateCapture(id: string, body: AmountRequest, o: CallOptions) {
    return this.http.check(`/v1/authorizations/${seg(id)}/captures/validate`, body, vendorQuote(), o);
  }
  capture(id: string, body: AmountRequest, o: CallOptions) {
    return this.http.mutate('POST', `/v1/authorizations/${seg(id)}/captures`, { ...body, clientReference: o.idempotencyKey }, vendorCapture(), o);
  }
  /** Every capture this credential made at the vendor (reconciliation). */
  listCaptures(o: CallOptions) {
    return this.http.get('/v1/captures', list(vendorCapture()), o);
  }
  findCaptures(clientReference: string, o: CallOptions) {
    return this.http.get('/v1/captures', list(vendorCapture()), o, { clientReference });
  }
  validateRefund(captureId: string, body: AmountRequest, o: CallOptions) {
    return this.http.check(`/v1/captures/${seg(captureId)}/refunds/validate`, body, vendorQuote(), o);
  }
  refund(captureId: string, body: AmountRequest, o: CallOptions) {
    return this.http.mutate('POST', `/v1/captures/${seg(captureId)}/refunds`, { ...body, clientReference: o.idempotencyKey }, vendorRefund(), o);
  }
  findRefunds(clientReference: string, o: CallOptions) {
    return this.http.get('/v1/refunds', list(vendorRefund()), o, { clientReference });
  }
}

/** Builds the payments client for one credential. */
export function createPaymentsClient(config: VendorClientConfig): PaymentsClient {
  return new PaymentsClient(new VendorHttp({ ...config, vendorName: 'Sandbox Payments' }));
}
