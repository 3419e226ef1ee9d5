import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { METRICS_FILE, readMetricsFile } from '../../lambdas/adapters/local/file-metrics';
import { formatKpiTable, parseWindow, summarize } from '../../lambdas/observability/stats';
import { resolveStateDir } from '../../local/state-dir';

/** `airlock stats`: the safety KPIs the local runtime recorded, as a table. */
export const summary = 'Safety KPIs the local runtime recorded: stats [--since 1h] [--dir <AIRLOCK_HOME>] [--json]';

const usage = `Usage: airlock stats [--since <window>] [--dir <path>] [--json]
  Prints the KPIs recorded in <AIRLOCK_HOME>/${METRICS_FILE} over the window (default 1h;
  30m, 24h, 7d …), grouped as the CloudWatch dashboard is. --json prints them as
  GET /v1/metrics answers.
`;

export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { since: { type: 'string' }, dir: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' } } }));
  } catch (error) {
    process.stderr.write(`airlock stats: ${error instanceof Error ? error.message : 'bad arguments'}\n${usage}`);
    return 1;
  }
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  let windowMs: number;
  try {
    windowMs = parseWindow(values.since ?? '1h');
  } catch (error) {
    process.stderr.write(`airlock stats: --since ${error instanceof Error ? error.message : 'is invalid'}\n`);
    return 1;
  }
  const until = new Date();
  const since = new Date(until.getTime() - windowMs);
  const file = join(resolveStateDir(values.dir), METRICS_FILE);
  const kpis = summarize(readMetricsFile(file, since, until), { since, until });
  process.stdout.write(values.json ? `${JSON.stringify(kpis, null, 2)}\n` : `${formatKpiTable(kpis)}\n`);
  return 0;
}
