import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MetricDimensions, MetricSample, MetricUnit, Metrics, MetricsReader } from '../../ports/metrics';
import { parseSampleLine } from '../../observability/stats';

/**
 * The local metrics recorder: every sample as one JSON line in `<AIRLOCK_HOME>/metrics.jsonl`
 * (mode 0600), so `airlock stats` and `GET /v1/metrics` read the numbers the runtime
 * recorded, also after it stopped. Samples are buffered and appended in batches (a timer and
 * {@link FileMetrics.flush}), so recording costs no file I/O on the request path.
 */

/** File name under the state directory. */
export const METRICS_FILE = 'metrics.jsonl';

export class FileMetrics implements Metrics, MetricsReader {
  readonly path: string;
  #buffer: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #now: () => Date;
  readonly #flushMs: number;

  constructor(stateDir: string, options: { now?: () => Date; flushMs?: number } = {}) {
    this.path = join(stateDir, METRICS_FILE);
    this.#now = options.now ?? (() => new Date());
    this.#flushMs = options.flushMs ?? 500;
  }

  count(name: string, dimensions: MetricDimensions = {}, value = 1): void {
    this.#record(name, value, 'Count', dimensions);
  }

  observe(name: string, value: number, unit: MetricUnit, dimensions: MetricDimensions = {}): void {
    this.#record(name, value, unit, dimensions);
  }

  #record(name: string, value: number, unit: MetricUnit, dimensions: MetricDimensions): void {
    const sample: MetricSample = { t: this.#now().toISOString(), name, unit, value, dimensions: { ...dimensions } };
    this.#buffer.push(JSON.stringify(sample));
    if (!this.#timer) {
      this.#timer = setTimeout(() => this.flush(), this.#flushMs);
      this.#timer.unref();
    }
  }

  /** Appends what is buffered (one write: O_APPEND keeps the lines of two writers whole). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#buffer.length === 0) return;
    const lines = this.#buffer.join('\n') + '\n';
    this.#buffer = [];
    try {
      appendFileSync(this.path, lines, { mode: 0o600 });
    } catch {
      // Best effort by contract: a lost batch of samples never fails the runtime.
    }
  }

  async read(since: Date, until: Date): Promise<MetricSample[]> {
    this.flush();
    return readMetricsFile(this.path, since, until);
  }
}

/** Samples in [since, until] from a recorder's file (none when it does not exist). */
export function readMetricsFile(path: string, since: Date, until: Date): MetricSample[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  const from = since.getTime();
  const to = until.getTime();
  const out: MetricSample[] = [];
  for (const line of text.split('\n')) {
    const sample = parseSampleLine(line);
    if (!sample) continue;
    const at = Date.parse(sample.t);
    if (at >= from && at <= to) out.push(sample);
  }
  return out;
}
