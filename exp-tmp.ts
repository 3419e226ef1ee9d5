import { createMcpHandler, Server } from '@modelcontextprotocol/server';
import { z } from 'zod';
const h = createMcpHandler(() => {
  const s = new Server({ name: 'x', version: '1' }, { capabilities: { tools: {}, extensions: { 'io.modelcontextprotocol/tasks': {} } } as any });
  s.setRequestHandler('tools/list', async () => ({ tools: [] }));
  s.setRequestHandler('tools/call', async (req, ctx) => {
    console.log('env', JSON.stringify(ctx.mcpReq.envelope));
    return { resultType: 'task', taskId: 'act_1', status: 'working', createdAt: 'x', lastUpdatedAt: 'x', ttlMs: null, pollIntervalMs: 1000 } as any;
  });
  s.setRequestHandler('tasks/get', { params: z.object({ taskId: z.string() }).passthrough() }, async (params: any) => ({ taskId: params.taskId, status: 'completed', createdAt: 'x', lastUpdatedAt: 'y', ttlMs: null, result: { content: [] } }) as any);
  return s;
}, { legacy: 'reject' });
const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'c', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': { extensions: { 'io.modelcontextprotocol/tasks': {} } } };
async function send(method: string, params: any, name?: string) {
  const body = { jsonrpc: '2.0', id: 1, method, params: { ...params, _meta: meta } };
  const r = await h.fetch(new Request('http://localhost/mcp', { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': method, ...(name ? { 'mcp-name': name } : {}) }, body: JSON.stringify(body) }));
  console.log(method, r.status, (await r.text()).slice(0, 600));
}
await send('server/discover', {});
await send('tools/call', { name: 't', arguments: {} }, 't');
await send('tasks/get', { taskId: 'act_1' }, 'act_1');
await send('tasks/cancel', { taskId: 'act_1' }, 'act_1');
