import { parseArgs } from 'node:util';
import { z } from 'zod';
import { haltApi } from './halt';

/** `airlock reconcile`: reconciliation against the vendors, by hand, over the HTTP API (`POST /v1/reconciliations`). */
export const summary = 'Reconcile recent commit steps against the vendors: reconcile [--fix] [--days N] [--json]';

export const usage = `Usage:
  airlock reconcile [--fix] [--days N] [--json]

Asks each reconciled connector's vendor what it holds for the commit steps of the last N UTC
days (2 unless given) and for our credential, compares with the ledger and prints one line per
finding: orphan (live at the vendor, undone or never done in Airlock), compensated_live
(compensated in Airlock, live at the vendor), duplicate, unknown (made outside Airlock). The
report is stored in the audit vault (its key is printed). --fix runs the missing compensation
where that is safe and says, per finding, what it did. Exit code: 0 clean, 3 findings remain
(not fixed), 1 error. Needs the kill-switch role (limits.json killSwitch.role), like halt.

Options:
  --fix              run the missing compensations where safe
  --days <n>         UTC days back to examine, 1-31 (default 2)
  --url <url>        API base URL (default: AIRLOCK_URL, else http://127.0.0.1:8787)
  --token <jwt>      bearer token (default: AIRLOCK_TOKEN)
  --as <sub>         local mode: mint a token for <sub> with the dev issuer (AIRLOCK_HOME)
  --role <role>      with --as: a role claim (repeatable), e.g. --role KillSwitch
  --json             print the API's JSON report instead of a summary
`;

const FixSchema = z.union([z.object({ tool: z.string(), outcome: z.string(), error: z.string().optional() }), z.object({ skipped: z.string() })]);
const ReportSchema = z.object({
  runId: z.string(),
  days: z.array(z.string()),
  fix: z.boolean(),
  checked: z.record(z.string(), z.object({ steps: z.number(), vendorRecords: z.number() })),
  unreachable: z.array(z.object({ connector: z.string(), error: z.string() })),
  findings: z.array(z.object({ kind: z.string(), detail: z.string(), fix: FixSchema.optional() })),
  receiptKey: z.string(),
});
type Report = z.infer<typeof ReportSchema>;

/** The summary `airlock reconcile` prints (without --json). */
export function formatReport(r: Report): string {
  const checked = Object.entries(r.checked)
    .map(([c, n]) => `${c} ${n.steps} steps/${n.vendorRecords} records`)
    .join(', ');
  const lines = [`${r.runId}  ${r.days[0]}..${r.days.at(-1)}  checked: ${checked || 'nothing'}${r.fix ? '  (fix)' : ''}`];
  for (const u of r.unreachable) lines.push(`  unreachable  ${u.connector}: ${u.error}`);
  for (const f of r.findings) {
    const fix = !f.fix ? '' : 'skipped' in f.fix ? `  -> skipped: ${f.fix.skipped}` : `  -> ${f.fix.outcome} with ${f.fix.tool}${f.fix.error ? ` (${f.fix.error})` : ''}`;
    lines.push(`  ${f.kind.padEnd(16)} ${f.detail}${fix}`);
  }
  lines.push(r.findings.length === 0 ? 'No divergence found.' : `${r.findings.length} finding(s).`);
  lines.push(`Report: ${r.receiptKey}`);
  return `${lines.join('\n')}\n`;
}

export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        fix: { type: 'boolean' },
        days: { type: 'string' },
        url: { type: 'string' },
        token: { type: 'string' },
        as: { type: 'string' },
        role: { type: 'string', multiple: true, short: 'r' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    process.stderr.write(`airlock reconcile: ${error instanceof Error ? error.message : 'bad arguments'}\n${usage}`);
    return 2;
  }
  const { values } = parsed;
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  const days = values.days === undefined ? undefined : Number(values.days);
  if (days !== undefined && (!Number.isInteger(days) || days < 1 || days > 31)) {
    process.stderr.write('airlock reconcile: --days takes a whole number from 1 to 31\n');
    return 2;
  }
  try {
    const answer = await haltApi(values, 'POST', '/v1/reconciliations', { ...(values.fix ? { fix: true } : {}), ...(days !== undefined ? { days } : {}) });
    const report = ReportSchema.parse(answer);
    process.stdout.write(values.json ? `${JSON.stringify(answer, null, 2)}\n` : formatReport(report));
    const open = report.findings.filter((f) => !f.fix || !('outcome' in f.fix) || f.fix.outcome !== 'compensated');
    return open.length > 0 ? 3 : 0;
  } catch (error) {
    process.stderr.write(`airlock reconcile: ${error instanceof Error ? error.message : 'failed'}\n`);
    return 1;
  }
}
