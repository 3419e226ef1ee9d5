import { DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Context } from 'aws-lambda';
import { DynamoApprovalStore } from '../../lambdas/adapters/aws/dynamo-approvals';
import { createApprovalGaugeHandler } from '../../lambdas/observability/handler';
import { boundedMetrics } from '../../lambdas/observability/catalog';
import { measurePendingApprovals } from '../../lambdas/observability/pending-approvals';
import { summarize, latest } from '../../lambdas/observability/stats';
import type { ApprovalRecord } from '../../lambdas/ports/approvals';
import type { MetricSample, Metrics } from '../../lambdas/ports/metrics';
import { approvalIdFor, newActionId } from '../../lambdas/shared/ids';
import { startTestDynamo, type TestDynamo } from '../helpers/dynamo';

/** Records samples as the local recorder does, at the injected clock's time. */
function recorder(now: () => Date): Metrics & { samples: MetricSample[] } {
  const samples: MetricSample[] = [];
  const push = (name: string, value: number, unit: MetricSample['unit'], dimensions: Record<string, string> = {}) =>
    samples.push({ t: now().toISOString(), name, unit, value, dimensions: { ...dimensions } });
  return { samples, count: (name, dims, value = 1) => push(name, value, 'Count', dims), observe: (name, value, unit, dims) => push(name, value, unit, dims) };
}

const HOUR = 3_600_000;
let db: TestDynamo;
/** The 60 approvals the paging test writes (later tests settle the oldest). */
let more: ApprovalRecord[] = [];
let store: DynamoApprovalStore;
/** A fixed base for the ids and times of this file, taken from the clock once. */
const base = Date.now() - 72 * HOUR;

function approval(createdAtMs: number): ApprovalRecord {
  const actionId = newActionId(createdAtMs);
  const at = new Date(createdAtMs).toISOString();
  return {
    id: approvalIdFor(actionId),
    actionId,
    status: 'pending',
    planHash: 'a'.repeat(64),
    quorum: 1,
    approverRule: 'manager',
    requester: 'alice',
    grantees: [],
    createdAt: at,
    updatedAt: at,
    expiresAt: new Date(createdAtMs + 72 * HOUR).toISOString(),
  };
}

beforeAll(async () => {
  db = await startTestDynamo();
  store = new DynamoApprovalStore({ client: db.client, tableName: db.tableName });
});
afterAll(async () => {
  await db?.close();
});

describe('the pending approvals gauge (real SDK against dynalite / DynamoDB Local)', () => {
  it('emits 0 pending and age 0 when nothing waits', async () => {
    const now = () => new Date(base + 80 * HOUR);
    const metrics = recorder(now);
    await expect(measurePendingApprovals({ approvals: store, metrics, now })).resolves.toEqual({ pending: 0, oldestAgeSeconds: 0 });
    expect(metrics.samples.map((s) => [s.name, s.unit, s.value])).toEqual([
      ['ApprovalsPending', 'Count', 0],
      ['ApprovalOldestPendingAge', 'Seconds', 0],
    ]);
  });

  it('counts only pending approvals and measures the oldest from its createdAt on the injected clock', async () => {
    // Ids are ULIDs of the creation time (monotonic: written in time order, as intake does).
    const made = [1, 2, 5, 7, 9].map((h) => approval(base + h * HOUR));
    for (const a of made) expect(await store.createApproval(a, `token-${a.id}`)).toBe('created');
    // The oldest and a middle one are decided: they leave the pending partition.
    const now = () => new Date(base + 30 * HOUR);
    expect(await store.settle(made[0]!.id, 'approved', { by: 'bob', reason: 'quorum reached' }, now())).toBe(true);
    expect(await store.settle(made[2]!.id, 'rejected', { by: 'bob', reason: 'no' }, now())).toBe(true);
    const metrics = recorder(now);
    const gauge = await measurePendingApprovals({ approvals: store, metrics, now });
    // Pending: +2h, +7h, +9h; the oldest is +2h, 28 hours before "now".
    expect(gauge).toEqual({ pending: 3, oldestAgeSeconds: 28 * 3600 });
    expect(metrics.samples.find((s) => s.name === 'ApprovalOldestPendingAge')?.value).toBe(28 * 3600);

    // The clock moves, nothing else does: the age follows the clock.
    const later = () => new Date(base + 31 * HOUR);
    expect(await measurePendingApprovals({ approvals: store, metrics: recorder(later), now: later })).toEqual({ pending: 3, oldestAgeSeconds: 29 * 3600 });

    // Expiring the oldest moves the gauge to the next one.
    expect(await store.settle(made[1]!.id, 'expired', { by: 'airlock', reason: 'expired' }, later())).toBe(true);
    expect(await measurePendingApprovals({ approvals: store, metrics: recorder(later), now: later })).toEqual({ pending: 2, oldestAgeSeconds: (31 - 7) * 3600 });
  });

  it('never reports a negative age when the clock is behind the approval', async () => {
    const early = () => new Date(base);
    const gauge = await measurePendingApprovals({ approvals: store, metrics: recorder(early), now: early });
    expect(gauge.pending).toBe(2);
    expect(gauge.oldestAgeSeconds).toBe(0);
  });

  it('counts many pending approvals', async () => {
    more = Array.from({ length: 60 }, (_, i) => approval(base + 40 * HOUR + i * 1000));
    for (const a of more) await store.createApproval(a, `token-${a.id}`);
    const now = () => new Date(base + 50 * HOUR);
    const gauge = await measurePendingApprovals({ approvals: store, metrics: recorder(now), now });
    expect(gauge.pending).toBe(62);
    expect(gauge.oldestAgeSeconds).toBe((50 - 7) * 3600);
  });

  it('passes the metric catalog (names, units, no dimensions) and the KPI summary shows the latest sample', async () => {
    let t = base + 60 * HOUR;
    const now = () => new Date(t);
    const inner = recorder(now);
    const refused: string[] = [];
    const metrics = boundedMetrics(inner, { tools: [], connectors: [], policies: [] }, (r) => refused.push(`${r.name}: ${r.why}`));
    await measurePendingApprovals({ approvals: store, metrics, now });
    t += 60_000;
    expect(await store.settle(more[0]!.id, 'approved', { by: 'bob', reason: 'quorum reached' }, now())).toBe(true);
    await measurePendingApprovals({ approvals: store, metrics, now });
    expect(refused).toEqual([]);
    const summary = summarize(inner.samples, { since: new Date(base), until: new Date(t) });
    // A gauge's latest value, not the sum of its samples.
    expect(latest(summary, 'ApprovalsPending')).toBe(61);
    expect(summary.rows.find((r) => r.name === 'ApprovalsPending')).toMatchObject({ samples: 2, sum: 123, last: 61, max: 62 });
  });

  it('runs as the scheduled function: parses its task, refuses anything else', async () => {
    const now = () => new Date(base + 70 * HOUR);
    const metrics = recorder(now);
    const handler = createApprovalGaugeHandler(async () => ({ approvals: store, metrics, now }));
    const context = { functionName: 'ApprovalGauge', awsRequestId: 'r1' } as Context;
    const result = (await handler({ task: 'MeasurePendingApprovals' }, context)) as { pending: number };
    expect(result.pending).toBe(61);
    expect(metrics.samples.map((s) => s.name)).toEqual(['ApprovalsPending', 'ApprovalOldestPendingAge']);
    await expect(handler({ task: 'Reconcile' }, context)).rejects.toThrow();
    await expect(handler({ task: 'MeasurePendingApprovals', extra: 1 }, context)).rejects.toThrow();
  });
});

describe('the gauge\'s queries (aws-sdk-client-mock)', () => {
  it('asks only the pending partition of gsi1: a COUNT followed page by page, then the first item ascending', async () => {
    const client = new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    const mock = mockClient(client);
    const oldest = approval(base + HOUR);
    const page2Key = { pk: { S: 'APPROVAL#apr_X' }, sk: { S: 'APPROVAL' }, gsi1pk: { S: 'APPROVALS#pending' }, gsi1sk: { S: 'apr_X' } };
    mock
      .on(QueryCommand, { Select: 'COUNT' })
      .resolvesOnce({ Count: 1000, LastEvaluatedKey: page2Key })
      .resolvesOnce({ Count: 234 })
      .on(QueryCommand, { Limit: 1 })
      .resolves({ Items: [{ pk: { S: `APPROVAL#${oldest.id}` }, sk: { S: 'APPROVAL' }, status: { S: 'pending' }, updatedAt: { S: oldest.updatedAt }, doc: { S: JSON.stringify(oldest) } }] });
    const summary = await new DynamoApprovalStore({ client, tableName: 'ledger' }).summarizePending();
    expect(summary).toEqual({ count: 1234, oldestCreatedAt: oldest.createdAt });
    const calls = mock.commandCalls(QueryCommand).map((c) => c.args[0].input);
    expect(calls).toHaveLength(3);
    for (const input of calls) {
      expect(input).toMatchObject({ TableName: 'ledger', IndexName: 'gsi1', KeyConditionExpression: 'gsi1pk = :p', ExpressionAttributeValues: { ':p': { S: 'APPROVALS#pending' } } });
      // A GSI cannot be read consistently: asking would fail in AWS.
      expect(input.ConsistentRead).toBeUndefined();
    }
    expect(calls[1]!.ExclusiveStartKey).toEqual(page2Key);
    expect(calls[2]).toMatchObject({ ScanIndexForward: true, Limit: 1 });
    mock.restore();
  });
});
