import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalIdFor } from '../../lambdas/shared/ids';
import { bigTrip, startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';
import { isoDay } from '../helpers/dates';

/**
 * Every command in the README runs: the local ones here, against a running control plane,
 * exactly as written (only the port and placeholder ids are filled in); the few that need
 * an AWS account are named below, and the three the other suites run are mapped to them.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** Commands that need an AWS account; `npx cdk synth`, their offline part, runs in test/infra. */
const NEEDS_AWS = [/^npx cdk bootstrap /, /^npx cdk deploy /, /--bucket /, /^aws secretsmanager /];
/** Commands another suite runs, and where. */
const RUN_ELSEWHERE: [RegExp, string][] = [
  [/^npm ci && npm start$/, 'test/e2e/cli-dev.test.ts'],
  [/^npm ci && npm test$/, '.ci/run'],
  [/^npm run demo$/, 'test/e2e/demo.test.ts'],
  [/^npm run chaos /, '.ci/run'],
];

function shellBlocks(markdown: string): string[][] {
  const blocks: string[][] = [];
  for (const m of markdown.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const lines = m[1]!
      .replace(/\\\n\s*/g, ' ')
      .split('\n')
      .map((l) => l.replace(/\s+#.*$/, '').trim())
      .filter((l) => l.length > 0);
    blocks.push(lines);
  }
  return blocks;
}

let cp: TestControlPlane;
let stateDir: string;
const ids: { approvals: string[]; action: string } = { approvals: [], action: '' };

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'airlock-readme-'));
  cp = await startTestControlPlane({ stateDir });
  const alice = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
  for (const date of [isoDay(10), isoDay(11)]) {
    const res = await cp.post(alice, bigTrip(date));
    ids.approvals.push(approvalIdFor(res.body.id as string));
  }
  const done = await cp.post(alice, { tool: 'echo.say', arguments: { message: 'readme' }, agent: { name: 'readme' } });
  ids.action = done.body.id as string;
  for (const id of ids.approvals) {
    for (let i = 0; i < 100 && (await cp.get(alice, `/v1/approvals/${id}`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 20));
  }
}, 60_000);
afterAll(async () => {
  await cp?.close();
  await rm(stateDir, { recursive: true, force: true });
});

describe('the README', () => {
  const blocks = shellBlocks(readme);

  it('has shell blocks, and every command that cannot run here is accounted for', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    for (const line of blocks.flat()) {
      const elsewhere = RUN_ELSEWHERE.find(([re]) => re.test(line));
      if (elsewhere) expect(existsSync(join(ROOT, elsewhere[1])), line).toBe(true);
    }
    expect(readFileSync(join(ROOT, '.ci/run'), 'utf8')).toContain('npm test');
  });

  it('runs every local command as written', async () => {
    const script = blocks
      .flat()
      .filter((line) => !NEEDS_AWS.some((re) => re.test(line)) && !RUN_ELSEWHERE.some(([re]) => re.test(line)))
      .map((line) =>
        line
          .replaceAll('http://127.0.0.1:8787', cp.url)
          .replaceAll('<actionId>', ids.action)
          .replaceAll('.airlock/', `${stateDir}/`)
          // approve takes the first pending approval, reject the second; list/show any.
          .replace(/apr_01J…/g, () => ids.approvals[/ reject /.test(line) ? 1 : 0]!),
      );
    expect(script.length).toBeGreaterThanOrEqual(10);
    const started = new Date();
    const traced = script.map((line) => `echo "+ ${line.slice(0, 60).replace(/["$`\\]/g, '')}" >&2\n${line}`);
    // Asynchronously: the control plane answering these commands lives in this process.
    const run = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn('bash', ['-euo', 'pipefail', '-c', traced.join('\n')], {
        cwd: ROOT,
        env: { ...process.env, AIRLOCK_HOME: stateDir, AIRLOCK_URL: cp.url, NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      // A guard against a hung command, not a speed bound: ~35 s on an idle CI machine, 100+ s on a loaded one.
      const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
      child.on('close', (status) => {
        clearTimeout(timer);
        resolve({ status, stdout, stderr });
      });
    });
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toContain('"tools"');
    expect(run.stdout).toContain('travel.search_flights');
    // The quickstart's search is for the day 30 days ahead of the clock, not a fixed date.
    const day = [isoDay(30, started), isoDay(30)].find((d) => run.stdout.includes(`"flightId":"SB102-${d}"`));
    expect(day, 'the search for flights 30 days ahead').toBeDefined();
  }, 270_000);
});
