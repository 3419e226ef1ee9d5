import { createHash } from 'node:crypto';
import type { RateLimit } from './config';

/**
 * Rate limits, the pure part: which policies of the limits file count a request, the fixed
 * window a moment falls in, how a policy's limit is split over shards and leases, and the
 * IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers-10):
 *
 *   RateLimit-Policy: "principal-burst";q=600;w=60
 *   RateLimit: "principal-burst";r=42;t=17
 *
 * No clock is read here: every function takes the moment it is about.
 */

/** Longest agent name counted (the envelope's own limit). */
const MAX_AGENT_CHARS = 128;
/** Most distinct tools one request is counted for (a plan's step limit). */
const MAX_TOOLS = 20;

/** What a request is counted as: whose it is and, for action-creating requests, what it would call. */
export interface RateRequest {
  /** The verified principal's `sub`. */
  principal: string;
  /**
   * The agent counted: the verified agent the token names (Principal.agent) when there is one,
   * else the name the request declares (`agent.name` of an envelope).
   */
  agent?: string;
  /** Whether `agent` is the token's verified agent (counted apart from any declared name). */
  agentVerified?: boolean;
  /** Registered tools the request would call; only for requests that create an action. */
  tools: string[];
  /**
   * A kill-switch call: a holder of the kill-switch role listing, halting or resuming. Counted
   * against the kill switch's own budget instead of the rate limits (RateLimiterDeps.killSwitch).
   */
  killSwitch?: boolean;
}

/** One policy counting one subject: the unit a window counter belongs to. */
export interface AppliedPolicy {
  policy: RateLimit;
  /**
   * Who is counted, hashed (base64url of SHA-256, 22 characters): agents choose their names and
   * principals' `sub`s are up to 256 characters, so neither becomes a key attribute as sent.
   */
  subject: string;
  /** What the subject is, for GET /v1/limits (the caller's own names; never someone else's). */
  label: string | null;
}

/** `travel.hold_seat` → `travel`. */
export const connectorOf = (tool: string): string => tool.slice(0, Math.max(0, tool.indexOf('.')));

/** A subject's key part: scope and name hashed together, so equal names in two scopes never share a counter. */
export function subjectKey(scope: RateLimit['scope'], name: string): string {
  return createHash('sha256').update(`${scope}\n${name}`).digest('base64url').slice(0, 22);
}

function matchesOnly(policy: RateLimit, tool: string, connector: string): boolean {
  if (!policy.only) return true;
  return policy.scope === 'tool' ? policy.only.includes(tool) || policy.only.includes(connector) : policy.only.includes(connector);
}

/**
 * The policies that count `request`, each with its subject: global and principal policies
 * count every request; agent policies every request that names an agent (per principal and
 * agent, so one principal's agents can never use up another's quota: the verified agent the
 * token names when there is one, so renaming itself in the body never buys an agent a fresh
 * quota; else the declared name, the agent's own claim); tool and connector policies each
 * tool and connector an action would call.
 */
export function applicablePolicies(policies: readonly RateLimit[], request: RateRequest): AppliedPolicy[] {
  const applied: AppliedPolicy[] = [];
  const tools = [...new Set(request.tools)].slice(0, MAX_TOOLS);
  for (const policy of policies) {
    switch (policy.scope) {
      case 'global':
        applied.push({ policy, subject: subjectKey('global', ''), label: null });
        break;
      case 'principal':
        applied.push({ policy, subject: subjectKey('principal', request.principal), label: request.principal });
        break;
      case 'agent':
        if (request.agent !== undefined) {
          // A declared name's key always holds a raw newline; a verified agent's is JSON (which
          // escapes newlines), so no name an agent declares can share a verified agent's counter.
          const who = request.agentVerified ? JSON.stringify(['verified', request.principal, request.agent]) : `${request.principal}\n${request.agent}`;
          applied.push({ policy, subject: subjectKey('agent', who), label: request.agent });
        }
        break;
      case 'tool':
        for (const tool of tools) if (matchesOnly(policy, tool, connectorOf(tool))) applied.push({ policy, subject: subjectKey('tool', tool), label: tool });
        break;
      case 'connector':
        for (const connector of new Set(tools.map(connectorOf))) {
          if (matchesOnly(policy, '', connector)) applied.push({ policy, subject: subjectKey('connector', connector), label: connector });
        }
        break;
    }
  }
  return applied;
}

/**
 * The agent and tools of a request body, read defensively (the body is untrusted and not yet
 * validated: anything unexpected is ignored, and validation answers it afterwards). `isTool`
 * keeps only registered tools, so a made-up name never creates a counter. `verifiedAgent` is
 * the token's agent (Principal.agent): when given, the request is counted for it whatever name
 * (or none) the body declares.
 */
export function rateRequestOf(
  principal: string,
  body: unknown,
  options: { countsTools: boolean; isTool: (name: string) => boolean; verifiedAgent?: string | undefined },
): RateRequest {
  const request: RateRequest = { principal, tools: [] };
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return request;
  const envelope = body as { agent?: unknown; tool?: unknown; plan?: unknown };
  const agent = typeof envelope.agent === 'object' && envelope.agent !== null ? (envelope.agent as { name?: unknown }).name : undefined;
  if (options.verifiedAgent !== undefined) {
    request.agent = options.verifiedAgent;
    request.agentVerified = true;
  } else if (typeof agent === 'string' && agent.length > 0 && agent.length <= MAX_AGENT_CHARS) request.agent = agent;
  if (!options.countsTools) return request;
  const names: unknown[] = [envelope.tool];
  if (Array.isArray(envelope.plan)) for (const step of envelope.plan.slice(0, MAX_TOOLS)) names.push(typeof step === 'object' && step !== null ? (step as { tool?: unknown }).tool : undefined);
  for (const name of names) if (typeof name === 'string' && name.length <= 200 && options.isTool(name)) request.tools.push(name);
  return request;
}

// ── windows ─────────────────────────────────────────────────────────────────

/** A fixed window: whole multiples of its length since the epoch (daily windows are UTC days). */
export interface RateWindow {
  /** Epoch seconds. */
  start: number;
  end: number;
}

/** The window `at` falls in. */
export function windowOf(at: Date, windowSeconds: number): RateWindow {
  const seconds = Math.floor(at.getTime() / 1000);
  const start = seconds - (((seconds % windowSeconds) + windowSeconds) % windowSeconds);
  return { start, end: start + windowSeconds };
}

/** Whole seconds until the window resets, at least 1 (what `t` and Retry-After say). */
export function secondsToReset(window: RateWindow, at: Date): number {
  return Math.max(1, Math.ceil(window.end - at.getTime() / 1000));
}

// ── shards and leases ───────────────────────────────────────────────────────

/** Counter items a policy's window is spread over; hot scopes (every request touches them) get 8. */
export function shardCount(policy: RateLimit): number {
  const wanted = policy.shards ?? (policy.scope === 'global' || policy.scope === 'connector' ? 8 : 1);
  return Math.max(1, Math.min(wanted, policy.limit));
}

/** Shard `i`'s share of the limit: the shares differ by at most one and sum to the limit exactly. */
export function shardLimit(policy: RateLimit, shard: number): number {
  const k = shardCount(policy);
  return Math.floor(policy.limit / k) + (shard < policy.limit % k ? 1 : 0);
}

/** Units one conditional write takes from a shard (never more than the shard admits). */
export function leaseSize(policy: RateLimit, shard: number): number {
  const share = shardLimit(policy, shard);
  return Math.max(1, Math.min(share, policy.lease ?? Math.floor(share / 100)));
}

// ── the RateLimit fields ────────────────────────────────────────────────────

/** Where a policy stands for one request. */
export interface PolicyState {
  policy: RateLimit;
  /** Quota units left in the window (0 when refused). */
  remaining: number;
  /** Seconds until the window resets (≥ 1). */
  resetSeconds: number;
}

/** An RFC 8941 sf-string (policy ids are `[a-z0-9-]`; escaping keeps any other id well-formed). */
function sfString(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** The tightest of several states: least remaining, then the longest wait. */
export function tightest(states: readonly PolicyState[]): PolicyState | undefined {
  let best: PolicyState | undefined;
  for (const s of states) {
    if (!best || s.remaining < best.remaining || (s.remaining === best.remaining && s.resetSeconds > best.resetSeconds)) best = s;
  }
  return best;
}

/** `RateLimit-Policy` and `RateLimit` for one policy state (lower-case names, as every response header here). */
export function rateLimitFields(state: PolicyState): Record<'ratelimit-policy' | 'ratelimit', string> {
  const key = sfString(state.policy.id);
  return {
    'ratelimit-policy': `${key};q=${state.policy.limit};w=${state.policy.windowSeconds}`,
    ratelimit: `${key};r=${Math.max(0, Math.floor(state.remaining))};t=${state.resetSeconds}`,
  };
}

// ── refusal ─────────────────────────────────────────────────────────────────

/** A request over one or more rate limits: refused before anything is recorded. */
export class RateLimitExceededError extends Error {
  /** The policies the request would exceed, with when each resets. */
  readonly violated: PolicyState[];
  /** Seconds until every violated window has reset. */
  readonly retryAfterSeconds: number;
  constructor(violated: PolicyState[], options?: { cause?: unknown }) {
    super(`rate limit exceeded: ${violated.map((v) => v.policy.id).join(', ')}`, options);
    this.name = 'RateLimitExceededError';
    this.violated = violated;
    this.retryAfterSeconds = Math.max(1, ...violated.map((v) => v.resetSeconds));
  }
}
