import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { VendorAuthError, VendorRejectedError, VendorTimeoutError, VendorUnavailableError } from '../../lambdas/tools/errors';
import { ToolInputInvalidError, invokeTool } from '../../lambdas/tools/invoke';
import { toolRegistry } from '../../lambdas/tools/registry';
import { failure, startHarness, type Harness } from './harness';

const auth = { amount: 120.5, currency: 'USD', payee: 'acme-office', paymentMethod: 'pm_card_visa', customerEmail: 'ada@example.com' };
type Authorization = { authorizationId: string; status: string; amount: { amount: number; currency: string } };
type Capture = { captureId: string; amount: { amount: number; currency: string } };

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.vendors.close();
});
afterEach(() => h.vendors.admin.reset('payments'));

const authorize = async (input = auth) => (await h.call('payments.authorize', input)) as Authorization;

describe('payments connector', () => {
  it('rejects bad input: too many decimals, unknown fields, lower-case currency', async () => {
    for (const input of [{ ...auth, amount: 1.005 }, { ...auth, extra: 1 }, { ...auth, currency: 'usd' }, { ...auth, amount: -5 }]) {
      const err = await failure(h.call('payments.authorize', input));
      expect(err).toBeInstanceOf(ToolInputInvalidError);
    }
    expect(h.vendors.admin.stats('payments').requests).toEqual({});
  });

  it('declares money and counterparty from the input', () => {
    const tool = toolRegistry.find('payments.authorize')!.tool;
    expect(tool.money?.(auth)).toEqual({ amount: 120.5, currency: 'USD' });
    expect(tool.counterparty?.(auth)).toBe('acme-office');
    expect(tool.compensation?.tool).toBe('void_authorization');
  });

  it('authorizes, captures, refunds and reads (happy path) in major units', async () => {
    const a = await authorize();
    expect(a).toMatchObject({ status: 'authorized', amount: { amount: 120.5, currency: 'USD' } });
    const c = (await h.call('payments.capture', { authorizationId: a.authorizationId, amount: 100, currency: 'USD' })) as Capture;
    expect(c.amount).toEqual({ amount: 100, currency: 'USD' });
    const compensation = toolRegistry.find('payments.capture')!.tool.compensation!;
    const refundInput = compensation.input({ authorizationId: a.authorizationId, amount: 100, currency: 'USD' }, c);
    const r = (await h.call('payments.refund', refundInput)) as { amount: { amount: number } };
    expect(r.amount.amount).toBe(100);
    const read = (await h.call('payments.get_payment', { authorizationId: a.authorizationId })) as { status: string; captures: unknown[]; refunds: unknown[] };
    expect(read.status).toBe('captured');
    expect(read.captures).toHaveLength(1);
    expect(read.refunds).toHaveLength(1);
    expect(h.vendors.admin.stats('payments').sideEffects).toEqual({ authorize: 1, capture: 1, refund: 1 });
  });

  it('captures need an authorization; double capture and over-refund are refused', async () => {
    const missing = await failure(h.call('payments.capture', { authorizationId: 'auth_missing', amount: 1, currency: 'USD' }));
    expect(missing).toBeInstanceOf(VendorRejectedError);
    expect(missing.vendorStatus).toBe(404);

    const a = await authorize();
    const over = await failure(h.call('payments.capture', { authorizationId: a.authorizationId, amount: 500, currency: 'USD' }));
    expect(over.vendorCode).toBe('amount_exceeds_authorization');
    const c = (await h.call('payments.capture', { authorizationId: a.authorizationId, amount: 50, currency: 'USD' })) as Capture;
    const again = await failure(h.call('payments.capture', { authorizationId: a.authorizationId, amount: 50, currency: 'USD' }));
    expect(again).toBeInstanceOf(VendorRejectedError);
    expect(again.vendorCode).toBe('already_captured');
    const overRefund = await failure(h.call('payments.refund', { captureId: c.captureId, amount: 60, currency: 'USD' }));
    expect(overRefund.vendorCode).toBe('refund_exceeds_capture');
    const voidCaptured = await failure(h.call('payments.void_authorization', { authorizationId: a.authorizationId }));
    expect(voidCaptured.vendorCode).toBe('already_captured');
    const unknownRefund = await failure(h.call('payments.refund', { captureId: 'cap_missing', amount: 1, currency: 'USD' }));
    expect(unknownRefund.vendorStatus).toBe(404);
    const unknownVoid = await failure(h.call('payments.void_authorization', { authorizationId: 'auth_missing' }));
    expect(unknownVoid.vendorStatus).toBe(404);
  });

  it('void is the compensation of authorize and converges when repeated', async () => {
    const a = await authorize();
    const v1 = (await h.call('payments.void_authorization', { authorizationId: a.authorizationId })) as Authorization;
    const v2 = (await h.call('payments.void_authorization', { authorizationId: a.authorizationId })) as Authorization;
    expect([v1.status, v2.status]).toEqual(['voided', 'voided']);
    const captureVoided = await failure(h.call('payments.capture', { authorizationId: a.authorizationId, amount: 1, currency: 'USD' }));
    expect(captureVoided.vendorCode).toBe('authorization_voided');
    expect(h.vendors.admin.stats('payments').sideEffects.void_authorization).toBe(1);
  });

  it('maps vendor errors: 402 decline, 503, 409, 401, timeout', async () => {
    const declined = await failure(authorize({ ...auth, paymentMethod: 'pm_card_declined' }));
    expect(declined).toBeInstanceOf(VendorRejectedError);
    expect(declined.vendorCode).toBe('card_declined');
    h.vendors.admin.setFaults('payments', { failNext: [{ operation: 'authorize', count: 1, status: 502 }] });
    expect(await failure(authorize())).toBeInstanceOf(VendorUnavailableError);
    h.vendors.admin.setFaults('payments', { failNext: [{ operation: 'authorize', count: 1, status: 409, code: 'duplicate_transaction' }] });
    const conflict = await failure(authorize());
    expect(conflict).toBeInstanceOf(VendorRejectedError);
    expect(conflict.vendorCode).toBe('duplicate_transaction');
    h.vendors.admin.setFaults('payments', { timeoutNext: [{ operation: 'get_payment', count: 1 }] });
    expect(await failure(h.call('payments.get_payment', { authorizationId: 'auth_x' }))).toBeInstanceOf(VendorTimeoutError);
    const badKey = await failure(
      invokeTool(
        { tool: 'payments.get_payment', input: { authorizationId: 'auth_x' }, idempotencyKey: randomUUID(), dryRun: false, deadline: Date.now() + 2_000 },
        { ...h.deps, secrets: { getSecret: async () => h.credentials.travel! } },
      ),
    );
    expect(badKey).toBeInstanceOf(VendorAuthError);
    expect(badKey.message).not.toContain(h.credentials.travel);
  });

  it('dry run validates at the vendor without authorizing anything', async () => {
    const preview = (await h.call('payments.authorize', auth, { dryRun: true })) as { dryRun: boolean; quote: { amount: number } };
    expect(preview).toMatchObject({ dryRun: true, quote: { amount: 120.5, currency: 'USD' } });
    const declined = await failure(h.call('payments.authorize', { ...auth, paymentMethod: 'pm_card_insufficient_funds' }, { dryRun: true }));
    expect(declined.vendorCode).toBe('insufficient_funds');
    const a = await authorize();
    await h.call('payments.capture', { authorizationId: a.authorizationId, amount: 10, currency: 'USD' }, { dryRun: true });
    expect(h.vendors.admin.stats('payments').sideEffects).toEqual({ authorize: 1 });
  });

  it('reusing an idempotency key authorizes once', async () => {
    const key = randomUUID();
    const first = await h.call('payments.authorize', auth, { idempotencyKey: key });
    const second = await h.call('payments.authorize', auth, { idempotencyKey: key });
    expect(second).toEqual(first);
    expect(h.vendors.admin.stats('payments').sideEffects.authorize).toBe(1);
  });

  it('reconciles a capture after commit-then-drop: exactly one capture', async () => {
    const a = await authorize();
    h.vendors.admin.setFaults('payments', { commitThenDrop: [{ operation: 'capture', count: 1, mode: 'destroy' }] });
    const c = (await h.call('payments.capture', { authorizationId: a.authorizationId, amount: 120.5, currency: 'USD' })) as Capture;
    expect(c.amount.amount).toBe(120.5);
    expect(h.vendors.admin.stats('payments').sideEffects.capture).toBe(1);
  });

  it('reconciles an authorization after commit-then-drop (hang)', async () => {
    h.vendors.admin.setFaults('payments', { commitThenDrop: [{ operation: 'authorize', count: 1 }] });
    await authorize();
    expect(h.vendors.admin.stats('payments').sideEffects.authorize).toBe(1);
  });
});
