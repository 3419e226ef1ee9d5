import { monotonicFactory } from 'ulid';
import * as z from 'zod';
import type { LoadedLimits } from '../limits/config';
import { HaltModes, HaltScopes, type Halt, type HaltStore } from '../ports/guardrails';
import { noMetrics, type Metrics } from '../ports/metrics';
import type { ToolRegistry } from '../ports/tools';
import type { Logger } from '../shared/logger';
import type { Principal } from '../shared/principal';
import {
  ActionHaltedError,
  ActionPausedError,
  HaltAlreadyResumedError,
  HaltForbiddenError,
  HaltNotFoundError,
  HaltRequestInvalidError,
  type HaltNotice,
} from './errors';

/**
 * The kill switch: halts on everything, a connector, a tool, an agent or a principal, stored
 * in the ledger (so they survive restarts) and read by every function through a cache that
 * lives at most `killSwitch.propagationSeconds` — the bound on how late a function notices.
 * Who may flip it is the role the limits file names (checked here, not in Cedar: halts are
 * an operator's brake on the whole fleet, not a decision about one principal's action).
 */

const nextUlid = monotonicFactory();
export const HaltIdPattern = /^hlt_[0-9A-HJKMNP-TV-Z]{26}$/;

/** `POST /v1/halts`. */
export const HaltRequestSchema = z
  .object({
    scope: z.enum(HaltScopes),
    /** The connector, tool, agent (verified id or declared name: both are matched) or principal `sub`; omitted for `all`. */
    target: z.string().min(1).max(256).optional(),
    reason: z.string().trim().min(1).max(500),
    mode: z.enum(HaltModes).default('stop'),
  })
  .strict();
export type HaltRequest = z.infer<typeof HaltRequestSchema>;

/** `DELETE /v1/halts/{id}`: why the halt ends. */
export const ResumeRequestSchema = z.object({ reason: z.string().trim().min(1).max(500) }).strict();

export interface HaltDeps {
  halts: HaltStore;
  tools: ToolRegistry;
  limits: LoadedLimits;
  now: () => Date;
  metrics?: Metrics;
  logger?: Logger;
  /**
   * Called after this process wrote a halt or a resume, so caches in the same process drop
   * their copy at once (the local runtime runs every function in one process).
   */
  onChange?: () => void;
}

/** Audit records of the kill switch written as log lines (refusals that record nothing else). */
export const HaltAuditTypes = { refusedNew: 'halt.refused_new' } as const;

/** What an action touches, for matching halts. */
export interface HaltSubject {
  principal: string;
  /** The agent name the request declares (`agent.name`): the agent's own claim. */
  agent: string;
  /**
   * The agent the verified token names (Principal.agent: `act.sub`, `azp` or `client_id`),
   * when it names one. An agent halt covers the subject when its target equals either this or
   * the declared name, so renaming itself in the body never takes an agent out of a halt.
   */
  verifiedAgent?: string;
  tools: readonly string[];
  connectors: readonly string[];
}

/** Whether `halt` covers `subject`. */
export function haltCovers(halt: Halt, subject: HaltSubject): boolean {
  if (halt.status !== 'active') return false;
  switch (halt.scope) {
    case 'all':
      return true;
    case 'connector':
      return halt.target !== null && subject.connectors.includes(halt.target);
    case 'tool':
      return halt.target !== null && subject.tools.includes(halt.target);
    case 'agent':
      return halt.target !== null && (halt.target === subject.agent || halt.target === subject.verifiedAgent);
    case 'principal':
      return halt.target === subject.principal;
  }
}

export function noticeOf(halt: Halt): HaltNotice {
  return { haltId: halt.id, scope: halt.scope, target: halt.target, mode: halt.mode, reason: halt.reason };
}

/**
 * The subject of a plan: its principal (with the verified agent its token names, if any), the
 * agent name it declares, its tools and their connectors. Taking the principal whole is what
 * keeps every caller (intake, the saga, approvals) matching the verified agent too.
 */
export function subjectOf(tools: ToolRegistry, principal: Pick<Principal, 'sub' | 'agent'>, agent: string, toolNames: readonly string[]): HaltSubject {
  const connectors = new Set<string>();
  for (const name of toolNames) {
    const found = tools.find(name);
    connectors.add(found ? found.connector.name : name.split('.')[0]!);
  }
  return {
    principal: principal.sub,
    agent,
    ...(principal.agent !== undefined ? { verifiedAgent: principal.agent } : {}),
    tools: [...new Set(toolNames)],
    connectors: [...connectors],
  };
}

/**
 * Active halts as this function sees them: re-read when the copy is older than the
 * propagation bound, so a halt written anywhere is in force everywhere within it.
 */
export class HaltGuard {
  private cached: { halts: Halt[]; readAt: number } | undefined;
  private readonly metrics: Metrics;

  constructor(private readonly deps: HaltDeps) {
    this.metrics = deps.metrics ?? noMetrics;
  }

  /** The cache's lifetime in ms (limits.json `killSwitch.propagationSeconds`). */
  get ttlMs(): number {
    return this.deps.limits.limits.killSwitch.propagationSeconds * 1000;
  }

  async active(): Promise<Halt[]> {
    const now = this.deps.now().getTime();
    if (this.cached && now - this.cached.readAt < this.ttlMs) return this.cached.halts;
    const halts = (await this.deps.halts.listHalts()).filter((h) => h.status === 'active');
    this.cached = { halts, readAt: now };
    this.metrics.observe('HaltsActive', halts.length, 'Count');
    this.metrics.observe('HaltsEverythingActive', halts.filter((h) => h.scope === 'all').length, 'Count');
    return halts;
  }

  /** Forgets the cached copy (after this function wrote a halt itself). */
  invalidate(): void {
    this.cached = undefined;
  }

  /** The first active halt covering `subject` (stop before pause: a stop wins). */
  async covering(subject: HaltSubject): Promise<Halt | undefined> {
    const hits = (await this.active()).filter((h) => haltCovers(h, subject));
    return hits.find((h) => h.mode === 'stop') ?? hits[0];
  }

  /**
   * New work: throws ActionHaltedError when any halt (stop or pause) covers it. Nothing is
   * recorded for refused work, so this line is its audit record (like `ratelimit.refused`):
   * who, which agent and tools, and which halt; nothing of the request's content.
   */
  async refuseNew(subject: HaltSubject): Promise<void> {
    const halt = await this.covering(subject);
    if (!halt) return;
    this.metrics.count('HaltRefused', { scope: halt.scope });
    this.deps.logger?.info('halted work refused', {
      audit: HaltAuditTypes.refusedNew,
      principal: subject.principal,
      agent: subject.agent,
      ...(subject.verifiedAgent !== undefined ? { verifiedAgent: subject.verifiedAgent } : {}),
      tools: subject.tools,
      haltId: halt.id,
      scope: halt.scope,
    });
    throw new ActionHaltedError(noticeOf(halt));
  }

  /** Running work: ActionHaltedError for a stop, ActionPausedError for a pause. */
  async checkRunning(subject: HaltSubject): Promise<Halt | undefined> {
    const halt = await this.covering(subject);
    if (!halt) return undefined;
    this.metrics.count('HaltRefused', { scope: halt.scope });
    return halt;
  }
}

/** The halt as the API shows it. */
export function haltView(halt: Halt) {
  return {
    id: halt.id,
    scope: halt.scope,
    target: halt.target,
    mode: halt.mode,
    reason: halt.reason,
    status: halt.status,
    createdBy: halt.createdBy.sub,
    createdAt: halt.createdAt,
    resumedBy: halt.resumedBy?.sub ?? null,
    resumedAt: halt.resumedAt ?? null,
    resumeReason: halt.resumeReason ?? null,
  };
}
export type HaltView = ReturnType<typeof haltView>;

function violationsOf(error: z.ZodError) {
  return error.issues.map((i) => ({ path: `/${i.path.join('/')}`, message: i.message }));
}

/** Refuses (and audits) a caller without the kill-switch role. */
async function requireRole(deps: HaltDeps, caller: Principal, attempted: string, detail: Record<string, unknown> = {}): Promise<void> {
  const role = deps.limits.limits.killSwitch.role;
  if (caller.roles.includes(role)) return;
  await deps.halts.recordHaltEvent({
    type: 'halt.refused',
    at: deps.now().toISOString(),
    actor: caller.sub,
    data: { attempted, roles: caller.roles.slice(0, 32).map((r) => r.slice(0, 128)), requiredRole: role, ...detail },
  });
  deps.logger?.warn('kill switch refused', { caller: caller.sub, attempted, requiredRole: role });
  throw new HaltForbiddenError(role);
}

/** `POST /v1/halts`: records a halt (role required; unknown targets refused). */
export async function createHalt(deps: HaltDeps, caller: Principal, body: unknown): Promise<Halt> {
  await requireRole(deps, caller, 'halt');
  const parsed = HaltRequestSchema.safeParse(body);
  if (!parsed.success) throw new HaltRequestInvalidError(violationsOf(parsed.error));
  const req = parsed.data;
  const problems: { path: string; message: string }[] = [];
  if (req.scope === 'all' && req.target !== undefined) problems.push({ path: '/target', message: 'scope "all" takes no target' });
  if (req.scope !== 'all' && req.target === undefined) problems.push({ path: '/target', message: `scope "${req.scope}" needs a target` });
  if (req.scope === 'connector' && req.target !== undefined && !deps.tools.all().some((t) => t.connector.name === req.target)) {
    problems.push({ path: '/target', message: `unknown connector "${req.target}"; GET /v1/tools lists the connectors` });
  }
  if (req.scope === 'tool' && req.target !== undefined && !deps.tools.find(req.target)) {
    problems.push({ path: '/target', message: `unknown tool "${req.target}"; GET /v1/tools lists the tools` });
  }
  if (problems.length > 0) throw new HaltRequestInvalidError(problems);
  const at = deps.now();
  const halt: Halt = {
    id: `hlt_${nextUlid(at.getTime())}`,
    scope: req.scope,
    target: req.target ?? null,
    mode: req.mode,
    reason: req.reason,
    createdBy: { sub: caller.sub, roles: caller.roles.slice(0, 32) },
    createdAt: at.toISOString(),
    status: 'active',
  };
  await deps.halts.createHalt(halt);
  deps.onChange?.();
  await deps.halts.recordHaltEvent({ type: 'halt.created', at: halt.createdAt, actor: caller.sub, data: { ...noticeOf(halt) } });
  deps.logger?.warn('kill switch: halt created', { ...noticeOf(halt), by: caller.sub });
  return halt;
}

/** `DELETE /v1/halts/{id}`: ends a halt, with a reason (role required). */
export async function resumeHalt(deps: HaltDeps, caller: Principal, id: string, body: unknown): Promise<Halt> {
  await requireRole(deps, caller, 'resume', { haltId: id.slice(0, 40) });
  if (!HaltIdPattern.test(id)) throw new HaltNotFoundError(id.slice(0, 40));
  const parsed = ResumeRequestSchema.safeParse(body);
  if (!parsed.success) throw new HaltRequestInvalidError(violationsOf(parsed.error));
  const existing = await deps.halts.getHalt(id);
  if (!existing) throw new HaltNotFoundError(id);
  const by = { sub: caller.sub, roles: caller.roles.slice(0, 32) };
  const resumed = await deps.halts.resumeHalt(id, by, parsed.data.reason, deps.now());
  if (!resumed) throw new HaltAlreadyResumedError(id);
  deps.onChange?.();
  await deps.halts.recordHaltEvent({
    type: 'halt.resumed',
    at: deps.now().toISOString(),
    actor: caller.sub,
    data: { ...noticeOf(resumed), resumeReason: parsed.data.reason },
  });
  deps.logger?.warn('kill switch: halt resumed', { haltId: id, by: caller.sub });
  return resumed;
}

/** `GET /v1/halts`: every halt, newest first (role required). */
export async function listHalts(deps: HaltDeps, caller: Principal): Promise<Halt[]> {
  await requireRole(deps, caller, 'list');
  return deps.halts.listHalts();
}

export { ActionHaltedError, ActionPausedError };
