/**
 * Safety KPIs as metrics: CloudWatch EMF through Powertools Metrics in AWS, an in-process
 * recorder locally (so `airlock stats` shows the same numbers). Best effort by contract: a
 * metric that cannot be recorded never fails the request that produced it.
 *
 * Dimensions must be low-cardinality (tool, connector, outcome, policy id, reason code):
 * never principal ids, action ids, amounts or anything a caller chose freely.
 */

/** CloudWatch's units, the ones Airlock uses. */
export type MetricUnit = 'Count' | 'Milliseconds' | 'Seconds' | 'None';

/** Low-cardinality dimension name → value. */
export type MetricDimensions = Readonly<Record<string, string>>;

export interface Metrics {
  /** Adds `value` (1 by default) to the counter `name`. */
  count(name: string, dimensions?: MetricDimensions, value?: number): void;
  /** Records one sample of a distribution (a latency, a time to decision, an age). */
  observe(name: string, value: number, unit: MetricUnit, dimensions?: MetricDimensions): void;
}

/** Records nothing: for tests and for code paths that have no metrics wired yet. */
export const noMetrics: Metrics = {
  count: () => undefined,
  observe: () => undefined,
};

/** One recorded data point, as the local recorder stores it (one JSON line each). */
export interface MetricSample {
  /** When it was recorded (ISO 8601). */
  t: string;
  name: string;
  unit: MetricUnit;
  value: number;
  dimensions: Record<string, string>;
}

/** Reads recorded samples back (the local runtime; in AWS the numbers are in CloudWatch). */
export interface MetricsReader {
  /** Samples recorded in [since, until]. */
  read(since: Date, until: Date): Promise<MetricSample[]>;
}
