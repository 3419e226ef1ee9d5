import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, unlink, utimes, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { run as audit } from '../../bin/commands/audit';
import { createLogger } from '../../lambdas/middleware/powertools';
import { DigestSchema, type Digest } from '../../lambdas/receipts/schema';
import { digestSignerFromSecret } from '../../lambdas/receipts/signing';
import { writeDigest, type DigestOptions } from '../../lambdas/receipts/vault';
import { defaultToleranceMs, formatDuration, verifyVault, type VerifyOptions } from '../../lambdas/receipts/verify';
import { receiptsDeps } from '../../lambdas/composition/aws';
import { AUDIT_DIGEST_INTERVAL_ENV, DIGEST_INTERVAL } from '../../lib/constructs/audit-vault';
import { MemoryAuditStore } from '../helpers/memory-audit-store';
import { SIGNING_SECRET, syntheticReceipt } from '../helpers/receipts';

/**
 * Tail truncation: a vault cut back by its newest digests (and the receipts they list) must
 * not verify. Digests carry a heartbeat; the verifier holds the vault's end against --until
 * (default now), finds heartbeats missing inside the chain, and checks anchors kept outside.
 * Every time here comes from an injected clock.
 */

const signer = digestSignerFromSecret(SIGNING_SECRET);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const HOUR = 3_600_000;
const MIN = 60_000;
const T0 = Date.parse('2026-03-01T00:00:00.000Z');
/** The AWS writer's settings: hourly, 1-minute settle margin, whole seconds. */
const AWS_DIGESTS: DigestOptions = { settleMs: MIN, wholeSeconds: true, intervalSeconds: 3600, lookbackDays: 4 };

interface Vault {
  store: MemoryAuditStore;
  /** Digests oldest first, with the receipts each lists and the SHA-256 of its bytes. */
  digests: { key: string; digest: Digest; sha256: string }[];
  /** When the writer last ran. */
  lastRun: number;
  clock: { t: number };
  write(options?: Parameters<typeof writeDigest>[2], digests?: DigestOptions): Promise<{ key: string; digest: Digest; sha256: string } | undefined>;
}

/**
 * An hourly vault over `hours` hours: in each busy hour a few receipts half an hour before
 * the digest; idle hours get an empty digest all the same (the heartbeat).
 */
async function hourlyVault(hours: number, busy: (hour: number) => number = (h) => (h % 3 === 0 ? 0 : 2)): Promise<Vault> {
  const clock = { t: T0 };
  const store = new MemoryAuditStore(() => new Date(clock.t));
  const digests: Vault['digests'] = [];
  const write: Vault['write'] = async (options, settings = AWS_DIGESTS) => {
    const deps = { store, secrets: { getSecret: async () => SIGNING_SECRET }, logger: createLogger({ level: 'silent' }), now: () => new Date(clock.t), digests: settings };
    const written = await writeDigest(deps, signer, options);
    if (written) digests.push(written);
    return written;
  };
  let n = 0;
  for (let h = 1; h <= hours; h++) {
    for (let i = 0; i < busy(h); i++) {
      clock.t = T0 + (h - 1) * HOUR + 30 * MIN + i * 1000;
      const r = syntheticReceipt(++n, new Date(clock.t - 5 * MIN));
      await store.putIfAbsent(r.key, r.bytes, sha(r.bytes));
    }
    clock.t = T0 + h * HOUR;
    await write();
  }
  return { store, digests, lastRun: clock.t, clock, write };
}

/** What an attacker with delete rights does: the newest `count` digests go, with every receipt they list. */
function cutTail(vault: Vault, count: number): string[] {
  const gone = vault.digests.splice(vault.digests.length - count, count).flatMap(({ key, digest }) => [key, ...digest.receipts.map((r) => r.key)]);
  for (const key of gone) vault.store.objects.delete(key);
  return gone;
}

const kinds = async (vault: Vault, options: VerifyOptions) => (await verifyVault(vault.store, { publicKeys: [signer.publicKey], ...options })).findings.map((f) => [f.kind, f.key]);
const TOLERANCE = defaultToleranceMs(HOUR);

describe('heartbeat digests', () => {
  it('are written every hour, empty when nothing happened, each declaring the schedule', async () => {
    const vault = await hourlyVault(9);
    expect(vault.digests).toHaveLength(9);
    const idle = vault.digests.filter((d) => d.digest.receipts.length === 0);
    expect(idle.map((d) => d.digest.endTime)).toEqual(['2026-03-01T02:59:00.000Z', '2026-03-01T05:59:00.000Z', '2026-03-01T08:59:00.000Z']);
    for (const { digest } of vault.digests) expect(digest.heartbeat).toEqual({ intervalSeconds: 3600 });
    expect(TOLERANCE).toBe(10 * MIN);
  });

  it('the AWS writer declares the schedule the stack gives it', async () => {
    vi.stubEnv('LEDGER_TABLE', 'ledger');
    vi.stubEnv('AUDIT_BUCKET', 'vault-bucket');
    vi.stubEnv('AUDIT_RETENTION_DAYS', '400');
    vi.stubEnv(AUDIT_DIGEST_INTERVAL_ENV, String(DIGEST_INTERVAL.toSeconds()));
    try {
      expect((await receiptsDeps()).deps.digests).toEqual({ lookbackDays: 4, settleMs: 60_000, wholeSeconds: true, intervalSeconds: 3600 });
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('a healthy vault verifies clean now (mid-hour) and with --until', async () => {
    const vault = await hourlyVault(9);
    const report = await verifyVault(vault.store, { now: new Date(vault.lastRun + 50 * MIN), publicKeys: [signer.publicKey] });
    expect(report.findings).toEqual([]);
    expect(report.tail).toMatchObject({
      key: vault.digests.at(-1)!.key,
      sha256: vault.digests.at(-1)!.sha256,
      endsAt: '2026-03-01T08:59:00.000Z',
      untilGiven: false,
      allowedMs: HOUR + TOLERANCE,
    });
    expect(await kinds(vault, { until: new Date(vault.lastRun + 10 * MIN) })).toEqual([]);
  });

  it('a long idle stretch still verifies: the empty digests are its heartbeat', async () => {
    const vault = await hourlyVault(30, (h) => (h < 3 ? 2 : 0));
    expect(vault.digests.slice(2).every((d) => d.digest.receipts.length === 0)).toBe(true);
    expect(await kinds(vault, { now: new Date(vault.lastRun + 30 * MIN) })).toEqual([]);
  });
});

describe('a vault cut back at its tail', () => {
  it.each([1, 2, 5])('the last %i digest(s) and their receipts deleted: TRUNCATED', async (count) => {
    const vault = await hourlyVault(9);
    cutTail(vault, count);
    const now = new Date(vault.lastRun + 30 * MIN);
    const report = await verifyVault(vault.store, { now, publicKeys: [signer.publicKey] });
    const newest = vault.digests.at(-1)!;
    expect(report.findings).toEqual([{ kind: 'truncated-tail', key: newest.key, detail: expect.any(String) }]);
    // Everything hangs off the newest digest that is left: it promised another within the hour.
    expect(report.findings[0]!.detail).toBe(
      `the vault ends at ${newest.digest.endTime}, but its writer promised a digest every 1 h: nothing covers the ${formatDuration(report.tail.behindMs)} up to ${now.toISOString()} (now), more than the 1 h 10 min allowed`,
    );
    expect(report.tail.behindMs).toBe(count * HOUR + 30 * MIN + MIN);
  });

  it('every digest deleted (the published key stays): TRUNCATED, the vault holds no digest', async () => {
    const vault = await hourlyVault(9);
    cutTail(vault, 9);
    expect(await kinds(vault, { now: new Date(vault.lastRun + 30 * MIN) })).toEqual([['truncated-tail', 'digests/']]);
  });

  it('(property) any number of newest digests cut, verified later than the tolerance after the first one cut: always TRUNCATED', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 3, max: 12 }), fc.nat(), fc.integer({ min: TOLERANCE + 1000, max: 5 * HOUR }), async (hours, which, after) => {
        const vault = await hourlyVault(hours);
        const count = 1 + (which % hours);
        const firstCutRun = T0 + (hours - count + 1) * HOUR;
        cutTail(vault, count);
        const found = await kinds(vault, { now: new Date(Math.max(vault.lastRun, firstCutRun + after)) });
        expect(found).toEqual([['truncated-tail', vault.digests.at(-1)?.key ?? 'digests/']]);
      }),
      { numRuns: 40 },
    );
  });

  it('the last digest cut within the tolerance of its run is caught by the head kept outside the vault (--expect-head)', async () => {
    const vault = await hourlyVault(6);
    const anchor = vault.digests.at(-1)!.sha256;
    cutTail(vault, 1);
    const now = new Date(vault.lastRun + 5 * MIN);
    // By the clock alone this looks like a vault whose next digest is not due yet.
    expect(await kinds(vault, { now })).toEqual([]);
    expect(await kinds(vault, { now, expectHeads: [anchor] })).toEqual([['missing-anchor', anchor]]);
  });

  it('an anchor recorded earlier still verifies once the vault has grown past it', async () => {
    const vault = await hourlyVault(4);
    const anchor = vault.digests.at(-2)!.sha256;
    expect(await kinds(vault, { now: new Date(vault.lastRun + MIN), expectHeads: [anchor.toUpperCase()] })).toEqual([]);
  });

  it('--until beyond the end is a finding; --to sets it when --until is not given', async () => {
    const vault = await hourlyVault(6);
    const newest = vault.digests.at(-1)!.key;
    expect(await kinds(vault, { now: new Date(vault.lastRun), until: new Date(vault.lastRun + 3 * HOUR) })).toEqual([['truncated-tail', newest]]);
    expect(await kinds(vault, { now: new Date(vault.lastRun), to: new Date(vault.lastRun + 3 * HOUR) })).toEqual([['truncated-tail', newest]]);
    expect(await kinds(vault, { now: new Date(vault.lastRun + 3 * HOUR), to: new Date(vault.lastRun - 2 * HOUR) })).toEqual([]);
  });
});

describe('a writer that resumes after its tail was cut', () => {
  it('leaves a GAP: the heartbeat the remaining digest promised never came', async () => {
    const vault = await hourlyVault(8);
    cutTail(vault, 3);
    // The writer's next hourly run chains onto what is left.
    vault.clock.t = vault.lastRun + HOUR;
    const resumed = (await vault.write())!;
    expect(resumed.digest.previous?.key).toBe(vault.digests.at(-2)!.key);
    const found = await verifyVault(vault.store, { now: new Date(vault.clock.t + MIN), publicKeys: [signer.publicKey] });
    expect(found.findings.map((f) => [f.kind, f.key])).toEqual([['digest-gap', resumed.key]]);
    expect(found.findings[0]!.detail).toMatch(/^no digest for 4 h between 2026-03-01T04:59:00.000Z and 2026-03-01T08:59:00.000Z, although .* promised one every 1 h \(tolerance 10 min\)/);
  });

  it('a writer that wrote the head itself and was only paused says so, and nothing is reported', async () => {
    const vault = await hourlyVault(3);
    const head = vault.digests.at(-1)!.key;
    vault.clock.t = vault.lastRun + 5 * HOUR;
    const late = (await vault.write({ lastWritten: head }))!;
    expect(late.digest.heartbeat).toEqual({ intervalSeconds: 3600, paused: true });
    expect(await kinds(vault, { now: new Date(vault.clock.t + MIN) })).toEqual([]);
  });

  it('a writer whose last digest is gone raises an alarm and vouches for nothing', async () => {
    const vault = await hourlyVault(5);
    const mine = vault.digests.at(-1)!.key;
    cutTail(vault, 2);
    vault.clock.t = vault.lastRun + HOUR;
    const lines: string[] = [];
    const deps = { store: vault.store, secrets: { getSecret: async () => SIGNING_SECRET }, logger: createLogger({ level: 'info', sink: (l) => lines.push(l) }), now: () => new Date(vault.clock.t), digests: AWS_DIGESTS };
    const written = (await writeDigest(deps, signer, { lastWritten: mine }))!;
    expect(written.digest.heartbeat).toEqual({ intervalSeconds: 3600 });
    expect(lines.some((l) => l.includes('ALARM') && l.includes(mine))).toBe(true);
    expect((await kinds(vault, { now: new Date(vault.clock.t) })).map(([k]) => k)).toEqual(['digest-gap']);
  });
});

describe('a vault whose writer stopped', () => {
  const LOCAL: DigestOptions = { settleMs: 0, wholeSeconds: false, intervalSeconds: 60 };

  async function stoppedVault() {
    const vault = await hourlyVault(0);
    for (let m = 1; m <= 5; m++) {
      vault.clock.t = T0 + m * MIN;
      await vault.write({}, LOCAL);
    }
    vault.clock.t += 20_000;
    const closing = (await vault.write({ closing: true }, LOCAL))!;
    return { vault, closing, stoppedAt: vault.clock.t };
  }

  it('ends with a closing digest and verifies days later without --until', async () => {
    const { vault, closing, stoppedAt } = await stoppedVault();
    expect(closing.digest.heartbeat).toEqual({ intervalSeconds: 60, stopped: true });
    const report = await verifyVault(vault.store, { now: new Date(stoppedAt + 3 * 24 * HOUR) });
    expect(report.findings).toEqual([]);
    expect(report.tail).toMatchObject({ key: closing.key, allowedMs: null, untilGiven: false });
  });

  it('with --until past the stop it is TRUNCATED; at the stop it is clean', async () => {
    const { vault, closing, stoppedAt } = await stoppedVault();
    const late = await verifyVault(vault.store, { until: new Date(stoppedAt + HOUR) });
    expect(late.findings).toEqual([
      {
        kind: 'truncated-tail',
        key: closing.key,
        detail: `the vault ends at ${closing.digest.endTime}, where its writer stopped: nothing covers the 1 h up to ${new Date(stoppedAt + HOUR).toISOString()}, more than the 10 s allowed`,
      },
    ]);
    expect(await kinds(vault, { until: new Date(stoppedAt + 5_000) })).toEqual([]);
  });

  it('a restart after a clean stop is no gap; cutting the vault back to that stop needs --until or --expect-head', async () => {
    const { vault, stoppedAt } = await stoppedVault();
    const restart = stoppedAt + 2 * HOUR;
    for (let m = 1; m <= 3; m++) {
      vault.clock.t = restart + m * MIN;
      await vault.write({}, LOCAL);
    }
    expect(await kinds(vault, { now: new Date(vault.clock.t + 30_000) })).toEqual([]);
    const anchor = vault.digests.at(-1)!.sha256;
    cutTail(vault, 3);
    const now = new Date(restart + 10 * MIN);
    expect(await kinds(vault, { now })).toEqual([]); // the documented limit
    expect((await kinds(vault, { now, until: now })).map(([k]) => k)).toEqual(['truncated-tail']);
    expect(await kinds(vault, { now, expectHeads: [anchor] })).toEqual([['missing-anchor', anchor]]);
  });

  it('an on-demand digest (no schedule) promises nothing; with --until the vault must reach it exactly', async () => {
    const vault = await hourlyVault(0);
    vault.clock.t = T0 + HOUR;
    const once = (await vault.write({}, { settleMs: 0, wholeSeconds: false }))!;
    expect(once.digest.heartbeat).toBeNull();
    expect(await kinds(vault, { now: new Date(T0 + 40 * HOUR) })).toEqual([]);
    expect(await kinds(vault, { until: new Date(T0 + HOUR + 1) })).toEqual([['truncated-tail', once.key]]);
    expect(await kinds(vault, { until: new Date(T0 + HOUR + 1), toleranceMs: 1000 })).toEqual([]);
  });

  it('digests from before heartbeats verify as before', async () => {
    const vault = await hourlyVault(0);
    vault.clock.t = T0 + HOUR;
    const written = (await vault.write({}, { settleMs: 0, wholeSeconds: false }))!;
    // Re-sign the same digest without the heartbeat field, as an older writer produced it.
    const { heartbeat: _, signature: __, ...legacy } = written.digest;
    const { digestSigningInput, serializeDocument } = await import('../../lambdas/receipts/vault');
    const doc = { ...legacy, signature: signer.sign(digestSigningInput(legacy as Omit<Digest, 'signature'>)) };
    vault.store.objects.set(written.key, { bytes: serializeDocument(doc), lastModified: new Date(vault.clock.t) });
    expect(DigestSchema.parse(doc).heartbeat).toBeUndefined();
    const report = await verifyVault(vault.store, { now: new Date(T0 + 40 * HOUR) });
    expect(report.findings).toEqual([]);
    expect(report.tail.heartbeat).toBeUndefined();
  });
});

describe('airlock audit verify (tail)', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  /** Writes a memory vault to a directory, file times set to the objects' times. */
  async function onDisk(vault: Vault): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'airlock-tail-'));
    dirs.push(dir);
    for (const [key, o] of vault.store.objects) {
      const file = join(dir, ...key.split('/'));
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, o.bytes, { mode: 0o444 });
      await utimes(file, o.lastModified, o.lastModified);
    }
    return dir;
  }
  function capture() {
    const out = { stdout: [] as string[], stderr: [] as string[] };
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.stdout.push(String(s)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => (out.stderr.push(String(s)), true));
    return out;
  }

  it('exit 0 with --until inside the heartbeat; exit 1 naming the cut when the last 2 digests are gone', async () => {
    const vault = await hourlyVault(6);
    const dir = await onDisk(vault);
    const until = new Date(vault.lastRun + 30 * MIN).toISOString();
    let out = capture();
    expect(await audit(['verify', '--dir', dir, '--until', until, '--public-key', signer.publicKey.publicKey])).toBe(0);
    expect(out.stdout.join('')).toContain(`Vault ends at 2026-03-01T05:59:00.000Z (${vault.digests.at(-1)!.key}); a digest every 1 h; checked up to ${until}, allowing 1 h 10 min.`);
    expect(out.stdout.join('')).toContain(`Head SHA-256 ${vault.digests.at(-1)!.sha256}`);
    vi.restoreAllMocks();

    const anchor = vault.digests.at(-1)!.sha256;
    for (const key of cutTail(vault, 2)) await unlink(join(dir, ...key.split('/')));
    out = capture();
    expect(await audit(['verify', '--dir', dir, '--until', until, '--expect-head', anchor])).toBe(1);
    const text = out.stderr.join('');
    expect(text).toContain(`TRUNCATED      ${vault.digests.at(-1)!.key}`);
    expect(text).toContain('the vault ends at 2026-03-01T03:59:00.000Z, but its writer promised a digest every 1 h: nothing covers the 2 h 31 min up to 2026-03-01T06:30:00.000Z, more than the 1 h 10 min allowed');
    expect(text).toContain(`MISSING HEAD   ${anchor}`);
  });

  it('--json carries the tail; bad --until, --tolerance and --expect-head exit 2', async () => {
    const vault = await hourlyVault(3);
    const dir = await onDisk(vault);
    const out = capture();
    expect(await audit(['verify', '--dir', dir, '--json', '--until', new Date(vault.lastRun).toISOString()])).toBe(0);
    expect(JSON.parse(out.stdout.join(''))).toMatchObject({ ok: true, tail: { key: vault.digests.at(-1)!.key, heartbeat: { intervalSeconds: 3600 }, untilGiven: true } });
    expect(await audit(['verify', '--dir', dir, '--until', 'soon'])).toBe(2);
    expect(await audit(['verify', '--dir', dir, '--tolerance', 'a bit'])).toBe(2);
    expect(await audit(['verify', '--dir', dir, '--expect-head', 'digests/dt=2026-03-01/x.json'])).toBe(2);
    expect(out.stderr.join('')).toContain('--expect-head takes a digest');
  });

  it('(property) any --until, --tolerance and --expect-head: exit 0, 1 or 2, never a throw', async () => {
    const vault = await hourlyVault(2);
    const dir = await onDisk(vault);
    capture();
    await fc.assert(
      fc.asyncProperty(
        fc.option(fc.oneof(fc.string({ maxLength: 40 }), fc.date({ noInvalidDate: true }).map((d) => d.toISOString())), { nil: undefined }),
        fc.option(fc.oneof(fc.string({ maxLength: 12 }), fc.nat().map((n) => `${n}m`)), { nil: undefined }),
        fc.array(fc.oneof(fc.string({ maxLength: 70 }), fc.stringMatching(/^[0-9a-f]{64}$/)), { maxLength: 2 }),
        async (until, tolerance, heads) => {
          const args = ['verify', '--dir', dir];
          if (until !== undefined) args.push(`--until=${until}`);
          if (tolerance !== undefined) args.push(`--tolerance=${tolerance}`);
          for (const h of heads) args.push(`--expect-head=${h}`);
          expect([0, 1, 2]).toContain(await audit(args));
        },
      ),
      { numRuns: 60 },
    );
  });
});
