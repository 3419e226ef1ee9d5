import { spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { PrincipalClaims } from '../../local/dev-issuer';
import type { SandboxVendors, VendorFaults, VendorStats } from '../../local/vendors/index';
import type { Timeline } from './timeline';

/**
 * What every demo scene works with: the API, the people (tokens from the local dev issuer),
 * optional control of the sandbox vendors, and the checks that make a scene pass or fail.
 */

/** A scene did not behave as the demo describes it; the message says what differed. */
export class SceneFailedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SceneFailedError';
  }
}

/** The scene cannot run against this server (e.g. no vendor admin access); not a failure. */
export class SceneSkippedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SceneSkippedError';
  }
}

/** The people of the demo: the same as the ready-made tokens `npm start` prints (bin/commands/dev.ts). */
export const People = {
  /** The employee the agent acts for; her manager is bob. */
  alice: { sub: 'alice', roles: ['Employee'], manager: 'bob', department: 'sales' },
  bob: { sub: 'bob', roles: ['Employee', 'Manager'], department: 'sales' },
  carol: { sub: 'carol', roles: ['Employee', 'SecurityAdmin'], department: 'security' },
  dave: { sub: 'dave', roles: ['Employee', 'SecurityAdmin'], department: 'security' },
  audrey: { sub: 'audrey', roles: ['Auditor'], department: 'audit' },
  /** On call: holds the kill-switch role (policies/limits.json killSwitch.role). */
  olivia: { sub: 'olivia', roles: ['Employee', 'KillSwitch'], department: 'ops' },
} satisfies Record<string, PrincipalClaims>;
export type Person = keyof typeof People;

/** Side-effect counters and fault injection of the sandbox vendors, however they are reached. */
export interface VendorControl {
  /** How the demo reaches them, for the timeline ("in-process", "HTTP admin endpoint"). */
  via: string;
  stats(connector: string): Promise<VendorStats>;
  setFaults(connector: string, faults: VendorFaults): Promise<void>;
}

/** Vendor control through the running vendors' in-process admin (the demo started them). */
export function inProcessVendors(vendors: SandboxVendors): VendorControl {
  return {
    via: 'in-process admin',
    stats: async (connector) => vendors.admin.stats(connector),
    setFaults: async (connector, faults) => vendors.admin.setFaults(connector, faults),
  };
}

const StatsSchema = z.object({ sideEffects: z.record(z.string(), z.number()), requests: z.record(z.string(), z.number()) });

/** Vendor control over each vendor's `/_admin/*` endpoint (header `x-admin-token`). */
export function httpVendors(baseUrls: Record<string, string>, adminTokens: Record<string, string>): VendorControl {
  const admin = async (connector: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> => {
    const base = baseUrls[connector];
    const token = adminTokens[connector];
    if (!base || !token) throw new SceneFailedError(`no admin access to the ${connector} vendor`);
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { 'x-admin-token': token, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!res.ok) throw new SceneFailedError(`the ${connector} vendor's admin endpoint answered ${res.status}`);
    return res.json() as Promise<unknown>;
  };
  return {
    via: 'vendor HTTP admin endpoint',
    stats: async (connector) => StatsSchema.parse(await admin(connector, 'GET', '/_admin/stats')),
    setFaults: async (connector, faults) => void (await admin(connector, 'POST', '/_admin/faults', faults)),
  };
}

/** Shared state between scenes (scene 4 replays scene 2; scene 8 tampers with scene 2's receipt). */
export interface DemoState {
  /** The fare scene 1 found for scene 2's flight. */
  fare?: { amount: number; currency: string };
  scene2?: { key: string; body: unknown; actionId: string; receipt: string };
}

/**
 * A second control plane a scene starts for itself (the consent scene: `requireDelegation`
 * on, as the deployed stack runs, while the demo's own plane keeps `npm start`'s default).
 */
export interface DemoPlane {
  url: string;
  /** Its own state directory (its vault is `<home>/audit`). */
  home: string;
  sign(claims: PrincipalClaims): Promise<string>;
  vendors: VendorControl;
  close(): Promise<void>;
}

/** Everything a scene needs. */
export interface DemoContext {
  /** API base URL, e.g. `http://127.0.0.1:8787`. */
  url: string;
  /** The server's state directory (AIRLOCK_HOME): the vault is `<home>/audit`. */
  home: string;
  out: Timeline;
  /** A token for one of the demo's people, signed by the local dev issuer. */
  token(person: Person): Promise<string>;
  /** The token an agent presents acting for `person` (claim act: {sub: agent}, RFC 8693). */
  agentToken(person: Person, agent: string): Promise<string>;
  /** Starts a control plane with `requireDelegation` on (standalone demo only; undefined against AIRLOCK_URL). */
  requireDelegationPlane?: () => Promise<DemoPlane>;
  /** Undefined when the demo cannot reach the vendors' admin (an external server). */
  vendors: VendorControl | undefined;
  /** Why `vendors` is undefined, for the skip messages. */
  vendorsMissingReason?: string;
  /** Travel date of this run (in the future, so flights have not departed). */
  date: string;
  /** Unique per run, so idempotency keys of one run never replay another's. */
  nonce: string;
  state: DemoState;
  /** Upper bound for any wait (synchronous answers, approvals, sagas), in ms. */
  timeoutMs: number;
}

/** Fails the scene unless `condition` holds; prints the check when it does. */
export function expectThat(ctx: DemoContext, condition: boolean, what: string, otherwise: string): asserts condition {
  if (!condition) throw new SceneFailedError(`${what}: ${otherwise}`);
  ctx.out.check(what);
}

// ── the API ────────────────────────────────────────────────────────────────

/** The parts of an action the demo reads (GET /v1/actions/{id}, POST /v1/actions answers). */
export const ActionSchema = z.object({
  id: z.string(),
  status: z.string(),
  statusReason: z.string().optional(),
  decision: z.object({ outcome: z.string(), policyIds: z.array(z.string()), reasons: z.array(z.string()) }).nullable(),
  receipt: z.string().nullable(),
  result: z.unknown(),
});
export type ActionView = z.infer<typeof ActionSchema>;

/** An RFC 9457 problem document with Airlock's extra members. */
export const ProblemSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number(),
  detail: z.string(),
  policyIds: z.array(z.string()).optional(),
  reasons: z.array(z.string()).optional(),
  connector: z.string().optional(),
  retryAfter: z.number().optional(),
  haltId: z.string().optional(),
  reason: z.string().optional(),
  missing: z.string().optional(),
  agent: z.string().nullable().optional(),
});

/** A raw API answer. */
export interface ApiAnswer {
  status: number;
  headers: Headers;
  body: unknown;
}

/** One call to the Airlock API as `person`. */
export async function api(
  ctx: DemoContext,
  person: Person,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<ApiAnswer> {
  let res: Response;
  try {
    res = await fetch(`${ctx.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${await ctx.token(person)}`,
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...options.headers,
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      signal: AbortSignal.timeout(ctx.timeoutMs),
    });
  } catch (cause) {
    throw new SceneFailedError(`${method} ${path} did not answer (${cause instanceof Error ? cause.message : 'network error'})`, { cause });
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? (JSON.parse(text) as unknown) : undefined;
  } catch (cause) {
    throw new SceneFailedError(`${method} ${path} answered ${res.status} with a body that is not JSON`, { cause });
  }
  return { status: res.status, headers: res.headers, body };
}

/** `POST /v1/actions` as `person` with an Idempotency-Key; waits up to `wait` seconds for the outcome. */
export function submit(ctx: DemoContext, person: Person, body: unknown, key: string, wait = 10): Promise<ApiAnswer> {
  return api(ctx, person, 'POST', '/v1/actions', { body, headers: { 'idempotency-key': key, prefer: `wait=${wait}` } });
}

/** Parses `value` or fails the scene saying what was expected. */
export function parseAs<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new SceneFailedError(`${what} did not have the expected shape (${parsed.error.issues[0]?.message ?? 'invalid'})`);
  return parsed.data;
}

/** Polls an action until its status is one of `statuses`. */
export async function waitForStatus(ctx: DemoContext, person: Person, actionId: string, statuses: readonly string[]): Promise<ActionView> {
  const deadline = Date.now() + ctx.timeoutMs;
  let last: ActionView | undefined;
  while (Date.now() < deadline) {
    const res = await api(ctx, person, 'GET', `/v1/actions/${actionId}`);
    if (res.status === 200) {
      last = parseAs(ActionSchema, res.body, `GET /v1/actions/${actionId}`);
      if (statuses.includes(last.status)) return last;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new SceneFailedError(`action ${actionId} did not reach ${statuses.join(' or ')} in ${ctx.timeoutMs} ms (last: ${last?.status ?? 'unknown'})`);
}

/** Polls until `probe` returns a value (an approval that the saga has not requested yet). */
export async function eventually<T>(ctx: DemoContext, what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ctx.timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new SceneFailedError(`${what} did not happen in ${ctx.timeoutMs} ms`);
}

// ── the CLI ────────────────────────────────────────────────────────────────

const cliEntry = fileURLToPath(new URL('../airlock.mjs', import.meta.url));

/** What a CLI run printed. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `airlock <args>` as a separate process, as a person at a terminal would, with
 * AIRLOCK_HOME set to the demo's state directory.
 */
export function airlockCli(ctx: DemoContext, args: string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliEntry, ...args], {
      env: { ...process.env, AIRLOCK_HOME: ctx.home, NO_COLOR: '1', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    // A hung CLI must not hang the demo: it is killed at the scene deadline.
    const timer = setTimeout(() => child.kill('SIGKILL'), ctx.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new SceneFailedError(`could not run airlock ${args[0] ?? ''}: ${error.message}`, { cause: error }));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Builds a context; `sign` mints a token for a person (the local dev issuer). */
export function createContext(o: {
  url: string;
  home: string;
  out: Timeline;
  sign(claims: PrincipalClaims): Promise<string>;
  vendors: VendorControl | undefined;
  vendorsMissingReason?: string;
  timeoutMs?: number;
  now?: Date;
  requireDelegationPlane?: () => Promise<DemoPlane>;
}): DemoContext {
  const tokens = new Map<Person, Promise<string>>();
  // 30 to 329 days ahead: flights have not departed, and reruns against one long-lived
  // server rarely land on a day whose seats earlier runs took.
  const days = 30 + randomInt(300);
  const date = new Date((o.now ?? new Date()).getTime() + days * 86_400_000).toISOString().slice(0, 10);
  return {
    url: o.url.replace(/\/+$/, ''),
    home: o.home,
    out: o.out,
    token(person) {
      let t = tokens.get(person);
      if (!t) tokens.set(person, (t = o.sign(People[person])));
      return t;
    },
    agentToken: (person, agent) => o.sign({ ...People[person], act: { sub: agent } }),
    ...(o.requireDelegationPlane ? { requireDelegationPlane: o.requireDelegationPlane } : {}),
    vendors: o.vendors,
    ...(o.vendorsMissingReason ? { vendorsMissingReason: o.vendorsMissingReason } : {}),
    date,
    nonce: randomBytes(6).toString('hex'),
    state: {},
    timeoutMs: o.timeoutMs ?? 20_000,
  };
}
