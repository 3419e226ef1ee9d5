import './untraced';
import { randomBytes, randomUUID } from 'node:crypto';
import type { McpInterceptor } from './mcp-push-fixtures';
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import type { Context } from 'aws-lambda';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { z } from 'zod';
import { connectors } from '../lambdas/tools/registry';
import { LOCAL_AWS_CREDENTIALS, LOCAL_AWS_REGION } from '../lambdas/adapters/local/dynalite';
import { dynamoEndpointFromEnv, openLocalDynamo, tableNameFromEnv } from '../lambdas/adapters/local/local-dynamo';
import { DEFAULT_LEDGER_TABLE, ensureTables } from '../lambdas/adapters/local/dynamo-tables';
import { FileSecrets } from '../lambdas/adapters/local/file-secrets';
import { type Logger } from '../lambdas/shared/logger';
import { logger as rootLogger } from '../lambdas/middleware/powertools';
import {
  headersTooLarge,
  internalProblem,
  malformedRequest,
  methodNotAllowed,
  notFound,
  payloadTooLarge,
  ProblemError,
  requestTimeout,
  serviceUnavailable,
  unauthorized,
  type ProblemDocument,
} from '../lambdas/shared/problem';
import { MAX_BODY_BYTES, problemResult, type HttpResult } from '../lambdas/middleware/http';
import { routes as defaultRoutes, type RouteSpec } from '../lambdas/api/routes';
import {
  buildApiGatewayEvent,
  compileRoutes,
  matchRoute,
  resultToResponse,
  splitTarget,
  type LocalResponse,
} from './api-gateway-event';
import { InvalidTokenError, loadOrCreateIssuer, type DevIssuer } from './dev-issuer';
import { cachingLoader, HandlerLoadError, type HandlerLoader, type LambdaHandler } from './handler-loader';
import { provisionLocalSecrets } from './provision-secrets';
import { consoleSite } from './console-site';
import { devIssuerOidc } from './dev-issuer-oidc';
import { combineSites, type LocalSite } from './site';
import { acquireStateLock, ensurePrivateDir, resolveStateDir } from './state-dir';

/**
 * The embedded default: one process that plays API Gateway (routes, JWT authorizer, payload
 * format 2.0), DynamoDB (dynalite, or an external endpoint) and Secrets Manager (files), and
 * invokes the same handler modules the stack deploys. Everything it keeps lives in the state
 * directory (and, with an external endpoint, in that database).
 */

/** Port used when neither the options nor AIRLOCK_PORT name one. */
export const DEFAULT_PORT = 8787;
/** API Gateway's integration timeout for HTTP APIs. */
export const DEFAULT_HANDLER_TIMEOUT_MS = 30_000;
/** How long close() waits for in-flight requests before cutting connections. */
const CLOSE_GRACE_MS = 5_000;
/** Bytes an early-rejected request may still upload before its socket is cut. */
const DRAIN_LIMIT_BYTES = 1024 * 1024;
/** How long a client that was answered before its body ended may go on sending (bounded by DRAIN_LIMIT_BYTES too). */
const DISCARD_GRACE_MS = 5_000;
/**
 * Most bytes of request line and headers read, as API Gateway's HTTP API ("total combined
 * size of request line and header values: 10240 bytes"). Set explicitly so that Node's
 * default (16 KiB, or a `--max-http-header-size` flag) does not decide it.
 */
export const MAX_HEADER_BYTES = 10_240;

/** The port is taken by another process. */
export class PortInUseError extends Error {
  constructor(
    readonly port: number,
    options?: { cause?: unknown },
  ) {
    super(`port ${port} is in use; set AIRLOCK_PORT`, options);
    this.name = 'PortInUseError';
  }
}

/** AIRLOCK_PORT is not a port number. */
export class InvalidPortError extends Error {
  constructor(value: string) {
    super(`AIRLOCK_PORT must be a number from 0 to 65535, not ${JSON.stringify(value.slice(0, 20))}`);
    this.name = 'InvalidPortError';
  }
}

const PortSchema = z.coerce.number().int().min(0).max(65535);

/** Reads AIRLOCK_PORT; undefined when unset or empty. */
export function portFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.AIRLOCK_PORT;
  if (raw === undefined || raw.trim() === '') return undefined;
  const parsed = PortSchema.safeParse(raw.trim());
  if (!parsed.success) throw new InvalidPortError(raw);
  return parsed.data;
}

/** The DynamoDB handlers and services reach: embedded dynalite or an external endpoint. */
export interface LocalDynamo {
  endpoint: string;
  client: DynamoDBClient;
  tableName: string;
  /** The database outlives the runtime (AIRLOCK_DYNAMODB_ENDPOINT), so closing keeps its data. */
  external: boolean;
}

/** What a plug-in service gets when it starts: every shared piece of the runtime. */
export interface LocalServiceContext {
  stateDir: string;
  dynamo: LocalDynamo;
  secrets: FileSecrets;
  issuer: DevIssuer;
  logger: Logger;
  /** Environment the runtime (and services started earlier) exported to handlers. */
  env: Readonly<Record<string, string>>;
}

/** A started service. */
export interface LocalServiceHandle {
  /** Stops the service; called once, in reverse start order. */
  stop(): Promise<void>;
  /** Variables to export to handlers (e.g. a sandbox vendor's base URL). */
  env?: Record<string, string>;
  /** Label → value lines for the startup banner (e.g. `travel vendor` → URL). */
  info?: Record<string, string>;
  /** The handlers of the API functions this service composed, by the route table's `fn`. */
  handlers?: Record<string, LambdaHandler>;
  /** Serves some POST /mcp messages itself, streaming (the conformance run's push fixtures only: local/mcp-push-fixtures.ts). */
  mcpInterceptor?: McpInterceptor;
}

/**
 * A service plugged into the runtime: sandbox vendors, the saga runner, the audit store.
 * Started in list order after DynamoDB and secrets, before the first request is served.
 */
export interface LocalService {
  name: string;
  start(context: LocalServiceContext): Promise<LocalServiceHandle | void>;
}

export interface LocalRuntimeOptions {
  /** Port on 127.0.0.1; 0 picks a free one. Default: AIRLOCK_PORT, else 8787. */
  port?: number;
  /** State directory. Default: AIRLOCK_HOME, else `.airlock/` under the cwd. */
  stateDir?: string;
  /** Ledger table name. Default: AIRLOCK_DYNAMODB_TABLE, else `airlock-ledger`. */
  tableName?: string;
  /**
   * A DynamoDB-compatible endpoint (DynamoDB Local, …) to use instead of starting dynalite.
   * Default: AIRLOCK_DYNAMODB_ENDPOINT; `null` forces dynalite.
   */
  dynamoEndpoint?: string | null;
  /** Route table. Default: lambdas/api/routes.ts, the table the stack deploys. */
  routes?: readonly RouteSpec[];
  /**
   * Maps a route's `fn` to its handler. Default: the handlers the services composed (the
   * control plane's); a route whose function no service provides answers 500.
   */
  loadHandler?: HandlerLoader;
  /** Extra services, started in order and stopped in reverse. */
  services?: readonly LocalService[];
  /** Runtime logger (access log, errors). Default: the process logger. */
  logger?: Logger;
  /** Keep dynalite in memory instead of `<stateDir>/dynamodb`. Default false; moot with an endpoint. */
  inMemoryDynamo?: boolean;
  /** Per-invocation timeout; API Gateway's is 30 s. */
  handlerTimeoutMs?: number;
  /**
   * Serve the web console at /console and the dev issuer's sign-in endpoints under
   * /dev-issuer (local/console-site.ts, local/dev-issuer-oidc.ts). Default true.
   */
  console?: boolean;
}

export interface LocalRuntime {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  stateDir: string;
  issuer: DevIssuer;
  secrets: FileSecrets;
  dynamo: LocalDynamo;
  /** What the stack would set on each function, plus what services added: for tools and services. */
  env: Readonly<Record<string, string>>;
  /** Started services and their banner lines. */
  services: ReadonlyArray<{ name: string; info: Record<string, string> }>;
  /** Stops the HTTP server, services (reverse order) and DynamoDB. Idempotent. */
  close(): Promise<void>;
}

type Cleanup = () => Promise<void>;

async function runCleanups(cleanups: Cleanup[], log: Logger): Promise<void> {
  while (cleanups.length) {
    const step = cleanups.pop()!;
    try {
      await step();
    } catch (error) {
      log.error('shutdown step failed', { error });
    }
  }
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(error.code === 'EADDRINUSE' ? new PortInUseError(port, { cause: error }) : error);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, '127.0.0.1');
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
    force.unref();
    server.close(() => {
      clearTimeout(force);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/** API Gateway-style request id (`JKJaXmPLvHcESHA=`). */
function newRequestId(): string {
  return randomBytes(10).toString('base64');
}

function send(res: ServerResponse, response: LocalResponse, requestId: string): void {
  if (res.headersSent) return;
  res.writeHead(response.statusCode, {
    ...response.headers,
    'apigw-requestid': requestId,
    'content-length': String(response.body.byteLength),
  });
  res.end(response.body);
}

/** The problem for an error Node's HTTP parser raised before any request object existed. */
export function parserProblem(code: string | undefined): ProblemError {
  if (code === 'HPE_HEADER_OVERFLOW') return headersTooLarge(MAX_HEADER_BYTES);
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT') return requestTimeout();
  return malformedRequest();
}

/**
 * Answers a request Node's parser refused (bad header bytes, header overflow, broken framing)
 * with a problem document written straight to the socket, then closes it: Node's own answer
 * is a bare status line with no body.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Socket, log: Logger): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const doc = parserProblem(error.code).problem;
  const body = Buffer.from(JSON.stringify(doc), 'utf8');
  const head = [
    `HTTP/1.1 ${doc.status} ${STATUS_CODES[doc.status] ?? ''}`,
    'content-type: application/problem+json',
    'cache-control: no-store',
    `apigw-requestid: ${newRequestId()}`,
    `content-length: ${body.byteLength}`,
    'connection: close',
    '',
    '',
  ].join('\r\n');
  log.info('unparseable request refused', { code: error.code, status: doc.status });
  socket.end(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  // Closing with unread bytes pending makes the kernel send a reset, which can overtake the
  // answer (a 100 KB header arrives faster than it is refused): read a bounded amount of what
  // is still coming, then cut.
  let drained = 0;
  socket.on('data', (chunk: Buffer) => {
    drained += chunk.byteLength;
    if (drained > DRAIN_LIMIT_BYTES) socket.destroy();
  });
  socket.resume();
  setTimeout(() => socket.destroy(), 1_000).unref();
}

function resultOf(doc: ProblemDocument, headers: Record<string, string> = {}): LocalResponse {
  const r: HttpResult = problemResult(doc, headers);
  return resultToResponse(r)!;
}

function problemResponse(error: ProblemError): LocalResponse {
  return resultOf(error.problem, error.headers);
}

/**
 * After answering a request whose body was not (fully) read, let the client finish
 * uploading a bounded amount so it sees the response instead of a reset, then cut it.
 * The time bound is generous: a busy client may take seconds to read an answer it already
 * has, and a cut while it is still sending resets the connection and loses that answer
 * (found with the test suite on a loaded 2-core machine: EPIPE instead of the 413).
 */
function discardRest(req: IncomingMessage, res: ServerResponse): void {
  if (req.complete) return;
  res.setHeader('connection', 'close');
  let seen = 0;
  const cut = () => req.socket.destroy();
  req.on('data', (chunk: Buffer) => {
    seen += chunk.byteLength;
    if (seen > DRAIN_LIMIT_BYTES) cut();
  });
  res.once('finish', () => setTimeout(cut, DISCARD_GRACE_MS).unref());
  req.resume();
}

type BodyResult = { ok: true; body: Buffer | undefined } | { ok: false; reason: 'too-large' | 'malformed' };

/**
 * Node reports a body it cannot parse (bad chunk framing) as a `clientError` on the server,
 * not on the request, and the request then never ends. The server marks such a request and
 * emits this event on it, so its body read gives up at once.
 */
const BODY_BROKEN = 'airlock:body-broken';
const brokenBodies = new WeakSet<IncomingMessage>();

/** Reads the body up to `limit` bytes; stops reading (never buffers more) past it. */
function readBody(req: IncomingMessage, limit: number): Promise<BodyResult> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve({ ok: false, reason: 'too-large' });
  if (brokenBodies.has(req)) return Promise.resolve({ ok: false, reason: 'malformed' });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onBroken);
      req.off('close', onBroken);
      req.off(BODY_BROKEN, onBroken);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > limit) {
        cleanup();
        req.pause();
        resolve({ ok: false, reason: 'too-large' });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve({ ok: true, body: size === 0 ? undefined : Buffer.concat(chunks, size) });
    };
    // Broken framing, a stream error, or a client that hung up mid-body: the body is unusable,
    // which is the client's doing (400), and the request must settle instead of hanging.
    const onBroken = () => {
      cleanup();
      resolve({ ok: false, reason: 'malformed' });
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onBroken);
    req.once('close', onBroken);
    req.once(BODY_BROKEN, onBroken);
  });
}

const BEARER = /^Bearer +([A-Za-z0-9\-_.~+/]+=*) *$/i;

function lambdaContext(fn: string, timeoutMs: number): Context {
  const deadline = Date.now() + timeoutMs;
  const functionName = `airlock-${fn}`;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${LOCAL_AWS_REGION}:000000000000:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
const TIMED_OUT = Symbol('timed out');

/**
 * Starts the local runtime. The port is bound first, so a taken port fails fast (with
 * PortInUseError) before any state is touched; requests that arrive while the rest starts
 * wait for it. On any start failure everything already started is stopped again.
 */
export async function startLocalRuntime(options: LocalRuntimeOptions = {}): Promise<LocalRuntime> {
  const log = options.logger ?? rootLogger.child({ component: 'local-runtime' });
  const requestedPort = options.port ?? portFromEnv() ?? DEFAULT_PORT;
  const stateDir = resolveStateDir(options.stateDir);
  const tableName = options.tableName ?? tableNameFromEnv() ?? DEFAULT_LEDGER_TABLE;
  const dynamoEndpoint = options.dynamoEndpoint === null ? undefined : (options.dynamoEndpoint ?? dynamoEndpointFromEnv());
  const timeoutMs = options.handlerTimeoutMs ?? DEFAULT_HANDLER_TIMEOUT_MS;
  const matcher = compileRoutes(options.routes ?? defaultRoutes);
  // Filled by the services as they start (the control plane composes the API functions).
  const provided = new Map<string, LambdaHandler>();
  const fromServices: HandlerLoader = async (fn) => {
    const handler = provided.get(fn);
    if (!handler) throw new HandlerLoadError(fn, 'no service provides this function');
    return handler;
  };
  const loadHandler = cachingLoader(options.loadHandler ?? fromServices);
  const mcpInterceptors: McpInterceptor[] = [];
  const cleanups: Cleanup[] = [];

  let markReady!: (ok: boolean) => void;
  const ready = new Promise<boolean>((resolve) => {
    markReady = resolve;
  });
  let issuer: DevIssuer | undefined;
  let site: LocalSite | undefined;
  // Once close() begins, new requests get 503 and close() waits for the handlers already
  // running before it stops services and DynamoDB, so none of them writes afterwards.
  let draining = false;
  const inFlight = new Set<Promise<void>>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const requestId = newRequestId();
    const started = Date.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const { rawPath } = splitTarget(req.url ?? '/');
    const reqLog = log.child({ requestId });
    let response: LocalResponse;
    try {
      let preread: BodyResult | undefined;
      if (mcpInterceptors.length > 0 && method === 'POST' && rawPath === '/mcp' && (await ready)) {
        preread = await readBody(req, MAX_BODY_BYTES);
        const text = preread.ok ? (preread.body?.toString('utf8') ?? '') : undefined;
        for (const intercept of mcpInterceptors) {
          if (text !== undefined && (await intercept(req, res, text))) {
            reqLog.info('request', { method, path: rawPath, status: res.statusCode, ms: Date.now() - started, streamed: true });
            return;
          }
        }
      }
      response = await route(req, method, requestId, reqLog, preread);
    } catch (error) {
      reqLog.error('local runtime failed a request', { error });
      response = resultOf(internalProblem(requestId));
    }
    if (!req.complete) discardRest(req, res);
    send(res, response, requestId);
    reqLog.info('request', { method, path: rawPath.slice(0, 200), status: response.statusCode, ms: Date.now() - started });
  };

  const route = async (req: IncomingMessage, method: string, requestId: string, reqLog: Logger, preread?: BodyResult): Promise<LocalResponse> => {
    if (draining || !(await ready) || !issuer) return problemResponse(serviceUnavailable('The local runtime is shutting down.', 1));
    const url = req.url ?? '/';
    const { rawPath, rawQueryString } = splitTarget(url);
    const page = await site?.({
      method,
      rawPath,
      query: new URLSearchParams(rawQueryString),
      headers: req.headers,
      readBody: async (limit) => {
        const read = await readBody(req, limit);
        // A body whose framing broke reads as none: the page then refuses the request itself.
        return read.ok ? read.body : read.reason === 'too-large' ? 'too-large' : undefined;
      },
    });
    if (page) return page;
    const match = matchRoute(matcher, method, rawPath);
    if (match.kind === 'not-found') return problemResponse(notFound(`No route matches ${method} ${rawPath.slice(0, 200)}.`));
    if (match.kind === 'method-not-allowed') return problemResponse(methodNotAllowed(match.allow));

    let claims;
    if (match.route.auth) {
      // Node keeps only the first of repeated Authorization headers in req.headers; the
      // handler would see them comma-joined. One token per request, or none is trusted.
      const values = req.headersDistinct.authorization ?? [];
      const bearer = values.length === 1 ? BEARER.exec(values[0]!) : null;
      if (!bearer?.[1]) return problemResponse(unauthorized('Send exactly one Authorization: Bearer <token> header; `airlock token <sub> --role <role>` prints one.'));
      try {
        claims = await issuer.verify(bearer[1]);
      } catch (error) {
        if (!(error instanceof InvalidTokenError)) throw error;
        reqLog.info('token rejected', { reason: error.reason });
        return problemResponse(unauthorized('The bearer token is invalid or expired.'));
      }
    }

    const body = preread ?? (await readBody(req, MAX_BODY_BYTES));
    if (!body.ok) return problemResponse(body.reason === 'too-large' ? payloadTooLarge(MAX_BODY_BYTES) : malformedRequest());

    const headers: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(req.headersDistinct)) if (v) headers[k] = v;
    const event = buildApiGatewayEvent(
      {
        method,
        url,
        headers,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        body: body.body,
        requestId,
        now: new Date(),
      },
      match,
      claims ? { claims } : undefined,
    );
    const handler = await loadHandler(match.route.fn);
    const result = await withTimeout(handler(event, lambdaContext(match.route.fn, timeoutMs)), timeoutMs);
    if (result === TIMED_OUT) {
      reqLog.error('handler timed out', { fn: match.route.fn, timeoutMs });
      return problemResponse(serviceUnavailable('The request took too long. Retry later.', 1));
    }
    const response = resultToResponse(result);
    if (!response) {
      reqLog.error('handler returned a malformed result', { fn: match.route.fn });
      return resultOf(internalProblem(requestId));
    }
    return response;
  };

  // A parser error can arrive while the socket still owes an answer. In the body of the
  // request being answered, it is that request's problem: its body read gives up and its
  // answer (a 400) is the only one. After it (pipelining), the answer in progress goes out
  // first, then the problem; interleaving would corrupt both.
  const answering = new Map<Socket, IncomingMessage>();
  const deferred = new Map<Socket, NodeJS.ErrnoException>();
  const server = createServer({ requestTimeout: timeoutMs + 5_000, headersTimeout: 10_000, maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => {
    const socket = req.socket;
    answering.set(socket, req);
    res.once('close', () => {
      if (answering.get(socket) === req) answering.delete(socket);
      const error = deferred.get(socket);
      deferred.delete(socket);
      if (error && res.writableFinished) answerClientError(error, socket, log);
      else if (error) socket.destroy();
    });
    const work = handle(req, res).catch((error) => {
      log.error('response failed', { error });
      res.destroy();
    });
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    const inFlight = answering.get(socket);
    if (!inFlight) {
      answerClientError(error, socket, log);
    } else if (!inFlight.complete) {
      log.info('request body refused', { code: error.code });
      brokenBodies.add(inFlight);
      inFlight.emit(BODY_BROKEN);
    } else {
      deferred.set(socket, error);
    }
  });

  const port = await listen(server, requestedPort);
  cleanups.push(async () => {
    markReady(false);
    await closeServer(server);
  });

  try {
    await ensurePrivateDir(stateDir);
    cleanups.push(await acquireStateLock(stateDir));
    issuer = await loadOrCreateIssuer(stateDir);
    if (options.console !== false) site = combineSites(consoleSite, devIssuerOidc({ issuer, port }));
    const secrets = new FileSecrets(join(stateDir, 'secrets'));
    await provisionLocalSecrets(
      secrets,
      connectors.map((c) => c.name),
    );
    const db = await openLocalDynamo({
      endpoint: dynamoEndpoint,
      path: dynamoEndpoint || options.inMemoryDynamo ? undefined : await ensurePrivateDir(join(stateDir, 'dynamodb')),
    });
    cleanups.push(() => db.close());
    // A real engine may take seconds to make a table ACTIVE; dynalite does it at once.
    await ensureTables(db.client, tableName, { timeoutMs: db.external ? 60_000 : 10_000 });
    const dynamo: LocalDynamo = { endpoint: db.endpoint, client: db.client, tableName, external: db.external };

    // What the stack would set on each function (for tools and services; handlers get their
    // dependencies from the local composition, not from the environment).
    const env: Record<string, string> = {
      AIRLOCK_HOME: stateDir,
      LEDGER_TABLE: tableName,
      AWS_ENDPOINT_URL_DYNAMODB: db.endpoint,
      AWS_REGION: LOCAL_AWS_REGION,
      AWS_ACCESS_KEY_ID: LOCAL_AWS_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_AWS_CREDENTIALS.secretAccessKey,
    };

    const started: Array<{ name: string; info: Record<string, string> }> = [];
    for (const service of options.services ?? []) {
      const handle = await service.start({ stateDir, dynamo, secrets, issuer, logger: log.child({ localService: service.name }), env: { ...env } });
      if (handle) {
        cleanups.push(() => handle.stop());
        if (handle.env) Object.assign(env, handle.env);
        for (const [fn, handler] of Object.entries(handle.handlers ?? {})) provided.set(fn, handler);
        if (handle.mcpInterceptor) mcpInterceptors.push(handle.mcpInterceptor);
      }
      started.push({ name: service.name, info: { ...(handle?.info ?? {}) } });
    }

    markReady(true);
    let closing: Promise<void> | undefined;
    return {
      url: `http://127.0.0.1:${port}`,
      port,
      stateDir,
      issuer,
      secrets,
      dynamo,
      env,
      services: started,
      close: () => {
        closing ??= (async () => {
          draining = true;
          // Bounded: a request holding a `Prefer: wait` open only reads by then.
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            Promise.allSettled([...inFlight]),
            new Promise((resolve) => {
              timer = setTimeout(resolve, CLOSE_GRACE_MS);
            }),
          ]);
          clearTimeout(timer);
          await runCleanups(cleanups, log);
        })();
        return closing;
      },
    };
  } catch (error) {
    markReady(false);
    await runCleanups(cleanups, log);
    throw error;
  }
}

/** A logger that writes nothing; for tests and for callers that print their own output. */
export { silentLogger } from '../lambdas/middleware/powertools';
