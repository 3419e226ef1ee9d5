import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as DynamoModule from '@aws-sdk/client-dynamodb';
import { DynamoDBClient, DynamoDBServiceException, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { installTableCache, takeCreatedStore } from './dynalite-table-cache';

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
  /**
   * The embedded runtime's client hands item operations to dynalite before the SDK serializes
   * them ({@link bypassSdkForItems}). Off by default: tests reach dynalite through the real SDK.
   */
  bypassSdk?: boolean;
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

const require = createRequire(import.meta.url);

type DynaliteCallback = (error: { statusCode?: number; body?: unknown } | null, data?: unknown) => void;
interface DynaliteOperation {
  action: (store: unknown, data: unknown, cb: DynaliteCallback) => void;
  validation: { types: unknown; custom?: unknown };
}
interface DynaliteValidations {
  checkTypes(data: unknown, types: unknown): unknown;
  checkValidations(data: unknown, types: unknown, custom: unknown, store: unknown): void;
}

/** The item operations handed to dynalite's store directly (everything else goes through its listener). */
const DIRECT_OPERATIONS = ['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem', 'Query', 'Scan', 'BatchGetItem', 'BatchWriteItem'] as const;
const JSON_1_0 = 'application/x-amz-json-1.0';

/** dynalite's answer to one request: a status and the JSON document its listener would write. */
type DynaliteAnswer = { statusCode: number; body: unknown };

/**
 * dynalite's item operations as functions: the request's JSON document goes through dynalite's
 * own type checks, validations and action, in the order its HTTP listener runs them, and the
 * answer (or the error document) is what the listener would have written. What is skipped is
 * only what a socket needs: a request id from 39 random bytes, `url.parse` of the path, the
 * signature's shape and a CRC32 of every answer. Undefined for any other operation.
 */
export function dynaliteOperations(store: unknown): (operation: string, data: unknown) => Promise<DynaliteAnswer> | undefined {
  const validations = require('dynalite/validations/index.js') as DynaliteValidations;
  const operations = new Map<string, DynaliteOperation>();
  for (const name of DIRECT_OPERATIONS) {
    const file = name.charAt(0).toLowerCase() + name.slice(1);
    operations.set(name, {
      action: require(`dynalite/actions/${file}.js`) as DynaliteOperation['action'],
      validation: require(`dynalite/validations/${file}.js`) as DynaliteOperation['validation'],
    });
  }
  return (name, input) => {
    const operation = operations.get(name);
    if (!operation) return undefined;
    return new Promise((resolve, reject) => {
      let data = input;
      try {
        data = validations.checkTypes(data, operation.validation.types);
        validations.checkValidations(data, operation.validation.types, operation.validation.custom, store);
      } catch (error) {
        const refused = error as { statusCode?: number; body?: unknown };
        if (refused?.statusCode) resolve({ statusCode: refused.statusCode, body: refused.body });
        else reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      operation.action(store, data, (error, out) => {
        if (error?.statusCode) resolve({ statusCode: error.statusCode, body: error.body });
        else if (error) reject(error instanceof Error ? error : new Error(String(error)));
        else resolve({ statusCode: 200, body: out });
      });
    });
  };
}

/** An SDK request handler answering item operations through {@link dynaliteOperations}, the rest through the listener. */
export function directHandler(run: ReturnType<typeof dynaliteOperations>, listener: RequestListener): RequestHandler {
  const viaListener = inProcessHandler(listener);
  return {
    async handle(request: HandlerRequest) {
      const target = String(request.headers['x-amz-target'] ?? '');
      const body = request.body as unknown;
      if (!target.startsWith('DynamoDB_20120810.') || request.method !== 'POST' || !(typeof body === 'string' || body instanceof Uint8Array) || body.length === 0) return viaListener.handle(request);
      let data: unknown;
      try {
        data = JSON.parse(typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
      } catch {
        return viaListener.handle(request);
      }
      const answer = run(target.slice('DynamoDB_20120810.'.length), data);
      if (!answer) return viaListener.handle(request);
      const { statusCode, body: out } = await answer;
      return { response: { statusCode, headers: { 'content-type': JSON_1_0 }, body: Buffer.from(JSON.stringify(out), 'utf8') } };
    },
    updateHttpClientConfig() {},
    httpHandlerConfigs: () => ({}),
  } as RequestHandler;
}

/**
 * The request as dynalite reads it off the wire: a fresh copy (dynalite annotates what it is
 * given), blobs as base64, and what JSON would drop or change dropped or changed the same way
 * (undefined fields left out, undefined in an array and non-finite numbers as null). A direct
 * copy: the JSON round trip with a replacer cost about three times as much (profiled).
 */
export function toWire(input: unknown): unknown {
  if (input === null || typeof input !== 'object') {
    if (typeof input === 'number') return Number.isFinite(input) ? input + 0 : null; // + 0: -0 as 0, as JSON writes it
    return typeof input === 'function' || typeof input === 'symbol' || typeof input === 'bigint' ? undefined : input;
  }
  if (input instanceof Uint8Array) return Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('base64');
  if (Array.isArray(input)) {
    const out = new Array<unknown>(input.length);
    for (let i = 0; i < input.length; i++) out[i] = toWire(input[i]) ?? null;
    return out;
  }
  if (typeof (input as { toJSON?: unknown }).toJSON === 'function') return JSON.parse(JSON.stringify(input));
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(input)) {
    const value = toWire((input as Record<string, unknown>)[key]);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** An answer as the SDK gives it: every AttributeValue's B and BS as bytes. */
function fromWire(value: unknown): unknown {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = fromWire(value[i]);
    return value;
  }
  if (value === null || typeof value !== 'object') return value;
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const field = record[key];
    if (key === 'B' && typeof field === 'string') record[key] = new Uint8Array(Buffer.from(field, 'base64'));
    else if (key === 'BS' && Array.isArray(field)) record[key] = field.map((b) => (typeof b === 'string' ? new Uint8Array(Buffer.from(b, 'base64')) : b));
    else record[key] = fromWire(field);
  }
  return record;
}

/** The error the SDK throws for dynalite's error document: the modeled exception class when there is one. */
function toServiceError(statusCode: number, body: unknown): Error {
  const doc = (body ?? {}) as Record<string, unknown>;
  const name = String(doc.__type ?? doc.code ?? 'UnknownError').replace(/^.*#/, '').replace(/:.*$/, '');
  const message = typeof doc.message === 'string' ? doc.message : typeof doc.Message === 'string' ? doc.Message : name;
  const $metadata = { httpStatusCode: statusCode, attempts: 1, totalRetryDelay: 0 };
  const $fault = statusCode >= 500 ? 'server' : 'client';
  const { __type: _type, message: _m, Message: _M, ...fields } = doc;
  const Modeled = (DynamoModule as Record<string, unknown>)[name];
  if (typeof Modeled === 'function' && Modeled.prototype instanceof DynamoDBServiceException) {
    const Ctor = Modeled as new (options: Record<string, unknown>) => Error;
    return new Ctor({ message, $metadata, ...(fromWire(fields) as Record<string, unknown>) });
  }
  return new DynamoDBServiceException({ name, $fault, $metadata, message });
}

/**
 * Hands a client's item operations to dynalite in this process before the SDK serializes them:
 * the input, as DynamoDB JSON, is exactly the document the SDK would have sent (blobs as
 * base64), and the answer comes back as the SDK would have parsed it, errors as the SDK's own
 * exception classes. Skipped is the SDK's serializer, endpoint rules and deserializer, with the
 * HTTP layer they serve (~10 % of the local control plane's CPU under the chaos storm). Only for
 * the embedded runtime's client: clients over the port, and DynamoDB Local, go the full way.
 */
export function bypassSdkForItems(client: DynamoDBClient, run: ReturnType<typeof dynaliteOperations>): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = (context as { commandName?: string }).commandName?.replace(/Command$/, '') ?? '';
      const answer = run(name, toWire(args.input));
      if (!answer) return next(args);
      const { statusCode, body } = await answer;
      if (statusCode !== 200) throw toServiceError(statusCode, body);
      return { output: { ...(fromWire(body) as object), $metadata: { httpStatusCode: 200, attempts: 1, totalRetryDelay: 0 } }, response: undefined } as never;
    },
    { step: 'initialize', name: 'airlockDynaliteInProcess', priority: 'low' },
  );
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
  const store = takeCreatedStore();
  if (!store) throw new Error('dynalite made no store');
  const operations = dynaliteOperations(store);
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
    requestHandler: directHandler(operations, listener),
  });
  // Work per call that only a remote service would use: the signature, the user agent, the
  // SDK's log filtering (it filters every input and output even for its no-op logger), the
  // X-Ray trace header, and retries: a function call in this process has no transient failure
  // to retry (dynalite neither throttles nor drops; a condition or validation error is final),
  // and each call paid for a retry token and an invocation id.
  for (const name of ['httpSigningMiddleware', 'getUserAgentMiddleware', 'loggerMiddleware', 'retryMiddleware', 'recursionDetectionMiddleware']) client.middlewareStack.remove(name);
  if (options.bypassSdk) bypassSdkForItems(client, operations);
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
