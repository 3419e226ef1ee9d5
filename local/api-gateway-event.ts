import type { JWTPayload } from 'jose';
import { z } from 'zod';
import type { HttpEvent } from '../lambdas/middleware/http';
import { routeKey, type RouteSpec } from '../lambdas/api/routes';

/**
 * What API Gateway (HTTP API, payload format 2.0) does between the socket and the Lambda:
 * route selection, the event shape, the JWT claims as the authorizer passes them, and how
 * the Lambda's result becomes a response. Pure functions; server.ts wires them to Node http.
 */

type Segment = { kind: 'literal'; value: string } | { kind: 'param'; name: string } | { kind: 'greedy'; name: string };

interface CompiledRoute {
  spec: RouteSpec;
  key: string;
  segments: Segment[];
  /** Higher wins: literal segments beat `{param}`, which beats `{proxy+}`. */
  specificity: number;
}

/** A route table ready for matching. */
export interface RouteMatcher {
  routes: readonly CompiledRoute[];
}

export type RouteMatch =
  | { kind: 'matched'; route: RouteSpec; routeKey: string; pathParameters: Record<string, string> }
  | { kind: 'method-not-allowed'; allow: string[] }
  | { kind: 'not-found' };

function compileSegment(raw: string): Segment {
  const greedy = /^\{([A-Za-z0-9_]+)\+\}$/.exec(raw);
  if (greedy?.[1]) return { kind: 'greedy', name: greedy[1] };
  const param = /^\{([A-Za-z0-9_]+)\}$/.exec(raw);
  if (param?.[1]) return { kind: 'param', name: param[1] };
  return { kind: 'literal', value: raw };
}

/** Compiles route specs (`/v1/actions/{id}`) for matching. */
export function compileRoutes(routes: readonly RouteSpec[]): RouteMatcher {
  return {
    routes: routes.map((spec) => {
      const segments = spec.path.split('/').slice(1).map(compileSegment);
      const specificity = segments.reduce(
        (score, s) => score * 3 + (s.kind === 'literal' ? 2 : s.kind === 'param' ? 1 : 0),
        0,
      );
      return { spec, key: routeKey(spec), segments, specificity };
    }),
  };
}

function matchPath(route: CompiledRoute, parts: string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < route.segments.length; i++) {
    const seg = route.segments[i]!;
    if (seg.kind === 'greedy') {
      const rest = parts.slice(i);
      if (rest.length === 0 || rest.every((p) => p === '')) return undefined;
      params[seg.name] = rest.join('/');
      return params;
    }
    const part = parts[i];
    if (part === undefined) return undefined;
    if (seg.kind === 'literal') {
      if (part !== seg.value) return undefined;
    } else {
      if (part === '') return undefined;
      params[seg.name] = part;
    }
  }
  return parts.length === route.segments.length ? params : undefined;
}

/**
 * Selects the route for a method and raw (still percent-encoded) path the way API Gateway
 * does: most specific path wins; a path that exists under other methods answers 405.
 */
export function matchRoute(matcher: RouteMatcher, method: string, rawPath: string): RouteMatch {
  if (!rawPath.startsWith('/')) return { kind: 'not-found' };
  let parts: string[];
  try {
    parts = rawPath.split('/').slice(1).map((p) => decodeURIComponent(p));
  } catch {
    return { kind: 'not-found' };
  }
  const candidates: Array<{ route: CompiledRoute; params: Record<string, string> }> = [];
  for (const route of matcher.routes) {
    const params = matchPath(route, parts);
    if (params) candidates.push({ route, params });
  }
  if (candidates.length === 0) return { kind: 'not-found' };
  const sameMethod = candidates
    .filter((c) => c.route.spec.method === method.toUpperCase())
    .sort((a, b) => b.route.specificity - a.route.specificity);
  const best = sameMethod[0];
  if (best) return { kind: 'matched', route: best.route.spec, routeKey: best.route.key, pathParameters: best.params };
  return { kind: 'method-not-allowed', allow: [...new Set(candidates.map((c) => c.route.spec.method))].sort() };
}

/**
 * JWT claims the way the HTTP API JWT authorizer hands them to the integration: every value
 * a string, arrays as `[a b]` (so `["a b"]` and `["a", "b"]` look alike). Mirrored here so
 * that no handler can come to rely on them: handlers read identity from the verified token
 * in the Authorization header (middleware/identity.ts) and only cross-check these strings.
 */
export function httpApiClaims(payload: JWTPayload): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(payload)) {
    if (value === undefined || value === null) continue;
    if (typeof value === 'string') out[name] = value;
    else if (typeof value === 'number' || typeof value === 'boolean') out[name] = String(value);
    else if (Array.isArray(value)) out[name] = `[${value.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(' ')}]`;
    else out[name] = JSON.stringify(value);
  }
  return out;
}

/** Scopes from `scope` (space-separated, RFC 8693) or `scp` (array), or null like API Gateway. */
export function scopesOf(payload: JWTPayload): string[] | null {
  const scope = payload.scope;
  if (typeof scope === 'string' && scope.trim() !== '') return scope.trim().split(/\s+/);
  const scp = payload.scp;
  if (Array.isArray(scp)) {
    const list = scp.filter((s): s is string => typeof s === 'string');
    return list.length ? list : null;
  }
  return null;
}

const TEXT_TYPES = /^(text\/|application\/([a-z0-9.+-]*\+)?(json|xml)\b|application\/(x-www-form-urlencoded|javascript)\b)/i;

/** API Gateway base64-encodes bodies whose content type is not textual. */
export function isTextContentType(contentType: string | undefined): boolean {
  return contentType === undefined || TEXT_TYPES.test(contentType);
}

/** The parts of an incoming HTTP request the event is built from. */
export interface IncomingRequest {
  method: string;
  /** The request target as sent (`/v1/tools?x=1`), not decoded. */
  url: string;
  /** Header values per lower-cased name, in arrival order (Node's `headersDistinct`). */
  headers: Record<string, string[]>;
  sourceIp: string;
  /** The body bytes, or undefined when there are none. */
  body: Buffer | undefined;
  requestId: string;
  now: Date;
}

/** Verified authorizer output for routes that require a token. */
export interface VerifiedAuthorizer {
  claims: JWTPayload;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `12/Mar/2020:19:03:58 +0000`, the requestContext.time format. */
export function apiGatewayTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** Splits a request target into raw path and raw query string (fragment dropped). */
export function splitTarget(url: string): { rawPath: string; rawQueryString: string } {
  const noFragment = url.split('#', 1)[0] ?? '';
  const q = noFragment.indexOf('?');
  return q === -1
    ? { rawPath: noFragment, rawQueryString: '' }
    : { rawPath: noFragment.slice(0, q), rawQueryString: noFragment.slice(q + 1) };
}

/**
 * Builds the payload-format-2.0 event for a matched route. Identity comes only from
 * `authorizer` (the verified token); on routes without an authorizer the event has no
 * `authorizer` member at all, as in API Gateway.
 */
export function buildApiGatewayEvent(
  req: IncomingRequest,
  match: Extract<RouteMatch, { kind: 'matched' }>,
  authorizer: VerifiedAuthorizer | undefined,
): HttpEvent {
  const { rawPath, rawQueryString } = splitTarget(req.url);

  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  for (const [name, values] of Object.entries(req.headers)) {
    if (name === 'cookie') {
      cookies = values.flatMap((v) => v.split(';').map((c) => c.trim())).filter((c) => c !== '');
      continue;
    }
    headers[name] = values.join(',');
  }
  headers['x-forwarded-for'] = headers['x-forwarded-for'] ? `${headers['x-forwarded-for']}, ${req.sourceIp}` : req.sourceIp;
  headers['x-forwarded-proto'] = 'http';

  let query: Record<string, string> | undefined;
  if (rawQueryString !== '') {
    query = {};
    for (const [k, v] of new URLSearchParams(rawQueryString)) query[k] = k in query ? `${query[k]},${v}` : v;
  }

  const contentType = headers['content-type'];
  const hasBody = req.body !== undefined && req.body.byteLength > 0;
  const text = isTextContentType(contentType);

  const requestContext = {
    accountId: '000000000000',
    apiId: 'local',
    domainName: headers.host ?? '127.0.0.1',
    domainPrefix: (headers.host ?? '127.0.0.1').split('.')[0] ?? 'local',
    http: {
      method: req.method.toUpperCase(),
      path: rawPath,
      protocol: 'HTTP/1.1',
      sourceIp: req.sourceIp,
      userAgent: headers['user-agent'] ?? '',
    },
    requestId: req.requestId,
    routeKey: match.routeKey,
    stage: '$default',
    time: apiGatewayTime(req.now),
    timeEpoch: req.now.getTime(),
    ...(authorizer
      ? {
          authorizer: {
            principalId: '',
            integrationLatency: 0,
            jwt: { claims: httpApiClaims(authorizer.claims), scopes: scopesOf(authorizer.claims) },
          },
        }
      : {}),
  };

  const event = {
    version: '2.0',
    routeKey: match.routeKey,
    rawPath,
    rawQueryString,
    ...(cookies?.length ? { cookies } : {}),
    headers,
    ...(query ? { queryStringParameters: query } : {}),
    ...(Object.keys(match.pathParameters).length ? { pathParameters: { ...match.pathParameters } } : {}),
    requestContext,
    ...(hasBody ? { body: text ? req.body!.toString('utf8') : req.body!.toString('base64') } : {}),
    isBase64Encoded: hasBody && !text,
  };
  // Routes without an authorizer carry no `authorizer`; the shared type assumes one, and
  // http.ts reads it with optional chaining.
  return event as HttpEvent;
}

const StructuredResultSchema = z.object({
  statusCode: z.number().int().min(100).max(599),
  headers: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  multiValueHeaders: z.record(z.string(), z.array(z.union([z.string(), z.number(), z.boolean()]))).optional(),
  body: z.string().optional(),
  isBase64Encoded: z.boolean().optional(),
  cookies: z.array(z.string()).optional(),
});

/** A response ready for Node http. */
export interface LocalResponse {
  statusCode: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

/**
 * Interprets a handler's return value as API Gateway does for format 2.0: a structured
 * result is used as is; anything else is sent as a 200 JSON body. Returns undefined for a
 * malformed structured result (API Gateway answers 500 then).
 */
export function resultToResponse(result: unknown): LocalResponse | undefined {
  if (result !== null && typeof result === 'object' && 'statusCode' in result) {
    const parsed = StructuredResultSchema.safeParse(result);
    if (!parsed.success) return undefined;
    const r = parsed.data;
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(r.multiValueHeaders ?? {})) headers[k.toLowerCase()] = v.map(String);
    for (const [k, v] of Object.entries(r.headers ?? {})) headers[k.toLowerCase()] = String(v);
    if (r.cookies?.length) headers['set-cookie'] = r.cookies;
    const body = r.body === undefined ? Buffer.alloc(0) : Buffer.from(r.body, r.isBase64Encoded ? 'base64' : 'utf8');
    return { statusCode: r.statusCode, headers, body };
  }
  const text = typeof result === 'string' ? result : JSON.stringify(result ?? null);
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from(text, 'utf8') };
}
