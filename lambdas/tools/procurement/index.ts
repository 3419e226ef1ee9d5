import * as z from 'zod';
import { defineConnector, defineTool, lazySchema } from '../sdk';
import { callOptions, commitOnce, fromMinor, moneyOutputSchema, moneySchema, reachGoalState, toMinor } from '../vendor-http';
import { createProcurementClient, type ProcurementClient, type VendorOrder } from './client';

/** Procurement: search a supplier catalog, place, update and cancel purchase orders. */

const orderId = z.string().min(1).max(64);
const supplierId = z.string().regex(/^[a-z0-9][a-z0-9-]{1,62}$/, 'a supplier id such as acme-office');
const line = z.object({ sku: z.string().regex(/^[A-Z0-9-]{2,64}$/), quantity: z.number().int().min(1).max(10_000) }).strict();
const shipTo = z
  .object({
    name: z.string().min(1).max(200),
    street: z.string().min(1).max(200),
    city: z.string().min(1).max(100),
    postalCode: z.string().min(1).max(20),
    country: z.string().regex(/^[A-Z]{2}$/, 'ISO 3166-1 alpha-2 code'),
  })
  .strict();

const orderLineOutput = lazySchema(() => z.object({ sku: z.string(), quantity: z.number().int(), unitPrice: moneyOutputSchema }));
const orderOutput = lazySchema(() => z.object({
  orderId: z.string(),
  supplierId: z.string(),
  status: z.enum(['placed', 'cancelled']),
  lines: z.array(orderLineOutput()),
  total: moneyOutputSchema,
  shipTo: z.object({ name: z.string(), street: z.string(), city: z.string(), postalCode: z.string(), country: z.string() }),
  note: z.string().nullable(),
}));
const shipToPii = ['shipTo.name', 'shipTo.street', 'shipTo.city', 'shipTo.postalCode'];

function orderOut(o: VendorOrder): z.infer<ReturnType<typeof orderOutput>> {
  return {
    orderId: o.orderId,
    supplierId: o.supplierId,
    status: o.status,
    lines: o.lines.map((l) => ({ sku: l.sku, quantity: l.quantity, unitPrice: fromMinor(l.unitPriceMinor, o.currency) })),
    total: fromMinor(o.totalMinor, o.currency),
    shipTo: o.shipTo,
    note: o.note,
  };
}

const searchCatalog = defineTool({
  name: 'search_catalog',
  description: 'Searches the supplier catalog by text and/or supplier; returns SKUs with unit price and stock.',
  tier: 'read',
  input: () => z.object({ query: z.string().max(100).optional(), supplierId: supplierId.optional() }).strict(),
  output: () => z.object({
    items: z.array(z.object({ sku: z.string(), name: z.string(), supplierId: z.string(), unitPrice: moneyOutputSchema, inStock: z.number().int() })),
  }),
  async execute(client: ProcurementClient, input, ctx) {
    const res = await client.searchCatalog({ q: input.query, supplierId: input.supplierId }, callOptions(ctx));
    return {
      items: res.data.map((i) => ({ sku: i.sku, name: i.name, supplierId: i.supplierId, unitPrice: fromMinor(i.unitPriceMinor, i.currency), inStock: i.stock })),
    };
  },
});

const placeOrderInput = lazySchema(() => z
  .object({
    supplierId,
    lines: z.array(line).min(1).max(50),
    shipTo,
    /** The most the buyer will pay; the vendor refuses an order that would cost more. */
    maxTotal: moneySchema,
    note: z.string().max(1000).optional(),
  })
  .strict());

const placeOrder = defineTool({
  name: 'place_order',
  description: 'Places a purchase order with one supplier, reserving stock. Refused if the total would exceed maxTotal. Cancel to undo.',
  tier: 'commit',
  input: placeOrderInput,
  output: orderOutput,
  compensation: { tool: 'cancel_order', input: (_input, output) => ({ orderId: output.orderId }) },
  pii: { input: shipToPii, output: shipToPii },
  money: (input) => ({ amount: input.maxTotal.amount, currency: input.maxTotal.currency }),
  counterparty: (input) => input.supplierId,
  async preview(client: ProcurementClient, input, ctx) {
    const q = await client.quoteOrder(newOrder(input), callOptions(ctx));
    return { dryRun: true, check: 'quote', quote: fromMinor(q.quote.amountMinor, q.quote.currency), details: { supplierId: input.supplierId, lines: q.lines.length } };
  },
  async execute(client: ProcurementClient, input, ctx) {
    const o = callOptions(ctx);
    const order = await commitOnce(ctx, {
      send: () => client.placeOrder(newOrder(input), o),
      lookup: async () => (await client.findOrders(ctx.idempotencyKey, o)).data[0],
    });
    return orderOut(order);
  },
});

function newOrder(input: z.infer<ReturnType<typeof placeOrderInput>>) {
  return {
    supplierId: input.supplierId,
    lines: input.lines,
    shipTo: input.shipTo,
    maxTotal: { amountMinor: toMinor(input.maxTotal), currency: input.maxTotal.currency },
    note: input.note,
  };
}

const updateOrder = defineTool({
  name: 'update_order',
  description: 'Changes quantities of lines already on an order. Refused if the new total would exceed maxTotal. The output keeps the previous lines so the change can be undone.',
  tier: 'commit',
  input: () => z.object({ orderId, lines: z.array(line).min(1).max(50), maxTotal: moneySchema }).strict(),
  output: () => z.object({
    order: orderOutput(),
    previous: z.object({ lines: z.array(z.object({ sku: z.string(), quantity: z.number().int() })), total: moneyOutputSchema }),
  }),
  compensation: {
    tool: 'update_order',
    input: (input, output) => ({ orderId: input.orderId, lines: output.previous.lines, maxTotal: output.previous.total }),
  },
  pii: { output: shipToPii.map((p) => `order.${p}`) },
  money: (input) => ({ amount: input.maxTotal.amount, currency: input.maxTotal.currency }),
  async preview(client: ProcurementClient, input, ctx) {
    const order = await client.getOrder(input.orderId, callOptions(ctx));
    return { dryRun: true, check: 'lookup', quote: fromMinor(order.totalMinor, order.currency), details: { status: order.status, wouldSucceed: order.status === 'placed' } };
  },
  async execute(client: ProcurementClient, input, ctx) {
    const o = callOptions(ctx);
    const change = await commitOnce(ctx, {
      send: () => client.updateOrder(input.orderId, { lines: input.lines, maxTotal: { amountMinor: toMinor(input.maxTotal), currency: input.maxTotal.currency } }, o),
      lookup: async () => (await client.findOrderChanges(input.orderId, ctx.idempotencyKey, o)).data[0],
    });
    return {
      order: orderOut(change.order),
      previous: {
        lines: change.previous.lines.map((l) => ({ sku: l.sku, quantity: l.quantity })),
        total: fromMinor(change.previous.totalMinor, change.order.currency),
      },
    };
  },
});

const cancelOrder = defineTool({
  name: 'cancel_order',
  description: 'Cancels a purchase order and returns its stock. Succeeds if the order is already cancelled. Cannot be undone.',
  tier: 'commit',
  input: () => z.object({ orderId }).strict(),
  output: orderOutput,
  pii: { output: shipToPii },
  async preview(client: ProcurementClient, input, ctx) {
    const order = await client.getOrder(input.orderId, callOptions(ctx));
    return { dryRun: true, check: 'lookup', quote: fromMinor(order.totalMinor, order.currency), details: { status: order.status } };
  },
  async execute(client: ProcurementClient, input, ctx) {
    const o = callOptions(ctx);
    const order = await reachGoalState(
      { send: () => client.cancelOrder(input.orderId, o), current: () => client.getOrder(input.orderId, o), reached: (x) => x.status === 'cancelled' },
      ['already_cancelled'],
    );
    return orderOut(order);
  },
});

const getOrder = defineTool({
  name: 'get_order',
  description: 'Reads a purchase order: supplier, lines, total, status and shipping address.',
  tier: 'read',
  input: () => z.object({ orderId }).strict(),
  output: orderOutput,
  pii: { output: shipToPii },
  async execute(client: ProcurementClient, input, ctx) {
    return orderOut(await client.getOrder(input.orderId, callOptions(ctx)));
  },
});

/** The procurement connector. */
export const procurement = defineConnector<ProcurementClient>({
  name: 'procurement',
  description: 'Purchasing: supplier catalog search and purchase orders (place, update quantities, cancel).',
  vendor: { name: 'Sandbox Procurement', defaultBaseUrl: 'http://127.0.0.1:8793', createClient: createProcurementClient },
  tools: [searchCatalog, placeOrder, updateOrder, cancelOrder, getOrder],
});
