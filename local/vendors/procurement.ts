import { z } from 'zod';
import { fail, parseBody, type Reply, type Route, type SandboxEnv, type SandboxVendorSpec } from './sandbox-server';

/**
 * Sandbox Procurement: a supplier catalog with stock, orders that reserve stock, quantity
 * updates and cancellations. Suppliers include one the default policies allow-list
 * (`acme-office`) and one that looks deny-listed (`shady-supplies`), so policy demos have both.
 */

interface Supplier {
  supplierId: string;
  name: string;
  country: string;
}

interface CatalogItem {
  sku: string;
  name: string;
  supplierId: string;
  unitPriceMinor: number;
  currency: string;
  stock: number;
}

interface OrderLine {
  sku: string;
  quantity: number;
  unitPriceMinor: number;
}

interface Order {
  orderId: string;
  supplierId: string;
  lines: OrderLine[];
  totalMinor: number;
  currency: string;
  shipTo: { name: string; street: string; city: string; postalCode: string; country: string };
  note: string | null;
  status: 'placed' | 'cancelled';
  clientReference: string | null;
  createdAt: number;
  changes: { clientReference: string | null; previous: { lines: OrderLine[]; totalMinor: number } }[];
}

interface ProcurementState {
  suppliers: Supplier[];
  catalog: Map<string, CatalogItem>;
  orders: Map<string, Order>;
}

const suppliers: Supplier[] = [
  { supplierId: 'acme-office', name: 'Acme Office Supply', country: 'US' },
  { supplierId: 'globex-industrial', name: 'Globex Industrial', country: 'DE' },
  { supplierId: 'shady-supplies', name: 'Shady Supplies Ltd', country: 'XX' },
];

const catalogSeed: CatalogItem[] = [
  { sku: 'ACME-PAPER-A4', name: 'A4 copy paper, 5 000 sheets', supplierId: 'acme-office', unitPriceMinor: 4_299, currency: 'USD', stock: 500 },
  { sku: 'ACME-CHAIR-ERG', name: 'Ergonomic office chair', supplierId: 'acme-office', unitPriceMinor: 34_900, currency: 'USD', stock: 40 },
  { sku: 'ACME-MONITOR-27', name: '27" monitor', supplierId: 'acme-office', unitPriceMinor: 27_500, currency: 'USD', stock: 25 },
  { sku: 'GLOBEX-DRILL-18V', name: 'Cordless drill 18 V', supplierId: 'globex-industrial', unitPriceMinor: 15_900, currency: 'USD', stock: 60 },
  { sku: 'GLOBEX-GLOVES', name: 'Safety gloves, box of 100', supplierId: 'globex-industrial', unitPriceMinor: 2_450, currency: 'USD', stock: 1_000 },
  { sku: 'SHADY-LAPTOP', name: 'Laptop, "like new"', supplierId: 'shady-supplies', unitPriceMinor: 19_900, currency: 'USD', stock: 999 },
  { sku: 'SHADY-GIFTCARD-500', name: 'Gift card, 500 USD', supplierId: 'shady-supplies', unitPriceMinor: 45_000, currency: 'USD', stock: 999 },
];

const savedLine = z.object({ sku: z.string(), quantity: z.number().int(), unitPriceMinor: z.number().int() });
const savedItem: z.ZodType<CatalogItem> = z.object({
  sku: z.string(),
  name: z.string(),
  supplierId: z.string(),
  unitPriceMinor: z.number().int(),
  currency: z.string(),
  stock: z.number().int(),
});
const savedOrder: z.ZodType<Order> = z.object({
  orderId: z.string(),
  supplierId: z.string(),
  lines: z.array(savedLine),
  totalMinor: z.number().int(),
  currency: z.string(),
  shipTo: z.object({ name: z.string(), street: z.string(), city: z.string(), postalCode: z.string(), country: z.string() }),
  note: z.string().nullable(),
  status: z.enum(['placed', 'cancelled']),
  clientReference: z.string().nullable(),
  createdAt: z.number(),
  changes: z.array(z.object({ clientReference: z.string().nullable(), previous: z.object({ lines: z.array(savedLine), totalMinor: z.number().int() }) })),
});
/** What the state file holds: stock and orders change; the supplier list is fixed. */
const SavedProcurementSchema = z.object({ catalog: z.map(z.string(), savedItem), orders: z.map(z.string(), savedOrder), suppliers: z.unknown().optional() });

const lineBody = z.object({ sku: z.string().min(1), quantity: z.number().int().positive().max(10_000) });
const orderBody = z.object({
  supplierId: z.string().min(1),
  lines: z.array(lineBody).min(1).max(50),
  shipTo: z.object({ name: z.string().min(1), street: z.string().min(1), city: z.string().min(1), postalCode: z.string().min(1), country: z.string().length(2) }),
  maxTotal: z.object({ amountMinor: z.number().int().nonnegative(), currency: z.string() }),
  note: z.string().max(1000).optional(),
  clientReference: z.string().max(255).optional(),
});
const updateBody = z.object({
  lines: z.array(lineBody).min(1).max(50),
  maxTotal: z.object({ amountMinor: z.number().int().nonnegative(), currency: z.string() }),
  clientReference: z.string().max(255).optional(),
});

const orderView = (o: Order) => {
  const { changes: _changes, ...rest } = o;
  return { ...rest, createdAt: new Date(o.createdAt).toISOString() };
};

/** Prices the lines and checks stock; returns the priced lines or the vendor's refusal. */
function priceLines(
  state: ProcurementState,
  supplierId: string,
  lines: { sku: string; quantity: number }[],
  maxTotal: { amountMinor: number; currency: string },
  stockCredit: Map<string, number> = new Map(),
): Reply | { lines: OrderLine[]; totalMinor: number; currency: string } {
  if (!state.suppliers.some((s) => s.supplierId === supplierId)) return fail(404, 'supplier_not_found', `no supplier ${supplierId}`);
  const seen = new Set<string>();
  const priced: OrderLine[] = [];
  for (const line of lines) {
    if (seen.has(line.sku)) return fail(400, 'duplicate_sku', `${line.sku} appears twice`);
    seen.add(line.sku);
    const item = state.catalog.get(line.sku);
    if (!item) return fail(400, 'unknown_sku', `no item ${line.sku}`);
    if (item.supplierId !== supplierId) return fail(400, 'sku_supplier_mismatch', `${line.sku} is not sold by ${supplierId}`);
    if (item.stock + (stockCredit.get(line.sku) ?? 0) < line.quantity) return fail(409, 'out_of_stock', `only ${item.stock} of ${line.sku} left`);
    priced.push({ sku: line.sku, quantity: line.quantity, unitPriceMinor: item.unitPriceMinor });
  }
  const currency = state.catalog.get(priced[0]!.sku)!.currency;
  const totalMinor = priced.reduce((sum, l) => sum + l.quantity * l.unitPriceMinor, 0);
  if (maxTotal.currency !== currency) return fail(400, 'currency_mismatch', `the supplier prices in ${currency}`);
  if (totalMinor > maxTotal.amountMinor) return fail(409, 'price_exceeds_max', `the total is ${totalMinor} ${currency} (minor units)`);
  return { lines: priced, totalMinor, currency };
}

function adjustStock(state: ProcurementState, lines: OrderLine[], sign: 1 | -1): void {
  for (const l of lines) {
    const item = state.catalog.get(l.sku);
    if (item) item.stock += sign * l.quantity;
  }
}

/** Merges quantity changes into an order's lines (lines not named stay as they are). */
function mergeLines(order: Order, changes: { sku: string; quantity: number }[]): { sku: string; quantity: number }[] {
  const merged = new Map(order.lines.map((l) => [l.sku, l.quantity]));
  for (const c of changes) merged.set(c.sku, c.quantity);
  return [...merged].map(([sku, quantity]) => ({ sku, quantity }));
}

/** The procurement sandbox's state and routes. */
export function procurementVendor(): SandboxVendorSpec<ProcurementState> {
  const routes: Route<ProcurementState>[] = [
    {
      method: 'GET',
      path: '/v1/suppliers',
      operation: 'list_suppliers',
      sideEffect: false,
      handle: (_req, state) => ({ status: 200, body: { data: state.suppliers } }),
    },
    {
      method: 'GET',
      path: '/v1/catalog',
      operation: 'search_catalog',
      sideEffect: false,
      handle({ query }, state) {
        const q = (query.get('q') ?? '').toLowerCase();
        const supplierId = query.get('supplierId');
        const data = [...state.catalog.values()].filter(
          (i) => (!supplierId || i.supplierId === supplierId) && (!q || i.name.toLowerCase().includes(q) || i.sku.toLowerCase().includes(q)),
        );
        return { status: 200, body: { data } };
      },
    },
    {
      method: 'POST',
      path: '/v1/orders/quote',
      operation: 'quote_order',
      sideEffect: false,
      handle({ body }, state) {
        const p = parseBody(orderBody, body);
        if (!p.ok) return p.reply;
        const priced = priceLines(state, p.value.supplierId, p.value.lines, p.value.maxTotal);
        if ('body' in priced) return priced;
        return { status: 200, body: { valid: true, quote: { amountMinor: priced.totalMinor, currency: priced.currency }, lines: priced.lines } };
      },
    },
    {
      method: 'POST',
      path: '/v1/orders',
      operation: 'place_order',
      sideEffect: true,
      handle({ body }, state, env: SandboxEnv) {
        const p = parseBody(orderBody, body);
        if (!p.ok) return p.reply;
        const priced = priceLines(state, p.value.supplierId, p.value.lines, p.value.maxTotal);
        if ('body' in priced) return priced;
        adjustStock(state, priced.lines, -1);
        const order: Order = {
          orderId: env.newId('po'),
          supplierId: p.value.supplierId,
          lines: priced.lines,
          totalMinor: priced.totalMinor,
          currency: priced.currency,
          shipTo: p.value.shipTo,
          note: p.value.note ?? null,
          status: 'placed',
          clientReference: p.value.clientReference ?? null,
          createdAt: env.now(),
          changes: [],
        };
        state.orders.set(order.orderId, order);
        return { status: 201, body: orderView(order) };
      },
    },
    {
      method: 'GET',
      path: '/v1/orders',
      operation: 'list_orders',
      sideEffect: false,
      handle({ query }, state) {
        const ref = query.get('clientReference');
        return { status: 200, body: { data: [...state.orders.values()].filter((o) => !ref || o.clientReference === ref).map(orderView) } };
      },
    },
    {
      method: 'GET',
      path: '/v1/orders/:id',
      operation: 'get_order',
      sideEffect: false,
      handle({ params }, state) {
        const o = state.orders.get(params.id!);
        return o ? { status: 200, body: orderView(o) } : fail(404, 'order_not_found', `no order ${params.id}`);
      },
    },
    {
      method: 'GET',
      path: '/v1/orders/:id/changes',
      operation: 'list_order_changes',
      sideEffect: false,
      handle({ params, query }, state) {
        const o = state.orders.get(params.id!);
        if (!o) return fail(404, 'order_not_found', `no order ${params.id}`);
        const ref = query.get('clientReference');
        const data = o.changes.filter((c) => !ref || c.clientReference === ref).map((c) => ({ order: orderView(o), previous: c.previous, clientReference: c.clientReference }));
        return { status: 200, body: { data } };
      },
    },
    {
      method: 'PATCH',
      path: '/v1/orders/:id',
      operation: 'update_order',
      sideEffect: true,
      handle({ params, body }, state) {
        const o = state.orders.get(params.id!);
        if (!o) return fail(404, 'order_not_found', `no order ${params.id}`);
        if (o.status === 'cancelled') return fail(409, 'order_cancelled', 'the order is cancelled');
        const p = parseBody(updateBody, body);
        if (!p.ok) return p.reply;
        for (const l of p.value.lines) {
          if (!o.lines.some((x) => x.sku === l.sku)) return fail(400, 'line_not_found', `${l.sku} is not on the order`);
        }
        // Stock already reserved by this order counts as available to it.
        const credit = new Map(o.lines.map((l) => [l.sku, l.quantity]));
        const priced = priceLines(state, o.supplierId, mergeLines(o, p.value.lines), p.value.maxTotal, credit);
        if ('body' in priced) return priced;
        const previous = { lines: o.lines.map((l) => ({ ...l })), totalMinor: o.totalMinor };
        adjustStock(state, o.lines, 1);
        adjustStock(state, priced.lines, -1);
        o.lines = priced.lines;
        o.totalMinor = priced.totalMinor;
        o.changes.push({ clientReference: p.value.clientReference ?? null, previous });
        return { status: 200, body: { order: orderView(o), previous, clientReference: p.value.clientReference ?? null } };
      },
    },
    {
      method: 'POST',
      path: '/v1/orders/:id/cancel',
      operation: 'cancel_order',
      sideEffect: true,
      handle({ params }, state) {
        const o = state.orders.get(params.id!);
        if (!o) return fail(404, 'order_not_found', `no order ${params.id}`);
        if (o.status === 'cancelled') return fail(409, 'already_cancelled', 'the order was already cancelled');
        o.status = 'cancelled';
        adjustStock(state, o.lines, 1);
        return { status: 200, body: orderView(o) };
      },
    },
  ];
  return {
    name: 'procurement',
    createState: () => ({ suppliers, catalog: new Map(catalogSeed.map((i) => [i.sku, { ...i }])), orders: new Map() }),
    live: (state) => [...state.orders.values()].filter((o) => o.status === 'placed').map((o) => ({ object: `order ${o.orderId}`, clientReference: o.clientReference })),
    restoreState: (saved) => {
      const { catalog, orders } = SavedProcurementSchema.parse(saved);
      return { suppliers, catalog, orders };
    },
    routes,
  };
}
