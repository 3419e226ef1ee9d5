import * as z from 'zod';
import { lazySchema, type VendorClientConfig } from '../sdk';
import { VendorHttp, vendorMoneySchema, type CallOptions } from '../vendor-http';

/** Response shapes of the procurement vendor, parsed because the vendor is untrusted. */
export const vendorItem = lazySchema(() => z.object({
  sku: z.string(),
  name: z.string(),
  supplierId: z.string(),
  unitPriceMinor: z.number().int().nonnegative(),
  currency: z.string(),
  stock: z.number().int(),
}));

const vendorLine = lazySchema(() => z.object({ sku: z.string(), quantity: z.number().int(), unitPriceMinor: z.number().int().nonnegative() }));

export const vendorOrder = lazySchema(() => z.object({
  orderId: z.string(),
  supplierId: z.string(),
  lines: z.array(vendorLine()),
  totalMinor: z.number().int().nonnegative(),
  currency: z.string(),
  shipTo: z.object({ name: z.string(), street: z.string(), city: z.string(), postalCode: z.string(), country: z.string() }),
  note: z.string().nullable(),
  status: z.enum(['placed', 'cancelled']),
  clientReference: z.string().nullable(),
}));

export const vendorOrderChange = lazySchema(() => z.object({
  order: vendorOrder(),
  previous: z.object({ lines: z.array(vendorLine()), totalMinor: z.number().int().nonnegative() }),
  clientReference: z.string().nullable(),
}));

const vendorQuote = lazySchema(() => z.object({ valid: z.literal(true), quote: vendorMoneySchema, lines: z.array(vendorLine()) }));

export type VendorItem = z.infer<ReturnType<typeof vendorItem>>;
export type VendorOrder = z.infer<ReturnType<typeof vendorOrder>>;
export type VendorOrderChange = z.infer<ReturnType<typeof vendorOrderChange>>;

export interface NewOrder {
  supplierId: string;
  lines: { sku: string; quantity: number }[];
  shipTo: { name: string; street: string; city: string; postalCode: string; country: string };
  maxTotal: { amountMinor: number; currency: string };
  note?: string | undefined;
}

const seg = encodeURIComponent;

/** Typed calls to the procurement vendor's HTTP API. */
export class ProcurementClient {
  constructor(private readonly http: VendorHttp) {}

  searchCatalog(q: { q?: string | undefined; supplierId?: string | undefined }, o: CallOptions) {
    return this.http.get('/v1/catalog', z.object({ data: z.array(vendorItem()) }), o, q);
  }
  quoteOrder(body: NewOrder, o: CallOptions) {
    return this.http.check('/v1/orders/quote', body, vendorQuote(), o);
  }
  placeOrder(body: NewOrder, o: CallOptions) {
    return this.http.mutate('POST', '/v1/orders', { ...body, clientReference: o.idempotencyKey }, vendorOrder(), o);
  }
  findOrders(clientReference: string, o: CallOptions) {
    return this.http.get('/v1/orders', z.object({ data: z.array(vendorOrder()) }), o, { clientReference });
  }
  getOrder(orderId: string, o: CallOptions) {
    return this.http.get(`/v1/orders/${seg(orderId)}`, vendorOrder(), o);
  }
  updateOrder(orderId: string, body: { lines: { sku: string; quantity: number }[]; maxTotal: { amountMinor: number; currency: string } }, o: CallOptions) {
    return this.http.mutate('PATCH', `/v1/orders/${seg(orderId)}`, { ...body, clientReference: o.idempotencyKey }, vendorOrderChange(), o);
  }
  findOrderChanges(orderId: string, clientReference: string, o: CallOptions) {
    return this.http.get(`/v1/orders/${seg(orderId)}/changes`, z.object({ data: z.array(vendorOrderChange()) }), o, { clientReference });
  }
  cancelOrder(orderId: string, o: CallOptions) {
    return this.http.mutate('POST', `/v1/orders/${seg(orderId)}/cancel`, {}, vendorOrder(), o);
  }
}

/** Builds the procurement client for one credential. */
export function createProcurementClient(config: VendorClientConfig): ProcurementClient {
  return new ProcurementClient(new VendorHttp({ ...config, vendorName: 'Sandbox Procurement' }));
}
