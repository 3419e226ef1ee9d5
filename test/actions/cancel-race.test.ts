import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoApprovalStore } from '../../lambdas/adapters/aws/dynamo-approvals';
import { ActionFinishedError, ApprovalDecidedError, requestCancel, type CancelDeps } from '../../lambdas/actions/cancel';
import type { ActionRecord } from '../../lambdas/actions/action';
import type { ApprovalRecord } from '../../lambdas/ports/approvals';
import type { AuditEvent, EventLog } from '../../lambdas/ports/steps';
import { approvalIdFor } from '../../lambdas/shared/ids';
import { echoCall } from '../helpers/intake';
import { startLedger } from '../helpers/ledger';

/**
 * A cancel racing the approval's deciding vote, through the real ledger adapters on dynalite.
 * Found by the chaos storm (seed 21, rarely): a voter was told "rejected", yet the action ended
 * `cancelled`: the cancel moved the action while the rejection was on its way to the saga.
 * The approval now decides first: the cancel closes it by the same conditional settle a vote
 * makes, and a cancel that loses leaves the approvers' decision standing.
 */

let env: Awaited<ReturnType<typeof startLedger>>;
let approvals: DynamoApprovalStore;
let n = 0;

beforeAll(async () => {
  env = await startLedger();
  approvals = new DynamoApprovalStore({ client: env.dynamo.client, tableName: env.tableName });
});
afterAll(async () => {
  await env.close();
});

function memoryEvents(): EventLog & { types: () => string[] } {
  const log: AuditEvent[] = [];
  const append: EventLog['append'] = async (actionId, event, now = new Date()) => {
    const e = { actionId, seq: log.length + 1, at: now.toISOString(), ...event } as unknown as AuditEvent;
    log.push(e);
    return e;
  };
  return {
    append,
    appendOnce: async (actionId: string, event: Parameters<EventLog['append']>[1], same: (e: AuditEvent) => boolean, now?: Date) => {
      const found = log.find(same);
      return found ? { event: found, appended: false } : { event: await append(actionId, event, now), appended: true };
    },
    list: async (actionId: string) => log.filter((e) => (e as unknown as { actionId: string }).actionId === actionId),
    types: () => log.map((e) => e.type),
  } as unknown as EventLog & { types: () => string[] };
}

/** An action awaiting its approval, as the saga leaves it, and that approval, pending. */
async function awaiting(): Promise<{ action: ActionRecord; approvalId: string }> {
  const id = `act_01J0000000000000000000RC${String(n++).padStart(2, '0')}`;
  const at = new Date().toISOString();
  await env.ledger.createAction({
    id, principal: { sub: 'alice', roles: [] }, actor: { name: 'a' }, envelope: echoCall(), kind: 'single', mode: 'execute',
    planHash: 'h', status: 'received', createdAt: at, updatedAt: at, version: 1,
  });
  const action = await env.ledger.transition(id, 'awaiting_approval');
  const approval: ApprovalRecord = {
    id: approvalIdFor(id), actionId: id, status: 'pending', planHash: 'h', quorum: 1, approverRule: 'manager',
    requester: 'alice', grantees: [], createdAt: at, updatedAt: at, expiresAt: new Date(Date.now() + 3600_000).toISOString(),
  };
  await approvals.createApproval(approval, `token-${id}`);
  return { action, approvalId: approval.id };
}

/**
 * The deps, with `beforeSettle` run once just before the cancel's own settle: the moment a
 * rejecting vote (or an expiry) wins the race after the cancel read the approval pending.
 */
function deps(beforeSettle?: () => Promise<unknown>) {
  const answered: { token: string; error: string }[] = [];
  const events = memoryEvents();
  let hook = beforeSettle;
  const d: CancelDeps = {
    actions: env.ledger,
    approvals: {
      getApproval: (id) => approvals.getApproval(id),
      getTaskToken: (id) => approvals.getTaskToken(id),
      markAnswered: (id, now) => approvals.markAnswered(id, now),
      settle: async (id, to, outcome, now) => {
        const run = hook;
        hook = undefined;
        await run?.();
        return approvals.settle(id, to, outcome, now);
      },
    },
    events,
    callbacks: {
      sendTaskSuccess: async () => {},
      sendTaskFailure: async (token, error) => void answered.push({ token, error }),
    },
    now: () => new Date(),
    logger: { debug() {}, info() {}, warn() {}, error() {} } as unknown as CancelDeps['logger'],
    adminRole: 'KillSwitch',
  };
  return { d, answered, events };
}

const cancel = () => ({ by: 'alice', at: new Date().toISOString(), reason: 'plans changed' });

describe('a cancel racing the approval', () => {
  it('loses to a rejection that settled first: 409 naming the end, the action left to end rejected, the saga not answered by the cancel', async () => {
    const { action, approvalId } = await awaiting();
    const { d, answered } = deps(() => approvals.settle(approvalId, 'rejected', { by: 'bob', reason: 'no' }, new Date()));
    const refused = await requestCancel(d, action, cancel()).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApprovalDecidedError);
    expect(refused).toBeInstanceOf(ActionFinishedError); // the API's 409, and a revoked delegation's sweep skips it
    expect((refused as ApprovalDecidedError).actionStatus).toBe('rejected');
    // Not moved by the cancel: the saga, told of the rejection, ends it rejected.
    expect((await env.ledger.getAction(action.id))?.status).toBe('awaiting_approval');
    expect((await approvals.getApproval(approvalId))?.status).toBe('rejected');
    expect(answered).toEqual([]);
  });

  it('loses to an expiry the same way (ends expired)', async () => {
    const { action, approvalId } = await awaiting();
    const { d } = deps(() => approvals.settle(approvalId, 'expired', { by: 'airlock', reason: 'expired' }, new Date()));
    const refused = await requestCancel(d, action, cancel()).catch((e: unknown) => e);
    expect((refused as ApprovalDecidedError).actionStatus).toBe('expired');
    expect((await env.ledger.getAction(action.id))?.status).toBe('awaiting_approval');
  });

  it('after a granting vote: the cancel is marked and the action stops before its first step (stopping, not cancelled at once)', async () => {
    const { action, approvalId } = await awaiting();
    const { d, answered } = deps(() => approvals.settle(approvalId, 'approved', { by: 'bob', reason: 'quorum reached' }, new Date()));
    const outcome = await requestCancel(d, action, cancel());
    expect(outcome.state).toBe('stopping');
    const stored = await env.ledger.getAction(action.id);
    expect(stored?.status).toBe('awaiting_approval');
    expect(stored?.cancel?.by).toBe('alice');
    expect(answered).toEqual([]);
  });

  it('wins when it settles first: the action ends cancelled at once, the approval is cancelled, the saga answered once', async () => {
    const { action, approvalId } = await awaiting();
    const { d, answered, events } = deps();
    const outcome = await requestCancel(d, action, cancel());
    expect(outcome.state).toBe('cancelled');
    expect((await approvals.getApproval(approvalId))?.status).toBe('cancelled');
    // A vote now loses the settle.
    expect(await approvals.settle(approvalId, 'rejected', { by: 'bob', reason: 'no' }, new Date())).toBe(false);
    expect(answered).toEqual([{ token: `token-${action.id}`, error: 'ActionCancelled' }]);
    expect(events.types()).toEqual(['action.cancelled', 'action.status', 'approval.cancelled']);
  });

  it('two cancels racing: whichever moves the action, the one that closed the approval answers the saga', async () => {
    const { action } = await awaiting();
    const first = deps();
    const second = deps();
    // The second cancel runs to its end between the first's settle and its move.
    let secondOutcome: Awaited<ReturnType<typeof requestCancel>> | undefined;
    const firstActions = { ...env.ledger, getAction: env.ledger.getAction.bind(env.ledger), requestCancel: env.ledger.requestCancel.bind(env.ledger) } as unknown as CancelDeps['actions'];
    firstActions.transition = async (...args: Parameters<CancelDeps['actions']['transition']>) => {
      secondOutcome = await requestCancel(second.d, action, cancel());
      return env.ledger.transition(...args);
    };
    const outcome = await requestCancel({ ...first.d, actions: firstActions }, action, cancel());
    expect(secondOutcome?.state).toBe('cancelled');
    expect(outcome.state).toBe('cancelled');
    expect((await env.ledger.getAction(action.id))?.status).toBe('cancelled');
    expect([...first.answered, ...second.answered]).toEqual([{ token: `token-${action.id}`, error: 'ActionCancelled' }]);
  });
});
