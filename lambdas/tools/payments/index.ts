import * as z from 'zod';
import { defineConnector, defineTool, lazySchema, type VendorRecord } from '../sdk';
import { callOptions, commitOnce, currencyFits, fromMinor, moneyOutputSchema, reachGoalState, toMinor } from '../vendor-http';
import { createPaymentsClient, type PaymentsClient, type VendorAuthorization, type VendorCapture, type VendorRefund } from './client';

/** Payments: authorize, capture once, refund, void; amounts in major units at the tool boundary. */

const id = z.string().min(1).max(64);
const amount = z.number().positive().max(100_000);
const currency = z.string().regex(/^[A-Z]{3}$/, 'ISO 4217 code, upper case');
const decimals = { message: 'amount has more decimals than the currency allows', path: ['amount'] };

const authorizationOutput = lazySchema(() => z.object({
  authorizationId: z.string(),
  status: z.enum(['authorized', 'captured', 'voided']),
  amount: moneyOutputSchema,
  payee: z.string(),
  description: z.string().nullable(),
  customerEmail: z.string().nullable(),
  captures: z.array(z.object({ captureId: z.string(), amount: moneyOutputSchema, refunded: moneyOutputSchema })),
  refunds: z.array(z.object({ refundId: z.string(), captureId: z.string(), amount: moneyOutputSchema })),
}));
const captureOutput = lazySchema(() => z.object({ captureId: z.string(), authorizationId: z.string(), amount: moneyOutputSchema, refunded: moneyOutputSchema }));
const refundOutput = lazySchema(() => z.object({ refundId: z.string(), captureId: z.string(), amount: moneyOutputSchema, reason: z.string().nullable() }));

const captureOut = (c: VendorCapture): z.infer<ReturnType<typeof captureOutput>> => ({
  captureId: c.captureId,
  authorizationId: c.authorizationId,
  amount: fromMinor(c.amountMinor, c.currency),
  refunded: fromMinor(c.refundedMinor, c.currency),
});
const refundOut = (r: VendorRefund): z.infer<ReturnType<typeof refundOutput>> => ({
  refundId: r.refundId,
  captureId: r.captureId,
  amount: fromMinor(r.amountMinor, r.currency),
  reason: r.reason,
});
const authorizationOut = (a: VendorAuthorization): z.infer<ReturnType<typeof authorizationOutput>> => ({
  authorizationId: a.authorizationId,
  status: a.status,
  amount: fromMinor(a.amountMinor, a.currency),
  payee: a.payee,
  description: a.description,
  customerEmail: a.customerEmail,
  captures: a.captures.map((c) => ({ captureId: c.captureId, amount: fromMinor(c.amountMinor, c.currency), refunded: fromMinor(c.refundedMinor, c.currency) })),
  refunds: a.refunds.map(refundOut),
});

const authorizeInput = lazySchema(() => z
  .object({
    amount,
    currency,
    /** The account being paid (a merchant or supplier id): the counterparty policies check. */
    payee: z.string().regex(/^[a-z0-9][a-z0-9-]{1,62}$/),
    paymentMethod: z.string().regex(/^pm_[a-z0-9_]{1,60}$/, 'a payment method token such as pm_card_visa'),
    description: z.string().max(500).optional(),
    customerEmail: z.string().email().max(254).optional(),
  })
  .strict()
  .refine((i) => currencyFits(i.amount, i.currency), decimals));

const authorize = defineTool({
  name: 'authorize',
  description: 'Places a hold on the payment method for an amount owed to a payee. Nothing is charged until capture; void to undo.',
  tier: 'commit',
  input: authorizeInput,
  output: authorizationOutput,
  compensation: { tool: 'void_authorization', input: (_input, output) => ({ authorizationId: output.authorizationId }) },
  pii: { input: ['customerEmail'], output: ['customerEmail'] },
  money: (input) => ({ amount: input.amount, currency: input.currency }),
  counterparty: (input) => input.payee,
  async preview(client: PaymentsClient, input, ctx) {
    const q = await client.validateAuthorization(newAuthorization(input), callOptions(ctx));
    return { dryRun: true, check: 'validation', quote: fromMinor(q.quote.amountMinor, q.quote.currency), details: { payee: input.payee } };
  },
  async execute(client: PaymentsClient, input, ctx) {
    const o = callOptions(ctx);
    const a = await commitOnce(ctx, {
      send: () => client.authorize(newAuthorization(input), o),
      lookup: async () => (await client.findAuthorizations(ctx.idempotencyKey, o)).data[0],
    });
    return authorizationOut(a);
  },
});

function newAuthorization(input: z.infer<ReturnType<typeof authorizeInput>>) {
  return {
    amountMinor: toMinor({ amount: input.amount, currency: input.currency }),
    currency: input.currency,
    payee: input.payee,
    paymentMethod: input.paymentMethod,
    description: input.description,
    customerEmail: input.customerEmail,
  };
}

const voidAuthorization = defineTool({
  name: 'void_authorization',
  description: 'Releases an uncaptured authorization. Succeeds if it is already voided; a captured payment must be refunded instead.',
  tier: 'commit',
  input: () => z.object({ authorizationId: id }).strict(),
  output: authorizationOutput,
  pii: { output: ['customerEmail'] },
  async preview(client: PaymentsClient, input, ctx) {
    const a = await client.getAuthorization(input.authorizationId, callOptions(ctx));
    return { dryRun: true, check: 'lookup', quote: fromMinor(a.amountMinor, a.currency), details: { status: a.status, wouldSucceed: a.status !== 'captured' } };
  },
  async execute(client: PaymentsClient, input, ctx) {
    const o = callOptions(ctx);
    const a = await reachGoalState(
      { send: () => client.void(input.authorizationId, o), current: () => client.getAuthorization(input.authorizationId, o), reached: (a) => a.status === 'voided' },
      ['already_voided'],
    );
    return authorizationOut(a);
  },
});

const captureInput = lazySchema(() => z.object({ authorizationId: id, amount, currency }).strict().refine((i) => currencyFits(i.amount, i.currency), decimals));

const capture = defineTool({
  name: 'capture',
  description: 'Charges an authorized payment, up to the authorized amount, once. Refund to undo.',
  tier: 'commit',
  input: captureInput,
  output: captureOutput,
  compensation: {
    tool: 'refund',
    input: (_input, output) => ({ captureId: output.captureId, amount: output.amount.amount, currency: output.amount.currency, reason: 'saga compensation' }),
  },
  money: (input) => ({ amount: input.amount, currency: input.currency }),
  async preview(client: PaymentsClient, input, ctx) {
    const q = await client.validateCapture(input.authorizationId, { amountMinor: toMinor(input), currency: input.currency }, callOptions(ctx));
    return { dryRun: true, check: 'validation', quote: fromMinor(q.quote.amountMinor, q.quote.currency) };
  },
  async execute(client: PaymentsClient, input, ctx) {
    const o = callOptions(ctx);
    const c = await commitOnce(ctx, {
      send: () => client.capture(input.authorizationId, { amountMinor: toMinor(input), currency: input.currency }, o),
      lookup: async () => (await client.findCaptures(ctx.idempotencyKey, o)).data[0],
    });
    return captureOut(c);
  },
});

const refundInput = lazySchema(() => z
  .object({ captureId: id, amount, currency, reason: z.string().max(500).optional() })
  .strict()
  .refine((i) => currencyFits(i.amount, i.currency), decimals));

const refund = defineTool({
  name: 'refund',
  description: 'Returns captured money to the payer, up to what is left to refund. Cannot be undone.',
  tier: 'commit',
  input: refundInput,
  output: refundOutput,
  money: (input) => ({ amount: input.amount, currency: input.currency }),
  async preview(client: PaymentsClient, input, ctx) {
    const q = await client.validateRefund(input.captureId, { amountMinor: toMinor(input), currency: input.currency, reason: input.reason }, callOptions(ctx));
    return { dryRun: true, check: 'validation', quote: fromMinor(q.quote.amountMinor, q.quote.currency) };
  },
  async execute(client: PaymentsClient, input, ctx) {
    const o = callOptions(ctx);
    const r = await commitOnce(ctx, {
      send: () => client.refund(input.captureId, { amountMinor: toMinor(input), currency: input.currency, reason: input.reason }, o),
      lookup: async () => (await client.findRefunds(ctx.idempotencyKey, o)).data[0],
    });
    return refundOut(r);
  },
});

const getPayment = defineTool({
  name: 'get_payment',
  description: 'Reads an authorization with its captures and refunds.',
  tier: 'read',
  input: () => z.object({ authorizationId: id }).strict(),
  output: authorizationOutput,
  pii: { output: ['customerEmail'] },
  async execute(client: PaymentsClient, input, ctx) {
    return authorizationOut(await client.getAuthorization(input.authorizationId, callOptions(ctx)));
  },
});

/** The payments connector. */
export const payments = defineConnector<PaymentsClient>({
  name: 'payments',
  description: 'Card payments: authorize, capture, refund and void, with amounts in major units.',
  vendor: { name: 'Sandbox Payments', defaultBaseUrl: 'http://127.0.0.1:8792', createClient: createPaymentsClient },
  tools: [authorize, voidAuthorization, capture, refund, getPayment],
  reconcile: {
    tools: ['authorize', 'capture'],
    async lookup(client: PaymentsClient, query, ctx) {
      const o = callOptions(ctx);
      if (query.tool === 'authorize') return (await client.findAuthorizations(query.clientReference, o)).data.map(authorizationRecord);
      if (query.tool === 'capture') return (await client.findCaptures(query.clientReference, o)).data.map(captureRecord);
      return [];
    },
    async recent(client: PaymentsClient, ctx) {
      return (await client.listCaptures(callOptions(ctx))).data.map(captureRecord);
    },
  },
});

function authorizationRecord(a: VendorAuthorization): VendorRecord {
  // A captured authorization cannot be voided; its capture's refund is what undoes it.
  return { tool: 'authorize', id: a.authorizationId, clientReference: a.clientReference, live: a.status === 'authorized', output: authorizationOut(a) };
}

function captureRecord(c: VendorCapture): VendorRecord {
  return { tool: 'capture', id: c.captureId, clientReference: c.clientReference, live: c.refundedMinor < c.amountMinor, output: captureOut(c) };
}
