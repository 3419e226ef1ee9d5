import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { Server, WebStandardStreamableHTTPServerTransport, type CallToolResult, type JSONRPCMessage } from '@modelcontextprotocol/server';
import { SERVER_INFO } from '../lambdas/mcp/server';

/**
 * The conformance suite's two push-style fixtures of the 2025-era protocol, `test_sampling`
 * and `test_elicitation`: the tool sends the client a request (sampling/createMessage,
 * elicitation/create) on the call's open SSE stream and waits for the client to POST the
 * answer. Served only by a local runtime started for `npm run test:mcp-conformance`.
 *
 * Why here and not in lambdas/mcp/conformance-fixtures.ts: a push needs the call's response
 * streamed while it runs and the client's next POST routed to the call still waiting, which
 * the Lambda-shaped path (one buffered answer per request, nothing kept between requests)
 * cannot do by design — and Airlock's own tools never push (on 2026-07-28 an approval is an
 * input_required result, which the buffered path serves). So this path sits in the local
 * runtime, in front of the route table, and handles nothing but these two tools and the
 * answers to their requests; everything else goes the normal way.
 */

/** The push fixtures (the buffered path answers them with an error result that points here). */
export const PushFixtureNames = ['test_sampling', 'test_elicitation'] as const;

/** Verifies a bearer token (the runtime's dev issuer); throws when it is not valid. */
export type VerifyToken = (token: string) => Promise<unknown>;

const LOOPBACK = /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/i;
const BEARER = /^bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

/** Handles a POST /mcp body when it is one of ours; false: the normal path serves it. */
export type McpInterceptor = (req: IncomingMessage, res: ServerResponse, body: string) => Promise<boolean>;

/** The interceptor for the push fixtures; `verify` is the same issuer the route checks. */
export function mcpPushFixtures(verify: VerifyToken): McpInterceptor {
  // Calls waiting for the client's answer, by bearer token: the answer comes on a new POST.
  const waiting = new Map<string, WebStandardStreamableHTTPServerTransport>();

  return async (req, res, body) => {
    if (!LOOPBACK.test(req.headers.host ?? '')) return false;
    const token = BEARER.exec(req.headers.authorization ?? '')?.[1];
    if (!token) return false;
    let message: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(body);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return false;
      message = parsed as Record<string, unknown>;
    } catch {
      return false;
    }
    const params = message.params as { name?: unknown } | undefined;
    const isPushCall = message.method === 'tools/call' && (PushFixtureNames as readonly string[]).includes(String(params?.name)) && req.headers['mcp-protocol-version'] !== '2026-07-28';
    const isAnswer = !('method' in message) && 'id' in message && waiting.has(token);
    if (!isPushCall && !isAnswer) return false;
    try {
      await verify(token);
    } catch {
      return false; // the normal path answers the 401 challenge
    }

    if (isAnswer) {
      waiting.get(token)!.onmessage?.(message as unknown as JSONRPCMessage);
      res.writeHead(202).end();
      return true;
    }

    const server = new Server(SERVER_INFO, { capabilities: { tools: {} } });
    server.setRequestHandler('tools/call', async (request, ctx): Promise<CallToolResult> => {
      const args = (request.params.arguments ?? {}) as Record<string, unknown>;
      if (request.params.name === 'test_sampling') {
        const prompt = typeof args.prompt === 'string' ? args.prompt : 'Say hello.';
        const answer = (await ctx.mcpReq.send({ method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 100 } })) as {
          content?: { text?: unknown };
        };
        return { content: [{ type: 'text', text: `LLM response: ${String(answer.content?.text ?? '')}` }] };
      }
      const answer = await ctx.mcpReq.send({
        method: 'elicitation/create',
        params: {
          message: typeof args.message === 'string' ? args.message : 'Please provide your information',
          requestedSchema: { type: 'object', properties: { username: { type: 'string' }, email: { type: 'string' } }, required: ['username', 'email'] },
        },
      });
      return { content: [{ type: 'text', text: `User response: ${JSON.stringify(answer)}` }] };
    });
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    await server.connect(transport);
    waiting.set(token, transport);
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
    try {
      const response = await transport.handleRequest(new Request(`http://${req.headers.host}/mcp`, { method: 'POST', headers, body }), { parsedBody: message });
      res.writeHead(response.status, Object.fromEntries(response.headers));
      if (response.body) {
        await new Promise<void>((resolve, reject) => {
          Readable.fromWeb(response.body as import('node:stream/web').ReadableStream).on('error', reject).pipe(res).on('finish', resolve).on('error', reject);
        });
      } else res.end();
    } finally {
      waiting.delete(token);
      await server.close();
    }
    return true;
  };
}
