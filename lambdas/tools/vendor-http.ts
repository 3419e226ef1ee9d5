import * as z from 'zod';
import { currencyFits } from '../shared/money';
import type { ToolContext } from './sdk';
import {
  VendorAuthError,
  VendorError,
  VendorRejectedError,
  VendorTimeoutError,
  VendorUnavailableError,
} from './errors';

/**
 * The HTTP transport every sandbox-style vendor client shares: API key auth, the
 * `Idempotency-Key` header on state-changing calls, a timeout bounded by the step deadline,
 * zod parsing of every response (a vendor is untrusted too), and the mapping of HTTP
 * failures to the named vendor errors the saga's `ErrorEquals` clauses catch.
 */

/** Per-call options: where the call must end and which idempotency key it carries. */
export interface CallOptions {
  /** Epoch milliseconds by which the call must return (the step deadline). */
  deadline: number;
  /** Sent as `Idempotency-Key` on every state-changing call. */
  idempotencyKey?: string;
}

/** The subset of `ToolContext` a vendor call needs. */
export function callOptions(ctx: Pick<ToolContext, 'deadline' | 'idempotencyKey'>): CallOptions {
  return { deadline: ctx.deadline, idempotencyKey: ctx.idempotencyKey };
}

export interface VendorHttpConfig {
  baseUrl: string;
  credential: string;
  /** Upper bound per HTTP call; the step deadline may shorten it. */
  timeoutMs?: number;
  /** Injectable for tests of the transport itself; defaults to global fetch. */
  fetch?: typeof fetch;
  /** Vendor display name used in error messages. */
  vendorName: string;
}

interface RequestSpec<T> {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  schema: z.ZodType<T>;
}

const vendorErrorBody = z.object({
  error: z.object({ code: z.string().max(100), message: z.string().max(2000).optional() }),
});

/** Default per-call timeout: long enough for a slow vendor, short enough to leave the step time to reconcile. */
export const DEFAULT_VENDOR_TIMEOUT_MS = 5_000;

/** Network failures where the request never left this process: nothing can have happened at the vendor. */
const connectFailureCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

function errorCode(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 4 && current && typeof current === 'object'; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** A small JSON-over-HTTP client for one vendor. Build one per credential and reuse it. */
export class VendorHttp {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly config: VendorHttpConfig) {
    this.baseUrl = config.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = config.timeoutMs ?? DEFAULT_VENDOR_TIMEOUT_MS;
    this.fetchImpl = config.fetch ?? fetch;
  }

  /** A read: no idempotency key, a dropped connection is plainly unavailable. */
  get<T>(path: string, schema: z.ZodType<T>, opts: CallOptions, query?: RequestSpec<T>['query']): Promise<T> {
    return this.request({ method: 'GET', path, schema, ...(query ? { query } : {}) }, opts);
  }

  /** A state-changing call; always carries the step's idempotency key. */
  mutate<T>(method: 'POST' | 'PATCH' | 'DELETE', path: string, body: unknown, schema: z.ZodType<T>, opts: CallOptions): Promise<T> {
    return this.request({ method, path, body, schema }, opts);
  }

  /** A validation/quote call: POST without side effects, so no idempotency key and no uncertainty. */
  check<T>(path: string, body: unknown, schema: z.ZodType<T>, opts: CallOptions): Promise<T> {
    return this.request({ method: 'POST', path, body, schema }, { deadline: opts.deadline });
  }

  private async request<T>(spec: RequestSpec<T>, opts: CallOptions): Promise<T> {
    const vendor = this.config.vendorName;
    const what = `${spec.method} ${spec.path}`;
    const stateChanging = spec.method !== 'GET' && opts.idempotencyKey !== undefined;
    const remaining = opts.deadline - Date.now();
    if (remaining <= 0) {
      // Nothing was sent, so nothing can have happened: a plain retry is safe.
      throw new VendorUnavailableError(`${vendor}: step deadline passed before ${what} was sent`);
    }
    const timeout = Math.min(this.timeoutMs, remaining);
    const url = new URL(this.baseUrl + spec.path);
    for (const [k, v] of Object.entries(spec.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));

    const headers: Record<string, string> = {
      accept: 'application/json',
      authorization: `Bearer ${this.config.credential}`,
    };
    if (spec.body !== undefined) headers['content-type'] = 'application/json';
    if (stateChanging && opts.idempotencyKey) headers['idempotency-key'] = opts.idempotencyKey;

    let response: Response;
    let text: string;
    try {
      response = await this.fetchImpl(url, {
        method: spec.method,
        headers,
        ...(spec.body !== undefined ? { body: JSON.stringify(spec.body) } : {}),
        signal: AbortSignal.timeout(timeout),
      });
      text = await response.text();
    } catch (err) {
      throw this.transportError(err, what, stateChanging, timeout);
    }

    if (response.status >= 200 && response.status < 300) {
      let json: unknown;
      try {
        json = text.length === 0 ? {} : JSON.parse(text);
      } catch (err) {
        throw new VendorRejectedError(`${vendor}: ${what} answered ${response.status} with a body that is not JSON`, {
          cause: err,
          vendorStatus: response.status,
          vendorCode: 'invalid_response',
        });
      }
      const parsed = spec.schema.safeParse(json);
      if (!parsed.success) {
        // A 2xx we cannot read is not retryable: the retry would replay the same body.
        throw new VendorRejectedError(`${vendor}: ${what} answered ${response.status} with an unexpected body`, {
          cause: parsed.error,
          vendorStatus: response.status,
          vendorCode: 'invalid_response',
        });
      }
      return parsed.data;
    }
    throw this.statusError(response.status, text, what);
  }

  private transportError(err: unknown, what: string, stateChanging: boolean, timeoutMs: number): VendorError {
    const vendor = this.config.vendorName;
    const name = err instanceof Error ? err.name : '';
    if (name === 'TimeoutError' || name === 'AbortError') {
      return new VendorTimeoutError(`${vendor}: ${what} did not answer within ${timeoutMs} ms; outcome unknown`, { cause: err });
    }
    const code = errorCode(err);
    if (code && connectFailureCodes.has(code)) {
      return new VendorUnavailableError(`${vendor}: could not connect for ${what} (${code})`, { cause: err, vendorCode: code });
    }
    if (stateChanging) {
      // The request may have reached the vendor before the connection died: the same
      // uncertainty as a timeout, so the caller must reconcile before any retry.
      return new VendorTimeoutError(`${vendor}: connection dropped during ${what}; outcome unknown`, {
        cause: err,
        ...(code ? { vendorCode: code } : {}),
      });
    }
    return new VendorUnavailableError(`${vendor}: network error during ${what}`, { cause: err, ...(code ? { vendorCode: code } : {}) });
  }

  private statusError(status: number, text: string, what: string): VendorError {
    const vendor = this.config.vendorName;
    let code: string | undefined;
    let detail: string | undefined;
    try {
      const parsed = vendorErrorBody.safeParse(JSON.parse(text));
      if (parsed.success) {
        code = parsed.data.error.code;
        detail = parsed.data.error.message;
      }
    } catch {
      // A non-JSON error body carries no code; the status alone decides.
    }
    // A hostile or buggy vendor could echo our key back; never let it into a message.
    const safeDetail = detail ? `: ${this.redact(detail).slice(0, 300)}` : '';
    const safeCode = code ? this.redact(code) : undefined;
    const options = { vendorStatus: status, ...(safeCode ? { vendorCode: safeCode } : {}) };
    const message = `${vendor}: ${what} failed with ${status}${safeCode ? ` ${safeCode}` : ''}${safeDetail}`;
    if (status === 401 || status === 403) return new VendorAuthError(`${vendor}: ${what} was refused our credential (${status})`, options);
    if (status === 429 || status >= 500 || status === 408) return new VendorUnavailableError(message, options);
    // The same idempotency key is still being processed by the vendor: try again later.
    if (status === 409 && code === 'idempotency_in_flight') return new VendorUnavailableError(message, options);
    return new VendorRejectedError(message, options);
  }

  private redact(text: string): string {
    return this.config.credential ? text.split(this.config.credential).join('[redacted]') : text;
  }
}

/**
 * Runs a state-changing vendor call so it happens at most once even when the response is lost.
 * On `VendorTimeoutError` it asks the vendor whether the operation took effect (by the client
 * reference it sent); if so it returns that result, if the vendor confirms it did not it
 * retries once with the same idempotency key, and if the vendor cannot say it throws
 * `VendorTimeoutError` so the saga does not guess.
 */
export async function commitOnce<T>(
  ctx: Pick<ToolContext, 'logger'>,
  steps: { send: () => Promise<T>; lookup: () => Promise<T | undefined> },
): Promise<T> {
  try {
    return await steps.send();
  } catch (err) {
    if (!(err instanceof VendorTimeoutError)) throw err;
    ctx.logger.warn('vendor outcome unknown; reconciling', { error: err.message });
    let existing: T | undefined;
    try {
      existing = await steps.lookup();
    } catch (lookupErr) {
      throw new VendorTimeoutError(`${err.message}; reconcile failed, outcome still unknown`, {
        cause: lookupErr,
        ...(err.vendorCode ? { vendorCode: err.vendorCode } : {}),
      });
    }
    if (existing !== undefined) {
      ctx.logger.info('reconciled: the vendor had already applied the operation');
      return existing;
    }
    ctx.logger.info('reconciled: the vendor had not applied the operation; retrying once');
    try {
      return await steps.send();
    } catch (retryErr) {
      // The lost first request may still land (the lookup only saw the vendor's state at that
      // moment): a 5xx to the retry tells nothing of it, so the outcome stays unknown.
      if (!(retryErr instanceof VendorUnavailableError)) throw retryErr;
      throw new VendorTimeoutError(`${err.message}; retry failed (${retryErr.message.slice(0, 200)}), outcome still unknown`, {
        cause: retryErr,
        ...(err.vendorCode ? { vendorCode: err.vendorCode } : {}),
      });
    }
  }
}

/** Looks something up and maps "not found" (404) to undefined; every other error propagates. */
export async function findOrUndefined<T>(lookup: () => Promise<T>): Promise<T | undefined> {
  try {
    return await lookup();
  } catch (err) {
    if (err instanceof VendorRejectedError && err.vendorStatus === 404) return undefined;
    throw err;
  }
}

/**
 * Runs an undo-style call (release, cancel, void, revoke) so that "already in the goal state"
 * counts as success: compensations are retried by the saga and must converge, not fail. After
 * a lost response it reads the current state; if the goal is not reached it retries once.
 */
export async function reachGoalState<T>(
  steps: { send: () => Promise<T>; current: () => Promise<T>; reached: (state: T) => boolean },
  alreadyDoneCodes: readonly string[],
): Promise<T> {
  const attempt = async (): Promise<T> => {
    try {
      return await steps.send();
    } catch (err) {
      if (err instanceof VendorRejectedError && err.vendorCode && alreadyDoneCodes.includes(err.vendorCode)) return steps.current();
      throw err;
    }
  };
  try {
    return await attempt();
  } catch (err) {
    if (!(err instanceof VendorTimeoutError)) throw err;
    let state: T;
    try {
      state = await steps.current();
    } catch (lookupErr) {
      throw new VendorTimeoutError(`${err.message}; reconcile failed, outcome still unknown`, { cause: lookupErr });
    }
    return steps.reached(state) ? state : attempt();
  }
}

// Vendors transmit money in integer minor units; the exponents come from shared/money (Intl).
export { currencyFits, fromMinorUnits as fromMinor, toMinorUnits as toMinor } from '../shared/money';

/** Zod schema for money in tool inputs: positive, at most the currency's decimals. */
export const moneySchema = z
  .object({
    amount: z.number().positive().max(10_000_000),
    currency: z.string().regex(/^[A-Z]{3}$/, 'ISO 4217 code, upper case'),
  })
  .strict()
  .refine((m) => currencyFits(m.amount, m.currency), { message: 'amount has more decimals than the currency allows', path: ['amount'] });

/** Vendor-side money: integer minor units plus currency. */
export const vendorMoneySchema = z.object({ amountMinor: z.number().int().nonnegative(), currency: z.string().regex(/^[A-Z]{3}$/) });

/** Tool-output money, major units. */
export const moneyOutputSchema = z.object({ amount: z.number().nonnegative(), currency: z.string() });
