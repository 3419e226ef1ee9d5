import { connect } from 'node:net';

/** A response read off a raw socket. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The bytes as received, for asserting what is not there (a bare status line, a stack). */
  raw: string;
}

/**
 * Sends `request` byte for byte to 127.0.0.1:`port` (no client library to refuse or repair
 * it) and reads one response (the first; with `untilClose`, everything until the server
 * closes, e.g. pipelined answers, all in `raw`).
 */
export function rawHttp(port: number, request: string | Buffer, options: { timeoutMs?: number; untilClose?: boolean } = {}): Promise<RawResponse> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const raw = Buffer.concat(chunks).toString('latin1');
      const parsed = parse(raw);
      if (parsed) resolve(parsed);
      else reject(error ?? new Error(`no complete HTTP response: ${JSON.stringify(raw.slice(0, 200))}`));
    };
    const timer = setTimeout(() => finish(new Error('timed out')), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (!options.untilClose && parse(Buffer.concat(chunks).toString('latin1'))) finish();
    });
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    // A server that answers before reading everything may reset the socket: what arrived counts.
    socket.on('error', (error) => finish(error));
    socket.write(request);
  });
}

function parse(raw: string): RawResponse | undefined {
  const end = raw.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const [statusLine, ...lines] = raw.slice(0, end).split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1];
  if (!status) return undefined;
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const body = raw.slice(end + 4);
  const length = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
  if (length !== undefined && Buffer.byteLength(body, 'latin1') < length) return undefined;
  return { status: Number(status), headers, body: length === undefined ? body : body.slice(0, length), raw };
}
