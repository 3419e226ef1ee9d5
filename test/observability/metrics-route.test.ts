import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRICS_FILE } from '../../lambdas/adapters/local/file-metrics';
import type { MetricRefusal } from '../../lambdas/observability/catalog';
import { total } from '../../lambdas/observability/stats';
import { startTestControlPlane, travelPlan, type TestControlPlane } from '../helpers/control-plane';
import { isoDay } from '../helpers/dates';

/** GET /v1/metrics and the local recorder over real sagas: the numbers, who may read them, bad windows. */
let cp: TestControlPlane;
const refused: MetricRefusal[] = [];

beforeAll(async () => {
  cp = await startTestControlPlane({ controlPlane: { onMetricRefused: (r) => refused.push(r) } });
});
afterAll(async () => {
  await cp?.close();
});

describe('GET /v1/metrics', () => {
  it('counts what happened, with nothing refused by the catalog and no principal in the file', async () => {
    const alice = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
    const auditor = await cp.token('audrey', { roles: ['Auditor'] });
    cp.cp.vendors.admin.setFaults('travel', { failNext: [{ operation: 'book_flight', count: 1, status: 400 }] });
    const failed = await cp.post(alice, travelPlan({ date: isoDay(21) }), { key: 'm-1' });
    const ok = await cp.post(alice, travelPlan({ date: isoDay(22) }), { key: 'm-2' });
    const replay = await cp.post(alice, travelPlan({ date: isoDay(22) }), { key: 'm-2' });
    const reused = await cp.post(alice, travelPlan({ date: isoDay(23) }), { key: 'm-2' });
    await cp.cp.runner.idle();
    expect([failed.body.status, ok.body.status, replay.headers.get('idempotent-replayed'), reused.status]).toEqual(['compensated', 'completed', 'true', 422]);

    const res = await cp.get(auditor, '/v1/metrics?since=1h');
    expect(res.status).toBe(200);
    const kpis = res.body;
    expect(total(kpis, 'ActionRequested', { kind: 'plan' })).toBe(2);
    expect(total(kpis, 'ActionEnded', { outcome: 'completed' })).toBe(1);
    expect(total(kpis, 'ActionEnded', { outcome: 'compensated' })).toBe(1);
    expect(total(kpis, 'CompensationExecuted', { connector: 'travel' })).toBe(1);
    expect(total(kpis, 'VendorError', { connector: 'travel' })).toBeGreaterThanOrEqual(1);
    expect(total(kpis, 'IdempotentReplay')).toBe(1);
    expect(total(kpis, 'IdempotencyConflict', { kind: 'payload_mismatch' })).toBe(1);
    expect(total(kpis, 'ReceiptWritten')).toBe(2);
    expect(kpis.rows.find((r: { name: string }) => r.name === 'VendorLatency')?.unit).toBe('Milliseconds');
    expect(refused).toEqual([]);

    const file = readFileSync(join(cp.stateDir, METRICS_FILE), 'utf8');
    expect(file).not.toContain('alice');
    expect(file).not.toMatch(/act_[0-9A-Z]{26}/);
  });

  it('is for auditors and admins only: 403 problem for anyone else', async () => {
    const alice = await cp.token('alice', { roles: ['Employee'] });
    const res = await cp.get(alice, '/v1/metrics');
    expect(res.status).toBe(403);
    expect(res.body.type).toBe('urn:airlock:problem:forbidden');
    const admin = await cp.get(await cp.token('root', { roles: ['Admin'] }), '/v1/metrics?since=30m');
    expect(admin.status).toBe(200);
  });

  it('answers any other window with a 400 problem, never a 5xx (fast-check)', async () => {
    const auditor = await cp.token('audrey', { roles: ['Auditor'] });
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 12 }).filter((s) => !/^[1-9]\d{0,5}[smhd]$/.test(s)), async (since) => {
        const res = await cp.get(auditor, `/v1/metrics?since=${encodeURIComponent(since)}`);
        expect(res.status).toBe(400);
        expect(res.body.type).toBe('urn:airlock:problem:validation');
      }),
      { numRuns: 25 },
    );
    for (const bad of ['401d', '0h', '999999d']) expect((await cp.get(auditor, `/v1/metrics?since=${bad}`)).status).toBe(400);
    expect((await cp.get(auditor, '/v1/metrics?window=1h')).status).toBe(400);
  });
});
