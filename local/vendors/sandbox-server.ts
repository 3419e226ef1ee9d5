import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { VendorStateCorruptError, VendorStateFile } from './state-file';

/**
 * The shared machinery of the sandbox vendors: routing, API-key auth, the `Idempotency-Key`
 * layer (Stripe semantics: the first response of an executed endpoint is stored and replayed;
 * a different body under the same key is a 422; a key still in flight is a 409), side-effect
 * counters, fault injection that lives only here and on the admin endpoint, never in the
 * production payload, and — given a state file — durability: like a real vendor, what it
 * answered survives a crash of the process (faults do not).
 */

/** Fail the next `count` calls of an operation (`*` = any) with a status, before any effect. */
export interface FailNextFault {
  operation: string;
  count: number;
  /** Only calls whose Idempotency-Key ends with this (one step of one action: `.<stepId>`, `.<stepId>.undo`). */
  keySuffix?: string;
  /** HTTP status to answer with; 503 unless given. */
  status?: number;
  /** Vendor error code in the body; derived from the status unless given. */
  code?: string;
}

/** Accept the next `count` calls of an operation and never answer: nothing happens, the client times out. */
export interface TimeoutFault {
  operation: string;
  count: number;
  /** Only calls whose Idempotency-Key ends with this. */
  keySuffix?: string;
}

/**
 * Perform the next `count` calls of an operation (the side effect commits), then lose the
 * response: `hang` holds it until the client gives up, `destroy` resets the socket.
 */
export interface CommitThenDropFault {
  operation: string;
  count: number;
  mode?: 'hang' | 'destroy';
  /** Only calls whose Idempotency-Key ends with this. */
  keySuffix?: string;
}

/**
 * Answer the next `count` successful calls of an operation with a body of at least `bytes`:
 * its `data` list repeated, as a vendor does that ignores paging or returns far more than
 * asked. Nothing else changes (no side effect, no stored idempotent reply).
 */
export interface OversizeFault {
  operation: string;
  count: number;
  bytes: number;
}

/**
 * Act as a vendor without idempotency support for the next `count` calls of an operation: the
 * Idempotency-Key is neither looked up nor stored, so a retry commits again (a duplicate).
 */
export interface IgnoreIdempotencyFault {
  operation: string;
  count: number;
}

/** Fault injection for one sandbox vendor. Setting faults replaces the previous set. */
export interface VendorFaults {
  /** Added before every API call, in milliseconds. */
  latencyMs?: number;
  /** Probability (0..1) that an API call fails with `errorStatus` before doing anything. */
  errorRate?: number;
  /** Status used by `errorRate`; 503 unless given. */
  errorStatus?: number;
  /** Seed of the random generator behind `errorRate`, so failures are reproducible. */
  seed?: number;
  failNext?: FailNextFault[];
  timeoutNext?: TimeoutFault[];
  commitThenDrop?: CommitThenDropFault[];
  oversizeNext?: OversizeFault[];
  ignoreIdempotency?: IgnoreIdempotencyFault[];
}

/** Largest body the oversize fault makes (16 MB). */
const MAX_OVERSIZE_BYTES = 16_000_000;

const keySuffix = z.string().min(1).max(255).optional();

const faultsSchema = z
  .object({
    latencyMs: z.number().int().min(0).max(60_000).optional(),
    errorRate: z.number().min(0).max(1).optional(),
    errorStatus: z.number().int().min(400).max(599).optional(),
    seed: z.number().int().optional(),
    failNext: z
      .array(
        z
          .object({ operation: z.string(), count: z.number().int().positive(), status: z.number().int().min(400).max(599).optional(), code: z.string().optional(), keySuffix })
          .strict(),
      )
      .optional(),
    timeoutNext: z.array(z.object({ operation: z.string(), count: z.number().int().positive(), keySuffix }).strict()).optional(),
    commitThenDrop: z
      .array(z.object({ operation: z.string(), count: z.number().int().positive(), mode: z.enum(['hang', 'destroy']).optional(), keySuffix }).strict())
      .optional(),
    oversizeNext: z
      .array(z.object({ operation: z.string(), count: z.number().int().positive(), bytes: z.number().int().positive().max(MAX_OVERSIZE_BYTES) }).strict())
      .optional(),
    ignoreIdempotency: z.array(z.object({ operation: z.string(), count: z.number().int().positive() }).strict()).optional(),
  })
  .strict();

/** Repeats a reply's `data` list until its JSON is at least `bytes` long (unchanged without a non-empty list). */
function oversize(reply: Reply, bytes: number): Reply {
  const body = reply.body as { data?: unknown } | null;
  if (!body || typeof body !== 'object' || !Array.isArray(body.data) || body.data.length === 0) return reply;
  const items = body.data as unknown[];
  const base = Buffer.byteLength(JSON.stringify({ ...body, data: [] }));
  const perItem = Buffer.byteLength(JSON.stringify(items)) / items.length;
  const count = Math.max(items.length, Math.ceil((bytes - base) / perItem));
  return { ...reply, body: { ...body, data: Array.from({ length: count }, (_, i) => items[i % items.length]) } };
}

/** Side effects performed (committed, not replayed) and requests seen, per operation. */
export interface VendorStats {
  sideEffects: Record<string, number>;
  requests: Record<string, number>;
}

/**
 * One side effect a vendor performed (a 2xx of a side-effect route, not a replay), in the order
 * performed: `seq` comes from a sequence shared by the vendors started together, so effects of
 * different vendors can be ordered too. The chaos storm compares this log with the ledger.
 */
export interface VendorEffect {
  seq: number;
  operation: string;
  /** The Idempotency-Key the call carried (the step's key), null when it carried none. */
  idempotencyKey: string | null;
  status: number;
  /** Wall-clock epoch ms the vendor performed it (the real clock, not the vendor's test clock): when, against halts and breakers. */
  at?: number;
}

/** A sequence shared by vendors started together; `seen` moves it past numbers restored from disk. */
export interface EffectSequence {
  next(): number;
  seen(n: number): void;
}

/** A fresh effect sequence starting at 1. */
export function effectSequence(): EffectSequence {
  let last = 0;
  return {
    next: () => ++last,
    seen: (n) => {
      last = Math.max(last, n);
    },
  };
}

/** An object a vendor's side effect created that is still in effect. */
export interface LiveEffect {
  object: string;
  clientReference: string | null;
}

/** What a route handler answers. */
export interface Reply {
  status: number;
  body: unknown;
}

/** The parsed request a route handler receives. */
export interface SandboxRequest {
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
}

/** Clock and id helpers shared by a vendor's handlers. */
export interface SandboxEnv {
  now(): number;
  newId(prefix: string): string;
}

/** One endpoint of a sandbox vendor. */
export interface Route<S> {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Path with `:name` parameters, e.g. `/v1/holds/:id/release`. */
  path: string;
  /** Operation name used by stats and faults (the connector's tool name where there is one). */
  operation: string;
  /** Whether a 2xx from this route changed state (counted, and covered by the idempotency layer). */
  sideEffect: boolean;
  handle(req: SandboxRequest, state: S, env: SandboxEnv): Reply;
}

/** A sandbox vendor: fresh state and its routes. */
export interface SandboxVendorSpec<S> {
  name: string;
  createState(env: SandboxEnv): S;
  /**
   * State read back from the vendor's state file (Maps already revived); validates it and
   * throws on anything that is not a state this vendor wrote.
   */
  restoreState(saved: unknown, env: SandboxEnv): S;
  routes: Route<S>[];
  /**
   * What the vendor's side effects left in place right now: one entry per object still in
   * effect (a hold or booking, an authorization, an order, a role), named by the
   * `clientReference` it was created with (the connectors send the step's idempotency key).
   */
  live?(state: S, env: SandboxEnv): LiveEffect[];
  /**
   * Makes the vendor forget one object by id, undoing what it did to others (a lost refund
   * leaves its capture unrefunded): a vendor diverging from what it told us, for
   * reconciliation tests. False when there is no such object.
   */
  lose?(state: S, id: string): boolean;
}

/** Options every sandbox vendor accepts at start-up. */
export interface SandboxVendorOptions {
  /** The only API key accepted (`x-api-key` or `Authorization: Bearer`). */
  apiKey: string;
  /** Token for `/_admin/*` (header `x-admin-token`); random unless given. Never the API key. */
  adminToken?: string;
  faults?: VendorFaults;
  /** Clock, injectable so tests can expire holds without waiting. */
  now?: () => number;
  /** Port on 127.0.0.1; 0 (ephemeral) unless given. */
  port?: number;
  /**
   * File the vendor keeps its state in (holds, orders, payments, idempotency records,
   * side-effect counters), loaded at start and written before every answer that follows a
   * change. In memory only when omitted.
   */
  stateFile?: string;
  /** Numbers the effect log; shared by the vendors `startSandboxVendors` starts. */
  sequence?: EffectSequence;
}

function safeJson(raw: string): unknown {
  try {
    return JSON.parse(raw || '{}');
  } catch {
    return undefined;
  }
}

/** In-process control of a running sandbox vendor (the same powers as its admin endpoint). */
export interface SandboxVendorAdmin {
  setFaults(faults: VendorFaults): void;
  /** Adds faults to the current set: lists are appended, scalar settings replaced. */
  addFaults(faults: VendorFaults): void;
  /** Every side effect performed since the vendor's state began (it survives restarts). */
  effects(): VendorEffect[];
  /** The objects its side effects left in effect now. */
  live(): LiveEffect[];
  /** Forgets one object by id, as a vendor that loses a record (false: no such object). */
  lose(id: string): boolean;
  /** Clears state, stats, idempotency records and faults. */
  reset(): void;
  stats(): VendorStats;
}

export interface RunningSandboxVendor {
  name: string;
  baseUrl: string;
  adminToken: string;
  admin: SandboxVendorAdmin;
  close(): Promise<void>;
}

/** Builds an error reply in the vendor error shape the connectors parse. */
export function fail(status: number, code: string, message: string): Reply {
  return { status, body: { error: { code, message } } };
}

/** Parses a request body with zod, or yields the 400 reply a vendor would give. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): { ok: true; value: T } | { ok: false; reply: Reply } {
  const parsed = schema.safeParse(body);
  if (parsed.success) return { ok: true, value: parsed.data };
  const first = parsed.error.issues[0];
  const where = first && first.path.length > 0 ? `${first.path.join('.')}: ` : '';
  return { ok: false, reply: fail(400, 'invalid_request', `${where}${first?.message ?? 'invalid body'}`) };
}

/** Deterministic PRNG (mulberry32) so a seeded error rate fails the same calls every run. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

function statusCode(status: number): string {
  if (status === 429) return 'rate_limited';
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 409) return 'conflict';
  if (status >= 500) return 'service_unavailable';
  return 'bad_request';
}

interface IdempotencyRecord {
  fingerprint: string;
  reply: Reply | undefined;
}

const counts = z.record(z.string(), z.number().int().nonnegative());
/** The state file's envelope; the vendor's own state inside it is checked by its spec. */
const SavedVendorSchema = z
  .object({
    version: z.literal(1),
    vendor: z.string(),
    idCounter: z.number().int().nonnegative(),
    sideEffects: counts,
    requests: counts,
    idempotency: z.array(z.tuple([z.string(), z.object({ fingerprint: z.string(), reply: z.object({ status: z.number().int(), body: z.unknown() }) })])),
    // Absent in files written before the log existed.
    effects: z
      .array(z.object({ seq: z.number().int().positive(), operation: z.string(), idempotencyKey: z.string().nullable(), status: z.number().int(), at: z.number().optional() }).strict())
      .optional(),
    state: z.unknown(),
  })
  .strict();

interface CompiledRoute<S> {
  route: Route<S>;
  regex: RegExp;
  names: string[];
}

/** Longest a hung request is held before the vendor gives up on it itself (client timeouts are far shorter). */
const MAX_HANG_MS = 120_000;
const MAX_BODY_BYTES = 1_000_000;

/** Starts one sandbox vendor on 127.0.0.1. */
export async function startSandboxVendor<S>(spec: SandboxVendorSpec<S>, options: SandboxVendorOptions): Promise<RunningSandboxVendor> {
  const now = options.now ?? Date.now;
  const adminToken = options.adminToken ?? randomBytes(24).toString('base64url');
  if (safeEqual(adminToken, options.apiKey)) throw new Error(`${spec.name} sandbox: the admin token must differ from the API key`);
  let counter = 0;
  const env: SandboxEnv = {
    now,
    newId: (prefix) => `${prefix}_${(++counter).toString(36).padStart(4, '0')}${randomBytes(4).toString('hex')}`,
  };

  let state = spec.createState(env);
  let faults: VendorFaults = {};
  let random = Math.random;
  let sideEffects: Record<string, number> = {};
  let requests: Record<string, number> = {};
  let idempotency = new Map<string, IdempotencyRecord>();
  let effects: VendorEffect[] = [];
  const sequence = options.sequence ?? effectSequence();
  const timers = new Set<NodeJS.Timeout>();

  const stateFile = options.stateFile
    ? new VendorStateFile(options.stateFile, () => ({
        version: 1,
        vendor: spec.name,
        idCounter: counter,
        sideEffects,
        requests,
        // A record without a reply belongs to a request still running; it has changed nothing yet.
        idempotency: [...idempotency].filter(([, r]) => r.reply !== undefined),
        effects,
        state,
      }))
    : undefined;
  if (stateFile) {
    await stateFile.discardPartialWrite();
    const saved = await stateFile.load();
    if (saved !== undefined) {
      try {
        const parsed = SavedVendorSchema.parse(saved);
        if (parsed.vendor !== spec.name) throw new Error(`the file belongs to the ${parsed.vendor} vendor`);
        state = spec.restoreState(parsed.state, env);
        counter = parsed.idCounter;
        sideEffects = parsed.sideEffects;
        requests = parsed.requests;
        idempotency = new Map(parsed.idempotency.map(([key, r]) => [key, { fingerprint: r.fingerprint, reply: { status: r.reply.status, body: r.reply.body } }]));
        effects = parsed.effects ?? [];
        for (const e of effects) sequence.seen(e.seq);
      } catch (error) {
        throw new VendorStateCorruptError(stateFile.path, { cause: error });
      }
    }
  }
  /** Resolves once everything answered so far would survive a crash (at once without a state file). */
  const durable = () => stateFile?.durable() ?? Promise.resolve();
  const changed = () => stateFile?.changed();

  const setFaults = (next: VendorFaults) => {
    faults = structuredClone(faultsSchema.parse(next));
    random = faults.seed === undefined ? Math.random : seededRandom(faults.seed);
  };
  setFaults(options.faults ?? {});
  const addFaults = (more: VendorFaults) => {
    const add = faultsSchema.parse(more);
    const lists = ['failNext', 'timeoutNext', 'commitThenDrop', 'oversizeNext', 'ignoreIdempotency'] as const;
    const merged: Record<string, unknown> = { ...faults, ...add };
    // Spent rules (count 0) are dropped: they would not parse again, and they do nothing.
    for (const list of lists) if (faults[list] || add[list]) merged[list] = [...(faults[list] ?? []).filter((f) => f.count > 0), ...(add[list] ?? [])];
    setFaults(merged as VendorFaults);
  };

  const admin: SandboxVendorAdmin = {
    setFaults,
    addFaults,
    effects: () => effects.map((e) => ({ ...e })),
    live: () => spec.live?.(state, env) ?? [],
    lose(id) {
      const lost = spec.lose?.(state, id) ?? false;
      if (lost) changed();
      return lost;
    },
    reset() {
      state = spec.createState(env);
      sideEffects = {};
      requests = {};
      idempotency = new Map();
      effects = [];
      setFaults({});
      changed();
    },
    stats: () => ({ sideEffects: { ...sideEffects }, requests: { ...requests } }),
  };

  const compiled: CompiledRoute<S>[] = spec.routes.map((route) => {
    const names: string[] = [];
    const pattern = route.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:([a-zA-Z]+)/g, (_m, name: string) => {
      names.push(name);
      return '([^/]+)';
    });
    return { route, regex: new RegExp(`^${pattern}$`), names };
  });

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  /** Holds the response open until the client gives up (socket closes) or MAX_HANG_MS passes. */
  const hang = (res: ServerResponse) => {
    const t = setTimeout(() => {
      timers.delete(t);
      res.destroy();
    }, MAX_HANG_MS);
    timers.add(t);
    res.on('close', () => {
      clearTimeout(t);
      timers.delete(t);
    });
  };

  const takeFault = <F extends { operation: string; count: number; keySuffix?: string | undefined }>(
    list: F[] | undefined,
    operation: string,
    key: string | undefined,
  ): F | undefined => {
    const rule = list?.find(
      (f) => f.count > 0 && (f.operation === operation || f.operation === '*') && (f.keySuffix === undefined || (key?.endsWith(f.keySuffix) ?? false)),
    );
    if (rule) rule.count -= 1;
    return rule;
  };

  const send = (res: ServerResponse, reply: Reply, extra: Record<string, string> = {}) => {
    if (res.destroyed) return;
    const payload = JSON.stringify(reply.body);
    res.writeHead(reply.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...extra });
    res.end(payload);
  };

  const readBody = (req: IncomingMessage) =>
    new Promise<string>((resolve, reject) => {
      let size = 0;
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          reject(new Error('body too large'));
          req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });

  const presentedKey = (req: IncomingMessage): string | undefined => {
    const header = req.headers['x-api-key'];
    if (typeof header === 'string') return header;
    const auth = req.headers.authorization;
    return auth?.startsWith('Bearer ') ? auth.slice('Bearer '.length) : undefined;
  };

  const handleAdmin = async (req: IncomingMessage, res: ServerResponse, path: string, raw: string) => {
    const token = req.headers['x-admin-token'];
    if (typeof token !== 'string' || !safeEqual(token, adminToken)) {
      send(res, fail(401, 'unauthorized', 'admin token required'));
      return;
    }
    if (req.method === 'GET' && path === '/_admin/stats') return send(res, { status: 200, body: admin.stats() });
    if (req.method === 'GET' && path === '/_admin/effects') return send(res, { status: 200, body: { effects } });
    if (req.method === 'GET' && path === '/_admin/live') return send(res, { status: 200, body: { live: admin.live() } });
    if (req.method === 'POST' && path === '/_admin/lose') {
      const parsed = z.object({ id: z.string().min(1).max(64) }).strict().safeParse(safeJson(raw));
      if (!parsed.success) return send(res, fail(400, 'invalid_request', 'body must be {"id": "<object id>"}'));
      if (!admin.lose(parsed.data.id)) return send(res, fail(404, 'not_found', 'no such object'));
      await durable();
      return send(res, { status: 204, body: {} });
    }
    if (req.method === 'POST' && path === '/_admin/reset') {
      admin.reset();
      await durable();
      return send(res, { status: 204, body: {} });
    }
    if (req.method === 'POST' && (path === '/_admin/faults' || path === '/_admin/faults/add')) {
      let json: unknown;
      try {
        json = JSON.parse(raw || '{}');
      } catch {
        return send(res, fail(400, 'invalid_json', 'body is not JSON'));
      }
      const parsed = faultsSchema.safeParse(json);
      if (!parsed.success) return send(res, fail(400, 'invalid_request', parsed.error.issues[0]?.message ?? 'invalid faults'));
      if (path === '/_admin/faults') setFaults(parsed.data);
      else addFaults(parsed.data);
      return send(res, { status: 200, body: { faults } });
    }
    send(res, fail(404, 'not_found', 'no such admin endpoint'));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://sandbox');
    let raw: string;
    try {
      raw = await readBody(req);
    } catch {
      return send(res, fail(413, 'body_too_large', 'request body too large'));
    }
    if (url.pathname.startsWith('/_admin/')) return handleAdmin(req, res, url.pathname, raw);

    let matched: { route: Route<S>; params: Record<string, string> } | undefined;
    for (const c of compiled) {
      if (c.route.method !== req.method) continue;
      const m = c.regex.exec(url.pathname);
      if (!m) continue;
      const params: Record<string, string> = {};
      c.names.forEach((name, i) => {
        params[name] = decodeURIComponent(m[i + 1] ?? '');
      });
      matched = { route: c.route, params };
      break;
    }
    const key = presentedKey(req);
    if (key === undefined || !safeEqual(key, options.apiKey)) return send(res, fail(401, 'unauthorized', 'invalid API key'));
    if (!matched) return send(res, fail(404, 'not_found', `no route ${req.method} ${url.pathname}`));
    const { route, params } = matched;
    requests[route.operation] = (requests[route.operation] ?? 0) + 1;

    if (faults.latencyMs) {
      let abandoned = false;
      res.once('close', () => {
        abandoned = true;
      });
      await sleep(faults.latencyMs);
      // A client that gave up during injected latency never reaches the endpoint, so slow
      // calls stay "nothing happened"; `commitThenDrop` is the explicit "it happened" case.
      if (abandoned) return;
    }
    // Faults model the front door failing before the endpoint runs, so (as at Stripe) nothing
    // is stored under the idempotency key and a retry executes normally.
    const headerKey = typeof req.headers['idempotency-key'] === 'string' ? req.headers['idempotency-key'] : undefined;
    if (takeFault(faults.timeoutNext, route.operation, headerKey)) return hang(res);
    const failRule = takeFault(faults.failNext, route.operation, headerKey);
    if (failRule) {
      const status = failRule.status ?? 503;
      return send(res, fail(status, failRule.code ?? statusCode(status), 'injected failure'));
    }
    if (faults.errorRate && random() < faults.errorRate) {
      const status = faults.errorStatus ?? 503;
      return send(res, fail(status, statusCode(status), 'injected failure'));
    }

    let body: unknown = undefined;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        return send(res, fail(400, 'invalid_json', 'body is not JSON'));
      }
    }

    const ignoreKey = route.sideEffect && takeFault(faults.ignoreIdempotency, route.operation, undefined) !== undefined;
    const idemKey = route.sideEffect && !ignoreKey ? req.headers['idempotency-key'] : undefined;
    let record: IdempotencyRecord | undefined;
    if (typeof idemKey === 'string') {
      if (idemKey.length === 0 || idemKey.length > 255) return send(res, fail(400, 'invalid_idempotency_key', 'Idempotency-Key must be 1-255 characters'));
      const fingerprint = createHash('sha256').update(`${req.method} ${url.pathname}\n${raw}`).digest('hex');
      const existing = idempotency.get(idemKey);
      if (existing) {
        if (existing.fingerprint !== fingerprint) {
          return send(res, fail(422, 'idempotency_key_reused', 'Idempotency-Key was used with a different request'));
        }
        if (!existing.reply) return send(res, fail(409, 'idempotency_in_flight', 'a request with this Idempotency-Key is in progress'));
        return send(res, existing.reply, { 'idempotent-replayed': 'true' });
      }
      record = { fingerprint, reply: undefined };
      idempotency.set(idemKey, record);
    }

    let reply: Reply;
    try {
      reply = route.handle({ params, query: url.searchParams, body }, state, env);
    } catch (err) {
      // A crashed handler committed nothing we can vouch for; free the key so a retry can run.
      if (typeof idemKey === 'string') idempotency.delete(idemKey);
      if (route.sideEffect) changed();
      throw err;
    }
    if (record) record.reply = reply;
    if (route.sideEffect && reply.status >= 200 && reply.status < 300) {
      sideEffects[route.operation] = (sideEffects[route.operation] ?? 0) + 1;
      effects.push({ seq: sequence.next(), operation: route.operation, idempotencyKey: typeof idemKey === 'string' ? idemKey : null, status: reply.status, at: Date.now() });
    }
    if (route.sideEffect) changed();
    // Nothing is answered before it is on disk, reads included: a read must not show a change
    // that a crash could still take back.
    await durable();

    const drop = takeFault(faults.commitThenDrop, route.operation, headerKey);
    if (drop) {
      if (drop.mode === 'destroy') return void res.destroy();
      return hang(res);
    }
    const big = reply.status >= 200 && reply.status < 300 ? takeFault(faults.oversizeNext, route.operation, undefined) : undefined;
    send(res, big ? oversize(reply, big.bytes) : reply);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, fail(500, 'internal_error', 'sandbox vendor error'));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    name: spec.name,
    baseUrl: `http://127.0.0.1:${port}`,
    adminToken,
    admin,
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // A change whose request was cut off above is still written: closed means on disk.
      await durable();
    },
  };
}
