import { Metrics as PowertoolsMetrics, MetricUnit as PtUnit } from '@aws-lambda-powertools/metrics';
import type { MetricDimensions, MetricUnit, Metrics } from '../../ports/metrics';

const UNITS = { Count: PtUnit.Count, Milliseconds: PtUnit.Milliseconds, Seconds: PtUnit.Seconds, None: PtUnit.NoUnit } as const;

/**
 * The metrics port over Powertools Metrics: CloudWatch embedded metric format (EMF) lines on
 * stdout, one namespace, flushed once per invocation (the middlewares call {@link EmfMetrics.flush}
 * after the handler, also when it throws). An EMF document carries one dimension set, so
 * samples are grouped by their dimensions and each group is published as one document.
 */
export class EmfMetrics implements Metrics {
  readonly powertools: PowertoolsMetrics;
  readonly #groups = new Map<string, { dimensions: Record<string, string>; samples: [string, MetricUnit, number][] }>();

  constructor(options: { namespace: string; serviceName: string; powertools?: PowertoolsMetrics }) {
    this.powertools = options.powertools ?? new PowertoolsMetrics({ namespace: options.namespace, serviceName: options.serviceName });
  }

  count(name: string, dimensions: MetricDimensions = {}, value = 1): void {
    this.#add(name, 'Count', value, dimensions);
  }

  observe(name: string, value: number, unit: MetricUnit, dimensions: MetricDimensions = {}): void {
    this.#add(name, unit, value, dimensions);
  }

  #add(name: string, unit: MetricUnit, value: number, dimensions: MetricDimensions): void {
    const key = JSON.stringify(Object.entries(dimensions).sort(([a], [b]) => a.localeCompare(b)));
    let group = this.#groups.get(key);
    if (!group) this.#groups.set(key, (group = { dimensions: { ...dimensions }, samples: [] }));
    group.samples.push([name, unit, value]);
  }

  /** Publishes everything recorded since the last flush; never throws (metrics are best effort). */
  flush(): void {
    const groups = [...this.#groups.values()];
    this.#groups.clear();
    for (const group of groups) {
      try {
        for (const [k, v] of Object.entries(group.dimensions)) this.powertools.addDimension(k, v);
        for (const [name, unit, value] of group.samples) this.powertools.addMetric(name, UNITS[unit], value);
        this.powertools.publishStoredMetrics();
      } catch {
        // A metric never fails the invocation that produced it.
      }
    }
  }
}
