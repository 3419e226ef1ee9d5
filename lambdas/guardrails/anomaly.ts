import type { AnomalySettings } from '../limits/config';
import type { Metrics } from '../ports/metrics';
import type { ToolRegistry } from '../ports/tools';
import { majorToBaseMinor, toBaseMinor, type MoneyConfig } from '../shared/money';
import type { Logger } from '../shared/logger';
import type { Principal } from '../shared/principal';
import { createHalt, type HaltDeps } from './halts';

/**
 * The anomaly guard: per agent (the verified agent the token names, `act.sub`/`azp`/`client_id`,
 * when there is one, so renaming itself in the body never resets an agent's baseline; else
 * the name the body declares), a rolling baseline of four signals — requests, denials,
 * retries (replayed Idempotency-Keys) and spend velocity (money at stake, base minor units) —
 * kept in memory per function instance, in fixed buckets of `bucketSeconds`. The baseline is
 * an exponentially weighted mean of past buckets (about `baselineBuckets` of them); a bucket
 * that reaches the signal's floor and `factor` times its baseline is a sharp departure: an
 * alert (metric + audit event with the figures) and, when `action` is `halt`, a kill-switch
 * halt on that agent.
 *
 * Cost on the hot path: a Map lookup and a few additions, no I/O. The only writes are the
 * audit event (and the halt) of an anomaly, at most once per agent per `cooldownSeconds`.
 * Across Lambda instances each instance keeps its own baseline of the traffic it serves:
 * ratios hold (baseline and burst are both the instance's share), floors are per instance,
 * so a loop spread thin over many instances is caught later than one on a single instance,
 * and a fresh instance starts cold (no alert before `minBaselineBuckets` of history).
 */

/** The signals the guard watches. */
export const AnomalySignals = ['requests', 'denials', 'retries', 'spend'] as const;
export type AnomalySignal = (typeof AnomalySignals)[number];

/** One request as the guard counts it. */
export interface AnomalyObservation {
  /** The verified agent the token names when there is one, else the name the body declares. */
  agent: string;
  /**
   * Whether `agent` is the token's verified agent. A verified agent keeps one baseline whatever
   * names it declares, apart from any declared name's baseline (so traffic merely claiming its
   * name never shapes it).
   */
  verified?: boolean;
  /** The principal the agent acts for (named in the audit event, never a metric dimension). */
  principal: string;
  denied: boolean;
  retry: boolean;
  /** Money at stake in base minor units (0 when none or refused). */
  spendMinor: number;
}

/** A sharp departure, with the figures that triggered it. */
export interface Anomaly {
  agent: string;
  /** Whether `agent` is a verified agent id (else a declared name). */
  verified: boolean;
  principal: string;
  signal: AnomalySignal;
  /** The current bucket's count (or spend in base minor units). */
  observed: number;
  /** The baseline it departed from (per bucket). */
  baseline: number;
  /** observed / baseline (Infinity-free: a zero baseline counts as the floor divided by the factor). */
  ratio: number;
  floor: number;
  factor: number;
  bucketSeconds: number;
  bucketStart: string;
  action: 'alert' | 'halt';
  /** The halt it raised, when it raised one. */
  haltId?: string;
}

interface Track {
  bucketStart: number;
  current: Record<AnomalySignal, number>;
  baseline: Record<AnomalySignal, number>;
  /** Buckets folded into the baseline so far. */
  history: number;
  lastAlertAt: number;
}

const zero = (): Record<AnomalySignal, number> => ({ requests: 0, denials: 0, retries: 0, spend: 0 });
/** Bounds memory whatever agent names callers send; the least recently seen agents go first. */
const MAX_AGENTS = 10_000;

/** The system identity that raises halts for the guard (named as the halt's creator). */
export const ANOMALY_GUARD_ACTOR = 'airlock:anomaly-guard';

export interface AnomalyGuardDeps {
  settings: AnomalySettings;
  now: () => Date;
  /** Where an anomaly is audited and halted (the kill switch's store and its role). */
  halts: HaltDeps;
  tools: ToolRegistry;
  money: MoneyConfig;
  metrics?: Metrics;
  logger?: Logger;
}

/** Rolling per-agent baselines for one function instance. */
export class AnomalyGuard {
  private readonly tracks = new Map<string, Track>();
  #floors: Partial<Record<AnomalySignal, number>> | undefined;

  constructor(private readonly deps: AnomalyGuardDeps) {}

  /**
   * The floors as compared: spend in base minor units. Converted when first compared, not when
   * the guard is built: the base currency's minor unit comes from ICU, whose first use
   * costs a cold start ~35 ms CPU that a function instance serving no action never needs.
   */
  private get floors(): Partial<Record<AnomalySignal, number>> {
    if (this.#floors === undefined) {
      const { spend, ...counts } = this.deps.settings.floors;
      this.#floors = { ...counts, ...(spend !== undefined ? { spend: majorToBaseMinor(spend, this.deps.money) } : {}) };
    }
    return this.#floors;
  }

  /** Counts one request; returns the anomaly it completes, if any (at most one per call). */
  observe(obs: AnomalyObservation): Anomaly | undefined {
    const s = this.deps.settings;
    const now = this.deps.now().getTime();
    const bucketMs = s.bucketSeconds * 1000;
    const start = Math.floor(now / bucketMs) * bucketMs;
    // Distinct prefixes: a name merely declared never shares (or shapes) a verified agent's baseline.
    const key = obs.verified ? `verified\u0000${obs.agent}` : `declared\u0000${obs.agent}`;
    let track = this.tracks.get(key);
    if (track) this.tracks.delete(key);
    else {
      if (this.tracks.size >= MAX_AGENTS) this.tracks.delete(this.tracks.keys().next().value!);
      track = { bucketStart: start, current: zero(), baseline: zero(), history: 0, lastAlertAt: -Infinity };
    }
    this.tracks.set(key, track);
    this.roll(track, start);
    track.current.requests += 1;
    if (obs.denied) track.current.denials += 1;
    if (obs.retry) track.current.retries += 1;
    track.current.spend += Math.max(0, obs.spendMinor);

    if (track.history < s.minBaselineBuckets || now - track.lastAlertAt < s.cooldownSeconds * 1000) return undefined;
    for (const signal of AnomalySignals) {
      const floor = this.floors[signal];
      const observed = track.current[signal];
      if (floor === undefined || observed < floor) continue;
      const baseline = track.baseline[signal];
      const reference = Math.max(baseline, floor / s.factor);
      if (observed < s.factor * reference) continue;
      track.lastAlertAt = now;
      return {
        agent: obs.agent,
        verified: obs.verified === true,
        principal: obs.principal,
        signal,
        observed,
        baseline: Math.round(baseline * 100) / 100,
        ratio: Math.round((observed / reference) * 100) / 100,
        floor,
        factor: s.factor,
        bucketSeconds: s.bucketSeconds,
        bucketStart: new Date(track.bucketStart).toISOString(),
        action: s.action,
      };
    }
    return undefined;
  }

  /** Folds finished buckets (empty ones included) into the baseline. */
  private roll(track: Track, start: number): void {
    if (start <= track.bucketStart) return;
    const s = this.deps.settings;
    const alpha = 2 / (s.baselineBuckets + 1);
    const elapsed = Math.round((start - track.bucketStart) / (s.bucketSeconds * 1000));
    // Past a whole baseline of silence the old baseline has decayed away: fold at most that many.
    for (let i = 0; i < Math.min(elapsed, s.baselineBuckets); i++) {
      const sample = i === 0 ? track.current : zero();
      for (const signal of AnomalySignals) {
        track.baseline[signal] = track.history === 0 ? sample[signal] : alpha * sample[signal] + (1 - alpha) * track.baseline[signal];
      }
      track.history += 1;
    }
    track.current = zero();
    track.bucketStart = start;
  }

  /** Money at stake in an action envelope, in base minor units (steps whose input validates). */
  spendOf(envelope: unknown): number {
    const steps = stepsOf(envelope);
    let minor = 0;
    for (const step of steps) {
      const entry = typeof step.tool === 'string' ? this.deps.tools.find(step.tool) : undefined;
      if (!entry?.tool.money) continue;
      const input = entry.tool.input.safeParse(step.arguments);
      if (!input.success) continue;
      const base = toBaseMinor(entry.tool.money(input.data), this.deps.money);
      if (base.valid) minor += base.minor;
    }
    return minor;
  }

  /**
   * Counts one request and acts on an anomaly: metric, audit event with the figures, and a
   * halt on the agent when configured. Never throws: a guard that fails must not fail the
   * request it watched (the failure is logged).
   */
  async record(obs: AnomalyObservation): Promise<Anomaly | undefined> {
    const anomaly = this.observe(obs);
    if (!anomaly) return undefined;
    try {
      return await this.raise(anomaly);
    } catch (error) {
      this.deps.logger?.error('anomaly guard: could not act on an anomaly', { agent: anomaly.agent, signal: anomaly.signal, error: error instanceof Error ? error.name : 'unknown' });
      return anomaly;
    }
  }

  private async raise(anomaly: Anomaly): Promise<Anomaly> {
    const { halts } = this.deps;
    this.deps.metrics?.count('AnomalyDetected', { signal: anomaly.signal, action: anomaly.action });
    if (anomaly.action === 'halt') {
      // The guard acts as the kill switch's role: the halt is audited like any other, with
      // the guard as its creator and the figures as its reason.
      const system: Principal = { sub: ANOMALY_GUARD_ACTOR, roles: [halts.limits.limits.killSwitch.role] };
      const halt = await createHalt(halts, system, {
        scope: 'agent',
        target: anomaly.agent,
        mode: this.deps.settings.haltMode,
        reason: `anomaly guard: ${anomaly.signal} ${anomaly.observed} in ${anomaly.bucketSeconds}s, ${anomaly.ratio}x the baseline ${anomaly.baseline}`,
      });
      anomaly.haltId = halt.id;
    }
    await halts.halts.recordHaltEvent({ type: 'anomaly.detected', at: this.deps.now().toISOString(), actor: ANOMALY_GUARD_ACTOR, data: { ...anomaly } });
    this.deps.logger?.warn('ALARM anomaly guard: agent departed from its baseline', { ...anomaly });
    return anomaly;
  }
}

function stepsOf(envelope: unknown): { tool?: unknown; arguments?: unknown }[] {
  if (typeof envelope !== 'object' || envelope === null) return [];
  const e = envelope as { tool?: unknown; arguments?: unknown; plan?: unknown };
  if (Array.isArray(e.plan)) return e.plan.filter((s): s is { tool?: unknown; arguments?: unknown } => typeof s === 'object' && s !== null).slice(0, 50);
  return [{ tool: e.tool, arguments: e.arguments }];
}
