import { S3Client } from '@aws-sdk/client-s3';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { S3AuditStore } from '../../lambdas/adapters/aws/s3-audit-store';
import { FileAuditStore } from '../../lambdas/adapters/local/file-audit-store';
import { FileSecrets } from '../../lambdas/adapters/local/file-secrets';
import { createLogger } from '../../lambdas/middleware/powertools';
import { ed25519KeyId } from '../../lambdas/receipts/signing';
import { PublicKeyDocSchema, ReceiptSchema, receiptJsonSchema, type PublicKeyDoc } from '../../lambdas/receipts/schema';
import { renderTimeline } from '../../lambdas/receipts/timeline';
import { AuditSecretNames, writeDigest } from '../../lambdas/receipts/vault';
import { formatDuration, verifyVault, type Finding, type VaultTail } from '../../lambdas/receipts/verify';
import { generateRandomSecret } from '../../local/provision-secrets';
import type { AuditStore } from '../../lambdas/ports/audit-store';
import { resolveStateDir } from '../../local/state-dir';
import { ActionIdPattern } from '../../lambdas/shared/ids';

/** `airlock audit`: verify the vault, show a receipt, write a digest, print the receipt schema. */
export const summary = 'Audit vault: verify [--from --to] [--bucket B | --dir D] | show <actionId> | digest | schema';

const usage = `Usage:
  airlock audit verify [--from <time>] [--to <time>] [--bucket <name> | --dir <path>]
                       [--public-key <file|base64url>]... [--grace 2h] [--json]
                       [--until <time>] [--tolerance <duration>] [--expect-head <sha256>]...
      Checks every digest's signature, the chain between digests, every receipt's SHA-256
      against its digest, and reports modified, missing and unlisted receipts. Exit 1 on
      any finding. --public-key pins the signing keys (a digests/keys/<kid>.json document
      or the raw key); without it the keys published in the vault are trusted.
      Digests carry a heartbeat (hourly in AWS): the vault must reach --until (default
      --to, else now) within one interval plus --tolerance (default a sixth of it), and
      no heartbeat may be missing inside the chain. A vault whose writer stopped cleanly
      may end earlier unless --until is given. --expect-head names a digest (the SHA-256
      the writer logged) that must still be in the vault.
  airlock audit show <actionId> [--bucket <name> | --dir <path>] [--json]
      Prints a receipt as a timeline.
  airlock audit digest [--dir <path>]
      Writes a digest now (local vault).
  airlock audit schema
      Prints the receipt JSON Schema (docs/receipt.schema.json).

--dir defaults to <AIRLOCK_HOME>/audit (AIRLOCK_HOME defaults to ./.airlock).
`;

const TimeArg = z
  .string()
  .refine((s) => !Number.isNaN(Date.parse(s)), 'must be a date or ISO time')
  .transform((s) => new Date(s));
const DurationArg = z
  .string()
  .regex(/^\d+(ms|s|m|h|d)?$/, 'a duration like 90m, 2h or 0')
  .transform((s) => {
    const n = Number.parseInt(s, 10);
    const unit = s.replace(/^\d+/, '') || 'ms';
    return n * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit as 'ms']!;
  });

function fail(message: string): number {
  process.stderr.write(`airlock audit: ${message}\n`);
  return 2;
}

function storeOf(values: { bucket?: string; dir?: string }): AuditStore {
  if (values.bucket) return new S3AuditStore({ bucket: values.bucket, retentionDays: 1, client: new S3Client({}) });
  return new FileAuditStore(values.dir ?? join(resolveStateDir(), 'audit'));
}

async function loadPublicKey(arg: string): Promise<PublicKeyDoc> {
  if (/^[A-Za-z0-9_-]{43}$/.test(arg)) return { kind: 'airlock.digest-key', algorithm: 'Ed25519', keyId: ed25519KeyId(arg), publicKey: arg };
  const doc = PublicKeyDocSchema.parse(JSON.parse(await readFile(arg, 'utf8')) as unknown);
  if (ed25519KeyId(doc.publicKey) !== doc.keyId) throw new Error(`${arg}: the key id is not the key's thumbprint`);
  return doc;
}

const LABELS: Record<Finding['kind'], string> = {
  'modified-receipt': 'MODIFIED',
  'missing-receipt': 'MISSING',
  'unlisted-receipt': 'UNLISTED',
  'malformed-receipt': 'MALFORMED',
  'bad-digest': 'BAD DIGEST',
  'bad-signature': 'BAD SIGNATURE',
  'untrusted-key': 'UNTRUSTED KEY',
  'bad-key': 'BAD KEY',
  'broken-chain': 'BROKEN CHAIN',
  'missing-digest': 'MISSING DIGEST',
  'truncated-tail': 'TRUNCATED',
  'digest-gap': 'GAP',
  'missing-anchor': 'MISSING HEAD',
};

/** One line on where the vault ends and what was required of its end. */
function tailLine(tail: VaultTail): string {
  if (!tail.key) return 'The vault holds no digest yet.';
  const beat = tail.heartbeat;
  const schedule = beat
    ? beat.stopped
      ? `its writer stopped there (it wrote a digest every ${formatDuration(beat.intervalSeconds * 1000)})`
      : `a digest every ${formatDuration(beat.intervalSeconds * 1000)}`
    : beat === null
      ? 'written on demand, no further digest promised'
      : 'a digest from before heartbeats';
  const reach =
    tail.allowedMs === null
      ? 'not checked against a time (give --until to require one)'
      : `checked up to ${tail.until}${tail.untilGiven ? '' : ' (now)'}, allowing ${formatDuration(tail.allowedMs)}`;
  return `Vault ends at ${tail.endsAt} (${tail.key}); ${schedule}; ${reach}.\nHead SHA-256 ${tail.sha256} (keep it: --expect-head checks it is still there).`;
}

async function verify(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      bucket: { type: 'string' },
      dir: { type: 'string' },
      'public-key': { type: 'string', multiple: true },
      grace: { type: 'string' },
      until: { type: 'string' },
      tolerance: { type: 'string' },
      'expect-head': { type: 'string', multiple: true },
      json: { type: 'boolean' },
    },
  });
  if (values.bucket && values.dir) return fail('give --bucket or --dir, not both');
  const from = values.from === undefined ? undefined : TimeArg.safeParse(values.from);
  const to = values.to === undefined ? undefined : TimeArg.safeParse(values.to);
  const until = values.until === undefined ? undefined : TimeArg.safeParse(values.until);
  const grace = values.grace === undefined ? undefined : DurationArg.safeParse(values.grace);
  const tolerance = values.tolerance === undefined ? undefined : DurationArg.safeParse(values.tolerance);
  if (from && !from.success) return fail('--from must be a date or ISO time');
  if (to && !to.success) return fail('--to must be a date or ISO time');
  if (until && !until.success) return fail('--until must be a date or ISO time');
  if (grace && !grace.success) return fail('--grace must be a duration like 90m, 2h or 0');
  if (tolerance && !tolerance.success) return fail('--tolerance must be a duration like 10m, 1h or 0');
  const expectHeads = values['expect-head'] ?? [];
  const badHead = expectHeads.find((h) => !/^[0-9a-fA-F]{64}$/.test(h));
  if (badHead !== undefined) return fail(`--expect-head takes a digest's SHA-256 (64 hex characters), not ${JSON.stringify(badHead.slice(0, 80))}`);
  const publicKeys: PublicKeyDoc[] = [];
  for (const arg of values['public-key'] ?? []) {
    try {
      publicKeys.push(await loadPublicKey(arg));
    } catch (error) {
      return fail(`cannot read public key ${arg}: ${error instanceof Error ? error.message : 'invalid'}`);
    }
  }
  const started = performance.now();
  const report = await verifyVault(storeOf(values), {
    ...(from?.success ? { from: from.data } : {}),
    ...(to?.success ? { to: to.data } : {}),
    ...(until?.success ? { until: until.data } : {}),
    ...(grace?.success ? { graceMs: grace.data } : {}),
    ...(tolerance?.success ? { toleranceMs: tolerance.data } : {}),
    ...(expectHeads.length > 0 ? { expectHeads } : {}),
    publicKeys,
  });
  const ms = Math.round(performance.now() - started);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ ...report, ok: report.findings.length === 0, ms }, null, 2)}\n`);
    return report.findings.length === 0 ? 0 : 1;
  }
  const out: string[] = [];
  out.push(`Checked ${report.digestsChecked} digest(s) and ${report.receiptsChecked} receipt listing(s) in ${ms} ms.`);
  out.push(`Signing keys: ${report.keyIds.join(', ') || 'none'} (${report.pinned ? 'pinned with --public-key' : 'trusted from digests/keys/ in the vault; pin them with --public-key'}).`);
  out.push(tailLine(report.tail));
  if (report.pending.length > 0) out.push(`${report.pending.length} receipt(s) written after the last digest, not yet covered: ${report.pending.slice(0, 5).join(', ')}${report.pending.length > 5 ? ', …' : ''}`);
  if (report.findings.length === 0) out.push('OK: no findings.');
  else {
    out.push(`${report.findings.length} finding(s):`);
    for (const f of report.findings) out.push(`  ${LABELS[f.kind].padEnd(14)} ${f.key}\n  ${' '.repeat(14)} ${f.detail}`);
  }
  (report.findings.length === 0 ? process.stdout : process.stderr).write(`${out.join('\n')}\n`);
  return report.findings.length === 0 ? 0 : 1;
}

/** Finds a receipt by action id: the ULID's day first, then a listing. */
async function findReceipt(store: AuditStore, actionId: string): Promise<Uint8Array | undefined> {
  const ulidTime = decodeUlidTime(actionId.slice(4));
  if (ulidTime !== undefined) {
    for (const offset of [0, -1, 1]) {
      const day = new Date(ulidTime + offset * 86_400_000).toISOString().slice(0, 10);
      const bytes = await store.get(`receipts/dt=${day}/${actionId}.json`);
      if (bytes) return bytes;
    }
  }
  const hit = (await store.list('receipts/')).find((o) => o.key.endsWith(`/${actionId}.json`));
  return hit ? store.get(hit.key) : undefined;
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
function decodeUlidTime(ulid: string): number | undefined {
  let t = 0;
  for (const c of ulid.slice(0, 10)) {
    const v = CROCKFORD.indexOf(c);
    if (v < 0) return undefined;
    t = t * 32 + v;
  }
  return t;
}

async function show(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: { bucket: { type: 'string' }, dir: { type: 'string' }, json: { type: 'boolean' } },
  });
  const actionId = positionals[0];
  if (positionals.length !== 1 || !actionId || !ActionIdPattern.test(actionId)) return fail('give one action id (act_…)');
  const bytes = await findReceipt(storeOf(values), actionId);
  if (!bytes) {
    process.stderr.write(`airlock audit: no receipt for ${actionId}\n`);
    return 1;
  }
  const parsed = ReceiptSchema.safeParse(JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown);
  if (!parsed.success) {
    process.stderr.write(`airlock audit: the receipt of ${actionId} does not match the receipt schema; run audit verify\n`);
    return 1;
  }
  process.stdout.write(values.json ? `${JSON.stringify(parsed.data, null, 2)}\n` : renderTimeline(parsed.data));
  return 0;
}

async function digest(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, strict: true, options: { dir: { type: 'string' } } });
  const stateDir = resolveStateDir();
  const secrets = new FileSecrets(join(stateDir, 'secrets'));
  await secrets.ensureSecret(AuditSecretNames.digestSigningKey, generateRandomSecret);
  const written = await writeDigest({
    store: new FileAuditStore(values.dir ?? join(stateDir, 'audit')),
    secrets,
    logger: createLogger({ level: 'warn' }),
    now: () => new Date(),
    digests: { settleMs: 0, wholeSeconds: false },
  });
  process.stdout.write(
    written ? `${written.key}: ${written.digest.receipts.length} receipt(s), SHA-256 ${written.sha256}\n` : 'No time has passed since the last digest.\n',
  );
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    switch (sub) {
      case 'verify':
        return await verify(rest);
      case 'show':
        return await show(rest);
      case 'digest':
        return await digest(rest);
      case 'schema':
        process.stdout.write(`${JSON.stringify(receiptJsonSchema(), null, 2)}\n`);
        return 0;
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        process.stdout.write(usage);
        return sub === undefined ? 2 : 0;
      default:
        return fail(`unknown subcommand ${sub}\n${usage}`);
    }
  } catch (error) {
    if (error instanceof TypeError && (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) return fail(`${error.message}\n${usage}`);
    throw error;
  }
}
