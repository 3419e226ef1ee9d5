import type { Metrics } from '../ports/metrics';
import { noMetrics } from '../ports/metrics';
import type { CounterKey, RateCounterStore } from '../ports/rate-counters';
import type { Logger } from '../shared/logger';
import type { RateLimit } from './config';
import {
  applicablePolicies,
  leaseSize,
  RateLimitExceededError,
  secondsToReset,
  shardCount,
  shardLimit,
  tightest,
  windowOf,
  type AppliedPolicy,
  type PolicyState,
  type RateRequest,
} from './rate-limits';

/**
 * The rate limiter of one function instance. Counting is exact where it matters: a window
 * admits at most its limit, whatever the concurrency and however many instances count it,
 * because every unit is taken from a DynamoDB counter with a conditional add. To avoid a write
 * per request per policy, an instance takes a *lease* (a block of units, one write) and spends
 * it locally; a lease left when the window ends, or when the instance is recycled, is lost —
 * fewer requests admitted, never more. Counters every request touches (global, per connector)
 * are split over shards (separate items, so separate partitions) whose limits sum to the
 * policy's; a request tries a random shard first and the others when it is spent, so the whole
 * limit stays reachable. Once every shard of a window is known spent, the instance refuses
 * without a write until the window resets.
 */

/** Where this instance stands on one shard of one window. */
interface ShardState {
  /** Units taken and not yet spent by this instance. */
  lease: number;
  /** The shard's count after this instance's last take (undefined: never taken here). */
  used: number | undefined;
  /** A take failed: the shard is spent for this window. */
  spent: boolean;
}

/** This instance's view of one policy's window for one subject. */
interface WindowState {
  end: number;
  shards: ShardState[];
}

/** A unit taken for one policy, so it can be handed back if another policy refuses. */
interface Taken {
  state: WindowState;
  shard: number;
}

export interface RateLimiterDeps {
  policies: readonly RateLimit[];
  counters: RateCounterStore;
  now: () => Date;
  metrics?: Metrics;
  logger?: Logger;
  /** Picks the first shard to try (random by default; injectable so tests are deterministic). */
  random?: () => number;
  /**
   * The kill switch: holders of `role` calling the halt routes are counted against `budget`
   * alone (limits.json `killSwitch.budget`), whatever the agents have used of the rest.
   */
  killSwitch?: { role: string; budget: RateLimit };
}

/** What an admitted request is told: the tightest applicable policy, if any applies. */
export interface Admission {
  tightest: PolicyState | undefined;
}

/** One policy as the caller sees it (GET /v1/limits). */
export interface QuotaView {
  id: string;
  scope: RateLimit['scope'];
  /** The caller's own subject: their agent's, tool's or connector's name; null for global and principal. */
  subject: string | null;
  limit: number;
  windowSeconds: number;
  remaining: number;
  resetSeconds: number;
  resetAt: string;
}

/** Windows an instance remembers before it forgets the ones that ended (and, past twice that, all). */
const MAX_WINDOWS = 20_000;
/** Items stay this long after their window ends (TTL lags by hours anyway; nothing reads them). */
const EXPIRY_GRACE_SECONDS = 3_600;

export class RateLimiter {
  private readonly windows = new Map<string, WindowState>();
  private readonly metrics: Metrics;
  private readonly random: () => number;

  constructor(private readonly deps: RateLimiterDeps) {
    this.metrics = deps.metrics ?? noMetrics;
    this.random = deps.random ?? Math.random;
  }

  /** Whether any policy is configured (no policies: no counting, no RateLimit fields). */
  get enabled(): boolean {
    return this.deps.policies.length > 0;
  }

  /**
   * Counts `request` against every applicable policy, or throws RateLimitExceededError naming
   * the policies it would exceed; a refused request uses up nothing.
   */
  async admit(request: RateRequest, log: Logger | undefined = this.deps.logger): Promise<Admission> {
    const at = this.deps.now();
    const applied = applicablePolicies(this.policiesFor(request), request);
    if (applied.length === 0) return { tightest: undefined };
    const states = applied.map((a) => ({ a, window: this.windowState(a, at) }));

    // Known spent here: refuse at once, with no write.
    const known = states.filter((s) => s.window.shards.every((shard) => shard.spent && shard.lease === 0));
    if (known.length > 0) this.refuse(request, known.map((s) => this.refusedState(s.a, s.window, at)), [], log);

    const taken: Taken[] = [];
    // Narrow counters first: a request refused by its principal's limit never touches the global one.
    const ordered = [...states].sort((x, y) => shardCount(x.a.policy) - shardCount(y.a.policy));
    for (const { a, window } of ordered) {
      const shard = await this.takeOne(a, window, at);
      if (shard === undefined) this.refuse(request, [this.refusedState(a, window, at)], taken, log);
      taken.push({ state: window, shard });
    }
    return { tightest: tightest(states.map(({ a, window }) => this.stateOf(a.policy, window, at))) };
  }

  /** The caller's quotas: every policy `request` would be counted by, with what is left of each window. */
  async quotas(request: RateRequest, options: { killSwitch?: boolean } = {}): Promise<QuotaView[]> {
    const at = this.deps.now();
    const budget = options.killSwitch ? this.deps.killSwitch?.budget : undefined;
    const applied = applicablePolicies(budget ? [...this.deps.policies, budget] : this.deps.policies, request);
    const keys = applied.map((a) => {
      const window = windowOf(at, a.policy.windowSeconds);
      return Array.from({ length: shardCount(a.policy) }, (_, shard) => this.key(a, window.start, shard));
    });
    const counts = await this.deps.counters.read(keys.flat());
    let i = 0;
    return applied.map((a, n) => {
      const used = keys[n]!.reduce((sum) => sum + counts[i++]!, 0);
      const window = windowOf(at, a.policy.windowSeconds);
      return {
        id: a.policy.id,
        scope: a.policy.scope,
        subject: a.policy.scope === 'global' || a.policy.scope === 'principal' ? null : a.label,
        limit: a.policy.limit,
        windowSeconds: a.policy.windowSeconds,
        remaining: Math.max(0, a.policy.limit - used),
        resetSeconds: secondsToReset(window, at),
        resetAt: new Date(window.end * 1000).toISOString(),
      };
    });
  }

  /** The role whose holders' halt calls count against the kill switch's budget (undefined: none). */
  get killSwitchRole(): string | undefined {
    return this.deps.killSwitch?.role;
  }

  /** The policies that count `request`: the kill switch's budget alone for a kill-switch call. */
  private policiesFor(request: RateRequest): readonly RateLimit[] {
    if (!request.killSwitch) return this.deps.policies;
    // Not configured: a kill-switch call counts as any other request (never for nothing).
    return this.deps.killSwitch ? [this.deps.killSwitch.budget] : this.deps.policies;
  }

  private key(a: AppliedPolicy, window: number, shard: number): CounterKey {
    return { policy: a.policy.id, subject: a.subject, window, shard };
  }

  private windowState(a: AppliedPolicy, at: Date): WindowState {
    const window = windowOf(at, a.policy.windowSeconds);
    const id = `${a.policy.id}\n${a.subject}\n${window.start}`;
    let state = this.windows.get(id);
    if (!state) {
      this.forgetEnded(at);
      state = { end: window.end, shards: Array.from({ length: shardCount(a.policy) }, () => ({ lease: 0, used: undefined, spent: false })) };
      this.windows.set(id, state);
    }
    return state;
  }

  /** Bounds memory: windows that ended are dropped, and if that is not enough, all (leases lost: safe). */
  private forgetEnded(at: Date): void {
    if (this.windows.size < MAX_WINDOWS) return;
    const now = at.getTime() / 1000;
    for (const [id, state] of this.windows) if (state.end <= now) this.windows.delete(id);
    if (this.windows.size >= MAX_WINDOWS) this.windows.clear();
  }

  /** Takes one unit for `a`: from this instance's lease, else from the counters. The shard, or undefined when all are spent. */
  private async takeOne(a: AppliedPolicy, state: WindowState, at: Date): Promise<number | undefined> {
    const leased = state.shards.findIndex((s) => s.lease > 0);
    if (leased >= 0) {
      state.shards[leased]!.lease--;
      return leased;
    }
    const k = state.shards.length;
    const first = Math.floor(this.random() * k) % k;
    const window = windowOf(at, a.policy.windowSeconds);
    for (let i = 0; i < k; i++) {
      const shard = (first + i) % k;
      const s = state.shards[shard]!;
      if (s.spent) continue;
      const max = shardLimit(a.policy, shard);
      const block = leaseSize(a.policy, shard);
      // A whole block first; near the end of a window only single units still fit.
      for (const n of block > 1 ? [block, 1] : [1]) {
        const result = await this.deps.counters.take(this.key(a, window.start, shard), n, max, window.end + EXPIRY_GRACE_SECONDS);
        if (result.taken) {
          s.used = result.used;
          s.lease += n - 1;
          return shard;
        }
      }
      s.spent = true;
      s.used = max;
      // Another request of this instance may have been handed a lease meanwhile.
      if (s.lease > 0) {
        s.lease--;
        return shard;
      }
    }
    return undefined;
  }

  /**
   * Where a policy stands as this instance knows it: the counts seen at its last takes (shards
   * it never took from are assumed as used as the average of those it did), plus its own unspent
   * lease, which no other instance can take. An estimate between writes, exact with `lease: 1`
   * and one shard at the moment of the write.
   */
  private stateOf(policy: RateLimit, state: WindowState, at: Date): PolicyState {
    const seen = state.shards.filter((s) => s.used !== undefined);
    const usedSeen = seen.reduce((sum, s) => sum + (s.used ?? 0), 0);
    const used = seen.length === 0 ? 0 : (usedSeen * state.shards.length) / seen.length;
    const lease = state.shards.reduce((sum, s) => sum + s.lease, 0);
    const remaining = Math.max(0, Math.min(policy.limit, Math.floor(policy.limit - used + lease)));
    return { policy, remaining, resetSeconds: secondsToReset({ start: state.end - policy.windowSeconds, end: state.end }, at) };
  }

  private refusedState(a: AppliedPolicy, state: WindowState, at: Date): PolicyState {
    return { policy: a.policy, remaining: 0, resetSeconds: secondsToReset({ start: state.end - a.policy.windowSeconds, end: state.end }, at) };
  }

  /** Hands back what was taken (into this instance's leases: still inside the limit) and throws. */
  private refuse(request: RateRequest, violated: PolicyState[], taken: Taken[], log: Logger | undefined): never {
    for (const t of taken) t.state.shards[t.shard]!.lease++;
    for (const v of violated) this.metrics.count('RateLimitRejected', { policy: v.policy.id });
    // The audit record of a refusal: who and which policies; nothing of the request's content.
    // Info, not warn: a refusal is the limit doing its job (and a looping agent would flood
    // the warnings); Lambda's default level keeps every one of them in the function's log.
    log?.info('rate limit refused', {
      audit: 'ratelimit.refused',
      principal: request.principal,
      ...(request.agent !== undefined ? { agent: request.agent } : {}),
      ...(request.agentVerified ? { agentVerified: true } : {}),
      tools: request.tools,
      policies: violated.map((v) => v.policy.id),
    });
    throw new RateLimitExceededError(violated);
  }
}
