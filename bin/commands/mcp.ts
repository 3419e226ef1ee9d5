import { parseArgs } from 'node:util';
import { PROTOCOL_VERSION_META_KEY, type JSONRPCMessage, type Transport } from '@modelcontextprotocol/server';
import { StdioServerTransport } from '@modelcontextprotocol/server/stdio';
import { loadOrCreateIssuer } from '../../local/dev-issuer';
import { resolveStateDir } from '../../local/state-dir';

/**
 * `airlock mcp`: a stdio MCP server for desktop clients (Claude Desktop, Cursor…) that relays
 * every JSON-RPC message to Airlock's `/mcp` endpoint (Streamable HTTP) with a bearer token, and
 * every answer back. Nothing is decided here: the server behind `/mcp` checks the token, runs
 * the tools and keeps the guarantees, so the bridge holds no state beyond the negotiated
 * protocol version (sent as `MCP-Protocol-Version`) and a session id if a server issues one.
 */
export const summary = 'Stdio MCP bridge for desktop clients: mcp [--url <url>] (token: AIRLOCK_TOKEN, or --as <sub> locally)';

const usage = `Usage: airlock mcp [--url <url>] [--token <jwt> | --as <sub> [--role <role>]... [--manager <sub>] [--department <d>]]

Speaks MCP over stdin/stdout and relays each message to <url>/mcp (Streamable HTTP).

Options:
  --url <url>         API base URL (default: AIRLOCK_URL, else http://127.0.0.1:8787)
  --token <jwt>       bearer token (default: AIRLOCK_TOKEN)
  --as <sub>          local mode: mint tokens for <sub> with the dev issuer (AIRLOCK_HOME)
  --role, --manager, --department   with --as: the token's claims

Claude Desktop / Cursor ("mcpServers"):
  { "airlock": { "command": "npx", "args": ["airlock", "mcp"],
                 "env": { "AIRLOCK_URL": "https://…", "AIRLOCK_TOKEN": "<jwt>" } } }
`;

const DEFAULT_URL = 'http://127.0.0.1:8787';
/** Minted tokens live 15 minutes; a fresh one is minted well before that. */
const MINTED_TTL_SECONDS = 15 * 60;
const REMINT_AFTER_MS = 10 * 60 * 1000;
/** JSON-RPC: a server error the bridge reports on behalf of a request it could not relay. */
const BRIDGE_ERROR = -32000;

/** What the bridge needs: where to send, how to get a token, how to talk HTTP. */
export interface BridgeOptions {
  url: string;
  token: () => Promise<string>;
  fetch?: typeof fetch;
  /** Where diagnostics go (stderr: stdout is the protocol). */
  log?: (line: string) => void;
  /**
   * Writes one message to the client; default: the transport's send. The CLI writes to stdout
   * itself, so answers still in flight when stdin closes are delivered (the transport refuses to
   * send once closed).
   */
  write?: (message: JSONRPCMessage) => Promise<void>;
}

/** Newline-delimited JSON-RPC on `out`, as MCP's stdio transport frames it. */
export function lineWriter(out: NodeJS.WritableStream): (message: JSONRPCMessage) => Promise<void> {
  return (message) => new Promise((resolve, reject) => out.write(`${JSON.stringify(message)}\n`, (error) => (error ? reject(error) : resolve())));
}

/** Which `params` field the 2026-07-28 `Mcp-Name` header mirrors, per method (SEP-2243). */
const NAME_SOURCE: Record<string, string> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri', 'tasks/get': 'taskId', 'tasks/update': 'taskId', 'tasks/cancel': 'taskId' };

/** A header value as SEP-2243 carries it: as is when plain printable ASCII, else base64 in a sentinel. */
function headerValue(value: string): string {
  const plain = value.length > 0 && value === value.trim() && /^[\t\x20-\x7e]*$/.test(value) && !(value.startsWith('=?base64?') && value.endsWith('?='));
  return plain ? value : `=?base64?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

/**
 * The headers a 2026-07-28 request carries beside its body (the server checks they agree):
 * `MCP-Protocol-Version`, `Mcp-Method` and, for the methods that name something, `Mcp-Name`.
 */
function standardHeaders(message: JSONRPCMessage, version: string | undefined, modern: boolean): Record<string, string> {
  const headers: Record<string, string> = version ? { 'mcp-protocol-version': version } : {};
  if (!modern || !isRequest(message)) return headers;
  headers['mcp-method'] = message.method;
  const field = NAME_SOURCE[message.method];
  const value = field ? (message as { params?: Record<string, unknown> }).params?.[field] : undefined;
  if (typeof value === 'string') headers['mcp-name'] = headerValue(value);
  return headers;
}

function isRequest(m: JSONRPCMessage): m is JSONRPCMessage & { id: string | number; method: string } {
  return 'method' in m && 'id' in m && m.id !== undefined;
}

/** The JSON-RPC messages of an SSE body (one per `data:` event). */
function sseMessages(text: string): unknown[] {
  const out: unknown[] = [];
  for (const event of text.split(/\r?\n\r?\n/)) {
    const data = event
      .split(/\r?\n/)
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).replace(/^ /, ''))
      .join('\n');
    if (data) out.push(JSON.parse(data));
  }
  return out;
}

function detailOf(body: string): string {
  try {
    const parsed = JSON.parse(body) as { detail?: unknown; error?: { message?: unknown } };
    if (typeof parsed.detail === 'string') return parsed.detail;
    if (typeof parsed.error?.message === 'string') return parsed.error.message;
  } catch {
    // not JSON: fall through to the status alone
  }
  return '';
}

/**
 * Relays between `local` (the desktop client's stdio) and `${url}/mcp`. Requests run
 * concurrently (a tool call may wait on a saga) and answers go back as they come, which JSON-RPC
 * allows. A request that cannot be relayed (network down, 401, 5xx) is answered with a JSON-RPC
 * error saying why, so the client never waits forever.
 */
export async function startBridge(local: Transport, options: BridgeOptions): Promise<{ closed: Promise<void> }> {
  const endpoint = new URL('/mcp', options.url).toString();
  const doFetch = options.fetch ?? fetch;
  const log = options.log ?? (() => {});
  let protocolVersion: string | undefined;
  let sessionId: string | undefined;

  const reply = async (message: unknown) => {
    await (options.write ?? ((m) => local.send(m)))(message as JSONRPCMessage).catch((error: unknown) => log(`airlock mcp: cannot write to stdout: ${String(error)}`));
  };
  const fail = (id: string | number, message: string) => reply({ jsonrpc: '2.0', id, error: { code: BRIDGE_ERROR, message } });

  const relay = async (message: JSONRPCMessage) => {
    const request = isRequest(message) ? message : undefined;
    const params = (message as { params?: { _meta?: Record<string, unknown> } }).params;
    // 2026-07-28 messages name their revision in _meta; 2025-era ones use the one initialize agreed.
    const claimed = params?._meta?.[PROTOCOL_VERSION_META_KEY];
    const version = typeof claimed === 'string' ? claimed : protocolVersion;
    let res: Response;
    try {
      res = await doFetch(endpoint, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${await options.token()}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...standardHeaders(message, version, typeof claimed === 'string'),
          ...(sessionId ? { 'mcp-session-id': sessionId } : {}),
        },
        body: JSON.stringify(message),
      });
    } catch (error) {
      log(`airlock mcp: cannot reach ${endpoint}: ${error instanceof Error ? error.message : String(error)}`);
      if (request) await fail(request.id, `Airlock bridge: cannot reach ${endpoint} (is the server running? set AIRLOCK_URL).`);
      return;
    }
    const issued = res.headers.get('mcp-session-id');
    if (issued) sessionId = issued;
    const text = await res.text();
    const type = res.headers.get('content-type') ?? '';
    let answers: unknown[] = [];
    try {
      if (type.includes('text/event-stream')) answers = sseMessages(text);
      else if (type.includes('json') && text.trim()) answers = [JSON.parse(text)];
    } catch {
      answers = [];
    }
    const rpc = answers.filter((a): a is Record<string, unknown> => typeof a === 'object' && a !== null && (a as { jsonrpc?: unknown }).jsonrpc === '2.0');
    if (rpc.length === 0) {
      if (request) {
        const detail = detailOf(text);
        const hint = res.status === 401 ? ' Set AIRLOCK_TOKEN to a valid token (or use --as locally).' : '';
        await fail(request.id, `Airlock answered HTTP ${res.status}${detail ? `: ${detail}` : ''}.${hint}`);
      } else if (res.status >= 400) log(`airlock mcp: a notification was refused with HTTP ${res.status}`);
      return;
    }
    for (const answer of rpc) {
      // Remember what initialize agreed, so later 2025-era requests carry the header it requires.
      const result = answer.result as { protocolVersion?: unknown } | undefined;
      if (request?.method === 'initialize' && answer.id === request.id && typeof result?.protocolVersion === 'string') protocolVersion = result.protocolVersion;
      // A JSON-RPC error without an id (a refused message) belongs to the request that caused it.
      await reply(answer.id === null && request && 'error' in answer ? { ...answer, id: request.id } : answer);
    }
  };

  let closedResolve!: () => void;
  const closed = new Promise<void>((resolve) => (closedResolve = resolve));
  const inflight = new Set<Promise<void>>();
  local.onmessage = (message) => {
    const p = relay(message).catch((error: unknown) => log(`airlock mcp: ${String(error)}`));
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };
  local.onerror = (error) => {
    log(`airlock mcp: ${error.message}`);
    // The SDK's stdio reader skips lines that are not JSON (as its servers do) and reports JSON
    // that is no JSON-RPC message; that has no id to answer, so JSON-RPC's answer is id null.
    if (error.name !== 'SyntaxError' && !('code' in error)) void reply({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid Request: a line on stdin is JSON but not a JSON-RPC message.' } });
  };
  local.onclose = () => {
    // stdin closed: let the answers in flight finish writing, then end.
    void Promise.allSettled([...inflight]).then(() => closedResolve());
  };
  await local.start();
  return { closed };
}

export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        as: { type: 'string' },
        role: { type: 'string', multiple: true },
        manager: { type: 'string' },
        department: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    process.stderr.write(`airlock mcp: ${error instanceof Error ? error.message : 'bad arguments'}\n${usage}`);
    return 2;
  }
  const { values } = parsed;
  if (values.help) {
    process.stderr.write(usage); // stdout is the protocol channel
    return 0;
  }
  const url = values.url ?? process.env.AIRLOCK_URL ?? DEFAULT_URL;
  try {
    new URL('/mcp', url);
  } catch {
    process.stderr.write(`airlock mcp: not a URL: ${url.slice(0, 200)}\n`);
    return 2;
  }
  const fixed = values.token ?? process.env.AIRLOCK_TOKEN;
  let token: () => Promise<string>;
  if (fixed) token = async () => fixed;
  else if (values.as) {
    const sub = values.as;
    const issuer = await loadOrCreateIssuer(resolveStateDir());
    const claims = { sub, roles: [...new Set(values.role ?? [])], ...(values.manager ? { manager: values.manager } : {}), ...(values.department ? { department: values.department } : {}) };
    let minted: { token: string; at: number } | undefined;
    token = async () => {
      if (!minted || Date.now() - minted.at > REMINT_AFTER_MS) minted = { token: await issuer.sign(claims, MINTED_TTL_SECONDS), at: Date.now() };
      return minted.token;
    };
  } else {
    process.stderr.write(`airlock mcp: no credentials: set AIRLOCK_TOKEN, pass --token, or use --as <sub> --role <role> in local mode\n${usage}`);
    return 2;
  }
  const bridge = await startBridge(new StdioServerTransport(), { url, token, write: lineWriter(process.stdout), log: (line) => process.stderr.write(`${line}\n`) });
  await bridge.closed;
  return 0;
}
