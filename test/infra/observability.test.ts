import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../lib/constructs/airlock-function';
import { RUNBOOK_FILE, Runbooks } from '../../lib/constructs/observability';
import { MetricCatalog } from '../../lambdas/observability/catalog';
import { connectors } from '../../lambdas/tools/registry';
import { synthAirlock, TEST_CONFIG_INPUT, type Synthesized } from './support';

/** GitHub's anchor for a heading: lower case, spaces to dashes, punctuation dropped. */
const anchor = (heading: string) => heading.trim().toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-');

const runbook = readFileSync(join(PROJECT_ROOT, RUNBOOK_FILE), 'utf8');
const sections = new Set([...runbook.matchAll(/^## (.+)$/gm)].map((m) => anchor(m[1]!)));

let s: Synthesized;
beforeAll(() => {
  s = synthAirlock({ ...TEST_CONFIG_INPUT, alarms: { email: 'oncall@example.com', approvalPendingHours: 12, vendorErrorRatePercent: 25, api5xxRatePercent: 2 } });
});

const alarms = () => Object.entries(s.template.findResources('AWS::CloudWatch::Alarm')).map(([id, r]) => ({ id, props: r.Properties as Record<string, unknown> }));

describe('alarms', () => {
  it('exist for every failure the runbooks cover, per connector where it is per connector', () => {
    const ids = alarms().map((a) => a.id);
    const expected = [
      'ReceiptFailed',
      'DigestStale',
      'Api5xxRate',
      'ApprovalWaitedTooLong',
      'ApprovalsPendingTooLong',
      'ApprovalExpired',
      'SagaExecutionsFailed',
      'SagaExecutionsTimedOut',
      'LedgerThrottled',
      'HaltEverything',
      ...connectors.flatMap((c) => [`CompensationFailed-${c.name}`, `VendorErrorRate-${c.name}`, `BreakerOpened-${c.name}`]),
      ...connectors.filter((c) => c.reconcile).map((c) => `ReconcileFinding-${c.name}`),
    ];
    for (const name of expected) {
      expect(ids.some((id) => id.startsWith(`Observability${name.replace(/-/g, '')}`)), name).toBe(true);
    }
    expect(ids.length).toBe(expected.length);
  });

  it('each links a runbook section that exists, and notifies the topic on alarm and on recovery', () => {
    const topic = Object.keys(s.template.findResources('AWS::SNS::Topic'));
    expect(topic).toHaveLength(1);
    for (const { id, props } of alarms()) {
      const link = /Runbook: docs\/runbooks\.md#([a-z0-9-]+)$/.exec(String(props.AlarmDescription));
      expect(link, `${id} has no runbook link`).not.toBeNull();
      expect(sections.has(link![1]!), `${id} links #${link![1]}, which docs/runbooks.md lacks`).toBe(true);
      expect(props.AlarmActions).toEqual([{ Ref: topic[0] }]);
      expect(props.OKActions).toEqual([{ Ref: topic[0] }]);
    }
    // And every runbook anchor the construct knows is a section of the file.
    for (const a of Object.values(Runbooks)) expect(sections.has(a), a).toBe(true);
  });

  it('read their metrics exactly as the code emits them: a catalog name with its own dimensions and the service', () => {
    // CloudWatch matches a metric by its full dimension set: an alarm naming a dimension the
    // code never emits (or missing one it does) watches a metric that never exists.
    const catalog = MetricCatalog as Record<string, { dimensions: Record<string, unknown> }>;
    const watched = alarms().flatMap(({ id, props }) => {
      const stats = props.MetricName ? [{ MetricName: props.MetricName, Namespace: props.Namespace, Dimensions: props.Dimensions }] : ((props.Metrics as { MetricStat?: { Metric: Record<string, unknown> } }[] | undefined) ?? []).flatMap((q) => (q.MetricStat ? [q.MetricStat.Metric] : []));
      return stats.filter((m) => m.Namespace === 'Airlock').map((m) => ({ id, name: String(m.MetricName), dims: ((m.Dimensions as { Name: string }[] | undefined) ?? []).map((d) => d.Name).sort() }));
    });
    expect(watched.length).toBeGreaterThan(10);
    for (const { id, name, dims } of watched) {
      expect(catalog[name], `${id} watches ${name}, which no code emits`).toBeDefined();
      expect(dims, `${id} watches ${name} by ${dims.join(',')}`).toEqual(['service', ...Object.keys(catalog[name]!.dimensions)].sort());
    }
  });

  it('page on the first compensation failure and on a stale digest (missing data breaches)', () => {
    const byId = (prefix: string) => alarms().find((a) => a.id.startsWith(`Observability${prefix}`))!.props;
    expect(byId('CompensationFailedtravel')).toMatchObject({
      MetricName: 'CompensationFailed',
      Namespace: 'Airlock',
      Dimensions: [
        { Name: 'connector', Value: 'travel' },
        { Name: 'service', Value: 'airlock' },
      ],
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'DigestWritten',
      Period: 7200,
      ComparisonOperator: 'LessThanThreshold',
      TreatMissingData: 'breaching',
    });
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApprovalTimeToDecision',
      Statistic: 'Maximum',
      Threshold: 12 * 3600,
    });
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmDescription: Match.stringLikeRegexp('More than 25% of travel vendor calls'), Threshold: 25 });
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmDescription: Match.stringLikeRegexp('More than 2% of API requests'), Threshold: 2 });
  });

  it('go to one KMS-encrypted topic that refuses plain HTTP, with the configured email subscribed', () => {
    s.template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    s.template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
    s.template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'oncall@example.com' });
    s.template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  });

  it('subscribe nobody when no email is configured', () => {
    const plain = synthAirlock();
    plain.template.resourceCountIs('AWS::SNS::Subscription', 0);
  });
});

describe('the runbooks\' metric table', () => {
  it('lists every metric of the catalog with exactly the dimensions the code emits', () => {
    const rows = new Map([...runbook.matchAll(/^\| `(\w+)` \| \w+ \| ([^|]*) \|/gm)].map((m) => [m[1]!, [...m[2]!.replace(/\([^)]*\)/g, '').matchAll(/`(\w+)`/g)].map((d) => d[1]!).sort()]));
    for (const [name, def] of Object.entries(MetricCatalog as Record<string, { dimensions: Record<string, unknown> }>)) {
      expect(rows.get(name), `docs/runbooks.md has no row for ${name}`).toBeDefined();
      expect(rows.get(name), name).toEqual(Object.keys(def.dimensions).sort());
    }
    for (const name of rows.keys()) expect(Object.keys(MetricCatalog), `${name} is in the table, not in the catalog`).toContain(name);
  });
});

describe('dashboard', () => {
  const body = () => {
    const [dash] = Object.values(s.template.findResources('AWS::CloudWatch::Dashboard'));
    return JSON.stringify(dash!.Properties.DashboardBody);
  };

  it('groups the KPIs: agent traffic, safety outcomes, approvals, vendors, audit, guardrails', () => {
    const text = body();
    const headers = ['Agent traffic', 'Safety outcomes', 'Approvals', 'Vendors', 'Audit', 'Guardrails'].map((h) => text.indexOf(`## ${h}`));
    expect(headers.every((i) => i >= 0)).toBe(true);
    expect([...headers].sort((a, b) => a - b)).toEqual(headers);
  });

  it('graphs each metric by exactly the dimensions the code emits (the service among them)', () => {
    const [dash] = Object.values(s.template.findResources('AWS::CloudWatch::Dashboard'));
    const join = dash!.Properties.DashboardBody['Fn::Join'] as [string, unknown[]];
    const parsed = JSON.parse(join[1].map((p) => (typeof p === 'string' ? p : 'token')).join('')) as { widgets: { properties?: { metrics?: unknown[][] } }[] };
    const catalog = MetricCatalog as Record<string, { dimensions: Record<string, unknown> }>;
    const lines = parsed.widgets.flatMap((w) => w.properties?.metrics ?? []).filter((line) => line[0] === 'Airlock');
    expect(lines.length).toBeGreaterThan(20);
    for (const line of lines) {
      const [, name, ...rest] = line as string[];
      const keys = rest.filter((_, i) => i % 2 === 0 && typeof rest[i] === 'string' && i + 1 < rest.length && typeof rest[i + 1] === 'string').sort();
      expect(catalog[name!], `the dashboard graphs ${name}, which no code emits`).toBeDefined();
      expect(keys, `${name} by ${keys.join(',')}`).toEqual(['service', ...Object.keys(catalog[name!]!.dimensions)].sort());
    }
  });

  it('shows every metric of the catalog', () => {
    const text = body();
    for (const name of Object.keys(MetricCatalog)) expect(text, name).toContain(name);
  });
});
