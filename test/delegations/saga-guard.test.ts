import { describe, expect, it } from 'vitest';
import type { ActionRecord } from '../../lambdas/actions/action';
import { DelegationEndedError } from '../../lambdas/delegations/errors';
import type { DelegationSnapshot } from '../../lambdas/delegations/model';
import { guardForwardStep, type SagaGuardrails } from '../../lambdas/guardrails/saga-guard';
import type { Delegation } from '../../lambdas/ports/delegations';
import { toolRegistry } from '../../lambdas/tools/registry';

/**
 * Before each forward step, a delegated action meets its delegation again: revoked or expired
 * (by the injected clock), the step does not begin (DelegationEndedError: compensation
 * follows) and the action's audit chain says why; live, the step goes on.
 */

const NOW = new Date('2031-05-06T07:08:09Z');
const snapshot: DelegationSnapshot = {
  id: 'dlg_01JF0000000000000000000001',
  agent: 'trip-bot',
  principal: 'alice',
  expiresAt: '2031-05-06T08:00:00.000Z',
  rules: { askForCommit: false },
  budget: null,
};
const action = {
  id: 'act_01JF0000000000000000000001',
  principal: { sub: 'alice', roles: [] },
  actor: { name: 'trip-bot' },
  delegation: snapshot,
} as unknown as ActionRecord;

function setup(stored: Partial<Delegation> | undefined, now = NOW) {
  const events: { type: string; actor: string; data: Record<string, unknown> }[] = [];
  const reads: string[] = [];
  const guardrails = {
    halts: { checkRunning: async () => undefined },
    haltStore: {},
    breakers: { check: async () => undefined },
    delegations: {
      getDelegation: async (principal: string, id: string) => {
        reads.push(`${principal}/${id}`);
        return stored ? ({ id, principal, agent: 'trip-bot', status: 'active', expiresAt: snapshot.expiresAt, ...stored } as Delegation) : undefined;
      },
    },
  } as unknown as SagaGuardrails;
  const deps = {
    guardrails,
    tools: toolRegistry,
    now: () => now,
    events: { append: async (_id: string, e: { type: string; actor: string; data: Record<string, unknown> }) => void events.push(e) },
  } as unknown as Parameters<typeof guardForwardStep>[0];
  return { deps, events, reads };
}

const step = { stepId: 'book', connector: 'travel' };

describe('a delegated action before its next step', () => {
  it('goes on while its delegation is live, reading it by its principal and id', async () => {
    const { deps, events, reads } = setup({});
    await guardForwardStep(deps, action, ['travel.book_flight'], step);
    expect(events).toEqual([]);
    expect(reads).toEqual([`alice/${snapshot.id}`]);
  });

  it('stops once the delegation is revoked, naming who revoked it', async () => {
    const { deps, events } = setup({ status: 'revoked', revokedBy: 'alice' });
    await expect(guardForwardStep(deps, action, ['travel.book_flight'], step)).rejects.toThrow(DelegationEndedError);
    expect(events).toEqual([{ type: 'action.stopped', actor: 'alice', data: { cause: 'delegation.revoked', delegationId: snapshot.id, stepId: 'book' } }]);
  });

  it('stops once the delegation has expired by the injected clock, and not a moment before', async () => {
    const before = setup({}, new Date(Date.parse(snapshot.expiresAt) - 1));
    await guardForwardStep(before.deps, action, ['travel.book_flight'], step);
    const at = setup({}, new Date(Date.parse(snapshot.expiresAt)));
    const error = await guardForwardStep(at.deps, action, ['travel.book_flight'], step).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DelegationEndedError);
    expect(error).toMatchObject({ why: 'expired', delegationId: snapshot.id });
    expect(at.events[0]).toMatchObject({ actor: 'airlock', data: { cause: 'delegation.expired' } });
  });

  it('stops as expired once the expiry sweep has ended it, whatever the saga\'s own clock says', async () => {
    const { deps, events } = setup({ status: 'expired', sweptAt: snapshot.expiresAt }, new Date(Date.parse(snapshot.expiresAt) - 60_000));
    await expect(guardForwardStep(deps, action, ['travel.book_flight'], step)).rejects.toMatchObject({ why: 'expired', delegationId: snapshot.id });
    expect(events).toEqual([{ type: 'action.stopped', actor: 'airlock', data: { cause: 'delegation.expired', delegationId: snapshot.id, stepId: 'book' } }]);
  });

  it('stops when the delegation cannot be found at all', async () => {
    const { deps } = setup(undefined);
    await expect(guardForwardStep(deps, action, ['travel.book_flight'], step)).rejects.toMatchObject({ why: 'revoked' });
  });

  it('reads nothing for an action without a delegation', async () => {
    const { deps, reads } = setup({ status: 'revoked' });
    await guardForwardStep(deps, { ...action, delegation: undefined } as unknown as ActionRecord, ['travel.book_flight'], step);
    expect(reads).toEqual([]);
  });
});
