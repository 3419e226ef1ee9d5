import { z } from 'zod';
import { fail, parseBody, type Reply, type Route, type SandboxEnv, type SandboxVendorSpec } from './sandbox-server';

/**
 * Sandbox Payments: authorize, capture (once, up to the authorized amount), refund (up to what
 * was captured), void. Amounts are integer minor units. Test payment methods decide outcomes,
 * as card networks' test numbers do: `pm_card_declined`, `pm_card_insufficient_funds`.
 */

interface Authorization {
  authorizationId: string;
  amountMinor: number;
  currency: string;
  payee: string;
  paymentMethod: string;
  description: string | null;
  customerEmail: string | null;
  status: 'authorized' | 'captured' | 'voided';
  clientReference: string | null;
  createdAt: number;
}

interface Capture {
  captureId: string;
  authorizationId: string;
  amountMinor: number;
  currency: string;
  refundedMinor: number;
  clientReference: string | null;
  createdAt: number;
}

interface Refund {
  refundId: string;
  captureId: string;
  amountMinor: number;
  currency: string;
  reason: string | null;
  clientReference: string | null;
  createdAt: number;
}

interface PaymentsState {
  authorizations: Map<string, Authorization>;
  captures: Map<string, Capture>;
  refunds: Map<string, Refund>;
}

const savedAuthorization: z.ZodType<Authorization> = z.object({
  authorizationId: z.string(),
  amountMinor: z.number().int(),
  currency: z.string(),
  payee: z.string(),
  paymentMethod: z.string(),
  description: z.string().nullable(),
  customerEmail: z.string().nullable(),
  status: z.enum(['authorized', 'captured', 'voided']),
  clientReference: z.string().nullable(),
  createdAt: z.number(),
});
const savedCapture: z.ZodType<Capture> = z.object({
  captureId: z.string(),
  authorizationId: z.string(),
  amountMinor: z.number().int(),
  currency: z.string(),
  refundedMinor: z.number().int(),
  clientReference: z.string().nullable(),
  createdAt: z.number(),
});
const savedRefund: z.ZodType<Refund> = z.object({
  refundId: z.string(),
  captureId: z.string(),
  amountMinor: z.number().int(),
  currency: z.string(),
  reason: z.string().nullable(),
  clientReference: z.string().nullable(),
  createdAt: z.number(),
});
const SavedPaymentsSchema: z.ZodType<PaymentsState> = z.object({
  authorizations: z.map(z.string(), savedAuthorization),
  captures: z.map(z.string(), savedCapture),
  refunds: z.map(z.string(), savedRefund),
});

/** Largest single authorization the sandbox accepts, in minor units. */
const MAX_AUTHORIZATION_MINOR = 10_000_000;

const authorizationBody = z.object({
  amountMinor: z.number().int().positive(),
  currency: z.string().regex(/^[A-Z]{3}$/),
  payee: z.string().min(1),
  paymentMethod: z.string().min(1),
  description: z.string().max(500).optional(),
  customerEmail: z.string().email().optional(),
  clientReference: z.string().max(255).optional(),
});
const amountBody = z.object({
  amountMinor: z.number().int().positive(),
  currency: z.string().regex(/^[A-Z]{3}$/),
  reason: z.string().max(500).optional(),
  clientReference: z.string().max(255).optional(),
});

const iso = (t: number) => new Date(t).toISOString();

function authorizationView(state: PaymentsState, a: Authorization) {
  const captures = [...state.captures.values()].filter((c) => c.authorizationId === a.authorizationId);
  const refunds = [...state.refunds.values()].filter((r) => captures.some((c) => c.captureId === r.captureId));
  return {
    ...a,
    createdAt: iso(a.createdAt),
    captures: captures.map(captureView),
    refunds: refunds.map(refundView),
  };
}
const captureView = (c: Capture) => ({ ...c, createdAt: iso(c.createdAt) });
const refundView = (r: Refund) => ({ ...r, createdAt: iso(r.createdAt) });

function checkAuthorization(input: z.infer<typeof authorizationBody>): Reply | undefined {
  if (input.amountMinor > MAX_AUTHORIZATION_MINOR) return fail(400, 'amount_too_large', 'amount exceeds the account limit');
  if (input.paymentMethod === 'pm_card_declined') return fail(402, 'card_declined', 'the card was declined');
  if (input.paymentMethod === 'pm_card_insufficient_funds') return fail(402, 'insufficient_funds', 'insufficient funds');
  if (!/^pm_[a-z0-9_]+$/.test(input.paymentMethod)) return fail(400, 'invalid_payment_method', 'unknown payment method');
  return undefined;
}

function checkCapture(state: PaymentsState, id: string, input: z.infer<typeof amountBody>): Reply | Authorization {
  const a = state.authorizations.get(id);
  if (!a) return fail(404, 'authorization_not_found', `no authorization ${id}`);
  if (a.status === 'voided') return fail(409, 'authorization_voided', 'the authorization was voided');
  if (a.status === 'captured') return fail(409, 'already_captured', 'the authorization was already captured');
  if (input.currency !== a.currency) return fail(400, 'currency_mismatch', `the authorization is in ${a.currency}`);
  if (input.amountMinor > a.amountMinor) return fail(400, 'amount_exceeds_authorization', 'amount exceeds the authorized amount');
  return a;
}

function checkRefund(state: PaymentsState, id: string, input: z.infer<typeof amountBody>): Reply | Capture {
  const c = state.captures.get(id);
  if (!c) return fail(404, 'capture_not_found', `no capture ${id}`);
  if (input.currency !== c.currency) return fail(400, 'currency_mismatch', `the capture is in ${c.currency}`);
  if (input.amountMinor > c.amountMinor - c.refundedMinor) return fail(409, 'refund_exceeds_capture', 'amount exceeds what is left to refund');
  return c;
}

function listBy<T extends { clientReference: string | null }>(items: Iterable<T>, ref: string | null): T[] {
  return ref ? [...items].filter((i) => i.clientReference === ref) : [...items];
}

/** The payments sandbox's state and routes. */
export function paymentsVendor(): SandboxVendorSpec<PaymentsState> {
  const routes: Route<PaymentsState>[] = [
    {
      method: 'POST',
      path: '/v1/authorizations/validate',
      operation: 'validate_authorization',
      sideEffect: false,
      handle({ body }) {
        const p = parseBody(authorizationBody, body);
        if (!p.ok) return p.reply;
        return checkAuthorization(p.value) ?? { status: 200, body: { valid: true, quote: { amountMinor: p.value.amountMinor, currency: p.value.currency } } };
      },
    },
    {
      method: 'POST',
      path: '/v1/authorizations',
      operation: 'authorize',
      sideEffect: true,
      handle({ body }, state, env: SandboxEnv) {
        const p = parseBody(authorizationBody, body);
        if (!p.ok) return p.reply;
        const refused = checkAuthorization(p.value);
        if (refused) return refused;
        const a: Authorization = {
          authorizationId: env.newId('auth'),
          amountMinor: p.value.amountMinor,
          currency: p.value.currency,
          payee: p.value.payee,
          paymentMethod: p.value.paymentMethod,
          description: p.value.description ?? null,
          customerEmail: p.value.customerEmail ?? null,
          status: 'authorized',
          clientReference: p.value.clientReference ?? null,
          createdAt: env.now(),
        };
        state.authorizations.set(a.authorizationId, a);
        return { status: 201, body: authorizationView(state, a) };
      },
    },
    {
      method: 'GET',
      path: '/v1/authorizations',
      operation: 'list_authorizations',
      sideEffect: false,
      handle({ query }, state) {
        return { status: 200, body: { data: listBy(state.authorizations.values(), query.get('clientReference')).map((a) => authorizationView(state, a)) } };
      },
    },
    {
      method: 'GET',
      path: '/v1/authorizations/:id',
      operation: 'get_payment',
      sideEffect: false,
      handle({ params }, state) {
        const a = state.authorizations.get(params.id!);
        return a ? { status: 200, body: authorizationView(state, a) } : fail(404, 'authorization_not_found', `no authorization ${params.id}`);
      },
    },
    {
      method: 'POST',
      path: '/v1/authorizations/:id/void',
      operation: 'void_authorization',
      sideEffect: true,
      handle({ params }, state) {
        const a = state.authorizations.get(params.id!);
        if (!a) return fail(404, 'authorization_not_found', `no authorization ${params.id}`);
        if (a.status === 'voided') return fail(409, 'already_voided', 'the authorization was already voided');
        if (a.status === 'captured') return fail(409, 'already_captured', 'a captured payment cannot be voided; refund it');
        a.status = 'voided';
        return { status: 200, body: authorizationView(state, a) };
      },
    },
    {
      method: 'POST',
      path: '/v1/authorizations/:id/captures/validate',
      operation: 'validate_capture',
      sideEffect: false,
      handle({ params, body }, state) {
        const p = parseBody(amountBody, body);
        if (!p.ok) return p.reply;
        const a = checkCapture(state, params.id!, p.value);
        if ('body' in a) return a;
        return { status: 200, body: { valid: true, quote: { amountMinor: p.value.amountMinor, currency: a.currency } } };
      },
    },
    {
      method: 'POST',
      path: '/v1/authorizations/:id/captures',
      operation: 'capture',
      sideEffect: true,
      handle({ params, body }, state, env) {
        const p = parseBody(amountBody, body);
        if (!p.ok) return p.reply;
        const a = checkCapture(state, params.id!, p.value);
        if ('body' in a) return a;
        a.status = 'captured';
        const c: Capture = {
          captureId: env.newId('cap'),
          authorizationId: a.authorizationId,
          amountMinor: p.value.amountMinor,
          currency: a.currency,
          refundedMinor: 0,
          clientReference: p.value.clientReference ?? null,
          createdAt: env.now(),
        };
        state.captures.set(c.captureId, c);
        return { status: 201, body: captureView(c) };
      },
    },
    {
      method: 'GET',
      path: '/v1/captures',
      operation: 'list_captures',
      sideEffect: false,
      handle({ query }, state) {
        return { status: 200, body: { data: listBy(state.captures.values(), query.get('clientReference')).map(captureView) } };
      },
    },
    {
      method: 'POST',
      path: '/v1/captures/:id/refunds/validate',
      operation: 'validate_refund',
      sideEffect: false,
      handle({ params, body }, state) {
        const p = parseBody(amountBody, body);
        if (!p.ok) return p.reply;
        const c = checkRefund(state, params.id!, p.value);
        if ('body' in c) return c;
        return { status: 200, body: { valid: true, quote: { amountMinor: p.value.amountMinor, currency: c.currency } } };
      },
    },
    {
      method: 'POST',
      path: '/v1/captures/:id/refunds',
      operation: 'refund',
      sideEffect: true,
      handle({ params, body }, state, env) {
        const p = parseBody(amountBody, body);
        if (!p.ok) return p.reply;
        const c = checkRefund(state, params.id!, p.value);
        if ('body' in c) return c;
        c.refundedMinor += p.value.amountMinor;
        const r: Refund = {
          refundId: env.newId('ref'),
          captureId: c.captureId,
          amountMinor: p.value.amountMinor,
          currency: c.currency,
          reason: p.value.reason ?? null,
          clientReference: p.value.clientReference ?? null,
          createdAt: env.now(),
        };
        state.refunds.set(r.refundId, r);
        return { status: 201, body: refundView(r) };
      },
    },
    {
      method: 'GET',
      path: '/v1/refunds',
      operation: 'list_refunds',
      sideEffect: false,
      handle({ query }, state) {
        return { status: 200, body: { data: listBy(state.refunds.values(), query.get('clientReference')).map(refundView) } };
      },
    },
  ];
  return {
    name: 'payments',
    createState: () => ({ authorizations: new Map(), captures: new Map(), refunds: new Map() }),
    live: (state) =>
      [...state.authorizations.values()].filter((a) => a.status !== 'voided').map((a) => ({ object: `authorization ${a.authorizationId}`, clientReference: a.clientReference })),
    lose: (state, id) => {
      const refund = state.refunds.get(id);
      if (refund) {
        const c = state.captures.get(refund.captureId);
        if (c) c.refundedMinor -= refund.amountMinor;
        return state.refunds.delete(id);
      }
      return state.captures.delete(id) || state.authorizations.delete(id);
    },
    restoreState: (saved) => SavedPaymentsSchema.parse(saved),
    routes,
  };
}
