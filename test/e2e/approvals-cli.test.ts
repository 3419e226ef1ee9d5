import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../../bin/commands/approvals';
import type { ActionRecord } from '../../lambdas/actions/action';
import { requestApproval } from '../../lambdas/approvals/approvals';
import { createApprovalsHandler } from '../../lambdas/approvals/handler';
import type { ApprovalsFunctionDeps } from '../../lambdas/composition/deps';
import { composeLocal } from '../../lambdas/composition/local';
import { toolRegistry } from '../../lambdas/tools/registry';
import { deciderFor } from '../../lambdas/policy/decider';
import { validateEnvelope } from '../../lambdas/intake/envelope';
import { newActionId } from '../../lambdas/shared/ids';
import { planHash } from '../../lambdas/intake/intake';
import { loadPolicyEngine } from '../../lambdas/policy/index';
import type { Principal } from '../../lambdas/shared/principal';
import { silentLogger, type LocalService } from '../../local/server';
import type { TaskCallbacks } from '../../lambdas/ports/task-callbacks';
import { startTestRuntime, type TestRuntime } from '../helpers/local-runtime';

/** `airlock approvals` over HTTP against the local runtime, its approvals function composed with recording task callbacks. */

const alice: Principal = { sub: 'alice', roles: ['Employee'], manager: 'maria' };
const envelope = {
  tool: 'travel.book_flight',
  arguments: {
    holdId: 'hold_9',
    travelers: [{ firstName: 'Alice', lastName: 'Liddell' }],
    contact: { email: 'alice@example.com' },
    price: { amount: 1800, currency: 'USD' },
  },
  agent: { name: 'trip-planner' },
  reason: 'Offsite in Lisbon',
};

let rt: TestRuntime;
let deps: ApprovalsFunctionDeps;
const answered: { kind: string; output?: unknown }[] = [];

beforeAll(async () => {
  const callbacks: TaskCallbacks = {
    sendTaskSuccess: async (_t, output) => void answered.push({ kind: 'success', output }),
    sendTaskFailure: async (_t, error) => void answered.push({ kind: error }),
  };
  // The approvals function alone, over the local composition: no saga runs, the test seeds approvals.
  const approvals: LocalService = {
    name: 'approvals',
    async start(ctx) {
      deps = composeLocal({
        stateDir: ctx.stateDir,
        dynamo: ctx.dynamo,
        secrets: ctx.secrets,
        logger: silentLogger,
        workflow: { start: async () => undefined },
        callbacks,
        connectorFunction: (name) => name,
        vendorBaseUrls: {},
      }).approvals;
      return { stop: async () => undefined, handlers: { approvals: createApprovalsHandler(async () => deps) } };
    },
  };
  rt = await startTestRuntime({ inMemoryDynamo: true, services: [approvals] });
});

afterAll(async () => {
  await rt?.close();
});

async function pendingApproval(): Promise<string> {
  const v = validateEnvelope(envelope, toolRegistry);
  if (!v.ok) throw new Error('fixture');
  const now = new Date();
  const action: ActionRecord = {
    id: newActionId(),
    principal: alice,
    actor: v.action.agent,
    envelope,
    kind: 'single',
    mode: 'execute',
    reason: envelope.reason,
    planHash: planHash(v.action),
    status: 'awaiting_approval',
    decision: await deciderFor(loadPolicyEngine(), toolRegistry).decide(alice, v.action, now),
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
    version: 1,
  };
  await deps.actions.createAction(action);
  return (await requestApproval(deps, { actionId: action.id, taskToken: `token-${action.id}` })).approvalId;
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  // `--as` mints a dev token with the issuer of the state directory AIRLOCK_HOME names, as a user runs it.
  vi.stubEnv('AIRLOCK_HOME', rt.stateDir);
  try {
    const code = await run([...args, '--url', rt.url]);
    return { code, stdout, stderr };
  } finally {
    o.mockRestore();
    e.mockRestore();
    vi.unstubAllEnvs();
  }
}

describe('airlock approvals', () => {
  it('list, show and approve with a summary of exactly what is approved', async () => {
    const id = await pendingApproval();
    const list = await cli(['list', '--as', 'maria', '--role', 'Manager']);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(id);

    const show = await cli(['show', id, '--as', 'maria', '--role', 'Manager']);
    expect(show.stdout).toMatch(/Asked by +alice, through agent trip-planner/);
    expect(show.stdout).toMatch(/At stake +1,800\.00 USD/);
    expect(show.stdout).toContain('travel.employee-over-limit');
    expect(show.stdout).toContain('alice@example.com'); // the manager may decide: PII shown

    const asAlice = await cli(['approve', id, '--as', 'alice']);
    expect(asAlice.code).toBe(1);
    expect(asAlice.stdout).toMatch(/cannot decide/);
    expect(asAlice.stdout).not.toContain('alice@example.com');

    const approve = await cli(['approve', id, '--as', 'maria', '--role', 'Manager', '--comment', 'fine']);
    expect(approve.code).toBe(0);
    expect(approve.stdout).toContain('What will happen:');
    expect(approve.stdout).toMatch(/Recorded: approve\. Approval is approved \(1\/1 approvals\)/);
    expect(answered).toEqual([expect.objectContaining({ kind: 'success' })]);

    const log = await readFile(join(rt.stateDir, 'events.log'), 'utf8');
    const line = log.split('\n').find((l) => l.includes(id));
    expect(JSON.parse(line!)).toMatchObject({ source: 'airlock', 'detail-type': 'airlock.approval.requested', detail: { approvalId: id } });
    expect(log).not.toContain('token-');

    const again = await cli(['reject', id, '--as', 'maria', '--role', 'Manager', '--comment', 'changed my mind']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/409/);
  });

  it('explains usage errors without calling the API', async () => {
    expect((await cli(['approve', 'not-an-id', '--as', 'maria'])).code).toBe(2);
    expect((await cli(['reject', 'apr_01JNZ0000000000000000000AB', '--as', 'maria'])).stderr).toMatch(/--comment/);
  });
});
