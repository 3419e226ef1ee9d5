import { QueryCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActionRecord } from '../../lambdas/actions/action';
import { defaultIntakeConfig } from '../../lambdas/intake/intake';
import { postAction, type IntakeResponse } from '../../lambdas/intake/http';
import { ProblemError } from '../../lambdas/shared/problem';
import { fingerprint } from '../../lambdas/shared/canonical-json';
import { InvalidCursorError, StatusTransitionError } from '../../lambdas/ports/ledger';
import { startLedger } from '../helpers/ledger';
import { alice, echoCall, fixedDecider, intakeDeps, mallory, RecordingWorkflow } from '../helpers/intake';

let env: Awaited<ReturnType<typeof startLedger>>;

beforeAll(async () => {
  env = await startLedger();
});
afterAll(async () => {
  await env.close();
});

async function countActions(sub: string): Promise<number> {
  const out = await env.dynamo.client.send(
    new QueryCommand({
      TableName: env.tableName,
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :p',
      ExpressionAttributeValues: { ':p': { S: `PRINCIPAL#${sub}` } },
    }),
  );
  return out.Count ?? 0;
}

async function answer(run: () => Promise<IntakeResponse>): Promise<IntakeResponse> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof ProblemError) return { status: error.problem.status, headers: error.headers, body: error.problem };
    throw error;
  }
}

describe('POST /v1/actions idempotency against dynalite', () => {
  it('200 concurrent requests with one key and payload make exactly one action', async () => {
    // Prepare
    const principal = { ...alice, sub: 'race-200' };
    const deps = intakeDeps(env.ledger, { config: { ...defaultIntakeConfig, syncWaitMs: 0, idempotencyLockMs: 30_000, inProgressWaitMs: 20_000 } });
    const body = echoCall('race');
    // Act
    const responses = await Promise.all(
      Array.from({ length: 200 }, () => postAction({ principal, idempotencyKey: 'key-race', body }, deps)),
    );
    // Assess
    expect(await countActions(principal.sub)).toBe(1);
    const ids = new Set(responses.map((r) => (r.body as { id: string }).id));
    expect(ids.size).toBe(1);
    expect(responses.every((r) => r.status === 202)).toBe(true);
    const replayed = responses.filter((r) => r.headers['idempotent-replayed'] === 'true');
    expect(replayed).toHaveLength(199);
    expect(deps.workflow.started).toHaveLength(1);
  });

  it('the same key with a different payload is 422 and writes nothing new', async () => {
    const principal = { ...alice, sub: 'reuse-422' };
    const deps = intakeDeps(env.ledger);
    const first = await postAction({ principal, idempotencyKey: 'k1', body: echoCall('one') }, deps);
    expect(first.status).toBe(202);
    const second = await answer(() => postAction({ principal, idempotencyKey: 'k1', body: echoCall('two') }, deps));
    expect(second.status).toBe(422);
    expect((second.body as { type: string }).type).toBe('urn:airlock:problem:idempotency-key-reused');
    expect(await countActions(principal.sub)).toBe(1);
  });

  it('keys are scoped to the principal', async () => {
    const deps = intakeDeps(env.ledger);
    const a = await postAction({ principal: { ...alice, sub: 'scope-a' }, idempotencyKey: 'shared', body: echoCall() }, deps);
    const b = await postAction({ principal: { ...mallory, sub: 'scope-b' }, idempotencyKey: 'shared', body: echoCall('x') }, deps);
    expect(a.status).toBe(202);
    expect(b.status).toBe(202);
    expect((a.body as { id: string }).id).not.toBe((b.body as { id: string }).id);
  });

  it('a request arriving while the first is still being accepted gets 409 with Retry-After', async () => {
    const principal = { ...alice, sub: 'in-progress-409' };
    const workflow = new RecordingWorkflow();
    let open!: () => void;
    workflow.gate = new Promise<void>((r) => (open = r));
    const deps = intakeDeps(env.ledger, { workflow, config: { ...defaultIntakeConfig, syncWaitMs: 0, idempotencyLockMs: 30_000, inProgressWaitMs: 0 } });
    const first = postAction({ principal, idempotencyKey: 'slow', body: echoCall() }, deps);
    await new Promise((r) => setTimeout(r, 100));
    const second = await answer(() => postAction({ principal, idempotencyKey: 'slow', body: echoCall() }, deps));
    expect(second.status).toBe(409);
    expect(second.headers['retry-after']).toBe('1');
    open();
    const done = await first;
    expect(done.status).toBe(202);
    const third = await postAction({ principal, idempotencyKey: 'slow', body: echoCall() }, deps);
    expect(third.headers['idempotent-replayed']).toBe('true');
    expect((third.body as { id: string }).id).toBe((done.body as { id: string }).id);
  });

  it('an abandoned in-progress claim expires and its retry finishes the same action', async () => {
    // Prepare: a request that claimed the key and wrote its action, then crashed.
    const principal = { ...alice, sub: 'crashed' };
    const body = echoCall('crash');
    let clock = Date.parse('2026-01-01T00:00:00Z');
    const fp = fingerprint({ method: 'POST', path: '/v1/actions', body });
    const claim = await env.ledger.claim({
      scope: principal.sub, key: 'crash-key', fingerprint: fp, proposedActionId: 'act_01J00000000000000000000000',
      now: clock, lockMs: 30_000, retentionMs: 86_400_000,
    });
    expect(claim.outcome).toBe('claimed');
    const deps = intakeDeps(env.ledger, { now: () => clock, config: { ...defaultIntakeConfig, syncWaitMs: 0, idempotencyLockMs: 30_000, inProgressWaitMs: 0 } });
    // While the lock holds: 409.
    const blocked = await answer(() => postAction({ principal, idempotencyKey: 'crash-key', body }, deps));
    expect(blocked.status).toBe(409);
    // Act: after the lock lapses the retry takes over.
    clock += 31_000;
    const retried = await postAction({ principal, idempotencyKey: 'crash-key', body }, deps);
    // Assess
    expect(retried.status).toBe(202);
    expect((retried.body as { id: string }).id).toBe('act_01J00000000000000000000000');
    expect(await countActions(principal.sub)).toBe(1);
    // A different payload still cannot take the abandoned key.
    const other = await answer(() => postAction({ principal, idempotencyKey: 'crash-key', body: echoCall('other') }, deps));
    expect(other.status).toBe(422);
  });

  it('a key is forgotten only after its retention', async () => {
    const principal = { ...alice, sub: 'retention' };
    let clock = Date.parse('2026-02-01T00:00:00Z');
    const deps = intakeDeps(env.ledger, { now: () => clock });
    const first = await postAction({ principal, idempotencyKey: 'old', body: echoCall() }, deps);
    clock += 23 * 3_600_000;
    const replay = await postAction({ principal, idempotencyKey: 'old', body: echoCall() }, deps);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    clock += 2 * 3_600_000;
    const fresh = await postAction({ principal, idempotencyKey: 'old', body: echoCall() }, deps);
    expect(fresh.headers['idempotent-replayed']).toBeUndefined();
    expect((fresh.body as { id: string }).id).not.toBe((first.body as { id: string }).id);
  });

  it('a denied action is recorded, answered 403 and replayed as 403', async () => {
    const principal = { ...alice, sub: 'denied' };
    const deps = intakeDeps(env.ledger, { decider: fixedDecider('deny') });
    const res = await postAction({ principal, idempotencyKey: 'd', body: echoCall() }, deps);
    expect(res.status).toBe(403);
    const body = res.body as { actionId: string; policyIds: string[]; type: string };
    expect(body.type).toBe('urn:airlock:problem:policy-denied');
    expect(body.policyIds).toEqual(['test-forbid']);
    expect((await env.ledger.getAction(body.actionId))?.status).toBe('denied');
    // The saga still runs once: it finds the action denied and only writes its receipt.
    expect(deps.workflow.started).toEqual([{ actionId: body.actionId }]);
    const again = await postAction({ principal, idempotencyKey: 'd', body: echoCall() }, deps);
    expect(again.status).toBe(403);
    expect(again.headers['idempotent-replayed']).toBe('true');
  });
});

describe('the action ledger', () => {
  function record(id: string, sub: string): ActionRecord {
    const at = new Date().toISOString();
    return {
      id, principal: { sub, roles: [] }, actor: { name: 'a' }, envelope: echoCall(), kind: 'single', mode: 'execute',
      planHash: 'h', status: 'received', createdAt: at, updatedAt: at, version: 1,
    };
  }

  it('status only moves forward, also under concurrent writers', async () => {
    const id = 'act_01J00000000000000000000001';
    await env.ledger.createAction(record(id, 'forward'));
    expect(await env.ledger.createAction(record(id, 'forward'))).toBe('exists');
    // 30 writers race to move it to running; a single one wins each move.
    const results = await Promise.allSettled(Array.from({ length: 30 }, () => env.ledger.transition(id, 'running')));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof StatusTransitionError)).toBe(true);
    // Racing terminal writers: exactly one terminal state wins, and nothing moves after it.
    // (Only terminal targets: running → compensating → failed is two legal moves, and which
    // writer lands first is up to the engine — DynamoDB Local orders them unlike dynalite.)
    const terminal = await Promise.allSettled([
      env.ledger.transition(id, 'completed'),
      env.ledger.transition(id, 'failed'),
      env.ledger.transition(id, 'denied'),
    ]);
    expect(terminal.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const after = await env.ledger.getAction(id);
    await expect(env.ledger.transition(id, 'running')).rejects.toBeInstanceOf(StatusTransitionError);
    await expect(env.ledger.transition(id, 'received' as never)).rejects.toBeInstanceOf(StatusTransitionError);
    expect((await env.ledger.getAction(id))?.status).toBe(after?.status);
    expect(after?.version).toBe(3);
  });

  it('lists a principal’s actions newest first, page by page, from start positions it builds itself', async () => {
    const ids = ['act_01J00000000000000000000010', 'act_01J00000000000000000000011', 'act_01J00000000000000000000012'];
    for (const id of ids) await env.ledger.createAction(record(id, 'lister'));
    await env.ledger.createAction(record('act_01J00000000000000000000013', 'someone-else'));
    const page1 = await env.ledger.listActions({ principalSub: 'lister', limit: 2 });
    expect(page1.items.map((a) => a.id)).toEqual([ids[2], ids[1]]);
    expect(page1.lastEvaluated).toBe(ids[1]);
    const page2 = await env.ledger.listActions({ principalSub: 'lister', limit: 2, startAfter: page1.lastEvaluated! });
    expect(page2.items.map((a) => a.id)).toEqual([ids[0]]);
    // A position is only a place in the caller's own partition: it never reaches another's items.
    const elsewhere = await env.ledger.listActions({ principalSub: 'someone-else', limit: 5, startAfter: 'act_01J00000000000000000000099' });
    expect(elsewhere.items.map((a) => a.id)).toEqual(['act_01J00000000000000000000013']);
    // Anything but an action id is refused before DynamoDB is asked.
    for (const startAfter of ['garbage!!', '', 'ACTION#act_01J00000000000000000000010', 'act_01J0000000000000000000001']) {
      await expect(env.ledger.listActions({ principalSub: 'lister', limit: 2, startAfter })).rejects.toBeInstanceOf(InvalidCursorError);
    }
  });
});
