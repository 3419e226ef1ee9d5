import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import type { APIGatewayProxyEventV2WithJWTAuthorizer, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import type { ZodError } from 'zod';
import { badRequest, internalProblem, malformedJson, notFound, payloadTooLarge, problem, ProblemError, ProblemType, serviceUnavailable, type Violation } from '../shared/problem';
import { InvalidCursorError, LedgerRequestRejectedError, LedgerThrottledError } from '../ports/ledger';
import type { Principal } from '../shared/principal';
import { type Logger } from '../shared/logger';
import { logger as rootLogger, publishMetrics, tracer } from './powertools';
import { identityProblem, IdentityRefusedError, principalFromRequest } from './identity';

/**
 * The HTTP edge shared by every API function: body limits and JSON parsing, the principal
 * from the verified token (identity.ts), route dispatch by API Gateway route key, and RFC
 * 9457 errors.
 * Handlers built on it receive typed requests and never see a raw event.
 */

/** API Gateway v2 event with the JWT authorizer context (also what the local server makes). */
export type HttpEvent = APIGatewayProxyEventV2WithJWTAuthorizer;
export type HttpResult = APIGatewayProxyStructuredResultV2;

export const MAX_BODY_BYTES = 64 * 1024;
const BODYLESS_METHODS = new Set(['GET', 'HEAD']);

export interface HttpRequest {
  routeKey: string;
  method: string;
  path: string;
  /** Lower-cased header names. */
  headers: Record<string, string>;
  pathParameters: Record<string, string>;
  query: Record<string, string>;
  /** Parsed JSON body, or undefined when there is none. Untrusted: validate with zod. */
  body: unknown;
  /** The body as sent (UTF-8), on routes declared `rawBody` only; they parse and bound it themselves. */
  rawBody?: string;
  /** The verified principal; present on every route that requires auth. */
  principal: Principal | undefined;
  requestId: string;
  logger: Logger;
}

export interface HttpResponse {
  status: number;
  body?: unknown;
  /** A body already serialized (with its content-type in `headers`); wins over `body`. */
  rawBody?: string;
  headers?: Record<string, string>;
}

export type RouteHandler = (req: HttpRequest) => Promise<HttpResponse>;

export interface RouteTable {
  /** `rawBody`: the route reads the body itself (a protocol with its own error format, MCP's JSON-RPC). */
  [routeKey: string]: { auth: boolean; handle: RouteHandler; rawBody?: boolean };
}

function lowerHeaders(headers: Record<string, string | undefined> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) if (typeof v === 'string') out[k.toLowerCase()] = v;
  return out;
}

function decodeBody(event: HttpEvent): unknown {
  if (event.body === undefined || event.body === null || event.body === '') return undefined;
  const raw = event.isBase64Encoded ? Buffer.from(event.body, 'base64') : Buffer.from(event.body, 'utf8');
  if (raw.byteLength > MAX_BODY_BYTES) throw payloadTooLarge(MAX_BODY_BYTES);
  const contentType = lowerHeaders(event.headers)['content-type'];
  if (contentType && !/^application\/([a-z0-9.+-]*\+)?json\b/i.test(contentType)) {
    throw problem(
      'unsupportedMediaType',
      415,
      'Unsupported media type',
      `Send the body as application/json, not ${contentType.slice(0, 100)}.`,
    );
  }
  const text = raw.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new ProblemError(malformedJson().problem, { cause });
  }
}

function rawBodyOf(event: HttpEvent): string {
  if (event.body === undefined || event.body === null) return '';
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
}

export function problemResult(doc: ProblemError['problem'], headers: Record<string, string> = {}): HttpResult {
  return {
    statusCode: doc.status,
    headers: { 'content-type': 'application/problem+json', 'cache-control': 'no-store', ...headers },
    body: JSON.stringify(doc),
  };
}

function jsonResult(res: HttpResponse): HttpResult {
  const headers: Record<string, string> = { 'cache-control': 'no-store', ...(res.headers ?? {}) };
  if (res.rawBody !== undefined) return { statusCode: res.status, headers, body: res.rawBody };
  if (res.body === undefined) return { statusCode: res.status, headers };
  return {
    statusCode: res.status,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(res.body),
  };
}

/** A query string's zod issues as violations (`query:<name>`). */
export function queryViolations(error: ZodError): Violation[] {
  return error.issues.map((i) => ({ path: `query:${i.path.join('.') || '(root)'}`, message: i.message }));
}

/** A body's zod issues as violations (JSON pointers). */
export function bodyViolations(error: ZodError): Violation[] {
  return error.issues.map((i) => ({ path: `/${i.path.join('/')}`, message: i.message }));
}

/** The 400 for a cursor this listing did not issue (forged, altered, someone else's, another filter). */
export const invalidCursor = (cause?: unknown) =>
  new ProblemError(badRequest('The cursor is not valid for this listing; start again without one.', [{ path: 'query:cursor', message: 'invalid cursor' }]).problem, { cause });

/**
 * Errors of the ports as problems, here once rather than at each call site: whichever route
 * reaches the ledger with input that got past validation answers 400, not 500, and a
 * throttled ledger is a 503 with Retry-After.
 */
function portProblem(error: unknown, log: Logger): ProblemError | undefined {
  if (error instanceof LedgerThrottledError) return serviceUnavailable('The ledger is busy; retry shortly.', 1, error);
  if (error instanceof InvalidCursorError) return invalidCursor(error);
  if (error instanceof LedgerRequestRejectedError) {
    // Worth a look: validation should have caught it first. The cause names no secret.
    const cause = error.cause instanceof Error ? error.cause.message.slice(0, 300) : undefined;
    log.warn('ledger refused a request as malformed', { cause });
    return new ProblemError(badRequest('The request names something that cannot be looked up; check its identifiers and parameters.').problem, { cause: error });
  }
  return undefined;
}

/** Maps a capability's domain errors to problem documents (its http.ts); undefined: not one of them. */
export type ProblemMapper = (error: unknown) => ProblemError | undefined;

/** Turns anything thrown into a problem response; only ProblemErrors say what went wrong. */
export function errorToResult(error: unknown, requestId: string, log: Logger, domain?: ProblemMapper): HttpResult {
  error = domain?.(error) ?? portProblem(error, log) ?? error;
  if (error instanceof ProblemError) {
    // An open circuit breaker is a designed refusal (its moves are audited and counted), not a fault here.
    if (error.problem.type === ProblemType.circuitOpen) log.info('refused: circuit breaker open', { problem: error.problem.type });
    else if (error.problem.status >= 500) log.error('request failed', { problem: error.problem.type, cause: error.cause });
    return problemResult({ ...error.problem, ...(error.problem.status >= 500 ? { requestId } : {}) }, error.headers);
  }
  const err = error instanceof Error ? error : new Error(String(error));
  log.error('unhandled error', { error: { name: err.name, message: err.message }, stack: err.stack });
  return problemResult(internalProblem(requestId));
}

/** The principal of an authenticated route, or a 401 problem. */
function authenticate(event: HttpEvent, headers: Record<string, string>, log: Logger): Principal {
  try {
    return principalFromRequest(event.requestContext?.authorizer?.jwt?.claims, headers.authorization);
  } catch (error) {
    if (error instanceof IdentityRefusedError) throw identityProblem(error, log);
    throw error;
  }
}

/** The request id API Gateway gave this request (the Lambda request id when there is none). */
function requestIdOf(event: HttpEvent, context: Context): string {
  return event.requestContext?.requestId ?? context.awsRequestId ?? 'local';
}

/**
 * The error middleware of every API function: whatever the route threw becomes an RFC 9457
 * response, and only a ProblemError says what went wrong (middy's http-error-handler rule:
 * nothing of a 5xx is exposed).
 */
export function problemResponses(domain?: ProblemMapper): middy.MiddlewareObj<HttpEvent, HttpResult, Error, Context> {
  return {
    onError: (request) => {
      const requestId = requestIdOf(request.event, request.context);
      request.response = errorToResult(request.error, requestId, rootLogger.child({ requestId, route: request.event.routeKey }), domain);
    },
  };
}

/**
 * Counts an authenticated /v1 request before its route runs (the rate limits): the response
 * headers to add to whatever the route answers, or a thrown ProblemError (429) that refuses it.
 */
export type RequestAdmission = (req: { routeKey: string; principal: Principal; body: unknown; logger: Logger }) => Promise<Record<string, string>>;

/** Adds headers to a result (the route's own win on a clash). */
function withHeaders(result: HttpResult, headers: Record<string, string>): HttpResult {
  return Object.keys(headers).length === 0 ? result : { ...result, headers: { ...headers, ...(result.headers ?? {}) } };
}

/**
 * Builds the Lambda handler for an API function from its route table: Powertools Logger and
 * Tracer, the problem-document error middleware, then the route. Middleware first, handler
 * last: the route function sees a parsed, authenticated request.
 */
export function httpApi(
  table: RouteTable,
  options: {
    problems?: ProblemMapper;
    /** Inside another handler that already runs the Powertools middlewares (the approvals function): skip them here. */
    nested?: boolean;
    /** Counts every authenticated /v1 request (the rate limits); its headers go on every answer to it. */
    admit?: RequestAdmission;
  } = {},
) {
  const dispatch = async (event: HttpEvent, context: Context): Promise<HttpResult> => {
    const requestId = requestIdOf(event, context);
    const log = rootLogger.child({ requestId, route: event.routeKey });
    const route = table[event.routeKey];
    if (!route) throw notFound(`No route ${event.routeKey}.`);
    const headers = lowerHeaders(event.headers);
    const principal = route.auth ? authenticate(event, headers, log) : undefined;
    const method = event.requestContext.http.method;
    // A GET's content has no meaning (RFC 9110 §9.3.1): ignore it rather than give reads
    // failure modes (415, malformed JSON) that no operation documents.
    let body: unknown;
    let bodyError: unknown;
    try {
      body = BODYLESS_METHODS.has(method) || route.rawBody ? undefined : decodeBody(event);
    } catch (error) {
      bodyError = error;
    }
    // Counted before the route runs, malformed bodies too: a refused request reaches nothing.
    const counted =
      options.admit && principal && event.rawPath.startsWith('/v1/') ? await options.admit({ routeKey: event.routeKey, principal, body, logger: log }) : {};
    try {
      if (bodyError !== undefined) throw bodyError;
      const req: HttpRequest = {
        routeKey: event.routeKey,
        method,
        path: event.rawPath,
        headers,
        pathParameters: { ...(event.pathParameters ?? {}) } as Record<string, string>,
        query: { ...(event.queryStringParameters ?? {}) } as Record<string, string>,
        body,
        ...(route.rawBody ? { rawBody: rawBodyOf(event) } : {}),
        principal,
        requestId,
        logger: log,
      };
      return withHeaders(jsonResult(await route.handle(req)), counted);
    } catch (error) {
      // Answered here rather than by the error middleware, so a refusal still carries the counts.
      if (Object.keys(counted).length === 0) throw error;
      return withHeaders(errorToResult(error, requestId, log, options.problems), counted);
    }
  };
  const handler = middy<HttpEvent, HttpResult, Error, Context>();
  if (!options.nested) {
    handler
      .use(injectLambdaContext(rootLogger.powertools, { resetKeys: true }))
      .use(captureLambdaHandler(tracer, { captureResponse: false }))
      .use(publishMetrics());
  }
  return handler.use(problemResponses(options.problems)).handler(dispatch);
}
