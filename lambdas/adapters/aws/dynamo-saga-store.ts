import {
  BatchGetItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { canonicalJson, sha256Hex } from '../../shared/canonical-json';
import type { AuditEvent, BeginStepResult, EventLog, GrantSummary, StepError, StepIndex, StepKey, StepKind, StepRecord, StepStore } from '../../ports/steps';
import type { ActionRecord } from '../../actions/action';
import { toAction } from './dynamo-ledger';
import { conditionalWrite, guard, isConditionFailure, N, queryAll, S, type Item } from './dynamo-support';

/**
 * Step records, grant uses and the per-action audit event chain on
 * the ledger table (see ledger.md). Single-item conditional writes only.
 */

const stepKey = (key: StepKey) => ({ pk: S(`STEP#${key.actionId}`), sk: S(`${key.kind}#${key.stepId}`) });
const EVENT_PREFIX = 'EVENT#';
const STEPDAY = 'STEPDAY#';
const GENESIS = '0'.repeat(64);

const ACTION_SK = 'ACTION';

function toEvent(item: Item): AuditEvent {
  const body = JSON.parse(item.doc?.S ?? '{}') as Omit<AuditEvent, 'hash' | 'prevHash'>;
  return { ...body, hash: item.hash?.S ?? '', prevHash: item.prevHash?.S ?? '' };
}

function parseJson(value: Item[string] | undefined): unknown {
  return value?.S === undefined ? undefined : (JSON.parse(value.S) as unknown);
}

function toStep(item: Item): StepRecord {
  const [kind, ...rest] = (item.sk?.S ?? '').split('#');
  const startedAt = item.startedAt?.S ?? '';
  const finishedAt = item.finishedAt?.S;
  const error = parseJson(item.lastError) as StepError | undefined;
  return {
    actionId: (item.pk?.S ?? '').slice('STEP#'.length),
    stepId: rest.join('#'),
    kind: kind === 'compensate' ? 'compensate' : 'forward',
    tool: item.tool?.S ?? '',
    status: (item.status?.S ?? 'in_progress') as StepRecord['status'],
    attempts: Number(item.attempts?.N ?? 0),
    idempotencyKey: item.idem?.S ?? '',
    input: parseJson(item.inputJson),
    ...(item.outputJson ? { output: parseJson(item.outputJson) } : {}),
    ...(error ? { error } : {}),
    grants: (parseJson(item.grantsJson) as GrantSummary[] | undefined) ?? [],
    dryRun: item.dryRun?.BOOL ?? false,
    ...(item.doubt?.N !== undefined ? { inDoubt: true } : {}),
    startedAt,
    ...(finishedAt ? { finishedAt, durationMs: Date.parse(finishedAt) - Date.parse(startedAt) } : {}),
  };
}

export class DynamoSagaStore implements StepStore, StepIndex, EventLog {
  private readonly client: DynamoDBClient;
  private readonly table: string;

  constructor(options: { client: DynamoDBClient; tableName: string }) {
    this.client = options.client;
    this.table = options.tableName;
  }

  async getStep(key: StepKey): Promise<StepRecord | undefined> {
    const item = await this.getStepItem(key);
    return item ? toStep(item) : undefined;
  }

  private async getStepItem(key: StepKey): Promise<Item | undefined> {
    const out = await guard(() => this.client.send(new GetItemCommand({ TableName: this.table, Key: stepKey(key), ConsistentRead: true })));
    return out.Item;
  }

  async beginStep(
    key: StepKey,
    attempt: { tool: string; input: unknown; idempotencyKey: string; grant: GrantSummary; dryRun: boolean },
    now: Date,
    known?: StepRecord | null,
  ): Promise<BeginStepResult> {
    const current = known === undefined ? await this.getStep(key) : (known ?? undefined);
    if (current?.status === 'complete') return { state: 'complete', record: current };
    const grants = [...(current?.grants ?? []), attempt.grant].slice(-20);
    // Forward steps that may commit are indexed by day for reconciliation (StepIndex).
    const indexed = key.kind === 'forward' && !attempt.dryRun;
    try {
      const out = await guard(() =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: stepKey(key),
            UpdateExpression:
              'SET #status = :inprog, attempts = if_not_exists(attempts, :zero) + :one, tool = :tool, idem = :idem, dryRun = :dry, startedAt = if_not_exists(startedAt, :now), inputJson = :input, grantsJson = :grants' +
              (indexed ? ', gsi1pk = if_not_exists(gsi1pk, :g1pk), gsi1sk = if_not_exists(gsi1sk, :g1sk)' : '') +
              // The earliest attempt whose outcome is not known yet: this one, unless one before it is.
              (indexed ? ', doubt = if_not_exists(doubt, :attempt)' : '') +
              ' ADD usedGrants :jtis',
            // Never reopen a completed step; `attempts` guards against a concurrent starter; a
            // grant names exactly this step, so its id in this record's set is its single use.
            ConditionExpression:
              '(attribute_not_exists(pk) OR #status <> :complete) AND (attribute_not_exists(attempts) OR attempts = :seen) AND NOT contains(usedGrants, :jti)',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: {
              ':inprog': S('in_progress'),
              ':complete': S('complete'),
              ':zero': N(0),
              ':one': N(1),
              ':seen': N(current?.attempts ?? 0),
              ':tool': S(attempt.tool),
              ':idem': S(attempt.idempotencyKey),
              ':dry': { BOOL: attempt.dryRun },
              ':now': S(now.toISOString()),
              ':input': S(JSON.stringify(attempt.input ?? null)),
              ':grants': S(JSON.stringify(grants)),
              ':jtis': { SS: [attempt.grant.jti] },
              ':jti': S(attempt.grant.jti),
              ...(indexed
                ? {
                    ':g1pk': S(`${STEPDAY}${(current?.startedAt ?? now.toISOString()).slice(0, 10)}`),
                    ':g1sk': S(`${key.actionId}#${key.stepId}`),
                    ':attempt': N((current?.attempts ?? 0) + 1),
                  }
                : {}),
            },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      return { state: 'started', record: toStep(out.Attributes ?? {}) };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const item = await this.getStepItem(key);
      const latest = item ? toStep(item) : undefined;
      if (latest?.status === 'complete') return { state: 'complete', record: latest };
      if (latest && item?.usedGrants?.SS?.includes(attempt.grant.jti)) return { state: 'replayed', record: latest };
      // Another attempt started at the same moment; retrying is safe (same idempotency key).
      return this.beginStep(key, attempt, now, latest ?? null);
    }
  }

  async completeStep(key: StepKey, output: unknown, now: Date): Promise<StepRecord> {
    try {
      const out = await guard(() =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: stepKey(key),
            UpdateExpression: 'SET #status = :complete, outputJson = :output, finishedAt = :now REMOVE lastError, doubt',
            ConditionExpression: '#status = :inprog',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: {
              ':complete': S('complete'),
              ':inprog': S('in_progress'),
              ':output': S(JSON.stringify(output ?? null)),
              ':now': S(now.toISOString()),
            },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      return toStep(out.Attributes ?? {});
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const latest = await this.getStep(key);
      if (latest?.status === 'complete') return latest;
      throw new Error(`Step ${key.actionId}/${key.kind}/${key.stepId} is not in progress`, { cause: error });
    }
  }

  async failStep(key: StepKey, error: StepError, final: boolean, now: Date, told?: number): Promise<void> {
    if (!final && told !== undefined) {
      // Clears the doubt only when the attempt the vendor answered is the earliest in doubt.
      const cleared = await conditionalWrite(
        this.client,
        new UpdateItemCommand({
          TableName: this.table,
          Key: stepKey(key),
          UpdateExpression: 'SET lastError = :err REMOVE doubt',
          ConditionExpression: 'attribute_exists(pk) AND #status <> :complete AND doubt = :told',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':complete': S('complete'),
            ':err': S(JSON.stringify({ name: error.name, message: error.message.slice(0, 500) })),
            ':told': N(told),
          },
        }),
      );
      if (cleared) return;
    }
    await conditionalWrite(
      this.client,
      new UpdateItemCommand({
        TableName: this.table,
        Key: stepKey(key),
        UpdateExpression: final
          ? 'SET #status = :failed, lastError = :err, finishedAt = :now'
          : 'SET lastError = :err',
        ConditionExpression: 'attribute_exists(pk) AND #status <> :complete',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':complete': S('complete'),
          ':err': S(JSON.stringify({ name: error.name, message: error.message.slice(0, 500) })),
          ...(final ? { ':failed': S('failed'), ':now': S(now.toISOString()) } : {}),
        },
      }),
    );
  }

  async listSteps(actionId: string): Promise<StepRecord[]> {
    const items = await queryAll(this.client, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': S(`STEP#${actionId}`) },
    });
    return items.map(toStep);
  }

  async getActionWithSteps(
    actionId: string,
    stepIds: readonly string[],
    kinds: readonly StepKind[],
  ): Promise<{ action: ActionRecord | undefined; records: StepRecord[] } | undefined> {
    // BatchGetItem takes 100 keys; a longer plan is read the usual way.
    if (stepIds.length * kinds.length + 1 > 100) return undefined;
    const Keys = [
      { pk: S(`ACTION#${actionId}`), sk: S(ACTION_SK) },
      ...kinds.flatMap((kind) => stepIds.map((stepId) => stepKey({ actionId, stepId, kind }))),
    ];
    const out = await guard(() => this.client.send(new BatchGetItemCommand({ RequestItems: { [this.table]: { Keys, ConsistentRead: true } } })));
    // Keys left unread (throttling): the caller reads the usual way rather than wait here.
    if ((out.UnprocessedKeys?.[this.table]?.Keys?.length ?? 0) > 0) return undefined;
    const items = out.Responses?.[this.table] ?? [];
    const action = toAction(items.find((item) => item.pk?.S === `ACTION#${actionId}` && item.sk?.S === ACTION_SK));
    const records = items.filter((item) => item.pk?.S === `STEP#${actionId}`).map(toStep);
    // In the order a query of the partition answers (by sort key), so callers see the same list either way.
    records.sort((a, b) => (`${a.kind}#${a.stepId}` < `${b.kind}#${b.stepId}` ? -1 : 1));
    return { action, records };
  }

  async listForwardSteps(day: string): Promise<StepKey[]> {
    const items = await queryAll(this.client, {
      TableName: this.table,
      IndexName: 'gsi1',
      // GSIs are eventually consistent only; a step started a moment ago is found next run.
      ConsistentRead: false,
      KeyConditionExpression: 'gsi1pk = :pk',
      ExpressionAttributeValues: { ':pk': S(`${STEPDAY}${day}`) },
      ProjectionExpression: 'pk, sk',
    });
    return items.map((item) => {
      const step = toStep(item);
      return { actionId: step.actionId, stepId: step.stepId, kind: step.kind };
    });
  }

  // ── audit events ───────────────────────────────────────────────────────────

  /**
   * The last event this store wrote per action. A hint only: the next append tries the
   * following sequence number straight away and falls back to reading the head when another
   * writer got there first (the conditional put keeps the chain from forking either way).
   */
  private readonly heads = new Map<string, { seq: number; hash: string }>();

  private async head(actionId: string): Promise<{ seq: number; hash: string }> {
    const last = await guard(() =>
      this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :ev)',
          ExpressionAttributeValues: { ':pk': S(`ACTION#${actionId}`), ':ev': S(EVENT_PREFIX) },
          ScanIndexForward: false,
          Limit: 1,
          ConsistentRead: true,
        }),
      ),
    );
    const prev = last.Items?.[0];
    return { seq: prev ? Number(prev.seq?.N ?? 0) : 0, hash: prev?.hash?.S ?? GENESIS };
  }

  hintEmpty(actionId: string): void {
    if (!this.heads.has(actionId)) this.heads.set(actionId, { seq: 0, hash: GENESIS });
  }

  async append(actionId: string, event: { type: string; actor: string; data?: Record<string, unknown> }, now = new Date()): Promise<AuditEvent> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const cached = this.heads.get(actionId);
      const written = await this.putAfter(actionId, cached ?? (await this.head(actionId)), event, now);
      if (written) return written;
    }
    throw new Error(`Could not append an audit event to ${actionId}`);
  }

  async appendOnce(
    actionId: string,
    event: { type: string; actor: string; data?: Record<string, unknown> },
    same: (existing: AuditEvent) => boolean,
    now = new Date(),
  ): Promise<{ event: AuditEvent; appended: boolean }> {
    for (let attempt = 0; attempt < 20; attempt++) {
      // The whole chain, read consistently: a writer that lost the race for this sequence
      // number sees the winner's event on its next read, so two writers never both append.
      const events = await this.list(actionId);
      const found = events.find(same);
      if (found) return { event: found, appended: false };
      const last = events[events.length - 1];
      const written = await this.putAfter(actionId, { seq: last?.seq ?? 0, hash: last?.hash ?? GENESIS }, event, now);
      if (written) return { event: written, appended: true };
    }
    throw new Error(`Could not append an audit event to ${actionId}`);
  }

  /** Writes the event after `prev`; undefined when another writer took that sequence number. */
  private async putAfter(
    actionId: string,
    prev: { seq: number; hash: string },
    event: { type: string; actor: string; data?: Record<string, unknown> },
    now: Date,
  ): Promise<AuditEvent | undefined> {
    const seq = prev.seq + 1;
    const prevHash = prev.hash;
    const body = { actionId, seq, type: event.type, at: now.toISOString(), actor: event.actor, data: event.data ?? {} };
    const hash = sha256Hex(`${prevHash}\n${canonicalJson(body)}`);
    try {
      await guard(() =>
        this.client.send(
          new PutItemCommand({
            TableName: this.table,
            Item: {
              pk: S(`ACTION#${actionId}`),
              sk: S(`${EVENT_PREFIX}${String(seq).padStart(8, '0')}`),
              seq: N(seq),
              hash: S(hash),
              prevHash: S(prevHash),
              doc: S(JSON.stringify(body)),
            },
            ConditionExpression: 'attribute_not_exists(sk)',
          }),
        ),
      );
    } catch (error) {
      // Another writer took this sequence number; the caller chains onto theirs.
      if (!isConditionFailure(error)) throw error;
      this.heads.delete(actionId);
      return undefined;
    }
    this.heads.delete(actionId);
    this.heads.set(actionId, { seq, hash });
    if (this.heads.size > 1_000) this.heads.delete(this.heads.keys().next().value!);
    return { ...body, hash, prevHash };
  }

  async list(actionId: string): Promise<AuditEvent[]> {
    const items = await queryAll(this.client, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :ev)',
      ExpressionAttributeValues: { ':pk': S(`ACTION#${actionId}`), ':ev': S(EVENT_PREFIX) },
    });
    return items.map(toEvent);
  }

  async listWithAction(actionId: string): Promise<{ action: ActionRecord | undefined; events: AuditEvent[] }> {
    // The action item (sk `ACTION`) sorts before its events (`EVENT#…`) in the same partition:
    // one consistent query reads both, as the receipt needs them, at one point in time.
    const items = await queryAll(this.client, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :action AND :last',
      ExpressionAttributeValues: { ':pk': S(`ACTION#${actionId}`), ':action': S(ACTION_SK), ':last': S(`${EVENT_PREFIX}\uffff`) },
      ConsistentRead: true,
    });
    const action = toAction(items.find((item) => item.sk?.S === ACTION_SK));
    return { action, events: items.filter((item) => item.sk?.S?.startsWith(EVENT_PREFIX)).map(toEvent) };
  }
}
