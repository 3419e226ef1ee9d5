import { createMcpHandler, hostHeaderValidationResponse, isLegacyRequest, WebStandardStreamableHTTPServerTransport, type AuthInfo } from '@modelcontextprotocol/server';
import type { HttpRequest, HttpResponse } from '../middleware/http';
import { TokenRejectedError, type TokenVerifier } from '../ports/tokens';
import type { ToolRegistry } from '../ports/tools';
import { InvalidClaimsError, principalFromVerifiedClaims, type Principal } from '../shared/principal';
import { unauthorized } from '../shared/problem';
import { createAirlockMcpServer, type McpBackend, type McpSession } from './server';
import { isConformanceFixture } from './conformance-fixtures';
import { mcpToolsJson } from './tools';

/**
 * MCP over HTTP (Streamable HTTP, stateless): `POST /mcp` and the OAuth 2.0 Protected Resource
 * Metadata (RFC 9728) that tells a client where its tokens come from. The SDK's
 * `createMcpHandler` serves both protocol eras from one factory: 2026-07-28 requests carry
 * their own `_meta` envelope (`server/discover`, no session), 2025-era clients `initialize`
 * and are served statelessly. Nothing lives between requests, so any Lambda instance serves
 * any request.
 *
 * The token is verified here rather than by API Gateway's JWT authorizer, because MCP clients
 * learn where to sign in from the `401`'s `WWW-Authenticate: Bearer resource_metadata=…`,
 * which the authorizer cannot send. Same issuer, audience and keys (TokenVerifier).
 */

/** Largest JSON-RPC message accepted: the HTTP API's body limit, so an envelope fits in either. */
export const MAX_MCP_MESSAGE_BYTES = 64 * 1024;

/** The path of the MCP endpoint and of its protected resource metadata (RFC 9728 §3.1). */
export const MCP_PATH = '/mcp';
export const RESOURCE_METADATA_PATH = '/.well-known/oauth-protected-resource';

/** What the MCP edge needs from the composition. */
export interface McpEdgeDeps {
  tools: ToolRegistry;
  tokens: TokenVerifier;
  /**
   * Host names accepted in the Host header (DNS-rebinding protection for a server on
   * loopback); undefined: any (API Gateway only routes its own domains).
   */
  allowedHosts?: readonly string[];
  /**
   * Where the web console lives (absolute, or a path on this API's own origin, as locally):
   * approval pages are `<console>#/approvals/<id>`. Undefined: no URL elicitation is offered.
   */
  consoleUrl?: string;
  /**
   * Serve the conformance suite's `test_*` fixture tools (conformance-fixtures.ts): set only
   * by the local runtime started for `npm run test:mcp-conformance`, never in AWS.
   */
  conformanceFixtures?: boolean;
}

const sessions = new WeakMap<AuthInfo, McpSession>();

function sessionOf(authInfo: AuthInfo | undefined): McpSession {
  const session = authInfo ? sessions.get(authInfo) : undefined;
  // Only requests that passed authenticate() reach the SDK, each with its session.
  if (!session) throw new Error('MCP request without a verified session');
  return session;
}

/** The 2026-07-28 leg; 'auto' answers one JSON body, since no handler here sends anything before its result. */
const modern = createMcpHandler((ctx) => createAirlockMcpServer(sessionOf(ctx.authInfo)), {
  legacy: 'reject',
  maxRequestBodySize: MAX_MCP_MESSAGE_BYTES,
  keepAliveMs: 0,
});

/**
 * The 2025-era leg, stateless (no session id) like the SDK's own fallback, but answering
 * plain JSON rather than a one-event SSE stream: a Lambda response is buffered anyway.
 */
async function serveLegacy(request: Request, authInfo: AuthInfo, parsedBody: unknown, stream: boolean): Promise<Response> {
  const server = createAirlockMcpServer(sessionOf(authInfo));
  const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: !stream });
  await server.connect(transport);
  try {
    const response = await transport.handleRequest(request, { authInfo, parsedBody });
    // Read the body before closing: the transport ends the exchange on close.
    return new Response(await response.text(), { status: response.status, headers: response.headers });
  } finally {
    await server.close();
  }
}

/** The public base URL of this API as the caller reached it. */
function baseUrl(req: HttpRequest): string {
  const proto = req.headers['x-forwarded-proto'] === 'https' ? 'https' : req.headers['x-forwarded-proto'] === 'http' ? 'http' : undefined;
  const host = req.headers.host ?? 'localhost';
  const loopback = /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/i.test(host);
  return `${proto ?? (loopback ? 'http' : 'https')}://${host}`;
}

/** RFC 9728 §3: the metadata URL for the resource `${base}/mcp`. */
export function resourceMetadataUrl(req: HttpRequest): string {
  return `${baseUrl(req)}${RESOURCE_METADATA_PATH}${MCP_PATH}`;
}

/** GET /.well-known/oauth-protected-resource[/mcp]: the resource, its issuer, how to send tokens. */
export function protectedResourceMetadata(req: HttpRequest, tokens: TokenVerifier): HttpResponse {
  return {
    status: 200,
    headers: { 'cache-control': 'public, max-age=300' },
    body: {
      resource: `${baseUrl(req)}${MCP_PATH}`,
      authorization_servers: [tokens.issuer],
      bearer_methods_supported: ['header'],
      resource_name: 'Airlock',
      resource_documentation: `${baseUrl(req)}/openapi.json`,
    },
  };
}

function jsonRpcError(status: number, code: number, message: string, headers: Record<string, string> = {}): HttpResponse {
  return {
    status,
    headers: { 'content-type': 'application/json', ...headers },
    rawBody: JSON.stringify({ jsonrpc: '2.0', id: null, error: { code, message } }),
  };
}

const BEARER = /^bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

/** The 401 an MCP client reads to find the authorization server (RFC 9728 §5.1, RFC 6750 §3). */
function challenge(req: HttpRequest, tokenSent: boolean, detail?: string): HttpResponse {
  const doc = unauthorized(detail).problem;
  const error = tokenSent ? ', error="invalid_token"' : '';
  return {
    status: 401,
    headers: { 'content-type': 'application/problem+json', 'www-authenticate': `Bearer resource_metadata="${resourceMetadataUrl(req)}"${error}` },
    rawBody: JSON.stringify(doc),
  };
}

async function authenticate(req: HttpRequest, tokens: TokenVerifier): Promise<{ principal: Principal; token: string } | HttpResponse> {
  const header = req.headers.authorization;
  const match = header === undefined ? null : BEARER.exec(header.trim());
  if (!match?.[1]) return challenge(req, header !== undefined, 'Send Authorization: Bearer <token> from the issuer named in the resource metadata.');
  try {
    const claims = await tokens.verify(match[1]);
    return { principal: principalFromVerifiedClaims(claims), token: match[1] };
  } catch (error) {
    if (error instanceof TokenRejectedError) {
      req.logger.info('mcp token rejected', { reason: error.reason });
      return challenge(req, true, 'The bearer token is invalid or expired.');
    }
    if (error instanceof InvalidClaimsError) {
      req.logger.warn('mcp token claims refused', { claims: error.claims });
      return challenge(req, true, `The bearer token's claims are not usable (${error.claims.join(', ')}).`);
    }
    throw error;
  }
}

/**
 * POST /mcp: authenticates, bounds and pre-checks the message (JSON-RPC errors for what the
 * protocol forbids: oversized messages, unparsable JSON, batches), then lets the SDK serve it
 * with a server bound to this principal's session.
 */
export async function serveMcp(req: HttpRequest, deps: McpEdgeDeps, backend: (principal: Principal) => McpBackend): Promise<HttpResponse> {
  const url = `${baseUrl(req)}${MCP_PATH}`;
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) headers.set(k, v);
  if (deps.allowedHosts) {
    const refused = hostHeaderValidationResponse(new Request(url, { method: 'POST', headers }), [...deps.allowedHosts]);
    if (refused) return { status: refused.status, headers: Object.fromEntries(refused.headers), rawBody: await refused.text() };
    const origin = req.headers.origin;
    if (origin !== undefined && !originAllowed(origin, deps.allowedHosts)) {
      return jsonRpcError(403, -32000, `Forbidden: origin ${origin.slice(0, 100)} may not call this server.`);
    }
  }

  const auth = await authenticate(req, deps.tokens);
  if ('status' in auth) return auth;

  const raw = req.rawBody ?? '';
  if (Buffer.byteLength(raw, 'utf8') > MAX_MCP_MESSAGE_BYTES) {
    return jsonRpcError(413, -32600, `Invalid Request: the message is larger than ${MAX_MCP_MESSAGE_BYTES} bytes; send smaller arguments.`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return jsonRpcError(400, -32700, 'Parse error: the body is not valid JSON.');
  }
  // JSON-RPC batches were removed from MCP in 2025-06-18; one message per request.
  if (Array.isArray(parsed)) return jsonRpcError(400, -32600, 'Invalid Request: JSON-RPC batches are not supported; send one message per request.');

  const authInfo: AuthInfo = { token: auth.token, clientId: auth.principal.sub, scopes: [] };
  const request = new Request(url, { method: 'POST', headers, body: raw });
  const legacy = await isLegacyRequest(request, parsed, { maxRequestBodySize: MAX_MCP_MESSAGE_BYTES });
  const consolePage = deps.consoleUrl === undefined ? undefined : new URL(deps.consoleUrl, `${baseUrl(req)}/`).href;
  const session: McpSession = {
    principalSub: auth.principal.sub,
    ...(auth.principal.manager ? { principalManager: auth.principal.manager } : {}),
    backend: backend(auth.principal),
    tools: deps.tools,
    modernEra: !legacy,
    ...(consolePage ? { approvalPageUrl: (approvalId: string) => `${consolePage}#/approvals/${encodeURIComponent(approvalId)}` } : {}),
    spliceToolsList: true,
    ...(deps.conformanceFixtures ? { conformanceFixtures: true } : {}),
  };
  sessions.set(authInfo, session);
  // A fixture that notifies mid-call (progress, logs) needs the SSE answer to carry them; the buffered stream holds them all.
  const stream = session.conformanceFixtures === true && isFixtureCall(parsed);
  const response = legacy ? await serveLegacy(request, authInfo, parsed, stream) : await modern.fetch(request, { authInfo, parsedBody: parsed });
  const out: Record<string, string> = {};
  response.headers.forEach((value, key) => {
    out[key] = value;
  });
  const text = await response.text();
  return { status: response.status, headers: out, rawBody: session.toolsListed ? spliceToolsList(text, mcpToolsJson(deps.tools)) : text };
}

/** Stands for the tools array while the SDK's small answer is serialized; a string no answer carries. */
const SPLICE_MARK = 'airlock:tools-list-splice';

/**
 * Puts the cached `tools` JSON into the SDK's tools/list answer (which the handler left with
 * an empty list): a JSON body, or the SSE event carrying it. Only a result whose `tools` is
 * that empty array is touched; anything else (an error) passes as the SDK wrote it.
 */
export function spliceToolsList(body: string, toolsJson: string): string {
  const splice = (json: string): string | undefined => {
    let message: { result?: { tools?: unknown } };
    try {
      message = JSON.parse(json) as typeof message;
    } catch {
      return undefined;
    }
    if (!Array.isArray(message.result?.tools) || message.result.tools.length !== 0) return undefined;
    const marked = JSON.stringify({ ...message, result: { ...message.result, tools: SPLICE_MARK } });
    return marked.replace(`"tools":"${SPLICE_MARK}"`, () => `"tools":${toolsJson}`);
  };
  const whole = splice(body);
  if (whole !== undefined) return whole;
  return body
    .split('\n')
    .map((line) => {
      const spliced = line.startsWith('data:') ? splice(line.slice(5)) : undefined;
      return spliced === undefined ? line : `data: ${spliced}`;
    })
    .join('\n');
}

function isFixtureCall(message: unknown): boolean {
  const m = message as { method?: unknown; params?: { name?: unknown } } | null;
  return m?.method === 'tools/call' && typeof m.params?.name === 'string' && isConformanceFixture(m.params.name);
}

function originAllowed(origin: string, hosts: readonly string[]): boolean {
  try {
    const { hostname } = new URL(origin);
    return hosts.includes(hostname) || hosts.includes(`[${hostname}]`) || hosts.includes(hostname.replace(/^\[|\]$/g, ''));
  } catch {
    return false;
  }
}
