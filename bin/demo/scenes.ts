import { chmod, cp, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { canonicalJson } from '../../lambdas/shared/canonical-json';
import { ReceiptSchema, type Receipt } from '../../lambdas/receipts/schema';
import { approvalIdFor } from '../../lambdas/shared/ids';
import { TERMINAL_STATUSES } from '../../lambdas/actions/action';
import {
  ActionSchema,
  airlockCli,
  api,
  eventually,
  expectThat,
  parseAs,
  ProblemSchema,
  SceneFailedError,
  SceneSkippedError,
  submit,
  waitForStatus,
  People,
  type ActionView,
  type DemoContext,
  type Person,
} from './context';

/**
 * The scenes of the demo (issues 10 and 15). Each one acts like an agent (or a person) would,
 * over the public API and CLI only, checks that Airlock behaved as described, and throws
 * SceneFailedError when it did not.
 */

/** One scene: its number, a title for the timeline, and the play that returns its success line. */
export interface Scene {
  n: number;
  title: string;
  run(ctx: DemoContext): Promise<string>;
}

const AGENT = { name: 'trip-bot', model: 'scripted-demo' };
const TERMINAL = TERMINAL_STATUSES;

// Sandbox fares (local/vendors/travel.ts): SB400 SFO→SEA $420, SB500 SFO→LHR $1,200 a
// seat, SB102 SFO→JFK $274.50. The booking price must equal the hold's total, as at a real airline.
const SCENE2 = { flight: 'SB400', origin: 'SFO', destination: 'SEA', seats: 1 };
const SCENE3 = { flight: 'SB500', seats: 2, fare: 1200, currency: 'USD' };
const SCENE5 = { flight: 'SB102', seats: 1, fare: 274.5, currency: 'USD' };
/** Rates from policies/config.json, only to print the base-currency value next to the price. */
const USD_PER: Record<string, number> = { USD: 1, EUR: 1.1 };

const money = (amount: number, currency: string) =>
  `${currency === 'USD' ? '$' : currency === 'EUR' ? '€' : `${currency} `}${amount.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;

const travelers = (n: number) =>
  ['Ada Lovelace', 'Grace Hopper', 'Alan Turing', 'Edsger Dijkstra', 'Barbara Liskov', 'Donald Knuth', 'Frances Allen', 'Ken Thompson', 'Margaret Hamilton']
    .slice(0, n)
    .map((name) => {
      const [firstName = '', lastName = ''] = name.split(' ');
      return { firstName, lastName };
    });

/** The plan an agent sends to book `seats` seats on `flightId`: hold → authorize → book. */
export function bookingPlan(o: { flightId: string; seats: number; total: number; currency: string; reason: string }) {
  return {
    agent: AGENT,
    reason: o.reason,
    plan: [
      { id: 'hold', tool: 'travel.hold_seat', arguments: { flightId: o.flightId, seats: o.seats } },
      {
        id: 'pay',
        tool: 'payments.authorize',
        arguments: { amount: o.total, currency: o.currency, payee: 'sandbox-air', paymentMethod: 'pm_card_visa', customerEmail: 'alice@example.com' },
      },
      {
        id: 'book',
        tool: 'travel.book_flight',
        arguments: {
          holdId: { $ref: 'steps.hold.output.holdId' },
          travelers: travelers(o.seats),
          contact: { email: 'alice@example.com' },
          price: { amount: o.total, currency: o.currency },
        },
      },
    ],
  };
}

const key = (ctx: DemoContext, what: string) => `demo-${ctx.nonce}-${what}`;
const reasonsOf = (a: ActionView) => (a.decision ? `${a.decision.policyIds.join(', ')}: ${a.decision.reasons.join(' ')}` : 'no decision recorded');

/** Reads a receipt from the vault the server writes (`<AIRLOCK_HOME>/audit/<key>`). */
async function readReceipt(ctx: DemoContext, receiptKey: string): Promise<Receipt> {
  const path = join(ctx.home, 'audit', ...receiptKey.split('/'));
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) throw new SceneFailedError(`the receipt ${receiptKey} is not in the vault at ${join(ctx.home, 'audit')}`);
  return parseAs(ReceiptSchema, JSON.parse(text) as unknown, `receipt ${receiptKey}`);
}

/** The action's final state: from a 200 answer directly, else by polling its Location. */
async function finished(ctx: DemoContext, res: { status: number; body: unknown }): Promise<ActionView> {
  const action = parseAs(ActionSchema, res.body, 'POST /v1/actions');
  if ((TERMINAL as readonly string[]).includes(action.status)) return action;
  return waitForStatus(ctx, 'alice', action.id, TERMINAL);
}

/**
 * The action's receipt key. WriteReceipt runs after the saga settles the status, so a
 * synchronous answer can show `completed` a moment before the receipt is filed: poll briefly.
 */
async function receiptOf(ctx: DemoContext, action: ActionView): Promise<string | null> {
  if (action.receipt !== null) return action.receipt;
  return eventually(ctx, `the receipt of ${action.id}`, async () => {
    const res = await api(ctx, 'alice', 'GET', `/v1/actions/${action.id}`);
    return res.status === 200 ? (parseAs(ActionSchema, res.body, `GET /v1/actions/${action.id}`).receipt ?? undefined) : undefined;
  }).catch(() => null);
}

async function sideEffects(ctx: DemoContext, connector: string): Promise<Record<string, number> | undefined> {
  return ctx.vendors ? (await ctx.vendors.stats(connector)).sideEffects : undefined;
}
const delta = (after: Record<string, number>, before: Record<string, number>, op: string) => (after[op] ?? 0) - (before[op] ?? 0);

// ── 1 ──────────────────────────────────────────────────────────────────────
const FlightsSchema = z.object({
  flights: z.array(z.object({ flightId: z.string(), farePerSeat: z.object({ amount: z.number(), currency: z.string() }), seatsAvailable: z.number() })),
});

const readScene: Scene = {
  n: 1,
  title: 'A read: search flights, answered synchronously',
  async run(ctx) {
    ctx.out.act('trip-bot (for alice)', `POST /v1/actions travel.search_flights ${SCENE2.origin}→${SCENE2.destination} on ${ctx.date}, Prefer: wait=10`);
    const res = await submit(
      ctx,
      'alice',
      { tool: 'travel.search_flights', arguments: { origin: SCENE2.origin, destination: SCENE2.destination, date: ctx.date }, agent: AGENT, reason: 'Client meeting in Seattle' },
      key(ctx, 'search'),
    );
    const action = parseAs(ActionSchema, res.body, 'the search answer');
    ctx.out.got(`${res.status} ${action.status} (${action.id})`);
    expectThat(ctx, res.status === 200, 'answered in the same call with 200', `got ${res.status} (${action.status})`);
    expectThat(ctx, action.status === 'completed', 'the action is completed', `it is ${action.status}`);
    const result = z.object({ call: FlightsSchema }).or(FlightsSchema).safeParse(action.result);
    const flights = result.success ? ('call' in result.data ? result.data.call.flights : result.data.flights) : [];
    const wanted = flights.find((f) => f.flightId === `${SCENE2.flight}-${ctx.date}`);
    expectThat(ctx, wanted !== undefined, `the vendor's flights came back (${flights.map((f) => `${f.flightId} ${money(f.farePerSeat.amount, f.farePerSeat.currency)}`).join(', ')})`, `no ${SCENE2.flight} in the result`);
    ctx.state.fare = wanted.farePerSeat;
    ctx.out.why(reasonsOf(action));
    return 'read answered synchronously (200)';
  },
};

// ── 2 ──────────────────────────────────────────────────────────────────────
const bookingScene: Scene = {
  n: 2,
  title: 'A booking under the limit runs unattended',
  async run(ctx) {
    const fare = ctx.state.fare ?? { amount: 420, currency: 'USD' };
    const total = Math.round(fare.amount * SCENE2.seats * 100) / 100;
    const usd = total * (USD_PER[fare.currency] ?? 1);
    const body = bookingPlan({ flightId: `${SCENE2.flight}-${ctx.date}`, seats: SCENE2.seats, total, currency: fare.currency, reason: 'Client meeting in Seattle' });
    const idem = key(ctx, 'offsite');
    const before = await sideEffects(ctx, 'travel');
    ctx.out.act(
      'trip-bot (for alice)',
      `POST /v1/actions plan hold → authorize → book, ${SCENE2.seats} seat${SCENE2.seats === 1 ? "" : "s"} ${SCENE2.flight}, ${money(total, fare.currency)}${fare.currency === "USD" ? "" : ` (≈ ${money(usd, "USD")})`}, Idempotency-Key ${idem}`,
    );
    const res = await submit(ctx, 'alice', body, idem);
    const action = await finished(ctx, res);
    ctx.out.got(`${res.status} ${action.status} (${action.id})`);
    expectThat(ctx, action.decision?.outcome === 'allow', 'policy allowed it without approval', `decision was ${action.decision?.outcome ?? 'none'}`);
    ctx.out.why(reasonsOf(action));
    expectThat(ctx, action.status === 'completed', 'the saga ran every step: completed', `it ended ${action.status}${action.statusReason ? ` (${action.statusReason})` : ''}`);
    const booking = z.object({ book: z.object({ bookingId: z.string(), status: z.string() }) }).safeParse(action.result);
    expectThat(ctx, booking.success && booking.data.book.status === 'confirmed', `the vendor confirmed booking ${booking.data?.book.bookingId ?? ''}`, 'no confirmed booking in the result');
    const receiptKey = await receiptOf(ctx, action);
    expectThat(ctx, receiptKey !== null, `a receipt key is on the action: ${receiptKey}`, 'the action has no receipt');
    const receiptPath = join(ctx.home, 'audit', ...receiptKey.split('/'));
    const written = await stat(receiptPath).catch(() => undefined);
    expectThat(ctx, written?.isFile() === true, `the receipt is in the write-once vault (mode ${((written?.mode ?? 0) & 0o777).toString(8)})`, `${receiptPath} does not exist`);
    if (before) {
      const after = (await sideEffects(ctx, 'travel'))!;
      expectThat(ctx, delta(after, before, 'book_flight') === 1, 'the travel vendor booked exactly once', `it booked ${delta(after, before, 'book_flight')} times`);
    }
    ctx.state.scene2 = { key: idem, body, actionId: action.id, receipt: receiptKey };
    return `${money(total, fare.currency)} booking allowed, saga completed, receipt written`;
  },
};

// ── 3 ──────────────────────────────────────────────────────────────────────
/** A 202 answer: the action was accepted and is not finished. */
const AcceptedSchema = z.object({ id: z.string(), status: z.string() });
const ApprovalListSchema = z.object({ items: z.array(z.object({ id: z.string(), status: z.string() })) });

const approvalScene: Scene = {
  n: 3,
  title: 'A booking over the limit waits for the manager',
  async run(ctx) {
    const total = SCENE3.fare * SCENE3.seats;
    const body = bookingPlan({ flightId: `${SCENE3.flight}-${ctx.date}`, seats: SCENE3.seats, total, currency: SCENE3.currency, reason: 'Two engineers to the London office' });
    ctx.out.act('trip-bot (for alice)', `POST /v1/actions plan hold → authorize → book, ${SCENE3.seats} seats ${SCENE3.flight}, ${money(total, 'USD')}`);
    const res = await submit(ctx, 'alice', body, key(ctx, 'summit'), 2);
    const first = parseAs(AcceptedSchema, res.body, 'POST /v1/actions');
    ctx.out.got(`${res.status} ${first.status} (${first.id}), Location ${res.headers.get('location') ?? '-'}`);
    expectThat(ctx, res.status === 202, 'accepted (202), not run: it needs a human', `got ${res.status} ${first.status}`);
    const waiting = await waitForStatus(ctx, 'alice', first.id, ['awaiting_approval', ...TERMINAL]);
    expectThat(ctx, waiting.status === 'awaiting_approval', 'the action is awaiting_approval', `it is ${waiting.status}`);
    expectThat(
      ctx,
      waiting.decision?.outcome === 'require_approval' && waiting.decision.policyIds.includes('travel.employee-over-limit'),
      'policy travel.employee-over-limit asks for alice’s manager',
      `decision ${waiting.decision?.outcome ?? 'none'} (${waiting.decision?.policyIds.join(', ') ?? ''})`,
    );
    ctx.out.why(reasonsOf(waiting));

    const approvalId = approvalIdFor(first.id);
    await eventually(ctx, `approval ${approvalId} in bob's inbox`, async () => {
      const inbox = await api(ctx, 'bob', 'GET', '/v1/approvals?status=pending');
      return inbox.status === 200 && parseAs(ApprovalListSchema, inbox.body, 'the approvals inbox').items.some((a) => a.id === approvalId) ? true : undefined;
    });
    ctx.out.check(`bob sees ${approvalId} in GET /v1/approvals?status=pending`);

    ctx.out.act('bob (manager)', `$ airlock approvals approve ${approvalId} --url ${ctx.url} --token <bob's token> --comment "Summit budget approved"`);
    const cli = await airlockCli(ctx, ['approvals', 'approve', approvalId, '--url', ctx.url, '--token', await ctx.token('bob'), '--comment', 'Summit budget approved']);
    ctx.out.output(
      cli.stdout
        .split('\n')
        .filter((l) => /^(Approval |  Asked by|  At stake|  Policies|  Who|Recorded|Already recorded|Sending)/.test(l))
        .join('\n') || cli.stderr,
    );
    expectThat(ctx, cli.code === 0, 'the CLI exited 0', `it exited ${cli.code}: ${cli.stderr.trim()}`);
    expectThat(ctx, /Recorded: approve\. Approval is approved \(1\/1 approvals\)/.test(cli.stdout), 'the approval is recorded: approved 1/1', 'the CLI did not report the approval as approved');

    const done = await waitForStatus(ctx, 'alice', first.id, TERMINAL);
    ctx.out.got(`GET /v1/actions/${first.id}: ${done.status}`);
    expectThat(ctx, done.status === 'completed', 'the saga resumed and completed', `it ended ${done.status}${done.statusReason ? ` (${done.statusReason})` : ''}`);
    const receiptKey = await receiptOf(ctx, done);
    expectThat(ctx, receiptKey !== null, `receipt written: ${receiptKey}`, 'no receipt');
    const receipt = await readReceipt(ctx, receiptKey);
    const vote = receipt.approvals[0]?.votes[0];
    expectThat(ctx, vote?.voter === 'bob' && vote.decision === 'approve', 'the receipt records bob’s approval', `votes: ${JSON.stringify(receipt.approvals)}`);
    return `${money(total, 'USD')} booking required the manager, approved from the CLI, completed`;
  },
};

// ── 4 ──────────────────────────────────────────────────────────────────────
const replayScene: Scene = {
  n: 4,
  title: 'The agent retries scene 2 with the same Idempotency-Key',
  async run(ctx) {
    const first = ctx.state.scene2;
    if (!first) throw new SceneFailedError('scene 2 did not complete, so there is nothing to retry');
    const travelBefore = await sideEffects(ctx, 'travel');
    const paymentsBefore = await sideEffects(ctx, 'payments');
    ctx.out.act('trip-bot (for alice)', `POST /v1/actions, the same plan again, Idempotency-Key ${first.key} (a timeout made it unsure)`);
    const res = await submit(ctx, 'alice', first.body, first.key);
    const action = parseAs(ActionSchema, res.body, 'the replayed answer');
    ctx.out.got(`${res.status} ${action.status} (${action.id}), Idempotent-Replayed: ${res.headers.get('idempotent-replayed') ?? '-'}`);
    expectThat(ctx, res.headers.get('idempotent-replayed') === 'true', 'the original answer was replayed (Idempotent-Replayed: true)', `got ${res.status} without the header`);
    expectThat(ctx, action.id === first.actionId, `it is the same action ${first.actionId}`, `a new action ${action.id} was created`);
    ctx.out.why('keys are scoped per principal; the same key and payload replay the first response, nothing runs again');
    if (travelBefore && paymentsBefore && ctx.vendors) {
      const travelAfter = (await sideEffects(ctx, 'travel'))!;
      const paymentsAfter = (await sideEffects(ctx, 'payments'))!;
      const moved = ['hold_seat', 'book_flight'].map((op) => delta(travelAfter, travelBefore, op)).concat(delta(paymentsAfter, paymentsBefore, 'authorize'));
      expectThat(ctx, moved.every((d) => d === 0), `no second hold, authorization or booking at the vendors (${ctx.vendors.via})`, `side effects moved by ${moved.join(', ')}`);
    } else {
      ctx.out.skip(`vendor side-effect counters: ${ctx.vendorsMissingReason ?? 'no vendor admin access'}`);
    }
    ctx.out.act('trip-bot (for alice)', 'POST /v1/actions, the same key with a different reason');
    const changed = await submit(ctx, 'alice', { ...(first.body as Record<string, unknown>), reason: 'Client meeting in Seattle (changed)' }, first.key);
    const problem = ProblemSchema.safeParse(changed.body);
    ctx.out.got(`${changed.status} ${problem.success ? problem.data.title : ''}`);
    expectThat(ctx, changed.status === 422, 'a different payload under the same key is refused (422)', `got ${changed.status}`);
    return 'retry replayed (Idempotent-Replayed: true), no second booking';
  },
};

// ── 5 ──────────────────────────────────────────────────────────────────────
const compensationScene: Scene = {
  n: 5,
  title: 'The vendor fails at the booking step: the saga undoes the rest',
  async run(ctx) {
    if (!ctx.vendors) throw new SceneSkippedError(`cannot inject a vendor fault: ${ctx.vendorsMissingReason ?? 'no vendor admin access'}`);
    const total = SCENE5.fare * SCENE5.seats;
    const body = bookingPlan({ flightId: `${SCENE5.flight}-${ctx.date}`, seats: SCENE5.seats, total, currency: SCENE5.currency, reason: 'Client visit in New York' });
    ctx.out.act('demo', `sets a fault on the travel vendor (${ctx.vendors.via}): the next book_flight fails with 400 fare_unavailable`);
    await ctx.vendors.setFaults('travel', { failNext: [{ operation: 'book_flight', count: 1, status: 400, code: 'fare_unavailable' }] });
    try {
      const travelBefore = (await sideEffects(ctx, 'travel'))!;
      const paymentsBefore = (await sideEffects(ctx, 'payments'))!;
      ctx.out.act('trip-bot (for alice)', `POST /v1/actions plan hold → authorize → book, ${SCENE5.flight}, ${money(total, 'USD')}`);
      const res = await submit(ctx, 'alice', body, key(ctx, 'client-visit'));
      const action = await finished(ctx, res);
      ctx.out.got(`${res.status} ${action.status} (${action.id}): ${action.statusReason ?? ''}`);
      expectThat(ctx, action.status === 'compensated', 'the action ended compensated', `it ended ${action.status}${action.statusReason ? ` (${action.statusReason})` : ''}`);
      const travelAfter = (await sideEffects(ctx, 'travel'))!;
      const paymentsAfter = (await sideEffects(ctx, 'payments'))!;
      expectThat(ctx, delta(travelAfter, travelBefore, 'book_flight') === 0, 'nothing was booked', `${delta(travelAfter, travelBefore, 'book_flight')} booking(s)`);
      expectThat(ctx, delta(travelAfter, travelBefore, 'release_hold') === 1, 'the seat hold was released at the vendor, once', `released ${delta(travelAfter, travelBefore, 'release_hold')} time(s)`);
      expectThat(ctx, delta(paymentsAfter, paymentsBefore, 'void_authorization') === 1, 'the card authorization was voided, once', `voided ${delta(paymentsAfter, paymentsBefore, 'void_authorization')} time(s)`);
      const receiptKey = await receiptOf(ctx, action);
      expectThat(ctx, receiptKey !== null, `receipt written: ${receiptKey}`, 'no receipt');
      const receipt = await readReceipt(ctx, receiptKey);
      const undone = receipt.steps.filter((s) => s.kind === 'compensate' && s.status === 'complete').map((s) => `${s.stepId} (${s.tool})`);
      const failed = receipt.steps.find((s) => s.kind === 'forward' && s.stepId === 'book');
      expectThat(ctx, receipt.outcome.status === 'compensated', 'the receipt’s outcome is compensated', `it says ${receipt.outcome.status}`);
      expectThat(ctx, failed?.status === 'failed', `the receipt shows the booking step failed (${failed?.error?.name ?? 'no error'})`, `book is ${failed?.status ?? 'missing'}`);
      expectThat(ctx, undone.length === 2 && undone[0]?.startsWith('pay') === true && undone[1]?.startsWith('hold') === true, `the receipt lists the compensations in reverse order: ${undone.join(', ')}`, `compensations: ${undone.join(', ') || 'none'}`);
      ctx.out.why('each commit step declares its compensation; on failure they run newest first, each with its own grant and idempotency key');
      return 'booking failed at the vendor; hold and authorization compensated, receipt says so';
    } finally {
      await ctx.vendors.setFaults('travel', {});
    }
  },
};

// ── 6 ──────────────────────────────────────────────────────────────────────
const PreviewSchema = z.object({ planHash: z.string(), quorum: z.number(), viewer: z.object({ canDecide: z.boolean(), refusal: z.string().optional() }) });
const DecisionSchema = z.object({ status: z.string(), recorded: z.boolean(), approvalsSoFar: z.number(), quorum: z.number() });
const RolesSchema = z.object({ call: z.object({ roles: z.array(z.object({ role: z.string() })) }) }).or(z.object({ roles: z.array(z.object({ role: z.string() })) }));

const iamScene: Scene = {
  n: 6,
  title: 'An IAM role grant needs two security admins',
  async run(ctx) {
    // Not carol or dave: the grantee may never approve, and they are the approvers.
    const grantee = 'bob';
    ctx.out.act('ops-bot (for alice)', `reads ${grantee}'s roles first (iam.get_role_assignments)`);
    const read = await submit(ctx, 'alice', { tool: 'iam.get_role_assignments', arguments: { principalId: grantee }, agent: { name: 'ops-bot' } }, key(ctx, 'roles'));
    const current = RolesSchema.safeParse(parseAs(ActionSchema, read.body, 'the role read').result);
    const held = current.success ? ('call' in current.data ? current.data.call.roles : current.data.roles).map((r) => r.role) : [];
    // A role the grantee lacks, so the demo also runs again against a long-lived server.
    const role = ['editor', 'billing-admin', 'viewer', 'auditor', 'admin'].find((r) => !held.includes(r));
    if (!role) throw new SceneFailedError(`${grantee} already holds every sandbox role`);
    ctx.out.got(`${grantee} has [${held.join(', ')}]; the agent asks for ${role}`);

    const res = await submit(
      ctx,
      'alice',
      { tool: 'iam.grant_role', arguments: { principalId: grantee, role, reason: 'Joins the on-call rotation' }, agent: { name: 'ops-bot' }, reason: `${grantee} joins on-call` },
      key(ctx, 'grant'),
      2,
    );
    const first = parseAs(AcceptedSchema, res.body, 'POST /v1/actions');
    ctx.out.got(`${res.status} ${first.status} (${first.id})`);
    const waiting = await waitForStatus(ctx, 'alice', first.id, ['awaiting_approval', ...TERMINAL]);
    expectThat(ctx, waiting.status === 'awaiting_approval', 'the grant waits for approval', `it is ${waiting.status}`);
    expectThat(ctx, waiting.decision?.policyIds.includes('iam.two-security-admins') === true, 'policy iam.two-security-admins decided it', `policies: ${waiting.decision?.policyIds.join(', ') ?? 'none'}`);
    ctx.out.why(reasonsOf(waiting));

    const approvalId = approvalIdFor(first.id);
    const preview = await eventually(ctx, `approval ${approvalId}`, async () => {
      const r = await api(ctx, 'carol', 'GET', `/v1/approvals/${approvalId}`);
      return r.status === 200 ? parseAs(PreviewSchema, r.body, 'the approval preview') : undefined;
    });
    expectThat(ctx, preview.quorum === 2, 'quorum is 2 people', `quorum is ${preview.quorum}`);
    const decide = (person: 'alice' | 'carol' | 'dave', comment: string) =>
      api(ctx, person, 'POST', `/v1/approvals/${approvalId}/decision`, { body: { decision: 'approve', planHash: preview.planHash, comment } });

    ctx.out.act('alice (the requester)', `POST /v1/approvals/${approvalId}/decision approve`);
    const own = await decide('alice', 'I asked for it, so it is fine');
    const ownProblem = ProblemSchema.safeParse(own.body);
    ctx.out.got(`${own.status} ${ownProblem.success ? `${ownProblem.data.title}: ${ownProblem.data.detail}` : ''}`);
    expectThat(ctx, own.status === 403, 'the requester’s own approval is refused (403)', `got ${own.status}`);

    ctx.out.act('carol (SecurityAdmin)', 'approves');
    const s1 = parseAs(DecisionSchema, (await decide('carol', 'Confirmed with the on-call lead')).body, 'carol’s decision');
    ctx.out.got(`${s1.status}, ${s1.approvalsSoFar}/${s1.quorum}`);
    expectThat(ctx, s1.recorded && s1.status === 'pending' && s1.approvalsSoFar === 1, 'one vote recorded; still pending', `${s1.status} ${s1.approvalsSoFar}/${s1.quorum}`);
    ctx.out.act('carol (SecurityAdmin)', 'approves again');
    const s2 = parseAs(DecisionSchema, (await decide('carol', 'Again')).body, 'carol’s second decision');
    expectThat(ctx, !s2.recorded && s2.approvalsSoFar === 1, 'a second vote by the same person does not count (still 1/2)', `${s2.approvalsSoFar}/${s2.quorum}`);
    ctx.out.act('dave (SecurityAdmin)', 'approves');
    const s3 = parseAs(DecisionSchema, (await decide('dave', 'Looks right')).body, 'dave’s decision');
    ctx.out.got(`${s3.status}, ${s3.approvalsSoFar}/${s3.quorum}`);
    expectThat(ctx, s3.status === 'approved' && s3.approvalsSoFar === 2, 'two distinct security admins: approved 2/2', `${s3.status} ${s3.approvalsSoFar}/${s3.quorum}`);

    const done = await waitForStatus(ctx, 'alice', first.id, TERMINAL);
    const Change = z.object({ before: z.array(z.string()), after: z.array(z.string()) });
    const change = z.object({ call: Change }).or(Change).safeParse(done.result);
    const moved = change.success ? ('call' in change.data ? change.data.call : change.data) : undefined;
    ctx.out.got(`${done.status}${moved ? `: ${grantee} [${moved.before.join(', ')}] → [${moved.after.join(', ')}]` : ''}`);
    expectThat(ctx, done.status === 'completed', `the role was granted`, `it ended ${done.status}${done.statusReason ? ` (${done.statusReason})` : ''}`);
    return 'IAM grant approved by two security admins; the requester’s own approval refused (403)';
  },
};

// ── 7 ──────────────────────────────────────────────────────────────────────
const denyScene: Scene = {
  n: 7,
  title: 'An order from a deny-listed supplier is refused',
  async run(ctx) {
    const before = await sideEffects(ctx, 'procurement');
    ctx.out.act('buyer-bot (for alice)', 'POST /v1/actions procurement.place_order, 2 × SHADY-LAPTOP from shady-supplies');
    const res = await submit(
      ctx,
      'alice',
      {
        tool: 'procurement.place_order',
        arguments: {
          supplierId: 'shady-supplies',
          lines: [{ sku: 'SHADY-LAPTOP', quantity: 2 }],
          shipTo: { name: 'Alice Example', street: '1 Market St', city: 'San Francisco', postalCode: '94105', country: 'US' },
          maxTotal: { amount: 398, currency: 'USD' },
        },
        agent: { name: 'buyer-bot' },
        reason: 'Cheap laptops for the new hires',
      },
      key(ctx, 'laptops'),
    );
    const problem = ProblemSchema.safeParse(res.body);
    ctx.out.got(`${res.status} ${res.headers.get('content-type') ?? ''}${problem.success ? ` ${problem.data.type}` : ''}`);
    expectThat(ctx, res.status === 403, 'refused with 403', `got ${res.status}`);
    expectThat(ctx, (res.headers.get('content-type') ?? '').startsWith('application/problem+json'), 'the body is application/problem+json', `content-type ${res.headers.get('content-type')}`);
    expectThat(ctx, problem.success && (problem.data.policyIds ?? []).includes('procurement.denied-vendor'), 'it names the policy: procurement.denied-vendor', `policyIds ${JSON.stringify(problem.data?.policyIds)}`);
    expectThat(ctx, (problem.data?.reasons ?? []).length > 0, `and the reason: “${problem.data?.reasons?.[0] ?? ''}”`, 'no reasons');
    if (before) {
      const after = (await sideEffects(ctx, 'procurement'))!;
      expectThat(ctx, delta(after, before, 'place_order') === 0, 'nothing reached the supplier', 'an order was placed');
    }
    return 'deny-listed supplier refused: 403 procurement.denied-vendor with its reason';
  },
};

// ── 8 ──────────────────────────────────────────────────────────────────────
const auditScene: Scene = {
  n: 8,
  title: 'Auditors verify the vault; tampering is caught',
  async run(ctx) {
    const vault = join(ctx.home, 'audit');
    ctx.out.act('audrey (auditor)', `$ airlock audit digest --dir ${vault}`);
    const digest = await airlockCli(ctx, ['audit', 'digest', '--dir', vault]);
    ctx.out.output(digest.stdout || digest.stderr);
    expectThat(ctx, digest.code === 0, 'a signed digest now covers every receipt', `audit digest exited ${digest.code}: ${digest.stderr.trim()}`);

    ctx.out.act('audrey (auditor)', `$ airlock audit verify --dir ${vault}`);
    const ok = await airlockCli(ctx, ['audit', 'verify', '--dir', vault]);
    ctx.out.output(ok.stdout || ok.stderr);
    expectThat(ctx, ok.code === 0 && /OK: no findings/.test(ok.stdout), 'verify passes: signatures, chain and checksums hold', `audit verify exited ${ok.code}`);

    // The vault's files are read-only on purpose; the tampering happens in a copy.
    const copy = await mkdtemp(join(tmpdir(), 'airlock-demo-tampered-'));
    try {
      await cp(vault, copy, { recursive: true });
      const target = ctx.state.scene2?.receipt;
      if (!target) throw new SceneFailedError('scene 2 wrote no receipt to tamper with');
      const path = join(copy, ...target.split('/'));
      const receipt = JSON.parse(await readFile(path, 'utf8')) as { outcome?: { status?: string } };
      if (!receipt.outcome) throw new SceneFailedError(`${target} has no outcome to alter`);
      receipt.outcome.status = 'cancelled';
      await chmod(path, 0o644);
      // A careful forger keeps the canonical form, so only the checksum can give it away.
      await writeFile(path, `${canonicalJson(receipt)}\n`);
      ctx.out.act('mallory', `edits ${target} in a copy of the vault (${copy}): outcome completed → cancelled, format kept`);
      ctx.out.act('audrey (auditor)', `$ airlock audit verify --dir ${copy}`);
      const bad = await airlockCli(ctx, ['audit', 'verify', '--dir', copy]);
      ctx.out.output(bad.stderr || bad.stdout);
      expectThat(ctx, bad.code === 1, 'verify fails (exit 1)', `audit verify exited ${bad.code}`);
      expectThat(ctx, /MODIFIED/.test(bad.stderr) && bad.stderr.includes(target), `and names the receipt: MODIFIED ${target}`, 'the finding does not name the receipt');
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
    return 'audit verify passes; a tampered copy fails and names the receipt';
  },
};

// ── 9 ──────────────────────────────────────────────────────────────────────
/** The seed recipe's buyer cap (policies/limits.json `procurement-buyer-daily`): $1,000 of orders a day per buyer. */
const BUYER_CAP = { id: 'procurement-buyer-daily', amount: 1000 };
const BURST = { orders: 8, maxTotal: 150 };

const capBurstScene: Scene = {
  n: 9,
  title: 'A spend cap reached under a burst of parallel orders',
  async run(ctx) {
    const before = await sideEffects(ctx, 'procurement');
    ctx.out.act(
      'buyer-bot (for alice)',
      `${BURST.orders} × POST /v1/actions procurement.place_order at once, each up to ${money(BURST.maxTotal, 'USD')} from acme-office (${money(BURST.orders * BURST.maxTotal, 'USD')} against a ${money(BUYER_CAP.amount, 'USD')} daily buyer cap)`,
    );
    const order = {
      tool: 'procurement.place_order',
      arguments: {
        supplierId: 'acme-office',
        lines: [{ sku: 'ACME-PAPER-A4', quantity: 3 }],
        shipTo: { name: 'Alice Example', street: '1 Market St', city: 'San Francisco', postalCode: '94105', country: 'US' },
        maxTotal: { amount: BURST.maxTotal, currency: 'USD' },
      },
      agent: { name: 'buyer-bot' },
      reason: 'Paper for every floor',
    };
    const answers = await Promise.all(Array.from({ length: BURST.orders }, (_, i) => submit(ctx, 'alice', order, key(ctx, `paper-${i}`), 15)));
    // Each order ends one of three ways, whichever moment its decision or reservation met the cap.
    const tally = { completed: 0, stopped: 0, confirming: 0 };
    const namesCap = (text: string | undefined) => (text ?? '').includes(`"${BUYER_CAP.id}"`);
    for (const res of answers) {
      const problem = ProblemSchema.safeParse(res.body);
      if (res.status === 403 && problem.success && problem.data.type === 'urn:airlock:problem:spend-cap-exceeded') {
        expectThat(ctx, namesCap(problem.data.detail), `refused up front: 403 spend-cap-exceeded naming ${BUYER_CAP.id}`, problem.data.detail);
        tally.stopped++;
        continue;
      }
      const first = parseAs(ActionSchema, res.body, 'POST /v1/actions');
      const action = await waitForStatus(ctx, 'alice', first.id, [...TERMINAL, 'awaiting_approval']);
      if (action.status === 'completed') tally.completed++;
      else if (action.status === 'awaiting_approval' && (action.decision?.policyIds ?? []).includes('exposure.cap-near')) tally.confirming++;
      else if (namesCap(action.statusReason) || namesCap(action.decision?.reasons.join(' '))) tally.stopped++;
      else throw new SceneFailedError(`order ${action.id} ended ${action.status} for another reason: ${action.statusReason ?? reasonsOf(action)}`);
    }
    ctx.out.got(`${tally.completed} placed, ${tally.stopped} stopped by the cap, ${tally.confirming} held for a person (past 80% of the cap)`);
    const fits = Math.floor(BUYER_CAP.amount / BURST.maxTotal);
    expectThat(ctx, tally.completed <= fits, `never past the cap: ${tally.completed} × ${money(BURST.maxTotal, 'USD')} ≤ ${money(BUYER_CAP.amount, 'USD')}`, `${tally.completed} orders completed`);
    expectThat(ctx, tally.stopped + tally.confirming >= BURST.orders - fits, 'every order over the cap was stopped or held for a person', JSON.stringify(tally));
    if (before) {
      const after = (await sideEffects(ctx, 'procurement'))!;
      expectThat(ctx, delta(after, before, 'place_order') === tally.completed, `the supplier received exactly the ${tally.completed} placed orders`, `${delta(after, before, 'place_order')} orders reached it`);
    }
    return `a burst of ${BURST.orders} orders against a ${money(BUYER_CAP.amount, 'USD')} cap: ${tally.completed} placed, the rest stopped or held; never past the cap`;
  },
};

const QuotasSchema = z.object({ policies: z.array(z.object({ id: z.string(), scope: z.string(), limit: z.number(), windowSeconds: z.number(), remaining: z.number() })) });
const QuotaProblemSchema = ProblemSchema.extend({ 'violated-policies': z.array(z.string()), retryAfter: z.number() });
/** Most requests the scene sends to use up an agent's quota; a looser limit is not shown live. */
const LOOP_BUDGET = 600;

const rateLimitScene: Scene = {
  n: 10,
  title: 'A rate-limited agent: a loop is stopped with 429 and RateLimit headers',
  async run(ctx) {
    // A fresh agent name per run: its per-agent window starts empty whatever ran before.
    const agent = { name: `loop-bot-${ctx.nonce}` };
    const limits = await api(ctx, 'alice', 'GET', `/v1/limits?agent=${encodeURIComponent(agent.name)}`);
    const quotas = parseAs(QuotasSchema, limits.body, 'GET /v1/limits');
    const agentPolicy = quotas.policies.filter((p) => p.scope === 'agent').sort((a, b) => a.remaining - b.remaining)[0];
    if (!agentPolicy) throw new SceneSkippedError('this server has no per-agent rate limit');
    if (agentPolicy.remaining > LOOP_BUDGET) throw new SceneSkippedError(`the agent limit (${agentPolicy.limit}) is too loose to reach in a demo`);
    ctx.out.act('alice', `GET /v1/limits?agent=${agent.name} → ${agentPolicy.id}: ${agentPolicy.remaining} of ${agentPolicy.limit} per ${agentPolicy.windowSeconds} s left`);

    ctx.out.act(`${agent.name} (for alice)`, 'asks POST /v1/decisions about the same echo.say, over and over (a stuck loop)');
    const preview = { tool: 'echo.say', arguments: { message: 'are we there yet?' }, agent };
    // Eight at a time, as a busy agent would: stop at the first batch that is turned away.
    // Windows are fixed (whole minutes since the epoch), so a slow loop may cross into the next
    // one: count per window (the RateLimit `t` jumps up when a window starts), and go on past a
    // refusal that comes just before a reset, or the next call would be let through.
    const secondsLeft = (r: { headers: Headers }) => Number(/;t=(\d+)/.exec(r.headers.get('ratelimit') ?? '')?.[1] ?? Number.NaN);
    let served = 0;
    let inWindow = 0;
    let mostInWindow = 0;
    let lastT = Number.POSITIVE_INFINITY;
    let refused: Awaited<ReturnType<typeof api>> | undefined;
    const bound = agentPolicy.remaining + 2 * agentPolicy.limit + 16;
    while (served < bound) {
      const batch = await Promise.all(Array.from({ length: 8 }, () => api(ctx, 'alice', 'POST', '/v1/decisions', { body: preview })));
      for (const r of batch.filter((x) => x.status === 200)) {
        const t = secondsLeft(r);
        if (t > lastT + 1) inWindow = 0;
        lastT = t;
        served++;
        mostInWindow = Math.max(mostInWindow, ++inWindow);
      }
      refused = batch.find((r) => r.status !== 200);
      if (refused && !(refused.status === 429 && secondsLeft(refused) < 5)) break;
      refused = undefined;
    }
    ctx.out.got(`${served} answered 200, then ${refused?.status}; RateLimit: ${refused?.headers.get('ratelimit') ?? '(none)'}`);
    expectThat(ctx, refused?.status === 429, `the loop is cut off with 429 after ${served} requests`, `it got ${refused?.status} after ${served} requests`);
    expectThat(ctx, mostInWindow <= agentPolicy.limit, `never more than the limit (${agentPolicy.limit}) in one window`, `${mostInWindow} were served in one window`);

    const newest = async () => {
      const page = await api(ctx, 'alice', 'GET', '/v1/actions?limit=1');
      return JSON.stringify((page.body as { items?: unknown[] } | undefined)?.items ?? []);
    };
    const before = await newest();
    ctx.out.act(`${agent.name} (for alice)`, 'POST /v1/actions echo.say — now trying to act');
    const res = await submit(ctx, 'alice', { ...preview, arguments: { message: 'let me through' } }, key(ctx, 'rate-limited'));
    const problem = QuotaProblemSchema.safeParse(res.body);
    ctx.out.got(`${res.status} ${problem.success ? problem.data.type : ''}; Retry-After: ${res.headers.get('retry-after')}; RateLimit-Policy: ${res.headers.get('ratelimit-policy')}`);
    expectThat(ctx, res.status === 429 && problem.success, 'refused with 429 quota-exceeded', `got ${res.status}`);
    expectThat(ctx, problem.data['violated-policies'].includes(agentPolicy.id), `violated-policies names ${agentPolicy.id}`, JSON.stringify(problem.data['violated-policies']));
    expectThat(ctx, Number(res.headers.get('retry-after')) >= 1, `Retry-After says when to come back (${res.headers.get('retry-after')} s)`, 'no Retry-After');
    expectThat(ctx, /;r=0;t=\d+$/.test(res.headers.get('ratelimit') ?? ''), 'RateLimit shows nothing left until the window resets', `RateLimit: ${res.headers.get('ratelimit')}`);
    expectThat(ctx, (await newest()) === before, 'no action was recorded', 'a new action appeared');
    const other = await api(ctx, 'alice', 'POST', '/v1/decisions', { body: { ...preview, agent: AGENT } });
    expectThat(ctx, other.status === 200, 'alice\'s other agent is still served', `trip-bot got ${other.status}`);
    return `a looping agent stopped at its limit: 429 quota-exceeded (${agentPolicy.id}) with Retry-After, nothing recorded`;
  },
};

// ── 11 ──────────────────────────────────────────────────────────────────────
const HaltSchema = z.object({ id: z.string(), status: z.string(), reason: z.string() });

const breakerScene: Scene = {
  n: 11,
  title: 'A vendor goes down: its circuit breaker opens and new work is refused at once',
  async run(ctx) {
    if (!ctx.vendors) throw new SceneSkippedError(`cannot inject a vendor fault: ${ctx.vendorsMissingReason ?? 'no vendor admin access'}`);
    // Enough failures for the breaker (limits.json: 5 within 30 s) and every retry of the step.
    ctx.out.act('demo', `sets a fault on the procurement vendor (${ctx.vendors.via}): search_catalog answers 503 from now on`);
    await ctx.vendors.setFaults('procurement', { failNext: [{ operation: 'search_catalog', count: 50, status: 503 }] });
    try {
      const search = { tool: 'procurement.search_catalog', arguments: { query: 'paper' }, agent: { name: 'buyer-bot' } };
      ctx.out.act('buyer-bot (for alice)', 'POST /v1/actions procurement.search_catalog; the step is retried with back-off while the vendor fails');
      const first = await api(ctx, 'alice', 'POST', '/v1/actions', { body: search, headers: { 'idempotency-key': key(ctx, 'catalog-1'), prefer: 'respond-async' } });
      const id = parseAs(ActionSchema.pick({ id: true }), first.body, 'the accepted search').id;
      // Five attempts with the ASL's jittered back-off (up to 1 + 2 + 4 + 8 s): longer than a scene's usual wait.
      let failed: ActionView | undefined;
      for (const deadline = Date.now() + 4 * ctx.timeoutMs; !failed && Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
        const view = parseAs(ActionSchema, (await api(ctx, 'alice', 'GET', `/v1/actions/${id}`)).body, `GET /v1/actions/${id}`);
        if (TERMINAL.includes(view.status as never)) failed = view;
      }
      if (!failed) throw new SceneFailedError(`action ${id} did not end while the vendor failed`);
      ctx.out.got(`${failed.status}: ${failed.statusReason ?? ''}`);
      expectThat(ctx, failed.status !== 'completed', 'the search failed after its retries', `it ended ${failed.status}`);
      const before = (await ctx.vendors.stats('procurement'))?.requests.search_catalog ?? 0;
      ctx.out.act('buyer-bot (for alice)', 'POST /v1/actions procurement.search_catalog again');
      const second = await submit(ctx, 'alice', search, key(ctx, 'catalog-2'));
      const problem = ProblemSchema.safeParse(second.body);
      ctx.out.got(`${second.status} ${problem.success ? `${problem.data.type} (Retry-After: ${second.headers.get('retry-after') ?? '—'})` : ''}`);
      expectThat(ctx, second.status === 503 && problem.success && problem.data.type === 'urn:airlock:problem:circuit-open', 'refused at once: 503 circuit-open', `got ${second.status}`);
      expectThat(ctx, problem.data.connector === 'procurement', 'naming the connector: procurement', `it names ${problem.data.connector ?? 'nothing'}`);
      expectThat(ctx, Number(second.headers.get('retry-after')) > 0, `with Retry-After: ${second.headers.get('retry-after')} s (the jittered reset)`, 'no Retry-After');
      const after = (await ctx.vendors.stats('procurement'))?.requests.search_catalog ?? 0;
      expectThat(ctx, after === before, 'the vendor was not called', `the vendor got ${after - before} more call(s)`);
      ctx.out.why('5 failures within 30 s (limits.json breakers) open it; after the reset trial calls go through, and 2 successes close it');
      return 'failing vendor opened the breaker; the next action got 503 circuit-open with Retry-After, vendor not called';
    } finally {
      await ctx.vendors.setFaults('procurement', {});
    }
  },
};

// ── 12 ─────────────────────────────────────────────────────────────────────
const killSwitchScene: Scene = {
  n: 12,
  title: 'The kill switch stops a running plan mid-way, and the saga undoes what it did',
  async run(ctx) {
    if (!ctx.vendors) throw new SceneSkippedError(`cannot slow a vendor down: ${ctx.vendorsMissingReason ?? 'no vendor admin access'}`);
    const total = SCENE5.fare * SCENE5.seats;
    const body = { ...bookingPlan({ flightId: `${SCENE5.flight}-${ctx.date}`, seats: SCENE5.seats, total, currency: SCENE5.currency, reason: 'Another trip' }), agent: { name: 'runaway-bot' } };
    // A slow hold (3 s at the vendor) leaves time to pull the switch while the plan runs.
    await ctx.vendors.setFaults('travel', { latencyMs: 3000 });
    let haltId: string | undefined;
    try {
      const travelBefore = (await sideEffects(ctx, 'travel'))!;
      const paymentsBefore = (await sideEffects(ctx, 'payments'))!;
      ctx.out.act('runaway-bot (for alice)', `POST /v1/actions plan hold → authorize → book, ${SCENE5.flight} (Prefer: respond-async)`);
      const res = await api(ctx, 'alice', 'POST', '/v1/actions', { body, headers: { 'idempotency-key': key(ctx, 'runaway'), prefer: 'respond-async' } });
      const accepted = parseAs(ActionSchema.pick({ id: true, status: true }), res.body, 'the accepted action');
      await waitForStatus(ctx, 'alice', accepted.id, ['running', ...TERMINAL]);
      // The API rather than `airlock halt` (same request): starting a CLI process could take longer than the hold.
      ctx.out.act('olivia (on call)', 'POST /v1/halts {"scope":"agent","target":"runaway-bot","reason":"agent looping on bookings"}  (or: airlock halt agent runaway-bot --reason …)');
      const halted = await api(ctx, 'olivia', 'POST', '/v1/halts', { body: { scope: 'agent', target: 'runaway-bot', reason: 'agent looping on bookings', mode: 'stop' } });
      expectThat(ctx, halted.status === 201, 'halted (201)', `POST /v1/halts answered ${halted.status}`);
      haltId = parseAs(HaltSchema, halted.body, 'the halt').id;
      ctx.out.got(`201 halt ${haltId} active`);
      await ctx.vendors.setFaults('travel', {});
      const action = await waitForStatus(ctx, 'alice', accepted.id, TERMINAL);
      ctx.out.got(`${action.status} (${action.id}): ${action.statusReason ?? ''}`);
      expectThat(ctx, action.status === 'compensated' && /ActionHaltedError/.test(action.statusReason ?? ''), 'the plan stopped before its next step and was compensated', `it ended ${action.status} (${action.statusReason ?? ''})`);
      const travelAfter = (await sideEffects(ctx, 'travel'))!;
      const paymentsAfter = (await sideEffects(ctx, 'payments'))!;
      expectThat(ctx, delta(travelAfter, travelBefore, 'book_flight') === 0, 'nothing was booked', `${delta(travelAfter, travelBefore, 'book_flight')} booking(s)`);
      expectThat(ctx, delta(travelAfter, travelBefore, 'release_hold') === 1, 'the seat hold it had taken was released at the vendor', `released ${delta(travelAfter, travelBefore, 'release_hold')} time(s)`);
      expectThat(ctx, delta(paymentsAfter, paymentsBefore, 'authorize') === 0, 'the card was never charged', `${delta(paymentsAfter, paymentsBefore, 'authorize')} authorization(s)`);
      const receiptKey = await receiptOf(ctx, action);
      const receipt = await readReceipt(ctx, receiptKey!);
      const stopped = receipt.events.chain.find((e) => e.type === 'action.stopped');
      expectThat(ctx, stopped?.actor === 'olivia', 'its receipt records the stop, by olivia', 'the receipt does not show the halt');
      ctx.out.act('runaway-bot (for alice)', 'POST /v1/actions again while halted');
      const refused = await submit(ctx, 'alice', { ...body, reason: 'retry' }, key(ctx, 'runaway-2'));
      const problem = ProblemSchema.safeParse(refused.body);
      ctx.out.got(`${refused.status} ${problem.success ? `${problem.data.type}: ${problem.data.reason ?? ''}` : ''}`);
      expectThat(ctx, refused.status === 403 && problem.success && problem.data.haltId === haltId, 'refused: 403 halted, with the halt id and reason', `got ${refused.status}`);
      ctx.out.act('olivia (on call)', `$ airlock resume ${haltId} --reason "loop fixed"`);
      const resumed = await airlockCli(ctx, ['resume', haltId, '--reason', 'loop fixed', '--url', ctx.url, '--as', 'olivia', '--role', 'KillSwitch']);
      expectThat(ctx, resumed.code === 0, 'resumed (exit 0)', `airlock resume exited ${resumed.code}: ${resumed.stderr.trim()}`);
      haltId = undefined;
      ctx.out.why('halts live in the ledger and reach every function within killSwitch.propagationSeconds; compensations always run');
      return 'halt stopped the running plan before its next step; the hold was released, receipt records the halt';
    } finally {
      await ctx.vendors.setFaults('travel', {});
      if (haltId) await api(ctx, 'olivia', 'DELETE', `/v1/halts/${haltId}`, { body: { reason: 'demo cleanup' } }).catch(() => undefined);
    }
  },
};

// ── 13 ─────────────────────────────────────────────────────────────────────
const DelegationSchema = z.object({
  id: z.string(),
  state: z.string(),
  consentReceiptKey: z.string(),
  revocationReceiptKey: z.string().nullable(),
  stopped: z.object({ cancelled: z.array(z.string()), stopping: z.array(z.string()) }).optional(),
});

const consentScene: Scene = {
  n: 13,
  title: 'alice delegates a travel budget to trip-bot; it books within it; she revokes mid-plan and the plan is undone',
  async run(ctx) {
    if (!ctx.requireDelegationPlane) throw new SceneSkippedError('needs a control plane of its own with requireDelegation on: run the demo standalone (without AIRLOCK_URL)');
    ctx.out.note('a second control plane with requireDelegation on (as the deployed stack runs), state in <home>/require-delegation');
    const plane = await ctx.requireDelegationPlane();
    const tokens = new Map<Person, Promise<string>>();
    const strict: DemoContext = {
      ...ctx,
      url: plane.url,
      home: plane.home,
      vendors: plane.vendors,
      token(person) {
        let t = tokens.get(person);
        if (!t) tokens.set(person, (t = plane.sign(People[person])));
        return t;
      },
      agentToken: (person, agent) => plane.sign({ ...People[person], act: { sub: agent } }),
    };
    try {
      const bot = { authorization: `Bearer ${await strict.agentToken('alice', 'trip-bot')}` };
      const trip = (reason: string) => bookingPlan({ flightId: `${SCENE5.flight}-${ctx.date}`, seats: 1, total: SCENE5.fare, currency: SCENE5.currency, reason });
      ctx.out.act('trip-bot (alice\'s token, act.sub=trip-bot)', `POST /v1/actions plan hold → authorize → book, ${SCENE5.flight}, before any delegation`);
      const early = await api(strict, 'alice', 'POST', '/v1/actions', { body: trip('Conference'), headers: { ...bot, 'idempotency-key': key(ctx, 'dlg-early') } });
      const earlyProblem = ProblemSchema.safeParse(early.body);
      ctx.out.got(`${early.status} ${earlyProblem.success ? earlyProblem.data.type : ''}`);
      expectThat(ctx, early.status === 403 && earlyProblem.success && earlyProblem.data.missing === 'no-delegation' && earlyProblem.data.agent === 'trip-bot', 'refused: 403 delegation-required, naming trip-bot and the tools', `got ${early.status}`);

      ctx.out.act('alice', '$ airlock delegations create trip-bot --connector travel --connector payments --budget "1200 USD/day" --expires 8h');
      const created = await airlockCli(strict, ['delegations', 'create', 'trip-bot', '--connector', 'travel', '--connector', 'payments', '--budget', '1200 USD/day', '--expires', '8h', '--purpose', 'Conference in New York', '--url', plane.url, '--as', 'alice', '--role', 'Employee', '--json']);
      expectThat(ctx, created.code === 0, 'delegated (exit 0)', `airlock delegations create exited ${created.code}: ${created.stderr.trim()}`);
      const delegation = parseAs(DelegationSchema, JSON.parse(created.stdout) as unknown, 'the delegation');
      ctx.out.got(`${delegation.id} active; consent receipt ${delegation.consentReceiptKey}`);
      const consent = await readFile(join(plane.home, 'audit', ...delegation.consentReceiptKey.split('/')), 'utf8').catch(() => undefined);
      expectThat(ctx, consent !== undefined && /"kind":"airlock.consent"/.test(consent), 'the consent receipt (who, which agent, scope, budget, expiry, policy and limits versions) is in the vault', 'no consent receipt in the vault');

      ctx.out.act('trip-bot (for alice)', `POST /v1/actions the same plan (${money(SCENE5.fare, SCENE5.currency)}: $549 of the budget, authorized and booked)`);
      const booked = await api(strict, 'alice', 'POST', '/v1/actions', { body: trip('Conference'), headers: { ...bot, 'idempotency-key': key(ctx, 'dlg-book'), prefer: 'wait=15' } });
      const done = await finished(strict, booked);
      ctx.out.got(`${done.status} (${done.id})`);
      expectThat(ctx, done.status === 'completed', 'booked within the delegation', `it ended ${done.status} (${done.statusReason ?? ''})`);
      const receipt = await readReceipt(strict, (await receiptOf(strict, done))!);
      expectThat(ctx, receipt.request.delegationId === delegation.id && receipt.request.agent === 'trip-bot', 'its receipt names the delegation and the verified agent', 'the receipt does not name the delegation');

      // A slow hold (3 s at the vendor) leaves time to revoke while the next plan runs.
      await plane.vendors.setFaults('travel', { latencyMs: 3000 });
      const travelBefore = (await plane.vendors.stats('travel')).sideEffects;
      const paymentsBefore = (await plane.vendors.stats('payments')).sideEffects;
      ctx.out.act('trip-bot (for alice)', 'POST /v1/actions a second trip (Prefer: respond-async)');
      const second = await api(strict, 'alice', 'POST', '/v1/actions', { body: trip('Second leg'), headers: { ...bot, 'idempotency-key': key(ctx, 'dlg-second'), prefer: 'respond-async' } });
      const running = parseAs(ActionSchema.pick({ id: true, status: true }), second.body, 'the accepted action');
      await waitForStatus(strict, 'alice', running.id, ['running', ...TERMINAL]);
      ctx.out.act('alice', `DELETE /v1/delegations/${delegation.id} {"reason":"trip cancelled"}  (or: airlock delegations revoke ${delegation.id} --reason …)`);
      const revoked = await api(strict, 'alice', 'DELETE', `/v1/delegations/${delegation.id}`, { body: { reason: 'trip cancelled' } });
      const revocation = parseAs(DelegationSchema, revoked.body, 'the revocation');
      ctx.out.got(`${revoked.status} ${revocation.state}; stopping ${revocation.stopped?.stopping.join(', ') || 'nothing'}`);
      expectThat(ctx, revoked.status === 200 && revocation.state === 'revoked' && (revocation.stopped?.stopping ?? []).includes(running.id), 'revoked: the running plan is told to stop before its next step', `got ${revoked.status} ${JSON.stringify(revocation.stopped)}`);
      await plane.vendors.setFaults('travel', {});
      const stopped = await waitForStatus(strict, 'alice', running.id, TERMINAL);
      ctx.out.got(`${stopped.status} (${stopped.id}): ${stopped.statusReason ?? ''}`);
      expectThat(ctx, stopped.status === 'cancelled', 'the plan ended cancelled after compensation', `it ended ${stopped.status}`);
      const travelAfter = (await plane.vendors.stats('travel')).sideEffects;
      const paymentsAfter = (await plane.vendors.stats('payments')).sideEffects;
      expectThat(ctx, delta(travelAfter, travelBefore, 'book_flight') === 0 && delta(travelAfter, travelBefore, 'release_hold') === 1, 'nothing booked; the seat hold was released at the vendor', `booked ${delta(travelAfter, travelBefore, 'book_flight')}, released ${delta(travelAfter, travelBefore, 'release_hold')}`);
      expectThat(ctx, delta(paymentsAfter, paymentsBefore, 'authorize') === 0, 'the card was never charged for it', `${delta(paymentsAfter, paymentsBefore, 'authorize')} authorization(s)`);
      const revocationReceipt = revocation.revocationReceiptKey ? await readFile(join(plane.home, 'audit', ...revocation.revocationReceiptKey.split('/')), 'utf8').catch(() => undefined) : undefined;
      expectThat(ctx, revocationReceipt !== undefined, 'the revocation receipt is in the vault', 'no revocation receipt');

      ctx.out.act('trip-bot (for alice)', 'POST /v1/actions again');
      const after = await api(strict, 'alice', 'POST', '/v1/actions', { body: trip('Retry'), headers: { ...bot, 'idempotency-key': key(ctx, 'dlg-after') } });
      const afterProblem = ProblemSchema.safeParse(after.body);
      ctx.out.got(`${after.status} ${afterProblem.success ? afterProblem.data.type : ''}`);
      expectThat(ctx, after.status === 403 && afterProblem.success && afterProblem.data.missing === 'no-delegation', 'refused at once: 403 delegation-required', `got ${after.status}`);
      ctx.out.why('the agent is the token\'s act.sub (else azp, else client_id), never the body; revoking cancels pending approvals and stops running sagas through the cancel path');
      return 'delegation granted with a consent receipt; booked within budget; revoked mid-plan, plan compensated and cancelled, agent refused';
    } finally {
      await plane.vendors.setFaults('travel', {}).catch(() => undefined);
      await plane.close();
    }
  },
};

// ── 14 ─────────────────────────────────────────────────────────────────────
const reconcileScene: Scene = {
  n: 14,
  title: 'A vendor diverges from the ledger; reconciliation finds it and --fix undoes it',
  async run(ctx) {
    if (!ctx.vendors) throw new SceneSkippedError(`cannot make a vendor diverge: ${ctx.vendorsMissingReason ?? 'no vendor admin access'}`);
    const agent = { name: 'trip-bot' };
    ctx.out.act('trip-bot (for alice)', `POST /v1/actions travel.hold_seat ${SCENE5.flight}`);
    const held = await finished(ctx, await submit(ctx, 'alice', { tool: 'travel.hold_seat', arguments: { flightId: `${SCENE5.flight}-${ctx.date}`, seats: 1 }, agent }, key(ctx, 'diverge-hold')));
    const holdId = (held.result as { holdId?: unknown } | null)?.holdId;
    expectThat(ctx, held.status === 'completed' && typeof holdId === 'string', 'a seat is held', `it ended ${held.status}`);
    // The booking commits at the vendor and its answer is lost; the lookup fails and the
    // vendor ignores the key on the retry (the booked hold refuses it): as far as Airlock
    // knows the booking failed, and at the vendor it lives on.
    await ctx.vendors.setFaults('travel', {
      commitThenDrop: [{ operation: 'book_flight', count: 1, mode: 'destroy' }],
      failNext: [{ operation: 'list_bookings', count: 1, status: 503 }],
      ignoreIdempotency: [{ operation: 'book_flight', count: 2 }],
    });
    try {
      ctx.out.act('trip-bot (for alice)', `POST /v1/actions travel.book_flight on that hold; the vendor commits the booking and drops its answer`);
      const book = {
        tool: 'travel.book_flight',
        arguments: { holdId, travelers: travelers(1), contact: { email: 'alice@example.com' }, price: { amount: SCENE5.fare, currency: SCENE5.currency } },
        agent,
      };
      const action = await finished(ctx, await submit(ctx, 'alice', book, key(ctx, 'diverge-book'), 15));
      ctx.out.got(`${action.status} (${action.id}): ${action.statusReason ?? ''}`);
      expectThat(ctx, action.status !== 'completed', 'the booking failed as far as Airlock knows', `it ended ${action.status}`);
    } finally {
      await ctx.vendors.setFaults('travel', {});
    }
    const before = (await ctx.vendors.stats('travel')).sideEffects;
    ctx.out.act('olivia (on call)', '$ airlock reconcile --days 1');
    const found = await airlockCli(ctx, ['reconcile', '--days', '1', '--url', ctx.url, '--as', 'olivia', '--role', 'KillSwitch']);
    const orphan = found.stdout.split('\n').find((l) => /orphan\s+travel\.book_flight/.test(l));
    ctx.out.got(orphan?.trim() ?? found.stdout.trim().split('\n')[0] ?? '');
    expectThat(ctx, found.code === 3 && orphan !== undefined, 'found: the booking is live at the vendor though Airlock undid it (orphan), exit 3', `exit ${found.code}: ${found.stderr.trim() || found.stdout.trim()}`);
    ctx.out.act('olivia (on call)', '$ airlock reconcile --fix --days 1');
    const fixed = await airlockCli(ctx, ['reconcile', '--fix', '--days', '1', '--url', ctx.url, '--as', 'olivia', '--role', 'KillSwitch']);
    const after = (await ctx.vendors.stats('travel')).sideEffects;
    ctx.out.got(fixed.stdout.trim().split('\n').find((l) => /book_flight/.test(l))?.trim() ?? '');
    expectThat(ctx, fixed.code === 0 && delta(after, before, 'cancel_booking') === 1, 'fixed: the orphan booking was cancelled at the vendor, exit 0', `exit ${fixed.code}, ${delta(after, before, 'cancel_booking')} cancellation(s)`);
    const again = await airlockCli(ctx, ['reconcile', '--days', '1', '--url', ctx.url, '--as', 'olivia', '--role', 'KillSwitch']);
    expectThat(ctx, !/orphan\s+travel\.book_flight/.test(again.stdout), 'a second run finds it no more', again.stdout.trim());
    ctx.out.why('each connector answers for its records by the step\'s client reference; every run writes a reconciliation report to the vault');
    return 'vendor divergence found (orphan booking, exit 3) and fixed with --fix (cancelled at the vendor)';
  },
};

/** The scenes in the order the demo plays them. */
export const scenes: readonly Scene[] = [readScene, bookingScene, approvalScene, replayScene, compensationScene, iamScene, denyScene, auditScene, capBurstScene, rateLimitScene, breakerScene, killSwitchScene, consentScene, reconcileScene];

/** How a run went. */
export interface DemoOutcome {
  passed: number[];
  failed: { n: number; reason: string }[];
  skipped: { n: number; reason: string }[];
}

/** Plays `list` in order; a failing scene is reported and the next one still runs. */
export async function runScenes(ctx: DemoContext, list: readonly Scene[] = scenes): Promise<DemoOutcome> {
  const outcome: DemoOutcome = { passed: [], failed: [], skipped: [] };
  for (const scene of list) {
    ctx.out.scene(scene.n, scenes.length, scene.title);
    try {
      ctx.out.pass(scene.n, await scene.run(ctx));
      outcome.passed.push(scene.n);
    } catch (error) {
      if (error instanceof SceneSkippedError) {
        ctx.out.skipped(scene.n, error.message);
        outcome.skipped.push({ n: scene.n, reason: error.message });
        continue;
      }
      // Anything else (an unexpected answer, a crash) means the scene did not behave as described.
      const reason = error instanceof Error ? `${error instanceof SceneFailedError ? '' : `${error.name}: `}${error.message}` : String(error);
      ctx.out.fail(scene.n, reason);
      outcome.failed.push({ n: scene.n, reason });
    }
  }
  return outcome;
}
