import { chance, derive, int, pick, weighted } from './rng';
import { REQUESTERS, type ActionSpec, type ChaosEvent } from './schedule';

/**
 * Injectors: each adds its events to the schedule (from the seed, never from the clock) and
 * carries them out just before the action they are attached to is handed to an agent. A new
 * kind of chaos is one more entry in INJECTORS and, for what it must not break, one more
 * entry in INVARIANTS. (Rate limits and spend caps are met through the storm's limits file,
 * scripts/chaos/limits.ts, rather than an injector.)
 */

/** What injectors may act on. */
export interface World {
  /** Adds faults to one sandbox vendor (POST /_admin/faults/add in the vendors' process). */
  addFaults(vendor: string, faults: Record<string, unknown>): Promise<void>;
  /** SIGKILLs the control plane where it stands and starts it again on the same state. */
  crash(): Promise<void>;
  /** Halts a scope through the kill-switch API (`POST /v1/halts`, the kill-switch role), remembered as `key`. */
  halt(key: string, body: { scope: string; target: string; reason: string; mode: 'stop' | 'pause' }): Promise<void>;
  /** Resumes the halt remembered as `key` (`DELETE /v1/halts/{id}`), if it was made. */
  resume(key: string, reason: string): Promise<void>;
  /** The requester of action `index` cancels it (`POST /v1/actions/{id}/cancel`), if it has an id yet. */
  cancel(index: number): Promise<void>;
}

export interface StormOptions {
  seed: number;
  actions: number;
  crashes: number;
}

export interface Injector {
  name: string;
  /** One line for the report. */
  summary: string;
  plan(options: StormOptions, actions: readonly ActionSpec[]): ChaosEvent[];
  apply(event: ChaosEvent, world: World): Promise<void>;
}

const connectorOf = (tool: string) => tool.slice(0, tool.indexOf('.'));

type FaultKind = 'transient-5xx' | 'exhausting-5xx' | 'refusal' | 'timeout' | 'commit-then-drop' | 'compensation-5xx';

/** The faults for one step of one action, targeted by its idempotency key (`<actionId>.<stepId>[.undo]`). */
export function stepFaults(kind: FaultKind, stepId: string, rngValue: number): Record<string, unknown> {
  const keySuffix = `.${stepId}`;
  switch (kind) {
    case 'transient-5xx':
      return { failNext: [{ operation: '*', count: 1 + Math.floor(rngValue * 2), status: pickStatus(rngValue), keySuffix }] };
    case 'exhausting-5xx':
      // More failures than every retry layer together: the step fails and the saga compensates.
      return { failNext: [{ operation: '*', count: 40, status: 503, keySuffix }] };
    case 'refusal':
      return { failNext: [{ operation: '*', count: 1, status: rngValue < 0.5 ? 409 : 402, code: 'chaos_refused', keySuffix }] };
    case 'timeout':
      return { timeoutNext: [{ operation: '*', count: 1, keySuffix }] };
    case 'commit-then-drop':
      return { commitThenDrop: [{ operation: '*', count: 1, mode: rngValue < 0.5 ? 'hang' : 'destroy', keySuffix }] };
    case 'compensation-5xx':
      return { failNext: [{ operation: '*', count: 1, status: 503, keySuffix: `${keySuffix}.undo` }] };
  }
}

function pickStatus(x: number): number {
  return x < 0.34 ? 500 : x < 0.67 ? 502 : 503;
}

/** Vendor faults aimed at one step of an action (its position chosen at random): every kind at every position. */
export const vendorFaults: Injector = {
  name: 'vendor-faults',
  summary: 'per step: transient 5xx, 5xx past every retry, 4xx refusal, timeout, commit-then-drop, a failing compensation',
  plan(options, actions) {
    const events: ChaosEvent[] = [];
    for (const a of actions) {
      const commits = a.steps.filter((s) => s.commit);
      if (a.single || a.dryRun || commits.length === 0) continue;
      const rng = derive(options.seed, 2, a.index);
      const n = weighted(rng, [
        [0, 60],
        [1, 30],
        [2, 10],
      ]);
      for (let i = 0; i < n; i++) {
        const step = pick(rng, commits);
        const kind = weighted<FaultKind>(rng, [
          ['transient-5xx', 25],
          ['exhausting-5xx', 10],
          ['refusal', 15],
          ['timeout', 15],
          ['commit-then-drop', 20],
          ['compensation-5xx', 15],
        ]);
        events.push({ at: a.index, injector: 'vendor-faults', data: { vendor: connectorOf(step.tool), kind, step: step.id, faults: stepFaults(kind, step.id, rng()) } });
      }
    }
    return events;
  },
  async apply(event, world) {
    await world.addFaults(String(event.data.vendor), event.data.faults as Record<string, unknown>);
  },
};

/** Latency phases: every few dozen actions one vendor slows down or recovers. */
export const vendorLatency: Injector = {
  name: 'vendor-latency',
  summary: 'latency phases per vendor (0–400 ms on every call)',
  plan(options) {
    const events: ChaosEvent[] = [];
    const rng = derive(options.seed, 3);
    for (let at = int(rng, 0, 20); at < options.actions; at += int(rng, 20, 60)) {
      events.push({ at, injector: 'vendor-latency', data: { vendor: pick(rng, ['travel', 'payments', 'procurement', 'iam']), latencyMs: pick(rng, [0, 0, 30, 80, 150, 400]) } });
    }
    return events;
  },
  async apply(event, world) {
    await world.addFaults(String(event.data.vendor), { latencyMs: Number(event.data.latencyMs) });
  },
};

/** SIGKILL of the control plane at seeded points of the storm, then a restart on the same state. */
export const controlPlaneCrash: Injector = {
  name: 'sigkill',
  summary: 'SIGKILL of the control plane mid-storm, restart on the same state',
  plan(options) {
    const rng = derive(options.seed, 4);
    const events: ChaosEvent[] = [];
    for (let i = 0; i < options.crashes; i++) {
      // Spread over the middle of the storm, so sagas of every age are in flight.
      const slot = options.actions / (options.crashes + 1);
      const at = Math.min(options.actions - 1, Math.max(1, Math.round(slot * (i + 1) + (rng() - 0.5) * slot * 0.5)));
      events.push({ at, injector: 'sigkill', data: { crash: i + 1 } });
    }
    return events;
  },
  async apply(_event, world) {
    await world.crash();
  },
};

const HALT_TARGETS = {
  connector: ['travel', 'payments', 'procurement', 'iam'],
  tool: ['travel.hold_seat', 'payments.authorize', 'procurement.place_order', 'iam.grant_role'],
} as const;

/**
 * Halts and resumes mid-storm through the kill-switch API: a connector, a tool, an agent or a
 * principal is halted and resumed a few actions later. Most halts `stop` (new work refused
 * with 403 halted, running sagas stop before their next step and compensate); about one in
 * three `pause`s (new work refused the same way, running sagas hold before their next step and
 * go on once it is resumed, 2–6 actions later: the chaos control plane's pause retries wait
 * 6 × 4 s, longer than that). Whatever is still halted when the agents finish is resumed before
 * the storm settles (storm.ts).
 */
export const haltsAndResumes: Injector = {
  name: 'halts',
  summary: 'kill-switch halts of a connector, tool, agent or principal: stops resumed 3–15 actions later, pauses 2–6',
  plan(options) {
    const rng = derive(options.seed, 6);
    const events: ChaosEvent[] = [];
    let n = 0;
    for (let at = int(rng, 5, 25); at < options.actions; at += int(rng, 25, 50)) {
      const scope = weighted<'connector' | 'tool' | 'agent' | 'principal'>(rng, [
        ['connector', 35],
        ['tool', 25],
        ['agent', 20],
        ['principal', 20],
      ]);
      const target =
        scope === 'agent' ? `chaos-agent-${int(rng, 0, 15)}` : scope === 'principal' ? `u${int(rng, 0, REQUESTERS - 1)}` : pick(rng, HALT_TARGETS[scope]);
      const key = `halt-${++n}`;
      const stopFor = int(rng, 3, 15);
      // A draw of its own, so adding pauses left every other draw of a seed where it was.
      const own = derive(options.seed, 6, n);
      const mode = chance(own, 0.35) ? 'pause' : 'stop';
      events.push({ at, injector: 'halts', data: { op: 'halt', key, scope, target, mode } });
      events.push({ at: Math.min(options.actions - 1, at + (mode === 'pause' ? int(own, 2, 6) : stopFor)), injector: 'halts', data: { op: 'resume', key } });
    }
    return events;
  },
  async apply(event, world) {
    const key = String(event.data.key);
    if (event.data.op === 'halt') {
      await world.halt(key, { scope: String(event.data.scope), target: String(event.data.target), reason: `chaos ${key}`, mode: event.data.mode === 'pause' ? 'pause' : 'stop' });
    } else {
      await world.resume(key, `chaos ${key} over`);
    }
  },
};

/** Cancels of random earlier actions by their requesters: at once, while waiting for approval, or mid-saga. */
export const cancels: Injector = {
  name: 'cancels',
  summary: 'POST /v1/actions/{id}/cancel of a random earlier action (1–8 actions back) by its requester',
  plan(options, actions) {
    const events: ChaosEvent[] = [];
    for (const a of actions) {
      const rng = derive(options.seed, 7, a.index);
      if (a.single || !chance(rng, 0.08)) continue;
      const at = a.index + int(rng, 1, 8);
      if (at < options.actions) events.push({ at, injector: 'cancels', data: { target: a.index } });
    }
    return events;
  },
  async apply(event, world) {
    await world.cancel(Number(event.data.target));
  },
};

/**
 * Every injector, in the order their events fire at one index. Agent behaviour (duplicates,
 * aborted and late retries, racing and refused approvers, rejections, expiries, dry runs) is
 * part of each action's spec (schedule.ts), not an injector.
 */
export const INJECTORS: readonly Injector[] = [vendorLatency, vendorFaults, haltsAndResumes, cancels, controlPlaneCrash];

