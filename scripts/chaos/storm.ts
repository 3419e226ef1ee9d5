import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { LoadedLimits } from '../../lambdas/limits/config';
import type { Digest } from '../../lambdas/receipts/schema';
import type { Finding } from '../../lambdas/receipts/verify';
import { approvalIdFor } from '../../lambdas/shared/ids';
import { loadOrCreateIssuer } from '../../local/dev-issuer';
import type { LiveEffect, VendorEffect } from '../../local/vendors/index';
import { INJECTORS, type World } from './injectors';
import { AGENT_RETRY, isRetryable, operatorCall, retryDelayMs, serverDelayMs, waitIsOver } from './agent-retry';
import { derive, int, type Rng } from './rng';
import { BUYERS, envelopeOf, FINANCE_ADMINS, KILL_SWITCH_OPERATOR, person, SECURITY_ADMINS, type ActionSpec, type Schedule } from './schedule';

/**
 * One run of a schedule: the vendors in their own process, the control plane in another
 * (SIGKILLed and restarted when an injector says so), agents driving the actions, then a quiet
 * period, a clean stop, and everything the invariants need read back.
 */

const repo = fileURLToPath(new URL('../../', import.meta.url));

export const TERMINAL = new Set(['completed', 'compensated', 'failed', 'denied', 'rejected', 'expired', 'cancelled']);

export interface HttpRecord {
  method: string;
  path: string;
  status: number;
  retryAfter: string | null;
  type: string | undefined;
  /** Who sent it. */
  sub?: string;
  /** When it was sent and when its answer came (epoch ms): the server acted in between. */
  sentAt?: number;
  at?: number;
  /** POST /v1/actions: the tools it names (what tool and connector rate limits count). */
  tools?: string[];
  /** A 403 halted: the halt that refused it. */
  haltId?: string;
}

export interface VoteRecord {
  voter: string;
  decision: 'approve' | 'reject';
  status: number;
  type: string | undefined;
  /** Whether the approvals service counted it (200 with recorded: true). */
  counted: boolean;
  /** The approval's status the answer reported (pending, approved, rejected, expired). */
  outcome: string | undefined;
}

/** What happened to one action of the schedule, from the agent's side. */
export interface ActionRun {
  spec: ActionSpec;
  key: string;
  /** Every action id any answer for this key named (one, if idempotency holds). */
  ids: string[];
  /** The first definitive answer to the POST. */
  answer: { status: number; type: string | undefined } | undefined;
  id: string | undefined;
  waitedForApproval: boolean;
  votes: VoteRecord[];
  /** Things the agent could not do (gave up after the deadline, an unexpected answer). */
  problems: string[];
  /** Answers to the cancels the storm sent for this action (the cancels injector). */
  cancels?: { status: number }[];
  /** Votes a halt refused (403 halted) before they could count. */
  haltedVotes?: number;
  /**
   * Nobody the storm knows may decide its approval (policy asks for an approver who may
   * approve every connector of a mixed plan, and no such person exists): its votes are refused
   * as ineligible and expiry is its right end.
   */
  noEligibleApprover?: boolean;
  /** Found after the storm: a request the agent abandoned landed after the answer it kept (see the settle). */
  landedLate?: boolean;
  /** Retries of its POSTs (429, 503, 409 in progress), all copies together. */
  retries?: number;
  /**
   * A POST whose retries ran out (agent-retry.ts: count or time budget): its last answer, the
   * policies a 429 named, the retries and how long it kept trying.
   */
  gaveUp?: { status: number; type: string | undefined; policies?: string[]; retries: number; waitedMs: number; answers?: Record<string, number> };
}

export interface StepView {
  id: string;
  tool: string;
  status: string;
  error?: { name: string; message: string } | undefined;
  compensation?: { tool: string; status: string } | undefined;
}

export interface FinalView {
  id: string;
  status: string;
  mode: string;
  principal: { sub: string; department?: string };
  statusReason?: string | undefined;
  steps: StepView[];
  decision: { outcome: string; quorum: number } | null;
  createdAt: string;
}

/** What the invariants read of a digest: where it sits in the chain and what it promised. */
export interface DigestLink {
  key: string;
  endTime: string;
  previous: string | null;
  heartbeat: Digest['heartbeat'];
}

export interface Observations {
  schedule: Schedule;
  runs: ActionRun[];
  views: Map<string, FinalView>;
  effects: Record<string, VendorEffect[]>;
  sideEffectCounters: Record<string, Record<string, number>>;
  /** Objects each vendor's side effects left in effect at the end, by clientReference (the step's key). */
  live: Record<string, LiveEffect[]>;
  /** Receipts by action id (parsed), and files that name no action of the run. */
  receipts: Map<string, unknown[]>;
  strayReceipts: string[];
  /**
   * `airlock audit verify --json` over the vault after the clean stop, with every digest the
   * writers logged as stored passed as `--expect-head` (a digest removed is MISSING HEAD).
   * `findings` is undefined when its output was not the JSON report.
   */
  audit: { code: number | null; output: string; findings?: Finding[] };
  /** The vault's digests, in key order (what a GAP finding is judged against). */
  digests?: DigestLink[];
  /** Each SIGKILL: when it was sent, and when the restarted control plane said READY (epoch ms). */
  crashTimes?: { killedAt: number; readyAt: number }[];
  /** Logs, events and receipts, for the secret scan. */
  texts: { name: string; text: string }[];
  /** Values that must appear in none of the texts. */
  secrets: { name: string; value: string }[];
  responses: HttpRecord[];
  settle: { boundMs: number; tookMs: number; unsettled: string[] };
  crashes: number;
  restartMs: number[];
  durationMs: number;
  /** CPU seconds spent by each part of the storm (Linux; zero where /proc is missing). */
  cpu: { harness: number; controlPlane: number; vendors: number };
  home: string;
  /** The limits the control plane ran under (scripts/chaos/limits.ts). */
  limits: LoadedLimits;
  /** The audit records written as log lines (`audit` field: ratelimit.refused, halt.refused_new…). */
  auditLines: Record<string, unknown>[];
  /** Circuit-breaker moves, from the control plane's `circuit breaker moved` log lines, in time order. */
  breakerMoves: BreakerMove[];
  /** The halts the storm made: id, scope, target, and when (epoch ms) they were made and resumed. */
  halts: { key: string; id: string; scope: string; target: string; mode: 'stop' | 'pause'; at: number; resumeSentAt?: number; resumedAt?: number }[];
}

/** One breaker transition as logged: when (epoch ms), and, for a move to open, when trial calls may begin. */
export interface BreakerMove {
  connector: string;
  from: string;
  to: string;
  at: number;
  retryAt?: number;
}

/** The breaker moves in a control plane log (`circuit breaker moved` lines), in time order. */
export function breakerMovesIn(text: string): BreakerMove[] {
  const moves: BreakerMove[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('"circuit breaker moved"')) continue;
    try {
      const r = JSON.parse(line) as Record<string, unknown>;
      const at = Date.parse(String(r.time));
      if (r.message !== 'circuit breaker moved' || typeof r.connector !== 'string' || typeof r.to !== 'string' || !Number.isFinite(at)) continue;
      moves.push({ connector: r.connector, from: String(r.from), to: r.to, at, ...(typeof r.retryAt === 'number' ? { retryAt: r.retryAt } : {}) });
    } catch {
      /* not a log record */
    }
  }
  return moves.sort((a, b) => a.at - b.at);
}

export interface RunOptions {
  agents: number;
  /** The storm's limits file (scripts/chaos/limits.ts), written beside its state. */
  limits: { text: string; loaded: LoadedLimits };
  /** How long after the last restart every action must be terminal. */
  settleBoundMs: number;
  approvalTimeoutSeconds: number;
  keepHome?: boolean;
  log?: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How much longer the settle check tries to read an action it never managed to read (429s, 503s). */
const UNREAD_GRACE_MS = 300_000;
/** How long an agent's read of its action waits for a change (`Prefer: wait`; the server caps it at 20 s). */
const ACTION_WAIT_S = 20;

interface Proc {
  child: ChildProcess;
  exited: Promise<number | null>;
}

/** CPU seconds (user + system) a live child has used so far, from /proc; 0 where there is none. */
async function cpuSeconds(proc: Proc): Promise<number> {
  try {
    const stat = await readFile(`/proc/${proc.child.pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

function startProc(script: string, args: string[], logFile: string, env: Record<string, string>, ready: RegExp): Promise<Proc & { match: RegExpMatchArray }> {
  // tsx as a loader, not its CLI: the CLI runs the script in a grandchild that a SIGKILL would miss.
  // CHAOS_CPU_PROF=<dir>: a V8 CPU profile of each child, written when it exits cleanly.
  const prof = process.env.CHAOS_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.CHAOS_CPU_PROF}`] : [];
  const child = spawn(process.execPath, [...prof, '--import', 'tsx', join(repo, 'scripts', 'chaos', script), ...args], {
    cwd: repo,
    // The X-Ray SDK (under Powertools Tracer) installs async hooks on every promise unless in
    // manual mode; tracing is off outside Lambda, so that tax bought nothing here (~10 % of CPU).
    env: { ...process.env, AWS_XRAY_MANUAL_MODE: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = createWriteStream(logFile, { flags: 'a' });
  child.stderr!.pipe(log, { end: false });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let out = '';
    let done = false;
    child.stdout!.on('data', (c: Buffer) => {
      log.write(c);
      if (done) return;
      out += c.toString();
      const m = ready.exec(out);
      if (m) {
        done = true;
        resolve({ child, exited, match: m });
      }
    });
    void exited.then((code) => {
      if (!done) reject(new Error(`${script} exited ${code} before it was ready; see ${logFile}`));
    });
  });
}

/** The tools a POST /v1/actions body names (a single call or a plan's steps). */
function toolsOf(body: unknown): string[] | undefined {
  const b = body as { tool?: unknown; plan?: Array<{ tool?: unknown }> } | undefined;
  if (typeof b?.tool === 'string') return [b.tool];
  if (Array.isArray(b?.plan)) return b.plan.map((s) => String(s.tool));
  return undefined;
}

const ProblemType = z.object({ type: z.string() }).partial().passthrough();
const typeOf = (body: unknown) => {
  const p = ProblemType.safeParse(body);
  return p.success ? p.data.type : undefined;
};

/** Runs one schedule and gathers what the invariants read. */
export async function runStorm(schedule: Schedule, options: RunOptions): Promise<Observations> {
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  const home = await mkdtemp(join(tmpdir(), 'airlock-chaos-'));
  const logs = join(home, 'chaos-logs');
  await mkdir(logs);
  const vendorsInfo = join(home, 'chaos-vendors.json');
  const procs: Proc[] = [];
  const responses: HttpRecord[] = [];
  const restartMs: number[] = [];
  const crashTimes: { killedAt: number; readyAt: number }[] = [];
  let crashes = 0;
  const cpu = { harness: 0, controlPlane: 0, vendors: 0 };
  const harnessCpu = process.cpuUsage();
  try {
    const vendors = await startProc('vendors-main.ts', [home, vendorsInfo], join(logs, 'vendors.log'), {}, /READY/);
    procs.push(vendors);
    const info = z
      .object({ baseUrls: z.record(z.string(), z.string()), adminTokens: z.record(z.string(), z.string()) })
      .parse(JSON.parse(await readFile(vendorsInfo, 'utf8')));
    const limitsFile = join(home, 'chaos-limits.json');
    await writeFile(limitsFile, options.limits.text);
    const cpEnv = { CHAOS_APPROVAL_TIMEOUT_SECONDS: String(options.approvalTimeoutSeconds), LOG_LEVEL: 'info', CHAOS_LIMITS_FILE: limitsFile };
    let generation = 0;
    const startCp = async () => {
      generation++;
      const p = await startProc('control-plane-main.ts', [home, vendorsInfo], join(logs, `control-plane-${generation}.log`), cpEnv, /READY (http:\/\/127\.0\.0\.1:\d+)/);
      procs.push(p);
      return { proc: p, url: p.match[1]! };
    };
    let cp = await startCp();
    let lastRestart = Date.now();
    // Agents wait on this while the control plane is down.
    let up: Promise<void> = Promise.resolve();

    const world: World = {
      async addFaults(vendor, faults) {
        const res = await fetch(`${info.baseUrls[vendor]}/_admin/faults/add`, {
          method: 'POST',
          headers: { 'x-admin-token': info.adminTokens[vendor]!, 'content-type': 'application/json' },
          body: JSON.stringify(faults),
        });
        if (res.status !== 200) throw new Error(`adding faults to ${vendor}: ${res.status} ${await res.text()}`);
      },
      async crash() {
        crashes++;
        const t0 = Date.now();
        let release!: () => void;
        up = new Promise((r) => (release = r));
        cpu.controlPlane += await cpuSeconds(cp.proc);
        const killedAt = Date.now();
        cp.proc.child.kill('SIGKILL');
        await cp.proc.exited;
        log(`  crash ${crashes}: SIGKILL, restarting`);
        cp = await startCp();
        lastRestart = Date.now();
        restartMs.push(lastRestart - t0);
        crashTimes.push({ killedAt, readyAt: lastRestart });
        release();
      },
      async halt(key, body) {
        const res = await operatorCall(() => call('POST', '/v1/halts', KILL_SWITCH_OPERATOR, body), {
          sleep,
          // A halt the 503 came after: the one with this reason, still active.
          recorded: async () => {
            const list = await call('GET', '/v1/halts', KILL_SWITCH_OPERATOR);
            const found = list?.status === 200 ? (list.body.items as { reason: string; status: string }[]).find((h) => h.reason === body.reason && h.status === 'active') : undefined;
            return found && list ? { ...list, status: 201, body: found } : undefined;
          },
        });
        if (res?.status !== 201 && res?.status !== 200) throw new Error(`halting ${body.scope} ${body.target}: ${res?.status} ${JSON.stringify(res?.body).slice(0, 300)}`);
        halts.push({ key, id: String(res.body.id), scope: body.scope, target: body.target, mode: body.mode, at: Date.now() });
        log(`  halt ${key}: ${body.scope} ${body.target}${body.mode === 'pause' ? ' (pause)' : ''}`);
      },
      async resume(key, reason) {
        const halt = halts.find((h) => h.key === key && h.resumedAt === undefined);
        if (!halt) return;
        halt.resumeSentAt = Date.now();
        const res = await operatorCall(() => call('DELETE', `/v1/halts/${halt.id}`, KILL_SWITCH_OPERATOR, { reason }), { sleep });
        // A 409 after a retry: the resume a 503 came after was recorded (only this harness resumes).
        const resumed = res?.status === 200 || (res?.status === 409 && res.body?.title === 'Already resumed');
        if (!resumed) throw new Error(`resuming ${halt.id}: ${res?.status} ${JSON.stringify(res?.body).slice(0, 300)}`);
        halt.resumedAt = Date.now();
      },
      async cancel(index) {
        const run = runs.find((r) => r.spec.index === index);
        if (!run?.ids[0]) return; // not accepted (yet, or ever): nothing to cancel
        const res = await call('POST', `/v1/actions/${run.ids[0]}/cancel`, run.spec.requester, { reason: 'chaos: the agent changed its mind' });
        if (res) (run.cancels ??= []).push({ status: res.status });
      },
    };
    const halts: Observations['halts'] = [];

    const issuer = await loadOrCreateIssuer(home);
    const tokens = new Map<string, Promise<string>>();
    const tokenOf = (sub: string) => {
      let t = tokens.get(sub);
      if (!t) {
        const p = person(sub);
        t = issuer.sign({ sub, roles: p.roles, department: p.department, ...(p.manager ? { manager: p.manager } : {}) }, '12h');
        tokens.set(sub, t);
      }
      return t;
    };

    /** One HTTP call to the control plane, retried (same request) across crashes until the deadline. */
    const call = async (
      method: string,
      path: string,
      sub: string,
      body?: unknown,
      headers: Record<string, string> = {},
      opts: { abortAfterMs?: number; deadline?: number } = {},
    ): Promise<{ status: number; headers: Headers; body: any } | undefined> => {
      const deadline = opts.deadline ?? Date.now() + 120_000;
      for (;;) {
        await up;
        const url = cp.url;
        const sentAt = Date.now();
        try {
          const res = await fetch(`${url}${path}`, {
            method,
            headers: { authorization: `Bearer ${await tokenOf(sub)}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
            signal: AbortSignal.timeout(opts.abortAfterMs ?? 30_000),
          });
          const text = await res.text();
          let parsed: unknown = undefined;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = text;
          }
          const tools = method === 'POST' && path === '/v1/actions' ? toolsOf(body) : undefined;
          const haltId = res.status === 403 && typeOf(parsed)?.endsWith(':halted') ? String((parsed as { haltId?: unknown }).haltId) : undefined;
          responses.push({
            method,
            path: path.replace(/act_[0-9A-Za-z]+|apr_[0-9A-Za-z]+|hlt_[0-9A-Za-z]+/g, ':id').replace(/cursor=[^&]*/, 'cursor=…'),
            status: res.status,
            retryAfter: res.headers.get('retry-after'),
            type: typeOf(parsed),
            sub,
            sentAt,
            at: Date.now(),
            ...(tools ? { tools } : {}),
            ...(haltId ? { haltId } : {}),
          });
          return { status: res.status, headers: res.headers, body: parsed };
        } catch (error) {
          // Cut short on purpose (an agent's own timeout): the caller decides what to do.
          if (opts.abortAfterMs !== undefined) return undefined;
          if (Date.now() > Math.max(deadline, lastRestart + 60_000)) throw error;
          await sleep(100);
        }
      }
    };

    const runs: ActionRun[] = schedule.actions.map((spec) => ({
      spec,
      key: `chaos-${schedule.seed}-${spec.index}`,
      ids: [],
      answer: undefined,
      id: undefined,
      waitedForApproval: false,
      votes: [],
      problems: [],
    }));
    const today = Date.now();

    // Each action's retry jitter comes from the seed (scripts/chaos/agent-retry.ts).
    const retryRngs = new Map<number, Rng>();
    const retryRngOf = (run: ActionRun) => {
      let rng = retryRngs.get(run.spec.index);
      if (!rng) retryRngs.set(run.spec.index, (rng = derive(schedule.seed, 8, run.spec.index)));
      return rng;
    };
    /**
     * One POST of the action's envelope, retried as a well-behaved agent does (agent-retry.ts):
     * the same Idempotency-Key, Retry-After honoured, jittered exponential backoff, a bounded
     * budget. Giving up is recorded on the run (the storm reports it).
     */
    const post = async (run: ActionRun, abortAfterMs?: number) => {
      const first = Date.now();
      // What the retried answers were, for the report should the agent give up.
      const answers = new Map<string, number>();
      for (let retry = 1; ; retry++) {
        const res = await call('POST', '/v1/actions', run.spec.requester, envelopeOf(run.spec, today), { 'idempotency-key': run.key, prefer: run.spec.prefer }, abortAfterMs === undefined ? {} : { abortAfterMs });
        if (!res) return undefined;
        const id = (res.body?.id ?? res.body?.actionId) as string | undefined;
        if (typeof id === 'string' && !run.ids.includes(id)) run.ids.push(id);
        const answer = { status: res.status, type: typeOf(res.body), headers: res.headers };
        if (!isRetryable(answer)) return res;
        const label = `${res.status} ${(answer.type ?? '').replace(/^.*[:#]/, '')}`.trim();
        answers.set(label, (answers.get(label) ?? 0) + 1);
        const now = Date.now();
        const wait = retryDelayMs(AGENT_RETRY, retry, serverDelayMs(res.headers, now), now - first, retryRngOf(run));
        if (wait === undefined) {
          const policies = (res.body as { 'violated-policies'?: unknown } | undefined)?.['violated-policies'];
          run.gaveUp = {
            status: res.status,
            type: answer.type,
            retries: retry - 1,
            waitedMs: now - first,
            answers: Object.fromEntries(answers),
            ...(Array.isArray(policies) ? { policies: policies.map(String) } : {}),
          };
          // The first request with this key never finished being accepted, past the lock that frees it: not the agent's patience.
          if (res.status === 409) run.problems.push(`POST still 409 ${answer.type ?? ''} after ${retry - 1} retries over ${((now - first) / 1000).toFixed(0)} s`);
          return res;
        }
        run.retries = (run.retries ?? 0) + 1;
        await sleep(wait);
      }
    };

    /** The action as its requester reads it; with `waitS`, a long poll (`Prefer: wait`) answered at its next change. */
    const view = async (run: ActionRun, waitS?: number): Promise<FinalView | undefined> => {
      const res = await call('GET', `/v1/actions/${run.id}`, run.spec.requester, undefined, waitS ? { prefer: `wait=${waitS}` } : {});
      return res?.status === 200 ? (res.body as FinalView) : undefined;
    };

    /** Whether a wait the agent began at `startedAt` is over (agent-retry.ts waitIsOver). */
    const over = (startedAt: number, boundMs = options.settleBoundMs) => waitIsOver(Date.now(), startedAt, lastRestart, boundMs);

    /**
     * A person's call (reading an approval, voting, reading an action): a 429 or 503 is waited
     * out as the server says (250 ms to 10 s), as a person clicks again, within the bound of the
     * wait it belongs to. A 429 is refused before the route runs, so sending again is safe. At
     * 10,000 actions a few approvers decide thousands of approvals and meet their own
     * `principal-burst`; taking that 429 as the answer made votes look refused.
     */
    const patiently = async <A extends { status: number; headers: Headers }>(send: () => Promise<A | undefined>, startedAt: number): Promise<A | undefined> => {
      for (;;) {
        const res = await send();
        if (!res || (res.status !== 429 && res.status !== 503) || over(startedAt)) return res;
        await sleep(Math.min(10_000, Math.max(250, serverDelayMs(res.headers, Date.now()) ?? 1_000)));
      }
    };

    /**
     * Follows the action until `done(status)` with waiting reads (each answered when the status
     * changes, or after 20 s), as an agent that knows the API would; gives up at the deadline (the
     * bound, counted from the wait's start or the last restart, whichever is later). A refused or
     * failed read (429, 503, a restart) backs off before the next.
     */
    const until = async (run: ActionRun, done: (s: string) => boolean, boundMs: number) => {
      const startedAt = Date.now();
      for (let pause = 200; ; ) {
        const v = await view(run, ACTION_WAIT_S);
        if (v && done(v.status)) return v;
        if (over(startedAt, boundMs)) return v;
        if (v) continue; // answered at a change that is not the one awaited: wait again at once
        await sleep(pause);
        pause = Math.min(2_000, pause * 2);
      }
    };

    const vote = async (run: ActionRun, voter: string, decision: 'approve' | 'reject') => {
      const approvalId = approvalIdFor(run.id!);
      // The action shows awaiting_approval a moment before its approval is stored: look until it is there.
      let preview;
      const startedAt = Date.now();
      for (let wait = 25; ; wait = Math.min(500, wait * 2)) {
        preview = await patiently(() => call('GET', `/v1/approvals/${approvalId}`, voter), startedAt);
        if (preview?.status !== 404 || over(startedAt)) break;
        // Ended meanwhile (expired, failed): nothing left to vote on; the invariants judge the ending.
        if (TERMINAL.has((await view(run))?.status ?? '')) return;
        await sleep(wait);
      }
      if (preview?.status !== 200) {
        // Not allowed to see it (a refused self-vote) or already closed: vote anyway, as a person clicking would.
        if (voter !== run.spec.requester && preview?.status !== 409 && !run.noEligibleApprover) run.problems.push(`${voter} could not read ${approvalId}: ${preview?.status}`);
      }
      const planHash = preview?.status === 200 ? (preview.body?.planHash as string) : '0'.repeat(64);
      const send = () => patiently(() => call('POST', `/v1/approvals/${approvalId}/decision`, voter, { decision, planHash, comment: `chaos ${decision}` }), startedAt);
      let res = await send();
      // A halt refuses votes on the work it covers (recorded as a refused vote): a person tries again later.
      for (let wait = 250; res?.status === 403 && typeOf(res.body)?.endsWith(':halted'); wait = Math.min(2_000, wait * 2)) {
        run.haltedVotes = (run.haltedVotes ?? 0) + 1;
        if (over(startedAt) || TERMINAL.has((await view(run))?.status ?? '')) break;
        await sleep(wait);
        res = await send();
      }
      if (!res) return;
      run.votes.push({ voter, decision, status: res.status, type: typeOf(res.body), counted: res.status === 200 && res.body?.recorded === true, outcome: res.status === 200 ? String(res.body?.status) : undefined });
    };

    /**
     * Who may decide the action's approval. Usually the spec's approvers; but policy may ask
     * others (the tight caps make `exposure.cap-near` ask each connector's approvers), so when
     * the first of them cannot see the approval, every plausible approver is asked in turn, as
     * a requester would find out who to turn to (GET /v1/approvals/{id} is 404 to the ineligible).
     */
    const approversFor = async (run: ActionRun): Promise<string[]> => {
      const spec = run.spec;
      const approvalId = approvalIdFor(run.id!);
      // The requester may read the approval once it is stored.
      const startedAt = Date.now();
      // Backing off to 2 s, and looking whether the action ended only every third try: at 10,000
      // actions these looks were a fifth of all requests, and their CPU is the storm's bound.
      for (let wait = 100, tries = 1; ; wait = Math.min(2_000, wait * 2), tries++) {
        if ((await patiently(() => call('GET', `/v1/approvals/${approvalId}`, spec.requester), startedAt))?.status === 200) break;
        if (over(startedAt) || (tries % 3 === 0 && TERMINAL.has((await view(run))?.status ?? ''))) return spec.approvers;
        await sleep(wait);
      }
      const first = spec.approvers[0];
      const readable = async (who: string) => (await patiently(() => call('GET', `/v1/approvals/${approvalId}`, who), startedAt))?.status === 200;
      if (first && (await readable(first))) return spec.approvers;
      const byConnector: Record<string, readonly string[]> = { travel: [person(spec.requester).manager ?? ''], payments: FINANCE_ADMINS, procurement: BUYERS, iam: SECURITY_ADMINS };
      const pool = [...new Set([...spec.approvers, ...spec.steps.filter((s) => s.commit).flatMap((s) => byConnector[s.tool.slice(0, s.tool.indexOf('.'))] ?? [])])].filter((s) => s && s !== first);
      const eligible: string[] = [];
      for (const candidate of pool) if (await readable(candidate)) eligible.push(candidate);
      if (eligible.length > 0) return eligible;
      run.noEligibleApprover = true;
      return spec.approvers;
    };

    const runAction = async (run: ActionRun) => {
      const spec = run.spec;
      const rng = derive(schedule.seed, 5, spec.index);
      let res;
      switch (spec.retry) {
        case 'duplicate': {
          const copies = await Promise.all(Array.from({ length: int(rng, 2, 3) }, () => post(run)));
          res = copies.find((c) => c !== undefined);
          break;
        }
        case 'abort-retry':
          await post(run, int(rng, 2, 40));
          res = await post(run);
          break;
        default:
          res = await post(run);
      }
      if (!res) {
        run.problems.push('no answer to POST');
        return;
      }
      run.answer = { status: res.status, type: typeOf(res.body) };
      run.id = run.ids[0];
      if (!run.id) {
        // 403: refused (a halt, policy); a give-up after 429/503 is reported apart (`gave up`).
        if (res.status !== 403 && !(run.gaveUp && res.status !== 409)) run.problems.push(`POST answered ${res.status} ${typeOf(res.body) ?? ''} without an action id`);
        return;
      }
      // An answer that is already final (a `Prefer: wait` that saw the end) needs no polling.
      const answered = typeof res.body?.status === 'string' ? (res.body.status as string) : '';
      if (TERMINAL.has(answered)) {
        if (spec.retry === 'late-retry') await post(run); // an out-of-order retry, long after
        return;
      }
      let v = await until(run, (s) => s === 'awaiting_approval' || TERMINAL.has(s), options.settleBoundMs);
      if (v?.status === 'awaiting_approval') {
        run.waitedForApproval = true;
        const quorum = Math.max(1, v.decision?.quorum ?? 1);
        const approvers = await approversFor(run);
        const approveAll = async () => {
          for (const a of approvers.slice(0, quorum)) await vote(run, a, 'approve');
        };
        switch (spec.approval) {
          case 'approve':
            await approveAll();
            break;
          case 'reject':
            await vote(run, approvers[0]!, 'reject');
            break;
          case 'expire':
            return; // nobody answers; the settle phase waits for the expiry
          case 'race': {
            // Duplicate clicks, a second approver and a rejection, all at once.
            const a = approvers[0]!;
            const others = approvers.slice(1);
            await Promise.all([
              vote(run, a, 'approve'),
              vote(run, a, 'approve'),
              ...(quorum > 1 && others[0] ? [vote(run, others[0], 'approve')] : []),
              vote(run, others[others.length - 1] ?? a, 'reject'),
            ]);
            break;
          }
          case 'self-vote':
            await vote(run, spec.requester, 'approve'); // refused: nobody approves their own action
            await approveAll();
            break;
        }
      }
      v = await until(run, (s) => TERMINAL.has(s), options.settleBoundMs);
      // Not settled within the bound of the agent's wait (the settle phase follows it further).
      if (!v || !TERMINAL.has(v.status)) run.problems.push(`still ${v?.status ?? 'unreadable'} ${options.settleBoundMs / 1000} s after its agent began waiting for the end`);
      if (spec.retry === 'late-retry' && v && TERMINAL.has(v.status)) await post(run); // an out-of-order retry, long after
    };

    // Dispatch: actions in index order to free agents; events fire before their action is handed out.
    const byAt = new Map<number, typeof schedule.events>();
    for (const e of schedule.events) byAt.set(e.at, [...(byAt.get(e.at) ?? []), e]);
    const injectors = new Map(INJECTORS.map((i) => [i.name, i]));
    let next = 0;
    let eventsLock: Promise<void> = Promise.resolve();
    const agent = async () => {
      for (;;) {
        const i = next++;
        if (i >= runs.length) return;
        const run = runs[i]!;
        const events = byAt.get(run.spec.index) ?? [];
        // Events run one at a time, in schedule order, whichever agent reaches them.
        eventsLock = eventsLock.then(async () => {
          for (const e of events) await injectors.get(e.injector)!.apply(e, world);
        });
        await eventsLock;
        try {
          await runAction(run);
        } catch (error) {
          run.problems.push(`agent error: ${error instanceof Error ? error.message : String(error)}`);
        }
        if (i % 100 === 99) log(`  ${i + 1}/${runs.length} actions handed out (${((Date.now() - started) / 1000).toFixed(0)} s)`);
      }
    };
    await Promise.all(Array.from({ length: options.agents }, agent));
    // Halts whose resume fell outside the schedule (a shrunk slice) end here, before the settle.
    for (const h of halts) if (h.resumedAt === undefined) await world.resume(h.key, 'chaos: the storm is over');

    // A request an agent abandoned (cut short, or a duplicate it stopped waiting for) may still
    // land after the answer the agent kept, e.g. a 403 halted to its retry while the halt was
    // in force, the abandoned copy accepted once it was lifted: one action under the same key,
    // which the agent never learned of. As a careful agent would, look for it among the
    // requester's actions (by the envelope's reason) and follow it like every other action;
    // it is not held to the agent's intent (no id of the run), only to every other invariant.
    for (const run of runs) {
      // And an agent that gave up: a 503 (the ledger busy) may come after its action was created.
      if (run.ids.length > 0 || (run.spec.retry !== 'abort-retry' && run.spec.retry !== 'duplicate' && !run.gaveUp)) continue;
      let cursor: string | undefined;
      for (let page = 0; page < 20; page++) {
        const res = await call('GET', `/v1/actions?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, run.spec.requester);
        const body = res?.body as { items?: { id: string; reason?: string | null }[]; nextCursor?: string | null } | undefined;
        const found = body?.items?.find((a) => a.reason === envelopeOf(run.spec, today).reason);
        if (found) {
          run.ids.push(found.id);
          run.landedLate = true;
          break;
        }
        if (!body?.nextCursor) break;
        cursor = body.nextCursor;
      }
    }
    const late = runs.filter((r) => r.landedLate).map((r) => `#${r.spec.index}`);
    if (late.length > 0) log(`  abandoned requests that landed after the agent's answer: ${late.join(', ')}`);

    // Settle: every action terminal within the bound after the last restart, or after its own
    // creation when later (an approval asked for near the end cannot expire sooner than its timeout).
    const t0 = Date.now();
    const views = new Map<string, FinalView>();
    const boundFrom = (id: string) => Math.max(lastRestart, Date.parse(views.get(id)?.createdAt ?? '') || 0);
    const ids = [...new Set(runs.flatMap((r) => r.ids))];
    let pending = ids;
    const requesterOf = new Map(runs.flatMap((r) => r.ids.map((id) => [id, r.spec.requester] as const)));
    // Read as an agent would: a few at a time, and a 429 or 503 waited out as the server says
    // (all at once, 10,000 reads met the read quota and most came back refused, not read).
    const readView = async (id: string) => {
      for (let attempt = 0; attempt < 20; attempt++) {
        const res = await call('GET', `/v1/actions/${id}`, requesterOf.get(id)!);
        if (res?.status !== 429 && res?.status !== 503) return res?.body as { id?: string } | undefined;
        await sleep(Math.min(5_000, serverDelayMs(res.headers, Date.now()) ?? 500));
      }
      return undefined;
    };
    for (;;) {
      const got: (readonly [string, { id?: string } | undefined])[] = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(32, pending.length) }, async () => {
          while (next < pending.length) {
            const id = pending[next++]!;
            got.push([id, await readView(id)]);
          }
        }),
      );
      for (const [id, body] of got) if (body?.id) views.set(id, body as FinalView);
      pending = pending.filter((id) => !TERMINAL.has(views.get(id)?.status ?? ''));
      // Past the bound, an action read at least once is judged as last read; one never read yet
      // (the reads themselves met 429s: 10,000 of them meet the global quota) is read a while
      // longer, since how fast the harness reads says nothing of when the action ended.
      const now = Date.now();
      if (pending.every((id) => now > boundFrom(id) + options.settleBoundMs && (views.has(id) || now > boundFrom(id) + options.settleBoundMs + UNREAD_GRACE_MS))) break;
      await sleep(500);
    }
    const settle = { boundMs: options.settleBoundMs, tookMs: Date.now() - t0, unsettled: pending };

    // Vendor side: effects and counters, read before anything stops.
    const effects: Record<string, VendorEffect[]> = {};
    const sideEffectCounters: Record<string, Record<string, number>> = {};
    const live: Record<string, LiveEffect[]> = {};
    for (const [name, url] of Object.entries(info.baseUrls)) {
      const h = { 'x-admin-token': info.adminTokens[name]! };
      effects[name] = ((await (await fetch(`${url}/_admin/effects`, { headers: h })).json()) as { effects: VendorEffect[] }).effects;
      sideEffectCounters[name] = ((await (await fetch(`${url}/_admin/stats`, { headers: h })).json()) as { sideEffects: Record<string, number> }).sideEffects;
      live[name] = ((await (await fetch(`${url}/_admin/live`, { headers: h })).json()) as { live: LiveEffect[] }).live;
    }

    // A clean stop (closing digest), then the vault is verified as an auditor would.
    cpu.controlPlane += await cpuSeconds(cp.proc);
    cpu.vendors += await cpuSeconds(vendors);
    const used = process.cpuUsage(harnessCpu);
    cpu.harness = (used.user + used.system) / 1e6;
    cp.proc.child.kill('SIGTERM');
    await cp.proc.exited;
    vendors.child.kill('SIGTERM');
    await vendors.exited;
    // Every digest a writer logged as stored must still be in the vault (--expect-head).
    const heads = new Set<string>();
    for (const file of await readdir(logs)) {
      if (!file.startsWith('control-plane')) continue;
      for (const line of (await readFile(join(logs, file), 'utf8')).split('\n')) {
        if (!line.includes('"digest stored"')) continue;
        try {
          const sha = (JSON.parse(line) as { sha256?: unknown }).sha256;
          if (typeof sha === 'string') heads.add(sha);
        } catch {
          /* not a log record */
        }
      }
    }
    const verifyArgs = ['audit', 'verify', '--json', '--dir', join(home, 'audit'), ...[...heads].flatMap((h) => ['--expect-head', h])];
    const audit = await new Promise<Observations['audit']>((resolve) => {
      const child = spawn(process.execPath, [join(repo, 'bin', 'airlock.mjs'), ...verifyArgs], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
      child.once('exit', (code) => {
        let findings: Finding[] | undefined;
        try {
          const report = JSON.parse(stdout) as { findings?: unknown };
          if (Array.isArray(report.findings)) findings = report.findings as Finding[];
        } catch {
          /* not the JSON report: the output says why */
        }
        resolve({ code, output: `${stdout}${stderr}`, ...(findings ? { findings } : {}) });
      });
    });
    const digests: DigestLink[] = [];
    const digestRoot = join(home, 'audit', 'digests');
    for (const day of (await readdir(digestRoot).catch(() => [] as string[])).filter((d) => d.startsWith('dt=')).sort()) {
      for (const file of (await readdir(join(digestRoot, day))).filter((f) => f.endsWith('.json')).sort()) {
        try {
          const d = JSON.parse(await readFile(join(digestRoot, day, file), 'utf8')) as Digest;
          digests.push({ key: d.key, endTime: d.endTime, previous: d.previous?.key ?? null, heartbeat: d.heartbeat });
        } catch {
          /* unreadable: audit verify names it */
        }
      }
    }

    const receipts = new Map<string, unknown[]>();
    const strayReceipts: string[] = [];
    const texts: { name: string; text: string }[] = [];
    const receiptRoot = join(home, 'audit', 'receipts');
    for (const day of await readdir(receiptRoot).catch(() => [] as string[])) {
      for (const file of await readdir(join(receiptRoot, day))) {
        if (!file.endsWith('.json')) continue;
        const text = await readFile(join(receiptRoot, day, file), 'utf8');
        texts.push({ name: `receipt ${day}/${file}`, text });
        const id = file.slice(0, -'.json'.length);
        if (!ids.includes(id)) strayReceipts.push(`${day}/${file}`);
        receipts.set(id, [...(receipts.get(id) ?? []), JSON.parse(text) as unknown]);
      }
    }
    const auditLines: Record<string, unknown>[] = [];
    const breakerMoves: BreakerMove[] = [];
    for (const file of await readdir(logs)) {
      const text = await readFile(join(logs, file), 'utf8');
      texts.push({ name: `log ${file}`, text });
      if (!file.startsWith('control-plane')) continue;
      breakerMoves.push(...breakerMovesIn(text));
      for (const line of text.split('\n')) {
        if (!line.includes('"audit"')) continue;
        try {
          const record = JSON.parse(line) as Record<string, unknown>;
          if (typeof record.audit === 'string') auditLines.push(record);
        } catch {
          /* not a log record */
        }
      }
    }
    const events = await readFile(join(home, 'events.log'), 'utf8').catch(() => '');
    texts.push({ name: 'events.log', text: events });

    const secrets: { name: string; value: string }[] = [];
    for (const file of await readdir(join(home, 'secrets'))) {
      const value = (await readFile(join(home, 'secrets', file), 'utf8')).trim();
      secrets.push({ name: `secret ${file}`, value });
      // A JWK's private part too, should it leak alone.
      try {
        const d = (JSON.parse(value) as { d?: unknown }).d;
        if (typeof d === 'string') secrets.push({ name: `secret ${file} (d)`, value: d });
      } catch {
        /* not JSON */
      }
    }
    for (const [vendor, token] of Object.entries(info.adminTokens)) secrets.push({ name: `admin token ${vendor}`, value: token });
    for (const [sub, token] of tokens) secrets.push({ name: `bearer token of ${sub}`, value: await token });

    return {
      schedule,
      runs,
      views,
      effects,
      sideEffectCounters,
      live,
      receipts,
      strayReceipts,
      audit,
      texts,
      secrets,
      responses,
      settle,
      crashes,
      restartMs,
      crashTimes,
      digests,
      durationMs: Date.now() - started,
      cpu,
      home,
      limits: options.limits.loaded,
      auditLines,
      breakerMoves: breakerMoves.sort((a, b) => a.at - b.at),
      halts,
    };
  } finally {
    for (const p of procs) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGKILL');
        await p.exited;
      }
    }
    if (!options.keepHome) await rm(home, { recursive: true, force: true });
  }
}
