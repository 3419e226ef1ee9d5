import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { VendorAuthError, VendorRejectedError, VendorTimeoutError, VendorUnavailableError } from '../../lambdas/tools/errors';
import { toolRegistry } from '../../lambdas/tools/registry';
import { ToolInputInvalidError } from '../../lambdas/tools/invoke';
import { failure, startHarness, type Harness } from './harness';

const shipTo = { name: 'Ada Lovelace', street: '1 Main St', city: 'Springfield', postalCode: '12345', country: 'US' };
const order = { supplierId: 'acme-office', lines: [{ sku: 'ACME-PAPER-A4', quantity: 2 }], shipTo, maxTotal: { amount: 100, currency: 'USD' } };
type Order = { orderId: string; status: string; total: { amount: number; currency: string }; lines: { sku: string; quantity: number }[] };

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.vendors.close();
});
afterEach(() => h.vendors.admin.reset('procurement'));

describe('procurement connector', () => {
  it('rejects bad input', async () => {
    for (const input of [{ ...order, lines: [] }, { ...order, shipTo: { ...shipTo, country: 'usa' } }, { ...order, supplierId: 'Acme Office' }, { ...order, debug: true }]) {
      expect(await failure(h.call('procurement.place_order', input))).toBeInstanceOf(ToolInputInvalidError);
    }
  });

  it('exposes money (maxTotal) and counterparty (supplier) for policy', () => {
    const tool = toolRegistry.find('procurement.place_order')!.tool;
    expect(tool.money?.(order)).toEqual({ amount: 100, currency: 'USD' });
    expect(tool.counterparty?.({ ...order, supplierId: 'shady-supplies' })).toBe('shady-supplies');
    expect(tool.pii?.input).toContain('shipTo.street');
  });

  it('searches, places, updates, reads and cancels (happy path)', async () => {
    const found = (await h.call('procurement.search_catalog', { supplierId: 'shady-supplies' })) as { items: { sku: string }[] };
    expect(found.items.map((i) => i.sku)).toContain('SHADY-LAPTOP');
    const placed = (await h.call('procurement.place_order', order)) as Order;
    expect(placed).toMatchObject({ status: 'placed', total: { amount: 85.98, currency: 'USD' } });

    const update = { orderId: placed.orderId, lines: [{ sku: 'ACME-PAPER-A4', quantity: 3 }], maxTotal: { amount: 200, currency: 'USD' } };
    const updated = (await h.call('procurement.update_order', update)) as { order: Order; previous: { lines: { quantity: number }[] } };
    expect(updated.order.total.amount).toBe(128.97);
    expect(updated.previous.lines[0]!.quantity).toBe(2);
    // The update's compensation restores the previous quantity.
    const undo = toolRegistry.find('procurement.update_order')!.tool.compensation!.input(update, updated);
    const restored = (await h.call('procurement.update_order', undo)) as { order: Order };
    expect(restored.order.lines[0]!.quantity).toBe(2);

    expect(((await h.call('procurement.get_order', { orderId: placed.orderId })) as Order).status).toBe('placed');
    expect(((await h.call('procurement.cancel_order', { orderId: placed.orderId })) as Order).status).toBe('cancelled');
    expect(((await h.call('procurement.cancel_order', { orderId: placed.orderId })) as Order).status).toBe('cancelled');
    expect(h.vendors.admin.stats('procurement').sideEffects).toEqual({ place_order: 1, update_order: 2, cancel_order: 1 });
  });

  it('maps vendor refusals and failures to named errors', async () => {
    const tooExpensive = await failure(h.call('procurement.place_order', { ...order, maxTotal: { amount: 10, currency: 'USD' } }));
    expect(tooExpensive).toBeInstanceOf(VendorRejectedError);
    expect(tooExpensive.vendorCode).toBe('price_exceeds_max');
    const wrongSupplier = await failure(h.call('procurement.place_order', { ...order, lines: [{ sku: 'GLOBEX-GLOVES', quantity: 1 }] }));
    expect(wrongSupplier.vendorCode).toBe('sku_supplier_mismatch');
    const unknown = await failure(h.call('procurement.cancel_order', { orderId: 'po_missing' }));
    expect(unknown.vendorStatus).toBe(404);
    h.vendors.admin.setFaults('procurement', { failNext: [{ operation: '*', count: 1, status: 500 }] });
    expect(await failure(h.call('procurement.search_catalog', {}))).toBeInstanceOf(VendorUnavailableError);
    h.vendors.admin.setFaults('procurement', { failNext: [{ operation: 'place_order', count: 1, status: 403 }] });
    expect(await failure(h.call('procurement.place_order', order))).toBeInstanceOf(VendorAuthError);
    h.vendors.admin.setFaults('procurement', { timeoutNext: [{ operation: 'get_order', count: 1 }] });
    expect(await failure(h.call('procurement.get_order', { orderId: 'po_x' }))).toBeInstanceOf(VendorTimeoutError);
  });

  it('a seeded error rate fails the same calls every run', async () => {
    const run = async () => {
      h.vendors.admin.setFaults('procurement', { errorRate: 0.5, seed: 42 });
      const outcomes: string[] = [];
      for (let i = 0; i < 8; i += 1) outcomes.push(await h.call('procurement.search_catalog', {}).then(() => 'ok', (e: Error) => e.name));
      return outcomes;
    };
    const first = await run();
    expect(first).toContain('VendorUnavailableError');
    expect(first).toContain('ok');
    expect(await run()).toEqual(first);
  });

  it('takes faults as start options: latency beyond the client timeout is a VendorTimeoutError', async () => {
    const slow = await startHarness({ faults: { procurement: { latencyMs: 1_300 } } });
    try {
      expect(await failure(slow.call('procurement.search_catalog', {}))).toBeInstanceOf(VendorTimeoutError);
      slow.vendors.admin.setFaults('procurement', { latencyMs: 50, failNext: [{ operation: 'search_catalog', count: 2, status: 503 }] });
      const outcomes = [];
      for (let i = 0; i < 3; i += 1) outcomes.push(await slow.call('procurement.search_catalog', {}).then(() => 'ok', (e: Error) => e.name));
      expect(outcomes).toEqual(['VendorUnavailableError', 'VendorUnavailableError', 'ok']);
    } finally {
      await slow.vendors.close();
    }
  });

  it('dry run quotes the order without placing it', async () => {
    const preview = (await h.call('procurement.place_order', order, { dryRun: true })) as { quote: { amount: number } };
    expect(preview.quote.amount).toBe(85.98);
    expect(h.vendors.admin.stats('procurement').sideEffects).toEqual({});
  });

  it('reusing an idempotency key places one order', async () => {
    const key = randomUUID();
    const a = await h.call('procurement.place_order', order, { idempotencyKey: key });
    const b = await h.call('procurement.place_order', order, { idempotencyKey: key });
    expect(b).toEqual(a);
    expect(h.vendors.admin.stats('procurement').sideEffects.place_order).toBe(1);
  });

  it('reconciles after commit-then-drop: exactly one order', async () => {
    h.vendors.admin.setFaults('procurement', { commitThenDrop: [{ operation: 'place_order', count: 1, mode: 'destroy' }] });
    const placed = (await h.call('procurement.place_order', order)) as Order;
    expect(placed.status).toBe('placed');
    expect(h.vendors.admin.stats('procurement').sideEffects.place_order).toBe(1);
  });

  it('reconciles an update after commit-then-drop, keeping the true previous quantity', async () => {
    const placed = (await h.call('procurement.place_order', order)) as Order;
    h.vendors.admin.setFaults('procurement', { commitThenDrop: [{ operation: 'update_order', count: 1 }] });
    const updated = (await h.call('procurement.update_order', { orderId: placed.orderId, lines: [{ sku: 'ACME-PAPER-A4', quantity: 1 }], maxTotal: { amount: 100, currency: 'USD' } })) as {
      previous: { lines: { quantity: number }[] };
    };
    expect(updated.previous.lines[0]!.quantity).toBe(2);
    expect(h.vendors.admin.stats('procurement').sideEffects.update_order).toBe(1);
  });
});
