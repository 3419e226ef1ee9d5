import { S3Client } from '@aws-sdk/client-s3';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { S3AuditStore } from '../../lambdas/adapters/aws/s3-audit-store';
import { FileAuditStore } from '../../lambdas/adapters/local/file-audit-store';
import { buildSafetyReport, renderSafetyReport } from '../../lambdas/observability/report';
import { parseWindow } from '../../lambdas/observability/stats';
import { PolicyConfigSchema, readPolicyDir } from '../../lambdas/policy/index';
import type { AuditStore } from '../../lambdas/ports/audit-store';
import { toolRegistry } from '../../lambdas/tools/registry';
import { resolveStateDir } from '../../local/state-dir';

/** `airlock report`: the weekly safety report from the audit vault, as Markdown. */
export const summary = 'Safety report from the audit vault (Markdown): report [--since 7d] [--bucket B | --dir D] [--out file]';

const usage = `Usage: airlock report [--since <window>] [--bucket <name> | --dir <path>] [--out <file>]
  Summarises the receipts settled in the window (default 7d): actions by outcome, denials
  by policy, approvals and decision times, compensations, refused votes, spend, and what
  \`audit verify\` finds for the window. --bucket reads the audit vault in AWS (credentials
  from the environment); --dir a local vault (default <AIRLOCK_HOME>/audit).
`;

/** Where the receipts are; the client is injectable so tests can mock S3. */
export function reportStore(values: { bucket?: string | undefined; dir?: string | undefined }, s3: () => S3Client = () => new S3Client({})): AuditStore {
  if (values.bucket) return new S3AuditStore({ bucket: values.bucket, retentionDays: 1, client: s3() });
  return new FileAuditStore(values.dir ?? join(resolveStateDir(), 'audit'));
}

export async function run(argv: string[], options: { s3?: () => S3Client; now?: () => Date } = {}): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { since: { type: 'string' }, bucket: { type: 'string' }, dir: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean' } },
    }));
  } catch (error) {
    process.stderr.write(`airlock report: ${error instanceof Error ? error.message : 'bad arguments'}\n${usage}`);
    return 1;
  }
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  if (values.bucket && values.dir) {
    process.stderr.write('airlock report: give --bucket or --dir, not both\n');
    return 1;
  }
  let windowMs: number;
  try {
    windowMs = parseWindow(values.since ?? '7d');
  } catch (error) {
    process.stderr.write(`airlock report: --since ${error instanceof Error ? error.message : 'is invalid'}\n`);
    return 1;
  }
  const until = (options.now ?? (() => new Date()))();
  const config = PolicyConfigSchema.parse(JSON.parse(readPolicyDir().config));
  const report = await buildSafetyReport(
    { store: reportStore(values, options.s3), tools: toolRegistry, money: { baseCurrency: config.baseCurrency, rates: config.rates } },
    { since: new Date(until.getTime() - windowMs), until },
  );
  const markdown = renderSafetyReport(report);
  if (values.out) await writeFile(values.out, markdown);
  else process.stdout.write(markdown);
  return 0;
}
