import type { MetricsReader } from '../ports/metrics';
import type { Principal } from '../shared/principal';
import { parseWindow, summarize, type KpiSummary } from './stats';

/**
 * GET /v1/metrics: the KPIs the local runtime recorded, for the people who watch safety
 * (auditors and admins). In AWS the same numbers are on the CloudWatch dashboard.
 */

/** Roles that may read the KPIs. */
export const METRICS_READER_ROLES: readonly string[] = ['Auditor', 'Admin'];

/** The caller holds none of {@link METRICS_READER_ROLES}. */
export class MetricsForbiddenError extends Error {
  constructor() {
    super(`Reading metrics needs one of the roles ${METRICS_READER_ROLES.join(', ')}.`);
    this.name = 'MetricsForbiddenError';
  }
}

/** This deployment keeps no readable recorder (AWS: the numbers are in CloudWatch). */
export class MetricsUnavailableError extends Error {
  constructor() {
    super('This deployment records metrics in CloudWatch: open the Airlock dashboard.');
    this.name = 'MetricsUnavailableError';
  }
}

/** The KPIs over the last `since` (e.g. `1h`), for an auditor or admin. */
export async function readKpis(viewer: Principal, since: string, reader: MetricsReader | undefined, now: Date): Promise<KpiSummary> {
  if (!viewer.roles.some((r) => METRICS_READER_ROLES.includes(r))) throw new MetricsForbiddenError();
  const from = new Date(now.getTime() - parseWindow(since));
  if (!reader) throw new MetricsUnavailableError();
  return summarize(await reader.read(from, now), { since: from, until: now });
}
