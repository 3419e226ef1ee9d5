/**
 * RFC 9457 problem documents: the only shape an error takes on the wire.
 * `type` values are stable URNs that clients may switch on; `detail` is written so an
 * LLM can act on it; extension members carry the machine-readable specifics.
 */

/** A single thing wrong with a request, located by a JSON-pointer-like path. */
export interface Violation {
  path: string;
  message: string;
}

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  [extension: string]: unknown;
}

const base = 'urn:airlock:problem:';

/** Stable problem types. Clients switch on these; never rename one. */
export const ProblemType = {
  validation: `${base}validation`,
  malformedJson: `${base}malformed-json`,
  payloadTooLarge: `${base}payload-too-large`,
  headersTooLarge: `${base}headers-too-large`,
  malformedRequest: `${base}malformed-request`,
  requestTimeout: `${base}request-timeout`,
  unauthorized: `${base}unauthorized`,
  forbidden: `${base}forbidden`,
  policyDenied: `${base}policy-denied`,
  spendCapExceeded: `${base}spend-cap-exceeded`,
  delegationRequired: `${base}delegation-required`,
  delegationBudgetExceeded: `${base}delegation-budget-exceeded`,
  notFound: `${base}not-found`,
  methodNotAllowed: `${base}method-not-allowed`,
  unsupportedMediaType: `${base}unsupported-media-type`,
  idempotencyKeyMissing: `${base}idempotency-key-missing`,
  idempotencyKeyReused: `${base}idempotency-key-reused`,
  idempotencyInProgress: `${base}idempotency-in-progress`,
  conflict: `${base}conflict`,
  planMismatch: `${base}plan-mismatch`,
  approvalForbidden: `${base}approval-forbidden`,
  approvalClosed: `${base}approval-closed`,
  approvalExpired: `${base}approval-expired`,
  voteConflict: `${base}vote-conflict`,
  throttled: `${base}throttled`,
  halted: `${base}halted`,
  circuitOpen: `${base}circuit-open`,
  /** Over a rate limit: the type IANA registers for it (draft-ietf-httpapi-ratelimit-headers). */
  quotaExceeded: 'https://iana.org/assignments/http-problem-types#quota-exceeded',
  unavailable: `${base}unavailable`,
  internal: `${base}internal`,
} as const;

export type ProblemTypeName = keyof typeof ProblemType;

/**
 * An error that is safe to show to the caller: its problem document is the whole response.
 * Anything thrown that is not a ProblemError becomes a generic 500 with no internals.
 */
export class ProblemError extends Error {
  readonly problem: ProblemDocument;
  readonly headers: Record<string, string>;

  constructor(problem: ProblemDocument, options?: { cause?: unknown; headers?: Record<string, string> }) {
    super(problem.detail, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ProblemError';
    this.problem = problem;
    this.headers = options?.headers ?? {};
  }
}

/**
 * Extension members of a problem. The RFC 9457 members are set by `problem()` and would
 * silently overwrite an extension of the same name, so the type refuses those names.
 */
export type ProblemExtensions = Record<string, unknown> & { type?: never; title?: never; status?: never; detail?: never; instance?: never };

/** Builds a ProblemError of a known type. */
export function problem(
  kind: ProblemTypeName,
  status: number,
  title: string,
  detail: string,
  extensions: ProblemExtensions = {},
  options?: { cause?: unknown; headers?: Record<string, string> },
): ProblemError {
  return new ProblemError({ ...extensions, type: ProblemType[kind], title, status, detail }, options);
}

export const badRequest = (detail: string, violations: Violation[] = []) =>
  problem('validation', 400, 'Request is invalid', detail, violations.length ? { violations } : {});

export const unauthorized = (detail = 'A valid bearer token is required.') =>
  problem('unauthorized', 401, 'Unauthorized', detail, {}, { headers: { 'www-authenticate': 'Bearer' } });

export const notFound = (detail = 'No such resource.') => problem('notFound', 404, 'Not found', detail);

export const methodNotAllowed = (allow: string[]) =>
  problem('methodNotAllowed', 405, 'Method not allowed', `Use one of: ${allow.join(', ')}.`, { allow }, {
    headers: { allow: allow.join(', ') },
  });

export const payloadTooLarge = (limit: number) =>
  problem('payloadTooLarge', 413, 'Payload too large', `The request body exceeds ${limit} bytes.`, { limit });

/** The request line and headers exceed what the server reads (API Gateway: 10,240 bytes). */
export const headersTooLarge = (limit: number) =>
  problem(
    'headersTooLarge',
    431,
    'Request headers too large',
    `The request line and headers exceed ${limit} bytes. Send fewer or smaller headers; a bearer token this large was not issued for this API.`,
    { limit },
  );

/** Not an HTTP request the server can parse (bad header characters, a broken request line or framing). */
export const malformedRequest = () =>
  problem(
    'malformedRequest',
    400,
    'Malformed HTTP request',
    'The request is not valid HTTP/1.1: a header name or value holds characters HTTP forbids (control characters, for one), or the request line or body framing is broken.',
  );

/** The client took too long to send its request. */
export const requestTimeout = () =>
  problem('requestTimeout', 408, 'Request timeout', 'The request was not received in time; send it again, all at once.');

export const malformedJson = (detail = 'The request body is not valid JSON.') =>
  problem('malformedJson', 400, 'Malformed JSON', detail);

export const serviceUnavailable = (detail: string, retryAfterSeconds: number, cause?: unknown) =>
  problem('unavailable', 503, 'Service unavailable', detail, { retryAfter: retryAfterSeconds }, {
    cause,
    headers: { 'retry-after': String(retryAfterSeconds) },
  });

/** The document every unexpected error turns into: nothing about the failure leaks. */
export function internalProblem(requestId?: string): ProblemDocument {
  return {
    type: ProblemType.internal,
    title: 'Internal error',
    status: 500,
    detail: 'Something went wrong on our side. It is safe to retry with the same Idempotency-Key.',
    ...(requestId ? { requestId } : {}),
  };
}
