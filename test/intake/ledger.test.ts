import { GetItemCommand, PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActionRecord, StoredDecision } from '../../lambdas/actions/action';
import { defaultIntakeConfig } from '../../lambdas/intake/intake';
import { postAction, type IntakeResponse } from '../../lambdas/intake/http';
import { ProblemError } from '../../lambdas/shared/problem';
import { fingerprint, sha256Hex } from '../../lambdas/shared/canonical-json';
import { InvalidCursorError, StatusTransitionError, type ReadAnswer } from '../../lambdas/ports/ledger';
import { DynamoSagaStore } from '../../lambdas/adapters/aws/dynamo-saga-store';
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

describe('the read fast path’s answer, recorded with the receipt key instead of under the key', () => {
  /** A read path that ends the action as RunRead does: completed, its receipt key recorded with the answer. */
  function fakeReadPath(store: DynamoSagaStore, record = true) {
    return {
      runs: 0,
      async run(actionId: string, options: { action?: ActionRecord; answer?: ReadAnswer } = {}) {
        this.runs++;
        const at = new Date(clock);
        const running = await env.ledger.transition(actionId, 'running', {}, at, options.action);
        const key = { actionId, stepId: 'call', kind: 'forward' as const };
        await store.beginStep(key, { tool: 'echo.say', input: { message: 'r' }, idempotencyKey: 'i', grant: { jti: `j-${actionId}`, scope: 's', exp: 1 }, dryRun: false }, at, null);
        const step = await store.completeStep(key, { echoed: 'r' }, at);
        const completed = await env.ledger.transition(actionId, 'completed', { result: { echoed: 'r' } }, at, running);
        const answer = record ? options.answer : undefined;
        const written = await env.ledger.setReceiptKey(actionId, `receipts/dt=2026-03-01/${actionId}.json`, at, completed, answer);
        return { action: written!, steps: [step], ...(answer ? { answered: answer } : {}) };
      },
    };
  }
  let clock = Date.parse('2026-03-01T00:00:00Z');
  const idem = (sub: string, key: string) => env.dynamo.client.send(new GetItemCommand({ TableName: env.tableName, Key: { pk: { S: `IDEMP#${sha256Hex(`${sub}\n${key}`)}` }, sk: { S: 'IDEMP' } }, ConsistentRead: true }));

  it('answers without storing the answer under the key; a duplicate, and a retry after the lock lapsed, get it back byte for byte', async () => {
    const principal = { ...alice, sub: 'read-answer' };
    const store = new DynamoSagaStore({ client: env.dynamo.client, tableName: env.tableName });
    const readPath = fakeReadPath(store);
    const deps = intakeDeps(env.ledger, { steps: store, readPath, now: () => clock, config: { ...defaultIntakeConfig, syncWaitMs: 3_000, inProgressWaitMs: 0 } });
    const first = await postAction({ principal, idempotencyKey: 'r1', body: echoCall('r') }, deps);
    expect(first.status).toBe(200);
    expect(first.headers['preference-applied']).toBe('wait=3');
    // Nothing stored under the key: the claim is all there is.
    expect((await idem(principal.sub, 'r1')).Item?.state?.S).toBe('in_progress');
    // A duplicate while the claim's lock holds, asking for another wait: the same answer.
    clock += 1_000;
    const dup = await postAction({ principal, idempotencyKey: 'r1', body: echoCall('r'), prefer: 'wait=9' }, deps);
    expect(dup.headers['idempotent-replayed']).toBe('true');
    const { ['idempotent-replayed']: _, ...dupHeaders } = dup.headers;
    expect(dupHeaders).toEqual(first.headers);
    expect(JSON.stringify(dup.body)).toBe(JSON.stringify(first.body));
    // Now stored under the key, as rebuilt.
    const pinned = (await idem(principal.sub, 'r1')).Item;
    expect(pinned?.state?.S).toBe('complete');
    expect(JSON.parse(pinned!.response!.S!)).toEqual({ status: first.status, headers: first.headers, body: first.body });
    // A request that never stored its answer and whose claim's lock lapsed (another key here: the
    // one above is stored now) is not taken over into a second run: the retry gets the answer.
    const second = await postAction({ principal, idempotencyKey: 'r2', body: echoCall('r') }, deps);
    clock += 31_000;
    const retried = await postAction({ principal, idempotencyKey: 'r2', body: echoCall('r') }, deps);
    expect(retried.headers['idempotent-replayed']).toBe('true');
    expect(JSON.stringify(retried.body)).toBe(JSON.stringify(second.body));
    expect(readPath.runs).toBe(2);
    // Same key, different body: still refused.
    const other = await answer(() => postAction({ principal, idempotencyKey: 'r2', body: echoCall('other') }, deps));
    expect(other.status).toBe(422);
    // Kept the full retention after the answer, though nothing was stored under the key then:
    // the claim's own retention reaches past the longest wait.
    const third = await postAction({ principal, idempotencyKey: 'r3', body: echoCall('r') }, deps);
    clock += defaultIntakeConfig.idempotencyRetentionMs + 5_000;
    const late = await postAction({ principal, idempotencyKey: 'r3', body: echoCall('r') }, deps);
    expect(late.headers['idempotent-replayed']).toBe('true');
    expect(JSON.stringify(late.body)).toBe(JSON.stringify(third.body));
    expect(readPath.runs).toBe(3);
  });

  it('stores the answer under the key as before when the read path did not record it', async () => {
    const principal = { ...alice, sub: 'read-unrecorded' };
    const store = new DynamoSagaStore({ client: env.dynamo.client, tableName: env.tableName });
    const deps = intakeDeps(env.ledger, { steps: store, readPath: fakeReadPath(store, false), now: () => clock, config: { ...defaultIntakeConfig, syncWaitMs: 3_000 } });
    const first = await postAction({ principal, idempotencyKey: 'u1', body: echoCall('r') }, deps);
    expect(first.status).toBe(200);
    expect((await idem(principal.sub, 'u1')).Item?.state?.S).toBe('complete');
  });

  it('the first answer stored under a key stands: a later completion by the claim’s owner answers it', async () => {
    const now = Date.parse('2026-03-02T00:00:00Z');
    const claim = await env.ledger.claim({ scope: 'pin', key: 'k', fingerprint: 'f', proposedActionId: 'act_01J00000000000000000000001', now, lockMs: 30_000, retentionMs: 86_400_000 });
    expect(claim.outcome).toBe('claimed');
    if (claim.outcome !== 'claimed') return;
    const rebuilt = { status: 200, headers: { a: 'b' }, body: { done: true } };
    // Another action's id never pins this key.
    const elsewhere = await env.ledger.pin({ scope: 'pin', key: 'k', actionId: 'act_01J00000000000000000000002', response: { status: 500, headers: {}, body: null }, now, retentionMs: 86_400_000 });
    expect(elsewhere.status).toBe(500);
    expect((await env.ledger.read('pin', 'k'))?.state).toBe('in_progress');
    expect(await env.ledger.pin({ scope: 'pin', key: 'k', actionId: claim.actionId, response: rebuilt, now, retentionMs: 86_400_000 })).toEqual(rebuilt);
    // The owner, which meanwhile gave up on the read and answers 202, answers the stored one.
    const late = await env.ledger.complete({ scope: 'pin', key: 'k', owner: claim.owner, response: { status: 202, headers: {}, body: {} }, now, retentionMs: 86_400_000 });
    expect(late).toEqual(rebuilt);
    expect(await env.ledger.pin({ scope: 'pin', key: 'k', actionId: claim.actionId, response: { status: 201, headers: {}, body: 1 }, now, retentionMs: 86_400_000 })).toEqual(rebuilt);
  });

  it('a recorded answer holds only for the version its write made', async () => {
    const at = new Date('2026-03-03T00:00:00Z');
    const id = 'act_01J00000000000000000000003';
    const action = { id, principal: { sub: 'v', roles: [] }, actor: { name: 'r' }, envelope: echoCall('v'), kind: 'call', mode: 'live', planHash: 'h', status: 'received', createdAt: at.toISOString(), updatedAt: at.toISOString(), version: 1 } as unknown as ActionRecord;
    await env.ledger.createAction(action);
    const completed = await env.ledger.transition(id, 'completed', {}, at, await env.ledger.transition(id, 'running', {}, at, action));
    expect(await env.ledger.getReadAnswer(id)).toBeUndefined();
    const written = await env.ledger.setReceiptKey(id, 'receipts/a.json', at, completed, { waitMs: 5_000 });
    const found = await env.ledger.getReadAnswer(id);
    expect(found).toEqual({ action: written, answer: { waitMs: 5_000 } });
    expect(found?.action).toEqual(await env.ledger.getAction(id));
    // Any later write of the item voids it.
    await env.ledger.setReceiptKey(id, 'receipts/b.json', at);
    expect(await env.ledger.getReadAnswer(id)).toBeUndefined();
  });
});

describe('a synchronous answer (Prefer: wait)', () => {
  it('is read from the ledger when the workflow says it ended, not at a later poll', async () => {
    // Prepare: a workflow that ends the action (completed, receipt recorded) and then says so;
    // intake's sleep never ends, so only that end can bring the answer.
    const principal = { ...alice, sub: 'sync-wake' };
    let end: () => void = () => undefined;
    const ended = new Promise<void>((resolve) => (end = resolve));
    const workflow = {
      started: [] as string[],
      async start(actionId: string) {
        workflow.started.push(actionId);
        void (async () => {
          const running = await env.ledger.transition(actionId, 'running');
          const done = await env.ledger.transition(actionId, 'completed', {}, undefined, running);
          await env.ledger.setReceiptKey(actionId, `receipts/${actionId}.json`, undefined, done);
          end();
        })();
      },
      ended: (actionId: string) => (workflow.started.includes(actionId) ? ended : undefined),
    };
    const deps = intakeDeps(env.ledger, { workflow: workflow as never, sleep: () => new Promise<void>(() => undefined), config: { ...defaultIntakeConfig } });
    // Act
    const res = await postAction({ principal, idempotencyKey: 'wake', body: echoCall(), prefer: 'wait=5' }, deps);
    // Assess
    expect(res.status).toBe(200);
    expect((res.body as { status: string }).status).toBe('completed');
    expect(workflow.started).toHaveLength(1);
  });

  it('without an end from the workflow, polls the ledger as before', async () => {
    // Prepare: the action ends before the first read; the workflow says nothing about ends.
    const principal = { ...alice, sub: 'sync-poll' };
    const workflow = {
      async start(actionId: string) {
        const running = await env.ledger.transition(actionId, 'running');
        const done = await env.ledger.transition(actionId, 'completed', {}, undefined, running);
        await env.ledger.setReceiptKey(actionId, `receipts/${actionId}.json`, undefined, done);
      },
    };
    const deps = intakeDeps(env.ledger, { workflow: workflow as never, config: { ...defaultIntakeConfig } });
    // Act
    const res = await postAction({ principal, idempotencyKey: 'poll', body: echoCall(), prefer: 'wait=5' }, deps);
    // Assess
    expect((res.body as { status: string }).status).toBe('completed');
  });
});

describe('the action ledger', () => {
  /** The decision the shipped policies give an echo.say read (as bench:calls' read stores it). */
  function readDecision(): StoredDecision {
    const reasons = ['Read-tier tools have no side effects; any authenticated principal may use them.', 'Read-tier tools run without approval.'];
    const policyIds = ['read.request', 'read.unattended'];
    return {
      outcome: 'allow', policyIds, reasons, quorum: 0, approverRule: null,
      steps: [{ id: 'call', quorum: 0, approverRule: null, outcome: 'allow', policyIds, reasons }],
      policySetVersion: 'b'.repeat(64), evaluationMicros: 30472, shadow: [], limitsVersion: 'c'.repeat(64), decidedAt: '2030-01-01T00:00:00.000Z',
    };
  }

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

  it('reads an action item written before the body existed (JSON doc) and moves it to the body on its next write', async () => {
    const id = 'act_01J00000000000000000000020';
    const old: ActionRecord = { ...record(id, 'legacy'), decision: readDecision(), traceId: 't-1' };
    // The layout every action item had before action-body.ts: the record as JSON in `doc`.
    await env.dynamo.client.send(
      new PutItemCommand({
        TableName: env.tableName,
        Item: {
          pk: { S: `ACTION#${id}` }, sk: { S: 'ACTION' }, gsi1pk: { S: 'PRINCIPAL#legacy' }, gsi1sk: { S: `ACTION#${id}` },
          status: { S: old.status }, version: { N: String(old.version) }, updatedAt: { S: old.updatedAt }, doc: { S: JSON.stringify(old) },
        },
      }),
    );
    expect(await env.ledger.getAction(id)).toStrictEqual(old);
    expect((await env.ledger.listActions({ principalSub: 'legacy', limit: 5 })).items).toStrictEqual([old]);
    const at = new Date('2030-01-01T00:00:00.000Z');
    const running = await env.ledger.transition(id, 'running', { statusReason: 'go' }, at);
    expect(running).toStrictEqual({ ...old, status: 'running', statusReason: 'go', updatedAt: at.toISOString(), version: 2 });
    const raw = (await env.dynamo.client.send(new GetItemCommand({ TableName: env.tableName, Key: { pk: { S: `ACTION#${id}` }, sk: { S: 'ACTION' } }, ConsistentRead: true }))).Item!;
    expect(raw.doc).toBeUndefined();
    expect(raw.body?.B?.[0]).toBe(1);
    expect(await env.ledger.getAction(id)).toStrictEqual(running);
    // A document-only change (patchDoc) of an old item moves it too.
    const id2 = 'act_01J00000000000000000000021';
    const old2 = record(id2, 'legacy');
    await env.dynamo.client.send(
      new PutItemCommand({
        TableName: env.tableName,
        Item: { pk: { S: `ACTION#${id2}` }, sk: { S: 'ACTION' }, status: { S: old2.status }, version: { N: '1' }, updatedAt: { S: old2.updatedAt }, doc: { S: JSON.stringify(old2) } },
      }),
    );
    const patched = await env.ledger.setReceiptKey(id2, 'receipts/x.json', at);
    expect(patched).toStrictEqual({ ...old2, receiptKey: 'receipts/x.json', updatedAt: at.toISOString(), version: 2 });
    expect(await env.ledger.getAction(id2)).toStrictEqual(patched);
  });

  it('a typical read action’s item stays under 1 KB: each of its writes is one write unit, in the table and in gsi1', async () => {
    const id = 'act_01J00000000000000000000030';
    // Units per write of the action item, table and index apart (INDEXES: DynamoDB Local reports
    // gsi1's share, dynalite only the table's).
    const units: { table: number; gsi1: number | undefined }[] = [];
    const client = env.dynamo.client;
    const name = 'action-item-units';
    client.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Item?: { pk?: { S?: string }; sk?: { S?: string } }; Key?: { pk?: { S?: string }; sk?: { S?: string } }; ReturnConsumedCapacity?: string };
        const key = input.Item ?? input.Key;
        const isWrite = 'UpdateExpression' in input || ('Item' in input && 'ConditionExpression' in input);
        if (!isWrite || key?.pk?.S !== `ACTION#${id}` || key.sk?.S !== 'ACTION') return next(args);
        const out = await next({ ...args, input: { ...input, ReturnConsumedCapacity: 'INDEXES' } });
        const consumed = (out.output as { ConsumedCapacity?: { CapacityUnits?: number; Table?: { CapacityUnits?: number }; GlobalSecondaryIndexes?: Record<string, { CapacityUnits?: number }> } }).ConsumedCapacity;
        units.push({ table: consumed?.Table?.CapacityUnits ?? consumed?.CapacityUnits ?? NaN, gsi1: consumed?.GlobalSecondaryIndexes?.gsi1?.CapacityUnits });
        return out;
      },
      { step: 'initialize', name },
    );
    try {
      const action: ActionRecord = { ...record(id, 'bench'), principal: { sub: 'bench', roles: ['Employee'], manager: 'boss' }, traceId: 'V9+Jg3Fo7hSdWA==', planHash: 'a'.repeat(64) };
      await env.ledger.createAction(action);
      await env.ledger.setDecision(id, readDecision());
      await env.ledger.transition(id, 'running');
      await env.ledger.transition(id, 'completed', { statusReason: 'every step completed', result: { message: 'hello 0', length: 7 } });
      await env.ledger.setReceiptKey(id, `receipts/dt=2030-01-01/${id}.json`);
    } finally {
      client.middlewareStack.remove(name);
    }
    expect(units).toHaveLength(5);
    for (const u of units) {
      expect(u.table).toBe(1);
      if (u.gsi1 !== undefined) expect(u.gsi1).toBeLessThanOrEqual(1);
    }
  });
});
