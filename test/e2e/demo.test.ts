import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { run as report } from '../../bin/commands/report';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createContext, inProcessVendors } from '../../bin/demo/context';
import { runScenes, scenes } from '../../bin/demo/scenes';
import { Timeline } from '../../bin/demo/timeline';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';

/** `npm run demo`: the whole story passes end to end, and a scene that misbehaves is reported as failed. */

const repo = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(repo, 'bin', 'airlock.mjs');

const children: ChildProcess[] = [];
const dirs: string[] = [];
let cp: TestControlPlane | undefined;

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
  }
  await cp?.close();
  cp = undefined;
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

function runDemo(home: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, AIRLOCK_HOME: home, NO_COLOR: '1' };
  delete env.AIRLOCK_URL;
  const child = spawn(process.execPath, [cli, 'demo'], { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

/** A demo context over an in-process test control plane, printing into a string. */
async function contextOver(server: TestControlPlane, withVendors = true) {
  let printed = '';
  const ctx = createContext({
    url: server.url,
    home: server.stateDir,
    out: new Timeline({ write: (t) => (printed += t), color: false }),
    sign: (claims) => server.runtime.issuer.sign(claims, '1h'),
    vendors: withVendors ? inProcessVendors(server.cp.vendors) : undefined,
    ...(withVendors ? {} : { vendorsMissingReason: 'no admin access in this test' }),
    timeoutMs: 10_000,
  });
  return { ctx, printed: () => printed };
}

describe('airlock demo', () => {
  it('plays all eight scenes against its own control plane and exits 0', async () => {
    // Prepare
    const home = await mkdtemp(join(tmpdir(), 'airlock-demo-test-'));
    dirs.push(home);
    // Act
    const run = await runDemo(home);
    // Assess
    expect(run.stderr).toBe('');
    expect(run.code, run.stdout).toBe(0);
    expect(run.stdout).not.toMatch(/\x1b\[/); // NO_COLOR
    for (const [n, line] of [
      [1, 'read answered synchronously (200)'],
      [2, 'booking allowed, saga completed, receipt written'],
      [3, 'booking required the manager, approved from the CLI, completed'],
      [4, 'retry replayed (Idempotent-Replayed: true), no second booking'],
      [5, 'booking failed at the vendor; hold and authorization compensated, receipt says so'],
      [6, 'IAM grant approved by two security admins; the requester’s own approval refused (403)'],
      [7, 'deny-listed supplier refused: 403 procurement.denied-vendor with its reason'],
      [8, 'audit verify passes; a tampered copy fails and names the receipt'],
    ] as const) {
      expect(run.stdout).toMatch(new RegExp(`PASS scene ${n}: .*${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    }
    expect(run.stdout).not.toContain('FAIL');
    expect(run.stdout).toContain('Summary: 8/8 scenes passed');
    expect(run.stdout).toContain(`State directory: ${home}`);
    // The receipts stay behind for inspection, and the vendor discovery file is gone.
    const days = await readdir(join(home, 'audit', 'receipts'));
    expect(days.length).toBeGreaterThan(0);
    expect(await readdir(home)).not.toContain('sandbox-vendors.json');

    // It ends with the KPIs of its own run, read through GET /v1/metrics as the auditor.
    const kpis = run.stdout.slice(run.stdout.indexOf('KPIs of this run'));
    expect(kpis).toMatch(/ActionEnded\s+outcome=completed\s+5\n/);
    expect(kpis).toMatch(/ActionEnded\s+outcome=compensated\s+1\n/);
    expect(kpis).toMatch(/ActionEnded\s+outcome=denied\s+1\n/);
    expect(kpis).toMatch(/PolicyDenied\s+policy=procurement\.denied-vendor\s+1\n/);
    expect(kpis).toMatch(/CompensationExecuted\s+connector=travel\s+1\n/);
    expect(kpis).toMatch(/ApprovalDecided\s+outcome=approved\s+2\n/);
    expect(kpis).toMatch(/ApprovalVoteRefused\s+reason=self_approval\s+1\n/);
    expect(kpis).toMatch(/IdempotentReplay\s+1\n/);
    expect(kpis).toMatch(/ReceiptWritten\s+7\n/);

    // The weekly report over the demo's vault: locally, and through S3 (the same bytes behind a mocked bucket).
    const local = join(home, 'report-local.md');
    const at = new Date();
    expect(await report(['--since', '7d', '--dir', join(home, 'audit'), '--out', local], { now: () => at })).toBe(0);
    const markdown = await readFile(local, 'utf8');
    expect(markdown).toContain('**7** action(s) settled');
    expect(markdown).toMatch(/\| completed \| 5 \|\n\| compensated \| 1 \|\n\| denied \| 1 \|/);
    expect(markdown).toContain('| procurement.denied-vendor | 1 |');
    expect(markdown).toMatch(/2 requested; median time to decision \d+ s/);
    expect(markdown).toContain('| granted | 2 |');
    expect(markdown).toContain('2 compensating call(s) completed, **0 failed**; 1 action(s) fully compensated.');
    expect(markdown).toContain('| self_approval | 1 |');
    expect(markdown).toMatch(/Total \d+\.\d{2} USD\./);
    expect(markdown).toContain('No findings');
    // No principal or personal data in the report: counts, policy ids, reasons and connectors only.
    for (const person of ['alice', 'bob', 'carol', 'dave']) expect(markdown).not.toContain(person);

    const s3 = mockClient(S3Client);
    try {
      const vault = join(home, 'audit');
      s3.on(ListObjectsV2Command).callsFake(async (input: { Prefix?: string }) => {
        const prefix = input.Prefix ?? '';
        const dir = join(vault, prefix);
        const names = await readdir(dir).catch(() => [] as string[]);
        const contents = await Promise.all(
          names.filter((n) => n.endsWith('.json')).map(async (n) => {
            const info = await stat(join(dir, n));
            return { Key: `${prefix}${n}`, Size: info.size, LastModified: info.mtime };
          }),
        );
        return { Contents: contents, IsTruncated: false };
      });
      s3.on(GetObjectCommand).callsFake(async (input: { Key: string }) => {
        const bytes = await readFile(join(vault, input.Key));
        return { Body: { transformToByteArray: async () => new Uint8Array(bytes) } };
      });
      const fromS3 = join(home, 'report-s3.md');
      expect(await report(['--since', '7d', '--bucket', 'airlock-audit-vault', '--out', fromS3], { s3: () => new S3Client({ region: 'us-east-1' }), now: () => at })).toBe(0);
      const receipts = (await readFile(fromS3, 'utf8')).split('## Verification')[0];
      expect(receipts).toEqual(markdown.split('## Verification')[0]);
      expect(s3.commandCalls(ListObjectsV2Command).every((c) => c.args[0].input.Bucket === 'airlock-audit-vault')).toBe(true);
      expect(s3.commandCalls(GetObjectCommand).length).toBeGreaterThanOrEqual(7);
    } finally {
      s3.restore();
    }
  }, 90_000);

  it('reports a scene as failed when Airlock does not behave as described', async () => {
    // Prepare: the travel vendor refuses the next booking, so scene 2's booking cannot complete.
    cp = await startTestControlPlane();
    cp.cp.vendors.admin.setFaults('travel', { failNext: [{ operation: 'book_flight', count: 1, status: 400 }] });
    const { ctx, printed } = await contextOver(cp);
    // Act
    const outcome = await runScenes(ctx, [scenes[1]!]);
    // Assess
    expect(outcome.passed).toEqual([]);
    expect(outcome.failed).toEqual([{ n: 2, reason: expect.stringMatching(/the saga ran every step: completed: it ended compensated/) }]);
    expect(printed()).toMatch(/FAIL scene 2: /);
    // Scene 4 depends on scene 2 and says so rather than passing vacuously.
    const next = await runScenes(ctx, [scenes[3]!]);
    expect(next.failed).toEqual([{ n: 4, reason: expect.stringMatching(/scene 2 did not complete/) }]);
  });

  it('skips the vendor fault, saying why, when it cannot reach the vendors’ admin', async () => {
    cp = await startTestControlPlane();
    const { ctx, printed } = await contextOver(cp, false);
    const outcome = await runScenes(ctx, [scenes[4]!]);
    expect(outcome).toEqual({ passed: [], failed: [], skipped: [{ n: 5, reason: expect.stringMatching(/no admin access in this test/) }] });
    expect(printed()).toMatch(/SKIP scene 5: cannot inject a vendor fault/);
  });
});
