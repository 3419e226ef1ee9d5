import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConformanceFixtureNames, ERROR_TOOL } from '../../lambdas/mcp/conformance-fixtures';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';

/**
 * The conformance suite's `test_*` fixture tools (lambdas/mcp/conformance-fixtures.ts): served
 * by a control plane started for the conformance run, and by no other. Driven here with the
 * official SDK client of both eras, so a regression shows in `npm test`, not only in the
 * conformance run.
 */
let plain: TestControlPlane;
let fixtures: TestControlPlane;

beforeAll(async () => {
  [plain, fixtures] = await Promise.all([startTestControlPlane(), startTestControlPlane({ controlPlane: { mcpConformanceFixtures: true } })]);
});
afterAll(async () => {
  await Promise.all([plain?.close(), fixtures?.close()]);
});

async function connect(cp: TestControlPlane, era: '2026-07-28' | '2025-11-25', capabilities: Record<string, unknown> = {}): Promise<Client> {
  const token = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
  const client = new Client(
    { name: 'fixture-test', version: '1.0.0' },
    era === '2025-11-25' ? { supportedProtocolVersions: [era], capabilities } : { versionNegotiation: { mode: { pin: era } }, capabilities },
  );
  await client.connect(new StreamableHTTPClientTransport(new URL(`${cp.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}

async function withClient<T>(cp: TestControlPlane, era: '2026-07-28' | '2025-11-25', use: (client: Client) => Promise<T>, capabilities?: Record<string, unknown>): Promise<T> {
  const client = await connect(cp, era, capabilities);
  try {
    return await use(client);
  } finally {
    await client.close();
  }
}

describe('conformance fixtures stay out of the default runtime', () => {
  for (const era of ['2026-07-28', '2025-11-25'] as const) {
    it(`lists none and runs none (${era})`, async () => {
      await withClient(plain, era, async (client) => {
        const { tools } = await client.listTools();
        expect(tools.length).toBeGreaterThan(0);
        expect(tools.filter((t) => t.name.startsWith('test_'))).toEqual([]);
        expect(client.getServerCapabilities()?.logging).toBeUndefined();
        for (const name of ConformanceFixtureNames) {
          await expect(client.callTool({ name, arguments: {} })).rejects.toThrow(/Unknown tool/);
        }
      });
    });
  }
});

describe('conformance fixtures when the runtime is started for the conformance run', () => {
  it('lists every fixture after the catalog and Airlock’s own tools', async () => {
    await withClient(fixtures, '2026-07-28', async (client) => {
      const { tools } = await client.listTools();
      const names = tools.map((t) => t.name);
      expect(names).toEqual(expect.arrayContaining([...ConformanceFixtureNames, 'travel-search_flights', 'airlock-submit_plan']));
      expect(names.slice(-ConformanceFixtureNames.length)).toEqual([...ConformanceFixtureNames]);
    });
  });

  for (const era of ['2026-07-28', '2025-11-25'] as const) {
    it(`returns each content type (${era})`, async () => {
      await withClient(fixtures, era, async (client) => {
        const simple = await client.callTool({ name: 'test_simple_text', arguments: {} });
        expect(simple.content).toEqual([{ type: 'text', text: 'This is a simple text response for testing.' }]);
        const image = (await client.callTool({ name: 'test_image_content', arguments: {} })).content as Array<{ type: string; data: string; mimeType: string }>;
        expect(image[0]).toMatchObject({ type: 'image', mimeType: 'image/png' });
        expect(Buffer.from(image[0]!.data, 'base64').subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
        const audio = (await client.callTool({ name: 'test_audio_content', arguments: {} })).content as Array<{ type: string; data: string; mimeType: string }>;
        expect(audio[0]).toMatchObject({ type: 'audio', mimeType: 'audio/wav' });
        const wav = Buffer.from(audio[0]!.data, 'base64');
        expect([wav.subarray(0, 4).toString(), wav.subarray(8, 12).toString(), wav.readUInt32LE(4)]).toEqual(['RIFF', 'WAVE', wav.length - 8]);
        const embedded = await client.callTool({ name: 'test_embedded_resource', arguments: {} });
        expect(embedded.content).toEqual([{ type: 'resource', resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' } }]);
        const mixed = (await client.callTool({ name: 'test_multiple_content_types', arguments: {} })).content as Array<{ type: string }>;
        expect(mixed.map((c) => c.type)).toEqual(['text', 'image', 'resource']);
      });
    });

    it(`answers test_error_handling with intake's own refusal as an isError result (${era})`, async () => {
      await withClient(fixtures, era, async (client) => {
        const result = await client.callTool({ name: 'test_error_handling', arguments: {} });
        expect(result.isError).toBe(true);
        expect((result.content as Array<{ text: string }>)[0]!.text.length).toBeGreaterThan(0);
        const problem = result.structuredContent as { status: number; type: string; detail: string };
        expect(problem.status).toBeGreaterThanOrEqual(400);
        expect(problem.status).toBeLessThan(500);
        expect(JSON.stringify(problem)).toContain(ERROR_TOOL);
      });
    });

    it(`streams three increasing progress notifications to the request's token (${era})`, async () => {
      await withClient(fixtures, era, async (client) => {
        const seen: number[] = [];
        const result = await client.callTool({ name: 'test_tool_with_progress', arguments: {} }, { onprogress: (p) => void seen.push(p.progress) });
        expect(result.isError ?? false).toBe(false);
        expect(seen).toEqual([0, 50, 100]);
      });
    });
  }

  it('sends log messages after logging/setLevel (2025-11-25), and none without a log level (2026-07-28)', async () => {
    await withClient(fixtures, '2025-11-25', async (client) => {
      const logs: unknown[] = [];
      client.setNotificationHandler('notifications/message', (n) => void logs.push(n.params.data));
      await client.setLoggingLevel('debug');
      await client.callTool({ name: 'test_tool_with_logging', arguments: {} });
      await expect.poll(() => logs).toEqual(['Tool execution started', 'Tool processing data', 'Tool execution completed']);
    });
    await withClient(fixtures, '2026-07-28', async (client) => {
      const logs: unknown[] = [];
      client.setNotificationHandler('notifications/message', (n) => void logs.push(n.params.data));
      const result = await client.callTool({ name: 'test_logging_tool', arguments: {} });
      expect(result.isError ?? false).toBe(false);
      expect(logs).toEqual([]);
    });
  });

  it('pushes sampling and elicitation requests to a 2025-11-25 client mid-call and answers with what it sent', async () => {
    await withClient(
      fixtures,
      '2025-11-25',
      async (client) => {
        const asked: string[] = [];
        client.setRequestHandler('sampling/createMessage', async (request) => {
          asked.push(JSON.stringify(request.params.messages[0]?.content));
          return { role: 'assistant', content: { type: 'text', text: 'sampled reply' }, model: 'test-model', stopReason: 'endTurn' };
        });
        client.setRequestHandler('elicitation/create', async (request) => {
          asked.push(String(request.params.message));
          return { action: 'accept', content: { username: 'ann', email: 'ann@example.com' } };
        });
        const sampled = await client.callTool({ name: 'test_sampling', arguments: { prompt: 'the prompt' } });
        expect(sampled.content).toEqual([{ type: 'text', text: 'LLM response: sampled reply' }]);
        const elicited = await client.callTool({ name: 'test_elicitation', arguments: { message: 'who are you?' } });
        expect((elicited.content as Array<{ text: string }>)[0]!.text).toContain('ann@example.com');
        expect(asked).toEqual([JSON.stringify({ type: 'text', text: 'the prompt' }), 'who are you?']);
      },
      { sampling: {}, elicitation: {} },
    );
  });

  it('the push path needs a verified token like every route', async () => {
    const res = await fetch(`${fixtures.url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25', authorization: 'Bearer not.a.token' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'test_sampling', arguments: { prompt: 'x' } } }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer resource_metadata=/);
    await res.arrayBuffer();
  });

  it('refuses test_missing_capability with -32021 naming sampling unless the request declares it', async () => {
    await withClient(fixtures, '2026-07-28', async (client) => {
      await expect(client.callTool({ name: 'test_missing_capability', arguments: {} })).rejects.toMatchObject({ code: -32021 });
    });
    await withClient(
      fixtures,
      '2026-07-28',
      async (client) => {
        const result = await client.callTool({ name: 'test_missing_capability', arguments: {} });
        expect(result.content).toEqual([{ type: 'text', text: 'The client declared sampling.' }]);
      },
      { sampling: {} },
    );
  });
});
