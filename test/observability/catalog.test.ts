import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { EmfMetrics } from '../../lambdas/adapters/aws/emf-metrics';
import { PROJECT_ROOT } from '../../lib/constructs/airlock-function';
import { SERVICE_NAME } from '../../lambdas/middleware/powertools';
import {
  boundDimensions,
  boundedMetrics,
  METRICS_NAMESPACE,
  METRICS_SERVICE,
  MetricCatalog,
  OTHER,
  vocabularyOf,
  type MetricRefusal,
} from '../../lambdas/observability/catalog';
import { recordDecision } from '../../lambdas/observability/kpis';
import { loadPolicyEngine } from '../../lambdas/policy/index';
import type { MetricDimensions, MetricUnit, Metrics } from '../../lambdas/ports/metrics';
import { readLimitsFile } from '../../lambdas/limits/config';
import { toolRegistry } from '../../lambdas/tools/registry';

/** Every .ts file under lambdas/ (the code that emits metrics). */
function sources(dir = join(PROJECT_ROOT, 'lambdas')): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

const vocabulary = vocabularyOf({ tools: toolRegistry, policies: loadPolicyEngine().policies, limits: readLimitsFile().limits });
const allowed = new Set([
  ...vocabulary.tools,
  ...vocabulary.connectors,
  ...vocabulary.policies,
  ...(vocabulary.rateLimits ?? []),
  ...(vocabulary.spendCaps ?? []),
  'default',
  OTHER,
  ...Object.values(MetricCatalog).flatMap((d) => Object.values(d.dimensions).flatMap((v) => (typeof v === 'string' ? [] : [...v]))),
]);

/** A recorder that keeps what reached it. */
function recorder() {
  const samples: { name: string; value: number; unit: MetricUnit; dimensions: MetricDimensions }[] = [];
  const inner: Metrics = {
    count: (name, dimensions = {}, value = 1) => void samples.push({ name, value, unit: 'Count', dimensions }),
    observe: (name, value, unit, dimensions = {}) => void samples.push({ name, value, unit, dimensions }),
  };
  return { inner, samples };
}

describe('the metric catalog', () => {
  it('lists every metric the code emits: names in count/observe/countKpi calls are catalogued', () => {
    const emitted = new Map<string, string>();
    for (const file of sources()) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/\b(?:count|observe|countKpi)\(\s*(?:[\w.?]+,\s*)?'([A-Z][A-Za-z]+)'/g)) emitted.set(m[1]!, relative(PROJECT_ROOT, file));
    }
    // The scan finds the emitters (not a vacuous pass).
    expect(emitted.size).toBeGreaterThanOrEqual(15);
    for (const [name, file] of emitted) expect(Object.keys(MetricCatalog), `${name} (${file}) is not in the catalog`).toContain(name);
  });

  it('keeps the guardrails’ metric names (issue 15 emits them through the same port)', () => {
    for (const name of ['RateLimitRejected', 'SpendReserved', 'SpendCapRefused', 'BreakerTransition', 'BreakerRejected', 'HaltsActive', 'HaltRefused']) {
      expect(MetricCatalog).toHaveProperty(name);
    }
    expect(Object.keys(MetricCatalog.RateLimitRejected.dimensions)).toEqual(['policy']);
    expect(Object.keys(MetricCatalog.BreakerTransition.dimensions)).toEqual(['connector', 'to']);
  });

  it('uses the service name Powertools puts on every metric', () => {
    expect(METRICS_SERVICE).toBe(SERVICE_NAME);
  });
});

describe('bounded dimensions (fast-check)', () => {
  const principalLike = fc.oneof(
    fc.string({ minLength: 1, maxLength: 40 }),
    fc.emailAddress(),
    fc.constantFrom('alice', 'bob', 'audrey', 'act_01JABCDEFGHJKMNPQRSTVWXYZ0'),
  );
  const amountLike = fc.oneof(fc.double({ noNaN: true }).map(String), fc.integer().map(String), fc.float().map((n) => n.toFixed(2)));

  it('never lets a principal id or an amount become a dimension value, for any metric and key', () => {
    const names = Object.keys(MetricCatalog);
    fc.assert(
      fc.property(fc.constantFrom(...names), fc.dictionary(fc.string({ maxLength: 12 }), fc.oneof(principalLike, amountLike), { maxKeys: 5 }), (name, dims) => {
        const out = boundDimensions(name, dims, vocabulary)!;
        const keys = Object.keys(MetricCatalog[name as keyof typeof MetricCatalog].dimensions);
        for (const [k, v] of Object.entries(out)) {
          expect(keys).toContain(k);
          expect(allowed.has(v), `${name}.${k}=${v}`).toBe(true);
          // Anything that was not a known value came out as `other`.
          if (v !== dims[k]) expect(v).toBe(OTHER);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('maps every value outside the vocabulary to `other` and keeps known ones', () => {
    expect(boundDimensions('PolicyDenied', { policy: 'procurement.denied-vendor' }, vocabulary)).toEqual({ policy: 'procurement.denied-vendor' });
    expect(boundDimensions('PolicyDenied', { policy: 'alice' }, vocabulary)).toEqual({ policy: OTHER });
    expect(boundDimensions('VendorCall', { connector: 'travel', principal: 'alice', amount: '12.50' }, vocabulary)).toEqual({ connector: 'travel' });
    expect(boundDimensions('ActionEnded', { outcome: '2400' }, vocabulary)).toEqual({ outcome: OTHER });
    expect(boundDimensions('NoSuchMetric', {}, vocabulary)).toBeUndefined();
  });

  it('a decision emitter records only policy ids, whatever the principal and amount were', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(principalLike, amountLike), { maxLength: 4 }), (ids) => {
        const { inner, samples } = recorder();
        recordDecision(boundedMetrics(inner, vocabulary), { outcome: 'deny', policyIds: ids }, 'intake');
        for (const s of samples) for (const v of Object.values(s.dimensions)) expect(allowed.has(v), v).toBe(true);
      }),
    );
  });
});

describe('boundedMetrics', () => {
  it('drops unknown names, wrong units and bad values, and tells who asked', () => {
    const { inner, samples } = recorder();
    const refused: MetricRefusal[] = [];
    const m = boundedMetrics(inner, vocabulary, (r) => refused.push(r));
    m.count('NotAMetric');
    m.observe('VendorLatency', 10, 'Seconds', { connector: 'travel' });
    m.count('ActionRequested', { kind: 'single' }, -1);
    m.observe('VendorLatency', Number.NaN, 'Milliseconds', { connector: 'travel' });
    m.observe('VendorLatency', 12, 'Milliseconds', { connector: 'travel' });
    expect(refused.map((r) => r.why)).toEqual(['unknown metric', 'wrong unit', 'bad value', 'bad value']);
    expect(samples).toEqual([{ name: 'VendorLatency', value: 12, unit: 'Milliseconds', dimensions: { connector: 'travel' } }]);
  });

  it('never throws into the caller, even when the adapter does', () => {
    const m = boundedMetrics({ count: () => { throw new Error('disk full'); }, observe: () => { throw new Error('disk full'); } }, vocabulary);
    expect(() => m.count('ReceiptWritten')).not.toThrow();
    expect(() => m.observe('DigestAge', 5, 'Seconds')).not.toThrow();
  });
});

describe('EmfMetrics (Powertools)', () => {
  it('publishes one EMF document per dimension set, in the Airlock namespace, on flush', () => {
    const lines: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      const emf = new EmfMetrics({ namespace: METRICS_NAMESPACE, serviceName: METRICS_SERVICE });
      emf.count('VendorCall', { connector: 'travel' });
      emf.count('VendorCall', { connector: 'travel' });
      emf.observe('VendorLatency', 42, 'Milliseconds', { connector: 'travel' });
      emf.count('ReceiptWritten');
      expect(lines).toEqual([]);
      emf.flush();
      emf.flush();
    } finally {
      write.mockRestore();
    }
    const docs = lines.map((l) => JSON.parse(l) as Record<string, unknown> & { _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] } });
    expect(docs).toHaveLength(2);
    const travel = docs.find((d) => d.connector === 'travel')!;
    expect(travel._aws.CloudWatchMetrics[0]!.Namespace).toBe('Airlock');
    expect(travel._aws.CloudWatchMetrics[0]!.Dimensions[0]!.sort()).toEqual(['connector', 'service']);
    expect(travel.service).toBe('airlock');
    expect(travel.VendorCall).toEqual([1, 1]);
    expect(travel.VendorLatency).toBe(42);
    const plain = docs.find((d) => d.connector === undefined)!;
    expect(plain.ReceiptWritten).toBe(1);
    expect(plain._aws.CloudWatchMetrics[0]!.Dimensions[0]).toEqual(['service']);
  });
});
