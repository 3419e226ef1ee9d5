import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { run as halt } from '../../bin/commands/halt';
import { run as resume } from '../../bin/commands/resume';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';

/** `airlock halt …` / `airlock resume …` against a running control plane, over HTTP. */

let cp: TestControlPlane;
let operator: string;
let employee: string;

beforeAll(async () => {
  cp = await startTestControlPlane();
  operator = await cp.token('olivia', { roles: ['KillSwitch'] });
  employee = await cp.token('eve', { roles: ['Employee'] });
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

describe('airlock halt / resume', () => {
  it('halts a connector with a reason, lists it, refuses new work, and resumes it', async () => {
    const api = ['--url', cp.url, '--token', operator];
    const made = await capture(() => halt(['connector', 'procurement', '--reason', 'supplier outage', ...api, '--json']));
    expect(made.code).toBe(0);
    const id = (JSON.parse(made.out) as { id: string }).id;
    expect(id).toMatch(/^hlt_/);

    const listed = await capture(() => halt(['list', ...api]));
    expect(listed.out).toMatch(new RegExp(`${id}\\s+active\\s+stop\\s+connector procurement\\s+by olivia at .*: supplier outage`));

    const refused = await cp.post(employee, { tool: 'procurement.search_catalog', arguments: { query: 'paper' }, agent: { name: 'buyer-bot' } });
    expect(refused.body).toMatchObject({ status: 403, type: 'urn:airlock:problem:halted', haltId: id });

    const ended = await capture(() => resume([id, '--reason', 'outage over', ...api]));
    expect(ended.code).toBe(0);
    expect(ended.out).toMatch(/resumed .* resumed by olivia at .*: outage over/);
    const again = await capture(() => resume([id, '--reason', 'twice', ...api]));
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/409/);
  });

  it('reports a refusal for someone without the role, and explains usage errors without calling the API', async () => {
    const denied = await capture(() => halt(['all', '--reason', 'x', '--url', cp.url, '--token', employee]));
    expect(denied.code).toBe(1);
    expect(denied.err).toMatch(/Forbidden \(403\).*KillSwitch/);
    for (const argv of [['everything', '--reason', 'x'], ['all', 'extra', '--reason', 'x'], ['tool', '--reason', 'x'], ['agent', 'bot'], ['list', 'x']]) {
      expect((await capture(() => halt([...argv, '--url', 'http://127.0.0.1:1']))).code, argv.join(' ')).toBe(2);
    }
    expect((await capture(() => resume(['not-a-halt', '--reason', 'x']))).code).toBe(2);
    expect((await capture(() => resume(['hlt_01JABCDEFGHJKMNPQRSTVWXYZ0']))).code).toBe(2);
    const unknown = await capture(() => halt(['tool', 'travel.teleport', '--reason', 'x', '--url', cp.url, '--token', operator]));
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/\(400\)[^]*\/target: unknown tool "travel.teleport"/);
  });
});
