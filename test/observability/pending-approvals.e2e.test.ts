import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latest } from '../../lambdas/observability/stats';
import type { MetricRefusal } from '../../lambdas/observability/catalog';
import { approvalIdFor } from '../../lambdas/shared/ids';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';

/** The local runtime samples pending approvals on its timer and GET /v1/metrics shows where the gauge stands. */
let cp: TestControlPlane;
const refused: MetricRefusal[] = [];

beforeAll(async () => {
  cp = await startTestControlPlane({ controlPlane: { approvalGaugeIntervalMs: 100, onMetricRefused: (r) => refused.push(r) } });
});
afterAll(async () => {
  await cp?.close();
});

describe('the pending approvals gauge, locally', () => {
  it('rises while an approval waits and falls once it is decided', async () => {
    const auditor = await cp.token('audrey', { roles: ['Auditor'] });
    const gauge = async (name: string) => latest((await cp.get(auditor, '/v1/metrics?since=1h')).body, name);
    // The sample taken at start: nothing waits.
    await expect.poll(() => gauge('ApprovalsPending'), { timeout: 10_000 }).toBe(0);

    const alice = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
    const grant = { tool: 'iam.grant_role', arguments: { principalId: 'bob', role: 'editor', reason: 'on-call' }, agent: { name: 'ops-bot' } };
    const accepted = await cp.post(alice, grant, { prefer: 'respond-async' });
    expect(accepted.status).toBe(202);
    const actionId = accepted.body.id as string;
    await expect.poll(async () => (await cp.get(alice, `/v1/actions/${actionId}`)).body.status, { timeout: 10_000 }).toBe('awaiting_approval');
    await expect.poll(() => gauge('ApprovalsPending'), { timeout: 10_000 }).toBe(1);
    expect(await gauge('ApprovalOldestPendingAge')).toBeGreaterThanOrEqual(0);

    const carol = await cp.token('carol', { roles: ['SecurityAdmin'] });
    const approvalId = approvalIdFor(actionId);
    const { planHash } = (await cp.get(carol, `/v1/approvals/${approvalId}`)).body as { planHash: string };
    const res = await fetch(`${cp.url}/v1/approvals/${approvalId}/decision`, {
      method: 'POST',
      headers: { authorization: `Bearer ${carol}`, 'content-type': 'application/json' },
      body: JSON.stringify({ decision: 'reject', planHash, comment: 'not now' }),
    });
    expect(res.status).toBe(200);
    await expect.poll(() => gauge('ApprovalsPending'), { timeout: 10_000 }).toBe(0);
    expect(await gauge('ApprovalOldestPendingAge')).toBe(0);
    expect(refused).toEqual([]);
  });
});
