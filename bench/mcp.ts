/**
 * The MCP layer's overhead (`npm run bench:mcp`). Not a test: prints numbers, asserts nothing.
 * The same read tool (echo.say, run to completion) called through `POST /v1/actions` (the floor,
 * measured in the same run) and through `POST /mcp` `tools/call` (2026-07-28 and 2025-11-25
 * framing), and the full catalog through `GET /v1/tools` (floor) and `tools/list`. Both sides are
 * plain fetches from the same process, so the ratios are the server's MCP work (JSON-RPC
 * parsing, token verification in the function, the SDK's dispatch, the result rendering).
 * Rounds alternate so drift hits every mode. Rate limits are off (bench/limits.ts measures them).
 */
import { benchControlPlane, limitsWith, ms, pool, summarize } from './support';

const N = Number(process.env.BENCH_ACTIONS ?? 300);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const LISTS = Number(process.env.BENCH_LISTS ?? 200);

const cp = await benchControlPlane({ limits: limitsWith([]) });
const base = cp.rt.url;

const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1.0.0' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

async function timed(run: () => Promise<Response>, ok: (status: number, body: any) => boolean): Promise<number> {
  const t0 = performance.now();
  const res = await run();
  const body = await res.json();
  const elapsed = performance.now() - t0;
  if (!ok(res.status, body)) throw new Error(`unexpected answer ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
  return elapsed;
}

function mcp(method: string, params: Record<string, unknown>, era: 'modern' | 'legacy', id: string): () => Promise<Response> {
  const name = typeof params.name === 'string' ? params.name : undefined;
  const headers: Record<string, string> = {
    authorization: `Bearer ${cp.token}`,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    ...(era === 'modern' ? { 'mcp-protocol-version': '2026-07-28', 'mcp-method': method, ...(name ? { 'mcp-name': name } : {}) } : { 'mcp-protocol-version': '2025-11-25' }),
  };
  const body = { jsonrpc: '2.0', id, method, params: era === 'modern' ? { ...params, _meta: { ...(params._meta as object), ...MODERN_META } } : params };
  return () => fetch(`${base}/mcp`, { method: 'POST', headers, body: JSON.stringify(body) });
}

type Mode = 'http' | 'mcp-2026' | 'mcp-2025';
const completed: Record<Mode, number> = { http: 0, 'mcp-2026': 0, 'mcp-2025': 0 };

async function callRound(mode: Mode, round: number, n = N): Promise<number[]> {
  const latencies: number[] = [];
  await pool(n, CONCURRENCY, async (i) => {
    const key = `bench-${mode}-${round}-${i}`;
    const message = `hello ${round}-${i}`;
    const run =
      mode === 'http'
        ? () =>
            fetch(`${base}/v1/actions`, {
              method: 'POST',
              headers: { authorization: `Bearer ${cp.token}`, 'content-type': 'application/json', 'idempotency-key': key },
              body: JSON.stringify({ tool: 'echo.say', arguments: { message }, agent: { name: 'bench' } }),
            })
        : mcp('tools/call', { name: 'echo-say', arguments: { message }, _meta: { 'io.airlock/idempotency-key': key } }, mode === 'mcp-2026' ? 'modern' : 'legacy', key);
    // Both paths wait the same window for the saga; an action still running then is answered as accepted.
    latencies.push(
      await timed(run, (status, body) => {
        const status_ = mode === 'http' ? (status === 200 || status === 202 ? body.status : undefined) : status === 200 && !body.result?.isError ? body.result?.structuredContent?.status : undefined;
        if (status_ === 'completed') completed[mode]++;
        return typeof status_ === 'string';
      }),
    );
  });
  await cp.rt.controlPlane.runner.idle();
  return latencies;
}

async function listRound(mode: 'http' | 'mcp'): Promise<number[]> {
  const latencies: number[] = [];
  await pool(LISTS, CONCURRENCY, async (i) => {
    const run = mode === 'http' ? () => fetch(`${base}/v1/tools`, { headers: { authorization: `Bearer ${cp.token}` } }) : mcp('tools/list', {}, 'modern', `list-${i}`);
    latencies.push(await timed(run, (status, body) => status === 200 && Array.isArray(mode === 'http' ? body.tools : body.result?.tools)));
  });
  return latencies;
}

try {
  // Warm-up: Cedar, the SDK, the ASL parse, the catalog renderings.
  for (const mode of ['http', 'mcp-2026', 'mcp-2025'] as const) await callRound(mode, -1, 30);
  await listRound('http');
  await listRound('mcp');

  for (const mode of Object.keys(completed) as Mode[]) completed[mode] = 0;
  console.log(`read tool (echo.say), answered when complete or at the end of the wait, local mode, concurrency ${CONCURRENCY}, ${ROUNDS} × ${N} calls per mode`);
  const calls: Record<Mode, number[]> = { http: [], 'mcp-2026': [], 'mcp-2025': [] };
  for (let r = 0; r < ROUNDS; r++) for (const mode of ['http', 'mcp-2026', 'mcp-2025'] as const) calls[mode].push(...(await callRound(mode, r)));
  const floor = summarize(calls.http);
  const label: Record<Mode, string> = { http: 'POST /v1/actions (floor)', 'mcp-2026': 'tools/call 2026-07-28', 'mcp-2025': 'tools/call 2025-11-25' };
  for (const mode of ['http', 'mcp-2026', 'mcp-2025'] as const) {
    const s = summarize(calls[mode]);
    const share = ((100 * completed[mode]) / Math.max(1, calls[mode].length)).toFixed(0);
    console.log(`${label[mode].padEnd(26)} p50 ${ms(s.p50)} (×${(s.p50 / floor.p50).toFixed(2)})  p99 ${ms(s.p99)} (×${(s.p99 / floor.p99).toFixed(2)})  completed in the answer ${share}%`);
  }

  console.log(`\nthe full catalog, ${ROUNDS} × ${LISTS} reads per mode`);
  const lists = { http: [] as number[], mcp: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) for (const mode of ['http', 'mcp'] as const) lists[mode].push(...(await listRound(mode)));
  const listFloor = summarize(lists.http);
  for (const mode of ['http', 'mcp'] as const) {
    const s = summarize(lists[mode]);
    const name = mode === 'http' ? 'GET /v1/tools (floor)' : 'tools/list 2026-07-28';
    console.log(`${name.padEnd(26)} p50 ${ms(s.p50)} (×${(s.p50 / listFloor.p50).toFixed(2)})  p99 ${ms(s.p99)} (×${(s.p99 / listFloor.p99).toFixed(2)})`);
  }
} finally {
  await cp.close();
}
