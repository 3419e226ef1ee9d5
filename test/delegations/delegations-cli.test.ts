import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createBody, parseBudget, parseExpiry, parseDelegationsArgs, run as delegations, DelegationsCliError } from '../../bin/commands/delegations';
import { run as token } from '../../bin/commands/token';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';

/** `airlock delegations create|list|revoke` against a running control plane, over HTTP; `airlock token --agent`. */

let cp: TestControlPlane;
let alice: string;

beforeAll(async () => {
  cp = await startTestControlPlane();
  alice = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
});
afterAll(async () => {
  await cp?.close();
});
afterEach(() => {
  vi.restoreAllMocks();
});

async function capture(op: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((c) => ((out += String(c)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((c) => ((err += String(c)), true));
  try {
    return { code: await op(), out, err };
  } finally {
    vi.restoreAllMocks();
  }
}

describe('airlock delegations', () => {
  it('creates a delegation, lists it, and revokes it', async () => {
    const api = ['--url', cp.url, '--token', alice];
    const made = await capture(() => delegations(['create', 'trip-bot', '--connector', 'travel', '--tool', 'payments.authorize', '--budget', '500 usd/day', '--expires', '8h', '--ask-for-commit', ...api, '--json']));
    expect(made.code, made.err).toBe(0);
    const created = JSON.parse(made.out) as { id: string; budget: unknown; rules: unknown; tools: string[]; connectors: string[] };
    expect(created).toMatchObject({ budget: { amount: 500, currency: 'USD', period: 'day' }, rules: { askForCommit: true }, tools: ['payments.authorize'], connectors: ['travel'] });

    const listed = await capture(() => delegations(['list', ...api]));
    expect(listed.out).toMatch(new RegExp(`${created.id}\\s+active\\s+trip-bot\\s+payments\\.authorize,travel\\.\\*\\s+budget 500 USD/day\\s+ask-for-commit\\s+until `));

    const revoked = await capture(() => delegations(['revoke', created.id, '--reason', 'done', ...api]));
    expect(revoked.code).toBe(0);
    expect(revoked.out).toMatch(new RegExp(`${created.id}\\s+revoked .*\\n  stopped: 0 cancelled, 0 stopping`));
  });

  it('prints the API\'s refusal with every violation, and explains usage errors without calling the API', async () => {
    const bad = await capture(() => delegations(['create', 'trip-bot', '--tool', 'travel.teleport', '--expires', '1h', '--url', cp.url, '--token', alice]));
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/\(400\):[\s\S]*\/tools\/0: unknown tool "travel\.teleport"/);
    const noExpiry = await capture(() => delegations(['create', 'trip-bot', '--connector', 'travel', '--url', cp.url, '--token', alice]));
    expect(noExpiry.code).toBe(2);
    expect(noExpiry.err).toMatch(/--expires/);
    expect((await capture(() => delegations(['revoke', '--url', cp.url]))).code).toBe(2);
    expect((await capture(() => delegations(['frobnicate']))).code).toBe(2);
    const unknown = await capture(() => delegations(['revoke', 'dlg_01JF0000000000000000000000', '--url', cp.url, '--token', alice]));
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/\(404\)/);
  });

  it('parses budgets and expiries, and refuses what it cannot read', () => {
    expect(parseBudget('1200 USD/month')).toEqual({ amount: 1200, currency: 'USD', period: 'month' });
    expect(parseBudget(' 0.5eur / total ')).toEqual({ amount: 0.5, currency: 'EUR', period: 'total' });
    expect(() => parseBudget('lots')).toThrow(DelegationsCliError);
    const now = new Date('2031-05-06T07:00:00Z');
    expect(parseExpiry('90m', now)).toBe('2031-05-06T08:30:00.000Z');
    expect(parseExpiry('7d', now)).toBe('2031-05-13T07:00:00.000Z');
    expect(parseExpiry('2031-06-01T00:00:00Z', now)).toBe('2031-06-01T00:00:00Z');
    const { values } = parseDelegationsArgs(['--connector', 'travel', '--expires', '1h', '--purpose', 'trip']);
    expect(createBody('trip-bot', values, now)).toEqual({ agent: 'trip-bot', connectors: ['travel'], expiresAt: '2031-05-06T08:00:00.000Z', purpose: 'trip' });
  });
});

describe('airlock token --agent', () => {
  it('mints alice\'s token as presented by an agent (act.sub), which delegations match', async () => {
    const home = cp.stateDir;
    const prev = process.env.AIRLOCK_HOME;
    process.env.AIRLOCK_HOME = home;
    try {
      const minted = await capture(() => token(['alice', '--role', 'Employee', '--agent', 'trip-bot']));
      expect(minted.code).toBe(0);
      const payload = JSON.parse(Buffer.from(minted.out.trim().split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
      expect(payload).toMatchObject({ sub: 'alice', act: { sub: 'trip-bot' } });
      const azp = await capture(() => token(['alice', '--azp', 'console-client']));
      expect(JSON.parse(Buffer.from(azp.out.trim().split('.')[1]!, 'base64url').toString('utf8'))).toMatchObject({ azp: 'console-client' });
      expect((await capture(() => token(['alice', '--agent', 'two words']))).code).toBe(2);
    } finally {
      if (prev === undefined) delete process.env.AIRLOCK_HOME;
      else process.env.AIRLOCK_HOME = prev;
    }
  });
});
