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
import { limitsWithRates } from '../helpers/rate-limits';
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
  it('plays all fourteen scenes against its own control plane and exits 0', async () => {
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
      [9, 'never past the cap'],
      [10, 'a looping agent stopped at its limit: 429 quota-exceeded (agent-burst) with Retry-After, nothing recorded'],
      [11, 'failing vendor opened the breaker; the next action got 503 circuit-open with Retry-After, vendor not called'],
      [12, 'halt stopped the running plan before its next step; the hold was released, receipt records the halt'],
      [13, 'delegation granted with a consent receipt; booked within budget; revoked mid-plan, plan compensated and cancelled, agent refused'],
      [14, 'vendor divergence found (orphan booking, exit 3) and fixed with --fix (cancelled at the vendor)'],
    ] as const) {
      expect(run.stdout).toMatch(new RegExp(`PASS scene ${n}: .*${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    }
    expect(run.stdout).not.toContain('FAIL');
    expect(run.stdout).toContain('Summary: 14/14 scenes passed');
    // The consent scene's own plane (requireDelegation on) left its vault beside the demo's.
    expect(await readdir(join(home, 'require-delegation', 'audit', 'receipts'))).not.toEqual([]);
    expect(run.stdout).toContain(`State directory: ${home}`);
    // The receipts stay behind for inspection, and the vendor discovery file is gone.
    const days = await readdir(join(home, 'audit', 'receipts'));
    expect(days.length).toBeGreaterThan(0);
    expect(await readdir(home)).not.toContain('sandbox-vendors.json');

    // It ends with the KPIs of its own run, read through GET /v1/metrics as the auditor.
    const kpis = run.stdout.slice(run.stdout.indexOf('KPIs of this run'));
    // Scene 9's burst ends each order one of several ways (placed, stopped by the cap, held
    // for a person): the outcome counts are at least the other scenes' own.
    const kpi = (pattern: RegExp) => Number(pattern.exec(kpis)?.[1] ?? -1);
    expect(kpi(/ActionEnded\s+outcome=completed\s+(\d+)\n/)).toBeGreaterThanOrEqual(5);
    expect(kpi(/ActionEnded\s+outcome=compensated\s+(\d+)\n/)).toBeGreaterThanOrEqual(1);
    expect(kpis).toMatch(/PolicyDenied\s+policy=procurement\.denied-vendor\s+1\n/);
    expect(kpis).toMatch(/CompensationExecuted\s+connector=travel\s+2\n/);
    expect(kpis).toMatch(/ApprovalDecided\s+outcome=approved\s+2\n/);
    expect(kpis).toMatch(/ApprovalVoteRefused\s+reason=self_approval\s+1\n/);
    expect(kpis).toMatch(/IdempotentReplay\s+1\n/);
    expect(kpi(/ReceiptWritten\s+(\d+)\n/)).toBeGreaterThanOrEqual(7);

    // The weekly report over the demo's vault: locally, and through S3 (the same bytes behind a mocked bucket).
    const local = join(home, 'report-local.md');
    const at = new Date();
    expect(await report(['--since', '7d', '--dir', join(home, 'audit'), '--out', local], { now: () => at })).toBe(0);
    const markdown = await readFile(local, 'utf8');
    expect(Number(/\*\*(\d+)\*\* action\(s\) settled/.exec(markdown)?.[1])).toBeGreaterThanOrEqual(7);
    expect(markdown).toMatch(/\| completed \| \d+ \|\n/);
    expect(markdown).toContain('| procurement.denied-vendor | 1 |');
    expect(markdown).toMatch(/\d+ requested; median time to decision \d+ s/);
    expect(markdown).toContain('| granted | 2 |');
    expect(markdown).toMatch(/\d+ compensating call\(s\) completed, \*\*0 failed\*\*; \d+ action\(s\) fully compensated\./);
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
    // Twelve scenes: a burst of parallel orders, an agent's whole minute quota (about 120
    // previews), a step's real retries before the breaker opens (up to 15 s of back-off):
    // room for a loaded CI machine.
  }, 240_000);

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

  it('stops a looping agent at whatever per-agent limit the server has, and skips when there is none', async () => {
    // Prepare: a small agent limit, so the scene's loop is short.
    // The windows on a clock held one second into a minute: the loop never straddles two windows.
    const held = new Date(Math.floor(Date.now() / 60_000) * 60_000 + 1_000);
    cp = await startTestControlPlane({
      controlPlane: {
        limits: limitsWithRates([{ id: 'agent-minute', scope: 'agent', limit: 5, windowSeconds: 60, lease: 1 }, { id: 'principal-minute', scope: 'principal', limit: 1000, windowSeconds: 60 }]),
        rateLimitClock: () => held,
      },
    });
    const { ctx, printed } = await contextOver(cp);
    const rateLimited = scenes.find((s) => s.n === 10)!;
    // Act
    const outcome = await runScenes(ctx, [rateLimited]);
    // Assess
    expect(outcome.failed).toEqual([]);
    expect(outcome.passed).toEqual([10]);
    expect(printed()).toMatch(/5 answered 200, then 429/);
    expect(printed()).toContain('PASS scene 10: a looping agent stopped at its limit: 429 quota-exceeded (agent-minute)');
    await cp.close();
    cp = await startTestControlPlane({ controlPlane: { limits: limitsWithRates([]) } });
    const none = await runScenes((await contextOver(cp)).ctx, [rateLimited]);
    expect(none.skipped).toEqual([{ n: 10, reason: 'this server has no per-agent rate limit' }]);
  });

  it('skips the vendor fault, saying why, when it cannot reach the vendors’ admin', async () => {
    cp = await startTestControlPlane();
    const { ctx, printed } = await contextOver(cp, false);
    const outcome = await runScenes(ctx, [scenes[4]!]);
    expect(outcome).toEqual({ passed: [], failed: [], skipped: [{ n: 5, reason: expect.stringMatching(/no admin access in this test/) }] });
    expect(printed()).toMatch(/SKIP scene 5: cannot inject a vendor fault/);
  });
});
