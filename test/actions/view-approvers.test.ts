import { describe, expect, it } from 'vitest';
import type { ActionRecord, StoredDecision } from '../../lambdas/actions/action';
import { canView } from '../../lambdas/actions/view';
import type { Principal } from '../../lambdas/shared/principal';

const alice: Principal = { sub: 'alice', roles: ['Employee'], manager: 'maria' };
const decision = (approverRule: string | null, outcome: StoredDecision['outcome'] = 'require_approval') =>
  ({ outcome, policyIds: [], reasons: [], quorum: 1, approverRule, policySetVersion: 'v', evaluationMicros: 1, decidedAt: '' }) as StoredDecision;
const action = (d?: StoredDecision) => ({ id: 'act_1', principal: alice, status: 'awaiting_approval', ...(d ? { decision: d } : {}) }) as unknown as ActionRecord;

describe('canView for approvers', () => {
  it('lets the people the approver rule names open the action', () => {
    expect(canView({ sub: 'maria', roles: ['Manager'] }, action(decision('manager')))).toBe(true);
    expect(canView({ sub: 'fiona', roles: ['FinanceAdmin'] }, action(decision('role:FinanceAdmin')))).toBe(true);
    expect(canView({ sub: 'maria', roles: ['FinanceAdmin'] }, action(decision('manager and role:FinanceAdmin')))).toBe(true);
  });

  it('keeps everyone else out', () => {
    expect(canView({ sub: 'bob', roles: ['Employee'] }, action(decision('manager')))).toBe(false);
    expect(canView({ sub: 'maria', roles: ['Manager'] }, action(decision('manager and role:FinanceAdmin')))).toBe(false);
    expect(canView({ sub: 'fiona', roles: ['FinanceAdmin'] }, action(decision('role:FinanceAdmin', 'allow')))).toBe(false);
    expect(canView({ sub: 'fiona', roles: ['FinanceAdmin'] }, action())).toBe(false);
    expect(canView({ sub: 'maria', roles: ['Manager'] }, action(decision('something-unknown')))).toBe(false);
  });
});
