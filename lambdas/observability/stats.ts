import * as z from 'zod';
import type { MetricSample } from '../ports/metrics';
import { definitionOf, isMetricName, MetricGroups, type MetricGroup } from './catalog';

/**
 * The KPIs over a time window, from recorded samples: what `airlock stats`, `GET /v1/metrics`
 * and the demo's closing table show. One row per metric and dimension set.
 */

/** A time window the caller wrote (`30m`, `1h`, `7d`) is not one we read. */
export class WindowInvalidError extends Error {
  constructor(readonly window: string) {
    super(`"${window.slice(0, 20)}" is not a window: use a number and a unit, s, m, h or d (30m, 1h, 7d), at most 400d`);
    this.name = 'WindowInvalidError';
  }
}

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const MAX_WINDOW_MS = 400 * 86_400_000;

/** `1h` → 3 600 000. Throws {@link WindowInvalidError} for anything else. */
export function parseWindow(window: string): number {
  const m = /^([1-9]\d{0,5})([smhd])$/.exec(window);
  const ms = m ? Number(m[1]) * UNIT_MS[m[2]!]! : NaN;
  if (!Number.isFinite(ms) || ms > MAX_WINDOW_MS) throw new WindowInvalidError(window);
  return ms;
}

/** One recorded line, checked: the file is ours, but a torn or edited line must not break the table. */
const SampleSchema = z
  .object({
    t: z.string().datetime(),
    name: z.string().min(1).max(255),
    unit: z.enum(['Count', 'Milliseconds', 'Seconds', 'None']),
    value: z.number().finite(),
    dimensions: z.record(z.string(), z.string().max(255)),
  })
  .strict();

/** Parses one JSON line of the recorder's file; undefined for anything that is not a sample. */
export function parseSampleLine(line: string): MetricSample | undefined {
  if (line.trim() === '') return undefined;
  try {
    const parsed = SampleSchema.safeParse(JSON.parse(line));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** One metric and dimension set over the window. */
export interface KpiRow {
  name: string;
  group: MetricGroup;
  unit: string;
  dimensions: Record<string, string>;
  /** Data points. */
  samples: number;
  sum: number;
  min: number;
  max: number;
  avg: number;
  /** The newest sample's value: what a gauge (pending approvals, halts in force) stands at. */
  last: number;
  /** When the newest sample was recorded. */
  lastAt: string;
}

export interface KpiSummary {
  since: string;
  until: string;
  rows: KpiRow[];
}

const dimsKey = (d: Record<string, string>) =>
  Object.keys(d)
    .sort()
    .map((k) => `${k}=${d[k]}`)
    .join(',');

/** Aggregates the samples in [since, until] (names outside the catalog are skipped). */
export function summarize(samples: Iterable<MetricSample>, window: { since: Date; until: Date }): KpiSummary {
  const from = window.since.getTime();
  const to = window.until.getTime();
  const rows = new Map<string, KpiRow>();
  for (const s of samples) {
    const at = Date.parse(s.t);
    if (!(at >= from && at <= to) || !isMetricName(s.name)) continue;
    const key = `${s.name}|${dimsKey(s.dimensions)}`;
    const row = rows.get(key);
    if (!row) {
      const def = definitionOf(s.name);
      rows.set(key, { name: s.name, group: def.group, unit: def.unit, dimensions: { ...s.dimensions }, samples: 1, sum: s.value, min: s.value, max: s.value, avg: s.value, last: s.value, lastAt: s.t });
    } else {
      // Samples of two writers interleave in the file: the newest by its time, the first on a tie.
      if (at > Date.parse(row.lastAt)) {
        row.last = s.value;
        row.lastAt = s.t;
      }
      row.samples += 1;
      row.sum += s.value;
      row.min = Math.min(row.min, s.value);
      row.max = Math.max(row.max, s.value);
      row.avg = row.sum / row.samples;
    }
  }
  const order = (g: MetricGroup) => MetricGroups.indexOf(g);
  const sorted = [...rows.values()].sort(
    (a, b) => order(a.group) - order(b.group) || a.name.localeCompare(b.name) || dimsKey(a.dimensions).localeCompare(dimsKey(b.dimensions)),
  );
  return { since: window.since.toISOString(), until: window.until.toISOString(), rows: sorted };
}

/** The latest value of a gauge (undefined when it was not sampled in the window). */
export function latest(summary: KpiSummary, name: string): number | undefined {
  const rows = summary.rows.filter((r) => r.name === name);
  if (rows.length === 0) return undefined;
  return rows.reduce((a, b) => (Date.parse(b.lastAt) > Date.parse(a.lastAt) ? b : a)).last;
}

/** The total of a counter over every dimension set (0 when it was not recorded). */
export function total(summary: KpiSummary, name: string, where: Record<string, string> = {}): number {
  return summary.rows
    .filter((r) => r.name === name && Object.entries(where).every(([k, v]) => r.dimensions[k] === v))
    .reduce((sum, r) => sum + r.sum, 0);
}

const round = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(1));

/** The summary as a fixed-width table, grouped as the dashboard is. */
export function formatKpiTable(summary: KpiSummary): string {
  const lines = [`KPIs from ${summary.since} to ${summary.until}`];
  if (summary.rows.length === 0) return [...lines, '  (no metrics recorded in this window)'].join('\n');
  const cells = summary.rows.map((r) => {
    const dims = Object.entries(r.dimensions)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    const gauge = isMetricName(r.name) && definitionOf(r.name).gauge === true;
    const value = gauge ? `now ${round(r.last)} max ${round(r.max)}` : r.unit === 'Count' ? round(r.sum) : `avg ${round(r.avg)} max ${round(r.max)} (${r.samples})`;
    const unit = r.unit === 'Count' ? '' : r.unit === 'Milliseconds' ? ' ms' : r.unit === 'Seconds' ? ' s' : '';
    return { group: r.group, metric: r.name, dims, value: `${value}${unit}` };
  });
  const w = {
    metric: Math.max(6, ...cells.map((c) => c.metric.length)),
    dims: Math.max(10, ...cells.map((c) => c.dims.length)),
  };
  let group: string | undefined;
  for (const c of cells) {
    if (c.group !== group) {
      group = c.group;
      lines.push('', `  ${group}`);
    }
    lines.push(`    ${c.metric.padEnd(w.metric)}  ${c.dims.padEnd(w.dims)}  ${c.value}`);
  }
  return lines.join('\n');
}
