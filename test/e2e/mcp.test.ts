import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { isoDay } from '../helpers/dates';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalIdFor } from '../../lambdas/shared/ids';
import { CONSOLE_PATH } from '../../local/console-site';
import { SAFE_TOOL_NAME } from '../../lambdas/tools/names';
import { bigTrip, startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';

/**
 * Airlock through the official MCP SDK's Client over Streamable HTTP, against the whole local
 * control plane: discovery, tools, a read call, a plan that waits for approval and is approved
 * over the HTTP API, and retries that are answered from the first call.
 */
let cp: TestControlPlane;
let alice: string;
let bob: string;

beforeAll(async () => {
  cp = await startTestControlPlane();
  alice = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
  bob = await cp.token('bob', { roles: ['Employee', 'Manager'] });
});
afterAll(async () => {
  await cp?.close();
});

async function connect(token: string, options: { protocolVersion?: string } = {}): Promise<Client> {
  // 2026-07-28 (server/discover, no handshake) unless asked for the 2025 `initialize` sequence.
  const client = new Client(
    { name: 'e2e-agent', version: '1.0.0' },
    options.protocolVersion ? { supportedProtocolVersions: [options.protocolVersion] } : { versionNegotiation: { mode: { pin: '2026-07-28' } } },
  );
  const transport = new StreamableHTTPClientTransport(new URL(`${cp.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  return client;
}

/** One raw JSON-RPC exchange on /mcp (2025-11-25 framing: one message, no session). */
async function rpc(token: string | undefined, message: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${cp.url}/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2025-11-25',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: typeof message === 'string' ? message : JSON.stringify(message),
  });
  const text = await res.text();
  // A 2025-era answer may be one SSE event; its data line is the JSON-RPC message.
  const json = text.startsWith('event:') || text.startsWith('data:') ? text.split('\n').find((l) => l.startsWith('data:'))!.slice(5) : text;
  return { status: res.status, headers: res.headers, body: json ? (JSON.parse(json) as Record<string, any>) : undefined };
}

describe('MCP over Streamable HTTP with the official SDK client', () => {
  it('lists every catalog tool under a safe name with truthful annotations, plus Airlock’s own tools', async () => {
    const client = await connect(alice);
    try {
      const { tools } = await client.listTools();
      const names = tools.map((t) => t.name);
      for (const name of names) expect(name).toMatch(SAFE_TOOL_NAME);
      expect(names).toEqual(expect.arrayContaining(['travel-search_flights', 'travel-hold_seat', 'airlock-submit_plan', 'airlock-get_action', 'airlock-approvals_status', 'airlock-cancel_action']));
      const search = tools.find((t) => t.name === 'travel-search_flights')!;
      expect(search.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false, idempotentHint: true });
      expect(search.outputSchema).toMatchObject({ type: 'object', required: expect.arrayContaining(['actionId', 'status', 'result']) });
      const hold = tools.find((t) => t.name === 'travel-hold_seat')!;
      expect(hold.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true, idempotentHint: false });
      expect(hold.inputSchema).toMatchObject({ type: 'object', required: expect.arrayContaining(['flightId']) });
      expect(hold.title).toBe('Travel: hold seat');
    } finally {
      await client.close();
    }
  });

  it('serves 2025-11-25 clients (initialize) as well', async () => {
    const client = await connect(alice, { protocolVersion: '2025-11-25' });
    try {
      expect(client.getServerVersion()).toMatchObject({ name: 'airlock' });
      const { tools } = await client.listTools();
      expect(tools.length).toBeGreaterThan(20);
      const res = await client.callTool({ name: 'echo-say', arguments: { message: 'legacy' } });
      expect(res.structuredContent).toMatchObject({ status: 'completed', result: { message: 'legacy', length: 6 } });
    } finally {
      await client.close();
    }
  });

  it('calls a read tool through intake: structured result matching outputSchema, and a text rendering', async () => {
    const client = await connect(alice);
    try {
      const res = await client.callTool({ name: 'echo-say', arguments: { message: 'hello' } });
      expect(res.isError).toBeFalsy();
      expect(res.structuredContent).toMatchObject({ status: 'completed', replayed: false, result: { message: 'hello', length: 5 }, approval: null });
      const actionId = (res.structuredContent as { actionId: string }).actionId;
      expect((res.content as Array<{ type: string; text: string }>)[0]!.text).toContain(actionId);
      // The same action the HTTP API shows, recorded with the MCP client as the agent.
      const viaHttp = await cp.get(alice, `/v1/actions/${actionId}`);
      expect(viaHttp.body).toMatchObject({ status: 'completed', actor: { name: 'e2e-agent' }, principal: { sub: 'alice' } });
    } finally {
      await client.close();
    }
  });

  it('answers problems as isError results with the problem document (violations a model can fix)', async () => {
    const client = await connect(alice);
    try {
      const res = await client.callTool({ name: 'echo-say', arguments: { nope: 1 } });
      expect(res.isError).toBe(true);
      expect(res.structuredContent).toMatchObject({ type: 'urn:airlock:problem:validation', status: 400, violations: expect.any(Array) });
      expect((res.content as Array<{ text: string }>)[0]!.text).toMatch(/Request is invalid/);
      const cancel = await client.callTool({ name: 'airlock-cancel_action', arguments: { actionId: `act_${'0'.repeat(26)}` } });
      expect(cancel.isError).toBe(true);
      expect(cancel.structuredContent).toMatchObject({ type: 'urn:airlock:problem:not-found', status: 404 });
      await expect(client.callTool({ name: 'travel-teleport', arguments: {} })).rejects.toThrow(/Unknown tool/);
    } finally {
      await client.close();
    }
  });

  it('a plan that needs approval returns at once, says who approves, and completes once approved over HTTP', async () => {
    const client = await connect(alice);
    try {
      const trip = bigTrip();
      const plan = trip.plan.map((s) => ({ ...s, tool: s.tool.replace('.', '-') }));
      const res = await client.callTool({ name: 'airlock-submit_plan', arguments: { plan, reason: trip.reason } });
      expect(res.isError).toBeFalsy();
      const pending = res.structuredContent as { actionId: string; status: string; approval: Record<string, unknown> };
      // Decided and recorded; the saga may not have reached WaitForApproval yet.
      expect(['received', 'awaiting_approval']).toContain(pending.status);
      expect(pending).toMatchObject({ result: null, approval: { quorum: 1, approverRule: 'manager' } });
      expect((res.content as Array<{ text: string }>)[0]!.text).toMatch(/waiting for approval by manager/);

      const approvalId = approvalIdFor(pending.actionId);
      await expect.poll(async () => (await cp.get(bob, `/v1/approvals/${approvalId}`)).status, { timeout: 10_000 }).toBe(200);
      const preview = await cp.get(bob, `/v1/approvals/${approvalId}`);
      const vote = await fetch(`${cp.url}/v1/approvals/${approvalId}/decision`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' },
        body: JSON.stringify({ decision: 'approve', planHash: preview.body.planHash }),
      });
      expect(vote.status).toBe(200);

      await expect
        .poll(
          async () => {
            const got = await client.callTool({ name: 'airlock-get_action', arguments: { actionId: pending.actionId } });
            return (got.structuredContent as { status: string }).status;
          },
          { timeout: 20_000, interval: 200 },
        )
        .toBe('completed');
      const status = await client.callTool({ name: 'airlock-approvals_status', arguments: {} });
      expect((status.structuredContent as { items: Array<{ actionId: string }> }).items.map((i) => i.actionId)).not.toContain(pending.actionId);
    } finally {
      await client.close();
    }
  });

  it('cancels a plan waiting for approval through airlock-cancel_action (the HTTP cancel route), idempotently', async () => {
    const client = await connect(alice);
    try {
      // Another day than the approval test's trip: the same arguments would replay that action.
      const trip = bigTrip(isoDay(27));
      const plan = trip.plan.map((s) => ({ ...s, tool: s.tool.replace('.', '-') }));
      const res = await client.callTool({ name: 'airlock-submit_plan', arguments: { plan, reason: trip.reason } });
      const { actionId } = res.structuredContent as { actionId: string };
      await expect.poll(async () => (await cp.get(bob, `/v1/approvals/${approvalIdFor(actionId)}`)).status, { timeout: 10_000 }).toBe(200);
      for (let i = 0; i < 2; i++) {
        const cancel = await client.callTool({ name: 'airlock-cancel_action', arguments: { actionId } });
        expect(cancel.isError).toBeFalsy();
        expect(cancel.structuredContent).toEqual({ actionId, status: 'cancelled' });
      }
      expect((await cp.get(bob, `/v1/approvals/${approvalIdFor(actionId)}`)).body).toMatchObject({ status: 'cancelled' });
    } finally {
      await client.close();
    }
  });

  it('a retried call is answered from the first, never run twice (client key in _meta)', async () => {
    const client = await connect(alice);
    try {
      const call = () => client.callTool({ name: 'echo-say', arguments: { message: 'once' }, _meta: { 'io.airlock/idempotency-key': 'mcp-e2e-once' } });
      const first = (await call()).structuredContent as { actionId: string; replayed: boolean };
      const again = (await call()).structuredContent as { actionId: string; replayed: boolean };
      expect(first.replayed).toBe(false);
      expect(again).toMatchObject({ actionId: first.actionId, replayed: true });
      // Same key, different arguments: intake's 422, as a tool error.
      const other = await client.callTool({ name: 'echo-say', arguments: { message: 'twice' }, _meta: { 'io.airlock/idempotency-key': 'mcp-e2e-once' } });
      expect(other.structuredContent).toMatchObject({ status: 422, type: 'urn:airlock:problem:idempotency-key-reused' });
    } finally {
      await client.close();
    }
  });

  it('a transport-level retry of the same JSON-RPC request (no key of its own) acts once', async () => {
    const message = { jsonrpc: '2.0', id: 'retry-1', method: 'tools/call', params: { name: 'echo-say', arguments: { message: 'derived' } } };
    const first = await rpc(alice, message);
    const again = await rpc(alice, message);
    expect(first.status).toBe(200);
    expect(first.body!.result.structuredContent.replayed).toBe(false);
    expect(again.body!.result.structuredContent).toMatchObject({ actionId: first.body!.result.structuredContent.actionId, replayed: true });
    // A new request (new id) is a new call.
    const next = await rpc(alice, { ...message, id: 'retry-2' });
    expect(next.body!.result.structuredContent.actionId).not.toBe(first.body!.result.structuredContent.actionId);
    // Keys are scoped to the principal: bob's identical request is his own action.
    const bobs = await rpc(bob, message);
    expect(bobs.body!.result.structuredContent.actionId).not.toBe(first.body!.result.structuredContent.actionId);
  });

  it('asks for a token the MCP way: 401 with WWW-Authenticate naming the RFC 9728 metadata', async () => {
    for (const token of [undefined, 'not-a-token', `${alice.slice(0, -4)}AAAA`]) {
      const res = await rpc(token, { jsonrpc: '2.0', id: 1, method: 'tools/list' });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe(
        `Bearer resource_metadata="${cp.url}/.well-known/oauth-protected-resource/mcp"${token === undefined ? '' : ', error="invalid_token"'}`,
      );
    }
    for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp']) {
      const meta = await fetch(`${cp.url}${path}`);
      expect(meta.status).toBe(200);
      expect(await meta.json()).toMatchObject({ resource: `${cp.url}/mcp`, authorization_servers: [cp.runtime.issuer.issuer], bearer_methods_supported: ['header'] });
    }
  });
});

describe('MCP Tasks extension (io.modelcontextprotocol/tasks, 2026-07-28)', () => {
  /** One 2026-07-28 request, with the standard headers and the client's per-request capabilities. */
  async function modern(token: string, method: string, params: Record<string, unknown>, capabilities: Record<string, unknown> = { extensions: { 'io.modelcontextprotocol/tasks': {} } }) {
    const name = typeof params.name === 'string' ? params.name : typeof params.taskId === 'string' ? params.taskId : undefined;
    const res = await fetch(`${cp.url}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': method,
        ...(name ? { 'mcp-name': name } : {}),
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: `${method}-${Math.random()}`,
        method,
        params: {
          ...params,
          _meta: {
            'io.modelcontextprotocol/protocolVersion': '2026-07-28',
            'io.modelcontextprotocol/clientInfo': { name: 'tasks-agent', version: '1.0.0' },
            'io.modelcontextprotocol/clientCapabilities': capabilities,
          },
        },
      }),
    });
    const body = (await res.json()) as { result?: Record<string, any>; error?: { code: number; message: string; data?: unknown } };
    // A result is 200; an error may carry its HTTP status (400 for a missing capability), never a 5xx.
    expect(res.status, method).toBe(body.error ? res.status : 200);
    expect(res.status, method).toBeLessThan(500);
    return { ...body, status: res.status };
  }

  it('server/discover advertises the extension', async () => {
    const discover = await modern(alice, 'server/discover', {});
    expect(discover.result!.capabilities.extensions).toHaveProperty(['io.modelcontextprotocol/tasks']);
  });

  it('a call that needs approval is a task whose id is the action id; it follows the action to completion', async () => {
    const trip = bigTrip();
    const plan = trip.plan.map((s) => ({ ...s, tool: s.tool.replace('.', '-') }));
    const created = await modern(alice, 'tools/call', { name: 'airlock-submit_plan', arguments: { plan, reason: trip.reason } });
    expect(created.result).toMatchObject({ resultType: 'task', status: 'working', taskId: expect.stringMatching(/^act_/), ttlMs: null, pollIntervalMs: 5000 });
    const taskId = created.result!.taskId as string;
    expect(created.result!.statusMessage).toMatch(/approval by manager/);

    // The task is the action: the HTTP API knows it by the same id, and only who may see the action sees the task.
    expect((await cp.get(alice, `/v1/actions/${taskId}`)).status).toBe(200);
    const carl = await cp.token('carl', { roles: ['Employee'], manager: 'dana' });
    const other = await modern(carl, 'tasks/get', { taskId });
    expect(other.error).toMatchObject({ code: -32602, message: expect.stringMatching(/No task/) });

    // tasks/update is acknowledged (Airlock never asks for input).
    expect((await modern(alice, 'tasks/update', { taskId, inputResponses: {} })).result).toMatchObject({ resultType: 'complete' });

    const approvalId = approvalIdFor(taskId);
    await expect.poll(async () => (await cp.get(bob, `/v1/approvals/${approvalId}`)).status, { timeout: 10_000 }).toBe(200);
    const preview = await cp.get(bob, `/v1/approvals/${approvalId}`);
    const vote = await fetch(`${cp.url}/v1/approvals/${approvalId}/decision`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' },
      body: JSON.stringify({ decision: 'approve', planHash: preview.body.planHash }),
    });
    expect(vote.status).toBe(200);

    await expect.poll(async () => (await modern(alice, 'tasks/get', { taskId })).result!.status, { timeout: 20_000, interval: 200 }).toBe('completed');
    const done = (await modern(alice, 'tasks/get', { taskId })).result!;
    expect(done).toMatchObject({ taskId, resultType: 'complete', result: { isError: false, structuredContent: { actionId: taskId, status: 'completed' } } });
    // A task that ended cannot be cancelled.
    expect((await modern(alice, 'tasks/cancel', { taskId })).error).toMatchObject({ code: -32602, message: expect.stringMatching(/already ended completed/) });
  });

  it('tasks/cancel ends a task waiting for approval through the cancel API: cancelled at once, approval closed, idempotent', async () => {
    const trip = bigTrip();
    const plan = trip.plan.map((s) => ({ ...s, tool: s.tool.replace('.', '-') }));
    const created = await modern(alice, 'tools/call', { name: 'airlock-submit_plan', arguments: { plan, reason: trip.reason } });
    const taskId = created.result!.taskId as string;
    await expect.poll(async () => (await cp.get(alice, `/v1/actions/${taskId}`)).body.status, { timeout: 10_000 }).toBe('awaiting_approval');
    // Someone else's task is unknown to them, and stays as it was.
    const carl = await cp.token('carl', { roles: ['Employee'], manager: 'dana' });
    expect((await modern(carl, 'tasks/cancel', { taskId })).error).toMatchObject({ code: -32602, message: expect.stringMatching(/No task/) });
    for (let i = 0; i < 2; i++) {
      const cancelled = await modern(alice, 'tasks/cancel', { taskId });
      expect(cancelled.result).toMatchObject({ taskId, status: 'cancelled' });
    }
    expect((await cp.get(alice, `/v1/actions/${taskId}`)).body.status).toBe('cancelled');
    expect((await cp.get(bob, `/v1/approvals/${approvalIdFor(taskId)}`)).body).toMatchObject({ status: 'cancelled' });
  });

  it('a client without the extension gets the plain result, never a task', async () => {
    const trip = bigTrip();
    const plan = trip.plan.map((s) => ({ ...s, tool: s.tool.replace('.', '-') }));
    const res = await modern(alice, 'tools/call', { name: 'airlock-submit_plan', arguments: { plan, reason: trip.reason } }, {});
    expect(res.result!.resultType).not.toBe('task');
    expect(res.result!.structuredContent).toMatchObject({ approval: { approverRule: 'manager' } });
    // And the tasks methods need the extension declared on the request itself (SEP-2663).
    const actionId = res.result!.structuredContent.actionId as string;
    for (const method of ['tasks/get', 'tasks/update', 'tasks/cancel']) {
      const refused = await modern(alice, method, { taskId: actionId, ...(method === 'tasks/update' ? { inputResponses: {} } : {}) }, {});
      expect(refused.error, method).toMatchObject({ code: -32021, data: { requiredCapabilities: { extensions: { 'io.modelcontextprotocol/tasks': {} } } } });
    }
  });

  it('tasks/get for an id that is no action is a JSON-RPC error', async () => {
    expect((await modern(alice, 'tasks/get', { taskId: `act_${'0'.repeat(26)}` })).error).toMatchObject({ code: -32602 });
    expect((await modern(alice, 'tasks/get', { taskId: 'nope' })).error).toMatchObject({ code: -32602 });
  });
});

describe('URL-mode elicitation: a call that needs approval points at the approval page', () => {
  async function elicitingClient(token: string, answer: 'accept' | 'decline') {
    const asked: Array<Record<string, any>> = [];
    const client = new Client({ name: 'url-agent', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } }, capabilities: { elicitation: { url: {} } } });
    client.setRequestHandler('elicitation/create', async (request) => {
      asked.push(request.params as Record<string, any>);
      return { action: answer };
    });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${cp.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    return { client, asked };
  }

  async function countActions(token: string): Promise<number> {
    return ((await cp.get(token, '/v1/actions?limit=100')).body.items as unknown[]).length;
  }

  it('the official Client is sent to the console page of the approval, says who approves, and its retry replays the same action', async () => {
    const dana = await cp.token('dana', { roles: ['Employee'], manager: 'bob' });
    const { client, asked } = await elicitingClient(dana, 'accept');
    try {
      const before = await countActions(dana);
      const trip = bigTrip();
      const plan = trip.plan.map((s) => ({ ...s, tool: s.tool.replace('.', '-') }));
      const res = await client.callTool({ name: 'airlock-submit_plan', arguments: { plan, reason: trip.reason } });
      // The client fulfilled the URL elicitation and retried: the answer is the action, waiting.
      expect(res.isError).toBeFalsy();
      const pending = res.structuredContent as { actionId: string; status: string; approval: Record<string, unknown> };
      expect(['received', 'awaiting_approval']).toContain(pending.status);
      expect(pending.approval).toMatchObject({ approverRule: 'manager', quorum: 1 });
      expect(asked).toHaveLength(1);
      const approvalId = approvalIdFor(pending.actionId);
      expect(asked[0]).toMatchObject({ mode: 'url', url: `${cp.url}/console/#/approvals/${approvalId}` });
      // Someone else approves: the message names the rule and the person, and no URL.
      expect(asked[0]!.message).toMatch(/approval by manager \(your manager is bob\)/);
      expect(asked[0]!.message).toMatch(/cannot approve your own action/);
      expect(asked[0]!.message).not.toMatch(/https?:/);
      // The console's own page (local/console-site.ts serves it; its hash router selects the approval).
      expect(new URL(String(asked[0]!.url)).pathname).toBe(`${CONSOLE_PATH}/`);
      // The retry came on a fresh request id and still made one action, not two.
      expect(await countActions(dana)).toBe(before + 1);
    } finally {
      await client.close();
    }
  });

  it('a declined elicitation changes nothing: the action still waits, and a read tool never elicits', async () => {
    const erin = await cp.token('erin', { roles: ['Employee'], manager: 'bob' });
    const { client, asked } = await elicitingClient(erin, 'decline');
    try {
      const trip = bigTrip();
      const plan = trip.plan.map((s) => ({ ...s, tool: s.tool.replace('.', '-') }));
      const res = await client.callTool({ name: 'airlock-submit_plan', arguments: { plan, reason: trip.reason } });
      expect(res.isError).toBeFalsy();
      expect((res.structuredContent as { approval: unknown }).approval).not.toBeNull();
      expect(asked).toHaveLength(1);
      const read = await client.callTool({ name: 'travel-search_flights', arguments: { origin: 'SFO', destination: 'JFK', date: isoDay(30) } });
      expect(read.isError).toBeFalsy();
      expect(asked).toHaveLength(1);
    } finally {
      await client.close();
    }
  });

  it('on the wire: input_required with a url elicitation and a requestState; the retry on a fresh id replays, whatever its responses', async () => {
    const frank = await cp.token('frank', { roles: ['Employee'], manager: 'bob' });
    const trip = bigTrip();
    const plan = trip.plan.map((s) => ({ ...s, tool: s.tool.replace('.', '-') }));
    const send = async (id: string, extra: Record<string, unknown>) => {
      const res = await fetch(`${cp.url}/mcp`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${frank}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': '2026-07-28',
          'mcp-method': 'tools/call',
          'mcp-name': 'airlock-submit_plan',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id,
          method: 'tools/call',
          params: {
            name: 'airlock-submit_plan',
            arguments: { plan, reason: trip.reason },
            ...extra,
            _meta: {
              'io.modelcontextprotocol/protocolVersion': '2026-07-28',
              'io.modelcontextprotocol/clientInfo': { name: 'wire-agent', version: '1.0.0' },
              'io.modelcontextprotocol/clientCapabilities': { elicitation: { url: {} } },
            },
          },
        }),
      });
      expect(res.status).toBe(200);
      return (await res.json()) as { result: Record<string, any> };
    };
    const first = await send('first', {});
    expect(first.result).toMatchObject({ resultType: 'input_required', requestState: expect.stringMatching(/^mcp-/) });
    const request = first.result.inputRequests['airlock-approval'];
    expect(request).toMatchObject({ method: 'elicitation/create', params: { mode: 'url', url: expect.stringMatching(/\/console\/#\/approvals\/apr_/) } });
    const retry = await send('second', { requestState: first.result.requestState, inputResponses: { 'airlock-approval': { action: 'cancel' } } });
    expect(retry.result).toMatchObject({ isError: false, structuredContent: { replayed: true, actionId: expect.stringMatching(/^act_/) } });
    expect(request.params.url).toContain(approvalIdFor(retry.result.structuredContent.actionId));
  });

  it('clients without URL mode (form-only elicitation, none, or the 2025 era) get the plain result, unchanged', async () => {
    for (const capabilities of [{}, { elicitation: {} }, { elicitation: { form: {} } }] as Array<{ elicitation?: Record<string, Record<string, never>> }>) {
      const gina = await cp.token('gina', { roles: ['Employee'], manager: 'bob' });
      const client = new Client({ name: 'plain-agent', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } }, capabilities });
      await client.connect(new StreamableHTTPClientTransport(new URL(`${cp.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${gina}` } } }));
      try {
        const trip = bigTrip();
        const plan = trip.plan.map((s) => ({ ...s, tool: s.tool.replace('.', '-') }));
        const res = await client.callTool({ name: 'airlock-submit_plan', arguments: { plan, reason: trip.reason } });
        expect(res.isError, JSON.stringify(capabilities)).toBeFalsy();
        expect((res.content as Array<{ text: string }>)[0]!.text).toMatch(/waiting for approval by manager/);
      } finally {
        await client.close();
      }
    }
    // 2025-11-25: capabilities were declared in an initialize this stateless server never sees again.
    const legacy = new Client({ name: 'legacy-agent', version: '1.0.0' }, { supportedProtocolVersions: ['2025-11-25'], capabilities: { elicitation: { url: {} } } });
    await legacy.connect(new StreamableHTTPClientTransport(new URL(`${cp.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${alice}` } } }));
    try {
      const trip = bigTrip();
      const plan = trip.plan.map((s) => ({ ...s, tool: s.tool.replace('.', '-') }));
      const res = await legacy.callTool({ name: 'airlock-submit_plan', arguments: { plan, reason: trip.reason } });
      expect(res.isError).toBeFalsy();
      expect((res.content as Array<{ text: string }>)[0]!.text).toMatch(/waiting for approval by manager/);
    } finally {
      await legacy.close();
    }
  });
});
