import type { BreakerSettings, LoadedLimits } from '../limits/config';
import type { BreakerPhase, BreakerState, BreakerStore } from '../ports/guardrails';
import { noMetrics, type Metrics } from '../ports/metrics';
import type { Logger } from '../shared/logger';
import { CircuitOpenError } from './errors';

/**
 * Circuit breakers, one per connector, shared by every function through the ledger: open
 * after `failures` failures within `windowSeconds`, half-open after `resetSeconds` (± jitter,
 * so functions that saw it open together do not all retry at once), closed again after
 * `halfOpenSuccesses` successes. Reads go through a short cache; counts and moves are
 * conditional writes, so concurrent functions agree and only one of them records a move.
 */

/** How long a function trusts its copy of a breaker: short, so a shared opening spreads fast. */
export const BREAKER_CACHE_MS = 2_000;

export interface BreakerDeps {
  store: BreakerStore;
  limits: LoadedLimits;
  now: () => Date;
  /** [0, 1): jitters the reset; injectable so tests are deterministic. */
  random?: () => number;
  metrics?: Metrics;
  logger?: Logger;
  /** Who records a move (the function's name), for the audit trail. */
  actor?: string;
  cacheMs?: number;
}

/** Whether an error counts against the vendor: it was down, slow or answered 5xx — not a refusal on the merits. */
export function isBreakerFailure(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'VendorUnavailableError' || error.name === 'VendorTimeoutError') return true;
  const status = (error as { vendorStatus?: unknown }).vendorStatus;
  return typeof status === 'number' && status >= 500;
}

export class Breakers {
  private readonly cache = new Map<string, { state: BreakerState; readAt: number }>();
  private readonly random: () => number;
  private readonly metrics: Metrics;

  constructor(private readonly deps: BreakerDeps) {
    this.random = deps.random ?? Math.random;
    this.metrics = deps.metrics ?? noMetrics;
  }

  /** The settings for a connector: its own, or the default. */
  settings(connector: string): BreakerSettings {
    const b = this.deps.limits.limits.breakers;
    return b.connectors[connector] ?? b.default;
  }

  private nowMs(): number {
    return this.deps.now().getTime();
  }

  /** The breaker as this function last saw it (at most `cacheMs` old). */
  async state(connector: string, fresh = false): Promise<BreakerState> {
    const hit = this.cache.get(connector);
    const now = this.nowMs();
    if (!fresh && hit && now - hit.readAt < (this.deps.cacheMs ?? BREAKER_CACHE_MS)) return hit.state;
    const state = await this.deps.store.getBreaker(connector);
    this.cache.set(connector, { state, readAt: now });
    return state;
  }

  private remember(state: BreakerState): void {
    this.cache.set(state.connector, { state, readAt: this.nowMs() });
  }

  /**
   * Throws CircuitOpenError while the connector's breaker is open. An open breaker whose
   * reset has passed moves to half-open here (one conditional write; its winner records the
   * move) and lets the call through as a trial.
   */
  async check(connector: string): Promise<void> {
    let state = await this.state(connector);
    if (state.phase !== 'open') return;
    const now = this.nowMs();
    if (now < state.retryAt) {
      this.metrics.count('BreakerRejected', { connector });
      throw new CircuitOpenError(connector, Math.max(1, Math.ceil((state.retryAt - now) / 1000)));
    }
    state = await this.state(connector, true);
    if (state.phase === 'open' && now >= state.retryAt) {
      await this.move(state, 'half_open', 'reset elapsed; letting trial calls through', { successes: 0 });
    }
  }

  /** Counts a failed vendor call; opens the breaker when the window holds enough of them. */
  async recordFailure(connector: string): Promise<void> {
    const s = this.settings(connector);
    const windowMs = s.windowSeconds * 1000;
    for (let attempt = 0; attempt < 5; attempt++) {
      const state = await this.state(connector, true);
      const now = this.nowMs();
      if (state.phase === 'open') return;
      if (state.phase === 'half_open') {
        if (await this.move(state, 'open', 'a trial call failed while half-open', { failures: state.failures + 1 })) return;
        continue;
      }
      if (state.version === 0 || now - state.windowStart >= windowMs) {
        // A new window: this failure is its first.
        const next: BreakerState = { ...state, windowStart: now, failures: 1, successes: 0, version: state.version + 1 };
        if (s.failures <= 1) {
          if (await this.move(state, 'open', `1 failure within ${s.windowSeconds} s`, { failures: 1, windowStart: now })) return;
          continue;
        }
        if (await this.deps.store.replaceBreaker(next, state.version)) {
          this.remember(next);
          return;
        }
        continue;
      }
      const count = await this.deps.store.countBreaker(connector, 'failures', { version: state.version, windowStart: state.windowStart });
      if (count === undefined) continue;
      if (count >= s.failures) {
        const counted = { ...state, failures: count };
        await this.move(counted, 'open', `${count} failures within ${s.windowSeconds} s (limit ${s.failures})`, { failures: count });
      } else {
        this.remember({ ...state, failures: count });
      }
      return;
    }
  }

  /** Counts a successful vendor call: while half-open, enough of them close the breaker. */
  async recordSuccess(connector: string): Promise<void> {
    // Closed is the common case: no write on the hot path.
    const cached = await this.state(connector);
    if (cached.phase !== 'half_open') return;
    const s = this.settings(connector);
    for (let attempt = 0; attempt < 5; attempt++) {
      const state = await this.state(connector, true);
      if (state.phase !== 'half_open') return;
      const count = await this.deps.store.countBreaker(connector, 'successes', { version: state.version });
      if (count === undefined) continue;
      if (count >= s.halfOpenSuccesses) {
        await this.move({ ...state, successes: count }, 'closed', `${count} successful trial call(s) (needs ${s.halfOpenSuccesses})`, { successes: count });
      } else {
        this.remember({ ...state, successes: count });
      }
      return;
    }
  }

  /** A jittered reset: `resetSeconds` × (1 ± jitter). */
  private resetMs(connector: string): number {
    const s = this.settings(connector);
    const factor = 1 + s.jitter * (2 * this.random() - 1);
    return Math.max(1000, Math.round(s.resetSeconds * 1000 * factor));
  }

  /** One conditional move; true when this function won it (and recorded it). */
  private async move(state: BreakerState, to: BreakerPhase, reason: string, figures: Partial<Pick<BreakerState, 'failures' | 'successes' | 'windowStart'>>): Promise<boolean> {
    const now = this.nowMs();
    const s = this.settings(state.connector);
    const reset = to === 'open' ? this.resetMs(state.connector) : 0;
    const next: BreakerState = {
      connector: state.connector,
      phase: to,
      version: state.version + 1,
      windowStart: to === 'closed' ? now : (figures.windowStart ?? state.windowStart),
      failures: to === 'closed' ? 0 : (figures.failures ?? state.failures),
      successes: to === 'half_open' ? 0 : (figures.successes ?? state.successes),
      retryAt: to === 'open' ? now + reset : 0,
      changedAt: now,
    };
    const at = new Date(now).toISOString();
    const recordFigures: Record<string, number> = {
      failures: next.failures,
      failureLimit: s.failures,
      windowSeconds: s.windowSeconds,
      ...(to === 'open' ? { resetMs: reset, retryAt: next.retryAt } : {}),
      ...(to === 'closed' ? { successes: figures.successes ?? state.successes, successesNeeded: s.halfOpenSuccesses } : {}),
    };
    const won = await this.deps.store.replaceBreaker(next, state.version, {
      connector: state.connector,
      from: state.phase,
      to,
      at,
      actor: this.deps.actor ?? 'airlock',
      reason,
      figures: recordFigures,
    });
    if (!won) return false;
    this.remember(next);
    this.metrics.count('BreakerTransition', { connector: state.connector, to });
    this.deps.logger?.warn('circuit breaker moved', { connector: state.connector, from: state.phase, to, reason, ...recordFigures });
    return true;
  }
}
