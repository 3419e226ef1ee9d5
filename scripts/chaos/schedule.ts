import { chance, derive, int, pick, weighted, type Rng } from './rng';

/**
 * The storm's schedule: K actions (who asks, what, how the agent retries, how approvers
 * answer) and the chaos events injectors add (vendor faults, latency, crashes). Built from the
 * seed alone; dates are written as day offsets and resolved against the clock when sent.
 */

/** Someone with a token: requesters, their managers, and the approvers policy names. */
export interface Person {
  sub: string;
  roles: string[];
  manager?: string;
  department: string;
}

export const MANAGERS = ['m0', 'm1', 'm2', 'm3'];
export const SECURITY_ADMINS = ['sa0', 'sa1', 'sa2', 'sa3'];
export const BUYERS = ['pb0', 'pb1', 'pb2'];
export const FINANCE_ADMINS = ['fa0', 'fa1', 'fa2'];
/** The operator who halts and resumes (limits.json `killSwitch.role`). */
export const KILL_SWITCH_OPERATOR = 'ks0';
/** How many requesters share the storm (each acts through several actions). */
export const REQUESTERS = 64;

/** Everybody's claims, by sub. */
export function person(sub: string): Person {
  if (MANAGERS.includes(sub)) return { sub, roles: ['Employee', 'Manager'], department: 'sales' };
  if (SECURITY_ADMINS.includes(sub)) return { sub, roles: ['Employee', 'SecurityAdmin'], department: 'security' };
  if (BUYERS.includes(sub)) return { sub, roles: ['Employee', 'Procurement'], department: 'procurement' };
  if (FINANCE_ADMINS.includes(sub)) return { sub, roles: ['Employee', 'FinanceAdmin'], department: 'finance' };
  if (sub === KILL_SWITCH_OPERATOR) return { sub, roles: ['Employee', 'KillSwitch'], department: 'operations' };
  const n = Number(sub.slice(1));
  return { sub, roles: ['Employee'], manager: MANAGERS[n % MANAGERS.length]!, department: 'sales' };
}

export type Scenario = 'read' | 'travel' | 'procurement' | 'payments' | 'iam' | 'all-four';
/** How the agent sends its POST: once; 2–3 copies at once; cut short and sent again; sent again after the action ended. */
export type RetryStyle = 'plain' | 'duplicate' | 'abort-retry' | 'late-retry';
/** What approvers do if the action waits for approval. */
export type ApprovalStyle = 'approve' | 'reject' | 'expire' | 'race' | 'self-vote';

export interface StepSpec {
  id: string;
  tool: string;
  /** Commit tier: the vendor changes something (and the step gets a compensation). */
  commit: boolean;
  /** Arguments; the string `@DAY` is replaced by the flight date when the action is sent. */
  arguments: Record<string, unknown>;
}

export interface ActionSpec {
  index: number;
  scenario: Scenario;
  requester: string;
  /** A single call (its one step has the id the API gives it) or a plan. */
  single: boolean;
  dryRun: boolean;
  steps: StepSpec[];
  /** Days ahead of the clock for flights. */
  day: number;
  retry: RetryStyle;
  approval: ApprovalStyle;
  /** Who may approve it, in the order they are asked. */
  approvers: string[];
  /** `Prefer` header: wait for the outcome, or answer at once. */
  prefer: string;
}

/** One thing an injector does, just before the action at `at` is handed to an agent. */
export interface ChaosEvent {
  at: number;
  injector: string;
  data: Record<string, unknown>;
}

export interface Schedule {
  seed: number;
  actions: ActionSpec[];
  events: ChaosEvent[];
}

const FLIGHTS = [
  { route: 'SB102', fare: 274.5 },
  { route: 'SB100', fare: 329 },
  { route: 'SB101', fare: 310 },
  { route: 'SB400', fare: 420 },
] as const;
const BIG_FLIGHT = { route: 'SB500', fare: 1200 };
const IAM_PRINCIPALS = ['alice', 'bob', 'carol', 'dave'];
const SHIP_TO = { name: 'Chaos Desk', street: '1 Market St', city: 'San Francisco', postalCode: '94105', country: 'US' };

function shuffle<T>(rng: Rng, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = int(rng, 0, i);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const stepId = (index: number, pos: number) => `s${index}x${pos}`;

/** A trip; `mayNeedApproval` lets it cost more than an employee books alone (her manager approves). */
function travelSteps(rng: Rng, index: number, first: number, mayNeedApproval: boolean): StepSpec[] {
  const big = chance(rng, 0.08) && mayNeedApproval;
  const flight = big ? BIG_FLIGHT : pick(rng, FLIGHTS);
  const seats = big ? 1 : int(rng, 1, 2);
  const total = Math.round(flight.fare * seats * 100) / 100;
  const declined = chance(rng, 0.08);
  const hold = stepId(index, first);
  const steps: StepSpec[] = [];
  if (first === 0 && chance(rng, 0.5)) {
    steps.push({ id: stepId(index, 9), tool: 'travel.search_flights', commit: false, arguments: { origin: 'SFO', destination: 'JFK', date: '@DAY' } });
  }
  steps.push(
    { id: hold, tool: 'travel.hold_seat', commit: true, arguments: { flightId: `${flight.route}-@DAY`, seats } },
    {
      id: stepId(index, first + 1),
      tool: 'payments.authorize',
      commit: true,
      arguments: { amount: total, currency: 'USD', payee: 'sandbox-air', paymentMethod: declined ? 'pm_card_declined' : 'pm_card_visa', customerEmail: `u${index}@example.com` },
    },
    {
      id: stepId(index, first + 2),
      tool: 'travel.book_flight',
      commit: true,
      arguments: {
        holdId: { $ref: `steps.${hold}.output.holdId` },
        travelers: Array.from({ length: seats }, (_, i) => ({ firstName: `Traveler${i}`, lastName: `Chaos${index}`, passportNumber: `P${String(index).padStart(6, '0')}${i}` })),
        contact: { email: `u${index}@example.com` },
        price: { amount: total, currency: 'USD' },
      },
    },
  );
  return steps;
}

function orderStep(rng: Rng, index: number, pos: number, kind: 'small' | 'big' | 'denied'): StepSpec {
  const line =
    kind === 'small'
      ? { sku: 'ACME-PAPER-A4', quantity: int(rng, 1, 4), price: 42.99, supplierId: 'acme-office' }
      : kind === 'big'
        ? { sku: 'ACME-CHAIR-ERG', quantity: int(rng, 1, 2), price: 349, supplierId: 'acme-office' }
        : { sku: 'SHADY-LAPTOP', quantity: 1, price: 199, supplierId: 'shady-supplies' };
  return {
    id: stepId(index, pos),
    tool: 'procurement.place_order',
    commit: true,
    arguments: {
      supplierId: line.supplierId,
      lines: [{ sku: line.sku, quantity: line.quantity }],
      shipTo: SHIP_TO,
      maxTotal: { amount: Math.round(line.price * line.quantity * 100) / 100, currency: 'USD' },
      note: `chaos action ${index}`,
    },
  };
}

function grantStep(rng: Rng, index: number, pos: number): StepSpec {
  return {
    id: stepId(index, pos),
    tool: 'iam.grant_role',
    commit: true,
    arguments: { principalId: pick(rng, IAM_PRINCIPALS), role: `chaos-${index}`, reason: `chaos storm action ${index}` },
  };
}

/** The action at `index` of the storm with `seed`: a function of the two alone. */
export function actionAt(seed: number, index: number): ActionSpec {
  const rng = derive(seed, 1, index);
  const scenario = weighted<Scenario>(rng, [
    ['read', 10],
    ['travel', 28],
    ['procurement', 16],
    ['payments', 14],
    ['iam', 12],
    ['all-four', 10],
  ]);
  const requester = `u${int(rng, 0, REQUESTERS - 1)}`;
  let steps: StepSpec[];
  let approvers: string[];
  let single = false;
  switch (scenario) {
    case 'read': {
      single = true;
      steps = [
        pick(rng, [
          { id: 'call', tool: 'travel.search_flights', commit: false, arguments: { origin: 'SFO', destination: 'JFK', date: '@DAY' } },
          { id: 'call', tool: 'procurement.search_catalog', commit: false, arguments: { query: 'paper' } },
          { id: 'call', tool: 'iam.get_role_assignments', commit: false, arguments: { principalId: pick(rng, IAM_PRINCIPALS) } },
        ]),
      ];
      approvers = [];
      break;
    }
    case 'travel':
      steps = travelSteps(rng, index, 0, true);
      approvers = [person(requester).manager!];
      break;
    case 'procurement': {
      const kind = weighted<'small' | 'big' | 'denied'>(rng, [['small', 70], ['big', 20], ['denied', 10]]);
      steps = [orderStep(rng, index, 0, kind)];
      if (chance(rng, 0.4)) {
        steps.push({
          id: stepId(index, 1),
          tool: 'payments.authorize',
          commit: true,
          arguments: { amount: int(rng, 5, 150), currency: 'USD', payee: 'acme-office', paymentMethod: 'pm_card_visa' },
        });
      }
      approvers = [...BUYERS];
      break;
    }
    case 'payments': {
      const big = chance(rng, 0.15);
      const declined = chance(rng, 0.1);
      steps = [
        {
          id: stepId(index, 0),
          tool: 'payments.authorize',
          commit: true,
          arguments: { amount: big ? int(rng, 10_001, 20_000) : int(rng, 5, 900), currency: 'USD', payee: 'chaos-payee', paymentMethod: declined ? 'pm_card_declined' : 'pm_card_visa' },
        },
      ];
      approvers = [...FINANCE_ADMINS];
      break;
    }
    case 'iam':
      steps = [];
      if (chance(rng, 0.5)) steps.push({ id: stepId(index, 9), tool: 'iam.get_role_assignments', commit: false, arguments: { principalId: pick(rng, IAM_PRINCIPALS) } });
      steps.push(grantStep(rng, index, 0));
      approvers = [...SECURITY_ADMINS];
      break;
    case 'all-four':
      steps = [
        { id: stepId(index, 9), tool: 'iam.get_role_assignments', commit: false, arguments: { principalId: pick(rng, IAM_PRINCIPALS) } },
        orderStep(rng, index, 0, 'small'),
        // Its approvers are the security admins: the trip stays under the manager's threshold.
        ...travelSteps(rng, index, 1, false),
        grantStep(rng, index, 4),
      ];
      approvers = [...SECURITY_ADMINS];
      break;
  }
  const dryRun = !single && chance(rng, 0.1);
  return {
    index,
    scenario,
    requester,
    single,
    dryRun,
    steps,
    day: int(rng, 10, 300),
    retry: weighted<RetryStyle>(rng, [['plain', 50], ['duplicate', 20], ['abort-retry', 15], ['late-retry', 15]]),
    approval: weighted<ApprovalStyle>(rng, [['approve', 45], ['reject', 15], ['expire', 10], ['race', 20], ['self-vote', 10]]),
    // Approvers in a seeded order, so races pit different people against each other.
    approvers: shuffle(rng, approvers),
    prefer: pick(rng, ['respond-async', 'respond-async', 'wait=2']),
  };
}

/** The POST /v1/actions body of an action, its flight dates counted from `today` (epoch ms). */
export function envelopeOf(spec: ActionSpec, today: number): Record<string, unknown> {
  const day = new Date(today + spec.day * 86_400_000).toISOString().slice(0, 10);
  const fill = (args: Record<string, unknown>) => JSON.parse(JSON.stringify(args).replaceAll('@DAY', day)) as Record<string, unknown>;
  const agent = { name: `chaos-agent-${spec.index % 16}`, model: 'chaos' };
  const mode = spec.dryRun ? { mode: 'dry_run' } : {};
  if (spec.single) return { tool: spec.steps[0]!.tool, arguments: fill(spec.steps[0]!.arguments), agent, ...mode, reason: `chaos ${spec.index}` };
  return { plan: spec.steps.map((s) => ({ id: s.id, tool: s.tool, arguments: fill(s.arguments) })), agent, ...mode, reason: `chaos ${spec.index}` };
}

/** The actions of a schedule's index range, with the events that fall in it (shrinking keeps indices). */
export function sliceSchedule(schedule: Schedule, from: number, to: number): Schedule {
  return {
    seed: schedule.seed,
    actions: schedule.actions.filter((a) => a.index >= from && a.index < to),
    events: schedule.events.filter((e) => e.at >= from && e.at < to),
  };
}
