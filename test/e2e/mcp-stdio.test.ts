import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { StdioServerTransport } from '@modelcontextprotocol/server/stdio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lineWriter, startBridge } from '../../bin/commands/mcp';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';

/**
 * `npx airlock mcp`, the stdio bridge, as a desktop client runs it: a child process spoken to
 * by the official SDK's Client over stdio, relaying to the local control plane's /mcp.
 */
const ROOT = join(import.meta.dirname, '..', '..');
let cp: TestControlPlane;
let alice: string;

beforeAll(async () => {
  cp = await startTestControlPlane();
  alice = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
});
afterAll(async () => {
  await cp?.close();
});

async function connect(env: Record<string, string>, options: { protocolVersion?: string } = {}): Promise<{ client: Client; stderr: () => string }> {
  const client = new Client(
    { name: 'desktop-client', version: '1.0.0' },
    options.protocolVersion ? { supportedProtocolVersions: [options.protocolVersion] } : { versionNegotiation: { mode: { pin: '2026-07-28' } } },
  );
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [join(ROOT, 'bin', 'airlock.mjs'), 'mcp'],
    cwd: ROOT,
    env: { AIRLOCK_URL: cp.url, ...env },
    stderr: 'pipe',
  });
  let err = '';
  transport.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
  try {
    await client.connect(transport);
  } catch (e) {
    throw new Error(`${String(e)}\n${err}`);
  }
  return { client, stderr: () => err };
}

describe('npx airlock mcp (stdio bridge) with the official SDK client', () => {
  it('lists the tools and runs a call through /mcp; a retry with the same key is replayed (2026-07-28)', async () => {
    const { client } = await connect({ AIRLOCK_TOKEN: alice });
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['travel-search_flights', 'echo-say', 'airlock-submit_plan']));
      const call = () => client.callTool({ name: 'echo-say', arguments: { message: 'over stdio' }, _meta: { 'io.airlock/idempotency-key': 'stdio-once' } });
      const first = (await call()).structuredContent as { actionId: string; status: string; replayed: boolean };
      expect(first).toMatchObject({ status: 'completed', replayed: false });
      const again = (await call()).structuredContent as { actionId: string; replayed: boolean };
      expect(again).toMatchObject({ actionId: first.actionId, replayed: true });
      // The action is alice's, recorded with the desktop client as the agent.
      const action = await cp.get(alice, `/v1/actions/${first.actionId}`);
      expect(action.body.agent?.name ?? action.body.actor?.name).toBe('desktop-client');
    } finally {
      await client.close();
    }
  });

  it('serves a 2025-11-25 client (initialize, then the negotiated MCP-Protocol-Version on every request)', async () => {
    const { client } = await connect({ AIRLOCK_TOKEN: alice }, { protocolVersion: '2025-11-25' });
    try {
      expect(client.getServerVersion()?.name).toBe('airlock');
      const res = await client.callTool({ name: 'echo-say', arguments: { message: 'legacy over stdio' } });
      expect(res.isError).toBeFalsy();
      expect(res.structuredContent).toMatchObject({ status: 'completed' });
    } finally {
      await client.close();
    }
  });

  it('answers with a JSON-RPC error that says why when the token is refused, and never hangs', async () => {
    await expect(connect({ AIRLOCK_TOKEN: 'not-a-jwt' }, { protocolVersion: '2025-11-25' })).rejects.toThrow(/HTTP 401.*AIRLOCK_TOKEN/s);
  });
});

describe('the bridge relay', () => {
  it('answers every request with an error naming the endpoint when the server cannot be reached', async () => {
    // Prepare: the bridge over in-memory pipes, pointed at a closed port.
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const lines: unknown[] = [];
    stdout.on('data', (chunk: Buffer) => lines.push(...chunk.toString().trim().split('\n').map((l) => JSON.parse(l))));
    const bridge = await startBridge(new StdioServerTransport(stdin, stdout), { url: 'http://127.0.0.1:9', token: async () => 't', write: lineWriter(stdout) });
    // Act
    stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list', params: {} })}\n`);
    stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
    stdin.write('{not json\n'); // skipped, as the SDK's stdio servers skip it
    stdin.write('{"hello":"world"}\n');
    stdin.end();
    await bridge.closed;
    // Assess
    await expect.poll(() => lines.length).toBe(2);
    expect(lines).toContainEqual({ jsonrpc: '2.0', id: 7, error: { code: -32000, message: expect.stringMatching(/cannot reach http:\/\/127\.0\.0\.1:9\/mcp/) } });
    expect(lines).toContainEqual({ jsonrpc: '2.0', id: null, error: { code: -32600, message: expect.stringMatching(/Invalid Request/) } });
  });
});
