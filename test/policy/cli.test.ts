import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { run, summary, type Io } from '../../bin/commands/policy';
import { POLICY_DIR } from './helpers';

function capture(): Io & { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  return { out: (t) => (out += t), err: (t) => (err += t), stdout: () => out, stderr: () => err };
}

const temps: string[] = [];
function copyOfPolicies(): string {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-policies-'));
  temps.push(dir);
  cpSync(POLICY_DIR, dir, { recursive: true });
  return dir;
}

afterEach(() => {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('airlock policy', () => {
  it('has a one-line summary for the dispatcher', () => {
    expect(summary).toMatch(/policy/);
  });

  it('validate: exits 0 on the shipped set', async () => {
    const io = capture();
    expect(await run(['validate', '--dir', POLICY_DIR], io)).toBe(0);
    expect(io.stdout()).toMatch(/policies are valid/);
    expect(io.stderr()).toBe('');
  });

  it('validate: exits 1 with file:line:col for an invalid policy', async () => {
    const dir = copyOfPolicies();
    writeFileSync(join(dir, 'travel.cedar'), '@id("t") @reason("r")\npermit (principal, action, resource)\nwhen { resource.tierr == "read" };\n');
    const io = capture();
    expect(await run(['validate', '--dir', dir], io)).toBe(1);
    expect(io.stderr()).toMatch(/travel\.cedar:3:8: error \[t\]: .*tierr/);
  });

  it('test: runs every fixture and exits 0 when all pass', async () => {
    const io = capture();
    expect(await run(['test', '--dir', POLICY_DIR], io)).toBe(0);
    expect(io.stdout()).toMatch(/\d+ fixtures \(ALLOW \d+, DENY \d+, APPROVAL \d+, APPROVER \d+\): \d+ passed, 0 failed/);
    expect(io.stdout()).not.toMatch(/FAIL/);
  });

  it('test: exits 1 and explains a failing fixture', async () => {
    const dir = copyOfPolicies();
    writeFileSync(
      join(dir, 'tests', 'ALLOW', 'alice_travel.book_flight_wrong.json'),
      JSON.stringify({
        description: 'wrong on purpose: $3,000 needs the manager',
        request: { principal: { sub: 'alice', roles: [] }, steps: [{ id: 's1', facts: { tool: 'travel.book_flight', connector: 'travel', tier: 'commit', vendor: 'V', amount: { amount: 3000, currency: 'USD' } } }] },
        expect: { outcome: 'allow' },
      }),
    );
    const io = capture();
    expect(await run(['test', '--dir', dir], io)).toBe(1);
    expect(io.stdout()).toMatch(/FAIL {2}ALLOW\/alice_travel\.book_flight_wrong\.json/);
    expect(io.stdout()).toMatch(/outcome: expected allow, got require_approval \(travel\.employee-over-limit/);
    expect(io.stdout()).toMatch(/1 failed/);
  });

  it('exits 2 with usage on a bad subcommand', async () => {
    const io = capture();
    expect(await run(['frobnicate'], io)).toBe(2);
    expect(io.stderr()).toMatch(/Usage: airlock policy/);
  });
});
