import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { createIntakeHandler } from '../../lambdas/intake/handler';
import { MAX_MCP_MESSAGE_BYTES } from '../../lambdas/mcp/http';
import { TokenRejectedError, type TokenVerifier } from '../../lambdas/ports/tokens';
import { catalogToolName, safeToolName, SAFE_TOOL_NAME } from '../../lambdas/tools/names';
import { toolRegistry } from '../../lambdas/tools/registry';
import { mcpToolset } from '../../lambdas/mcp/tools';
import { httpEvent, lambdaContext } from '../helpers/events';
import { intakeFunctionDeps, RecordingWorkflow } from '../helpers/intake';

/**
 * The MCP edge at its trust boundary: whatever arrives on POST /mcp (malformed JSON-RPC,
 * unknown methods, batches, oversized messages, wrong protocol versions, hostile headers)
 * gets a 4xx or a JSON-RPC answer, never a 5xx.
 */
const ddb = mockClient(DynamoDBClient);
const tokens: TokenVerifier = {
  issuer: 'https://issuer.test/',
  verify: async (token) => {
    if (token !== 'good.token.sig') throw new TokenRejectedError('test');
    return { sub: 'alice', roles: ['Employee'], iss: 'https://issuer.test/', exp: 4_000_000_000 };
  },
};
const deps = intakeFunctionDeps({ client: new DynamoDBClient({ region: 'us-east-1' }), tableName: 'ledger' }, { workflow: new RecordingWorkflow(), tokens });
const handler = createIntakeHandler(async () => deps);
beforeEach(() => {
  ddb.reset();
  ddb.on(GetItemCommand).resolves({});
});

async function post(body: string, headers: Record<string, string> = {}) {
  const event = httpEvent({
    method: 'POST',
    path: '/mcp',
    claims: null,
    body,
    headers: { authorization: 'Bearer good.token.sig', accept: 'application/json, text/event-stream', host: '127.0.0.1:8787', ...headers },
  });
  const res = await handler(event, lambdaContext);
  return { status: res.statusCode ?? 0, headers: (res.headers ?? {}) as Record<string, string>, body: String(res.body ?? '') };
}

const versions = fc.oneof(fc.constantFrom('2026-07-28', '2025-11-25', '2025-06-18', '1999-01-01', '', 'x'.repeat(300)), fc.string({ maxLength: 20 }));
const methods = fc.oneof(
  fc.constantFrom('initialize', 'tools/list', 'tools/call', 'server/discover', 'ping', 'resources/list', 'notifications/initialized', '', 'rpc.discover'),
  fc.string({ maxLength: 40 }),
);
const rpcMessage = fc.record(
  {
    jsonrpc: fc.oneof(fc.constant('2.0'), fc.jsonValue()),
    id: fc.oneof(fc.integer(), fc.string({ maxLength: 20 }), fc.constant(null), fc.jsonValue()),
    method: methods,
    params: fc.oneof(
      fc.jsonValue(),
      fc.record({ name: fc.oneof(fc.constantFrom('echo-say', 'airlock-cancel_action', 'nope'), fc.string()), arguments: fc.jsonValue(), _meta: fc.jsonValue() }),
    ),
  },
  { requiredKeys: [] },
);

describe('POST /mcp under hostile input', () => {
  it('never answers 5xx, and every error is JSON-RPC or a problem document', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          rpcMessage.map((m) => JSON.stringify(m)),
          fc.array(rpcMessage, { maxLength: 5 }).map((b) => JSON.stringify(b)),
          fc.string({ maxLength: 200 }),
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        versions,
        fc.constantFrom('application/json', 'text/plain', 'application/json; charset=utf-8', ''),
        async (body, version, contentType) => {
          const res = await post(body, { 'mcp-protocol-version': version, 'content-type': contentType });
          expect(res.status, body.slice(0, 200)).toBeLessThan(500);
          if (res.status >= 400 && res.body.length > 0) {
            const doc = JSON.parse(res.body) as { error?: { code?: unknown; message?: unknown }; type?: unknown };
            expect(typeof doc.error?.message === 'string' || typeof doc.type === 'string', res.body.slice(0, 200)).toBe(true);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('answers batches, unparsable and oversized messages with JSON-RPC errors', async () => {
    const list = { jsonrpc: '2.0', id: 1, method: 'tools/list' };
    expect(JSON.parse((await post(JSON.stringify([list, list]))).body)).toMatchObject({ error: { code: -32600, message: expect.stringMatching(/batches/) } });
    expect(JSON.parse((await post('{"jsonrpc":')).body)).toMatchObject({ error: { code: -32700 } });
    const big = await post(JSON.stringify({ ...list, params: { pad: 'x'.repeat(MAX_MCP_MESSAGE_BYTES) } }));
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body)).toMatchObject({ error: { code: -32600, message: expect.stringMatching(/larger than/) } });
    const wrongVersion = await post(JSON.stringify(list), { 'mcp-protocol-version': '1999-01-01' });
    expect(wrongVersion.status).toBe(400);
    expect(JSON.parse(wrongVersion.body).error.message).toMatch(/protocol version/i);
  });

  it('refuses a token it cannot verify with the RFC 9728 challenge', async () => {
    const res = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }), { authorization: 'Bearer bad.token.sig' });
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer resource_metadata="http://127.0.0.1:8787/.well-known/oauth-protected-resource/mcp", error="invalid_token"');
  });
});

describe('safe tool names', () => {
  it('map every catalog name to a name every function-calling API accepts, and back', () => {
    for (const tool of toolRegistry.all()) {
      const safe = safeToolName(tool.fullName);
      expect(safe).toMatch(SAFE_TOOL_NAME);
      expect(catalogToolName(safe)).toBe(tool.fullName);
    }
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z][a-z0-9_]{0,20}\.[a-z][a-z0-9_]{0,20}$/), (name) => {
        expect(catalogToolName(safeToolName(name))).toBe(name);
      }),
    );
  });

  it('annotate by tier: reads read-only and idempotent, commits destructive', () => {
    const { tools } = mcpToolset(toolRegistry);
    for (const tool of toolRegistry.all()) {
      const mcp = tools.find((t) => t.name === safeToolName(tool.fullName))!;
      expect(mcp.annotations.readOnlyHint).toBe(tool.tool.tier === 'read');
      expect(mcp.annotations.destructiveHint).toBe(tool.tool.tier === 'commit');
      expect(mcp.annotations.idempotentHint).toBe(tool.tool.tier === 'read');
      expect(mcp.inputSchema.$schema).toBeUndefined();
    }
  });
});
