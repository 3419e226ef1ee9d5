import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { installTableCache } from './dynalite-table-cache';

/**
 * Embedded DynamoDB: dynalite on a loopback port, reached through the real SDK client, so
 * conditional writes and expressions are evaluated by a DynamoDB implementation, not a mock.
 */

/**
 * Dummy credentials, never valid anywhere real. Letters only: AWS's DynamoDB Local rejects an
 * access key with a hyphen (UnrecognizedClientException), dynalite accepts anything.
 */
export const LOCAL_AWS_CREDENTIALS = { accessKeyId: 'airlocklocal', secretAccessKey: 'airlocklocal' } as const;
/** Region the local runtime pretends to be in. */
export const LOCAL_AWS_REGION = 'us-east-1';

export interface DynaliteOptions {
  /** LevelDB folder for persistent data; in memory when omitted. */
  path?: string;
  /** Loopback port; 0 (the default) picks a free one. */
  port?: number;
}

export interface RunningDynalite {
  /** `http://127.0.0.1:<port>`. */
  endpoint: string;
  /** An SDK client bound to the endpoint with dummy credentials. */
  client: DynamoDBClient;
  /** Stops the client and the server and closes the LevelDB store. Idempotent. */
  close(): Promise<void>;
}

/** Builds a DynamoDB client for a local endpoint (dynalite, DynamoDB Local) with dummy static credentials. */
export function localDynamoClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: LOCAL_AWS_REGION,
    credentials: LOCAL_AWS_CREDENTIALS,
    // Local endpoints answer in milliseconds; a short retry budget surfaces a dead server quickly.
    maxAttempts: 3,
  });
}

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;
type RequestHandler = Extract<NonNullable<DynamoDBClientConfig['requestHandler']>, { handle: unknown }>;
type HandlerRequest = Parameters<RequestHandler['handle']>[0];

/**
 * dynalite ignores signatures but wants their shape (AWS4- Authorization with these three
 * parameters and a date); what the SDK would have signed, minus the cost of signing.
 */
const UNSIGNED_AUTHORIZATION = 'AWS4-HMAC-SHA256 Credential=airlocklocal/20000101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0';

/**
 * An SDK request handler that hands each request to dynalite's own HTTP request listener in
 * this process: the same bytes in and out (dynalite parses, validates and answers exactly as
 * over a socket), without a loopback connection, HTTP parsing on both sides, or SigV4 signing
 * that dynalite never checks. Those were over a third of the local control plane's CPU per
 * DynamoDB call (profiled under the chaos storm), and every local action makes dozens.
 */
export function inProcessHandler(listener: RequestListener): RequestHandler {
  return {
    handle(request: HandlerRequest) {
      return new Promise((resolve, reject) => {
        const headers: Record<string, string> = { 'x-amz-date': '20000101T000000Z', authorization: UNSIGNED_AUTHORIZATION };
        for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = String(value);
        const req = Object.assign(new EventEmitter(), { method: request.method, url: request.path || '/', headers });
        const answer: Record<string, string> = {};
        const res = {
          statusCode: 200,
          contentType: undefined as string | undefined,
          setHeader(name: string, value: string | number) {
            answer[name.toLowerCase()] = String(value);
          },
          end(body?: string) {
            resolve({ response: { statusCode: res.statusCode, headers: answer, body: Buffer.from(body ?? '', 'utf8') } });
          },
        };
        const body = request.body as unknown;
        if (body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array)) {
          reject(new TypeError('the in-process DynamoDB handler takes string or byte bodies only'));
          return;
        }
        try {
          listener(req as unknown as IncomingMessage, res as unknown as ServerResponse);
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
          return;
        }
        // As a socket would: the body arrives after the listener has subscribed.
        process.nextTick(() => {
          if (body !== undefined && body.length > 0) req.emit('data', typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body.buffer, body.byteOffset, body.byteLength));
          req.emit('end');
        });
      });
    },
    updateHttpClientConfig() {},
    httpHandlerConfigs: () => ({}),
  } as RequestHandler;
}

/**
 * Starts dynalite in-process on 127.0.0.1. Tables become ACTIVE at once (no simulated
 * CREATING delay), which keeps tests fast and start-up deterministic.
 */
export async function startDynalite(options: DynaliteOptions = {}): Promise<RunningDynalite> {
  installTableCache();
  const server = dynalite({
    ...(options.path ? { path: options.path } : {}),
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', onError);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  // The runtime's own client reaches dynalite in process; the port serves everything else
  // (`airlock` commands, other clients) over HTTP as before.
  const listener = server.listeners('request')[0] as RequestListener | undefined;
  if (!listener) throw new Error('dynalite registered no request listener');
  const client = new DynamoDBClient({
    endpoint,
    region: LOCAL_AWS_REGION,
    credentials: LOCAL_AWS_CREDENTIALS,
    maxAttempts: 3,
    requestHandler: inProcessHandler(listener),
  });
  // Work per call that only a remote service would use: the signature, the user agent, the
  // SDK's log filtering (it filters every input and output even for its no-op logger), the
  // X-Ray trace header, and retries: a function call in this process has no transient failure
  // to retry (dynalite neither throttles nor drops; a condition or validation error is final),
  // and each call paid for a retry token and an invocation id.
  for (const name of ['httpSigningMiddleware', 'getUserAgentMiddleware', 'loggerMiddleware', 'retryMiddleware', 'recursionDetectionMiddleware']) client.middlewareStack.remove(name);
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      client.destroy();
      await new Promise<void>((resolve, reject) => {
        server.close((error?: Error) => (error ? reject(error) : resolve()));
        // Keep-alive sockets of other SDK clients (handlers build their own) would hold
        // close() open until they time out.
        server.closeAllConnections();
      });
    })();
    return closing;
  };
  return { endpoint, client, close };
}
