import { derive, int, pick, weighted } from './rng';
import type { ActionSpec, ChaosEvent } from './schedule';

/**
 * Injectors: each adds its events to the schedule (from the seed, never from the clock) and
 * carries them out just before the action they are attached to is handed to an agent. A new
 * kind of chaos (halts and resumes, bursts over a rate limit or a spend cap) is one more
 * entry in INJECTORS and, for what it must not break, one more entry in INVARIANTS.
 */

/** What injectors may act on. */
export interface World {
  /** Adds faults to one sandbox vendor (POST /_admin/faults/add in the vendors' process). */
  addFaults(vendor: string, faults: Record<string, unknown>): Promise<void>;
  /** SIGKILLs the control plane where it stands and starts it again on the same state. */
  crash(): Promise<void>;
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

/**
 * Every injector, in the order their events fire at one index. Agent behaviour (duplicates,
 * aborted and late retries, racing and refused approvers, rejections, expiries, dry runs) is
 * part of each action's spec (schedule.ts), not an injector.
 */
export const INJECTORS: readonly Injector[] = [vendorLatency, vendorFaults, controlPlaneCrash];

