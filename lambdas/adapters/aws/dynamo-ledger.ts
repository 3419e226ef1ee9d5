import {
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { z } from 'zod';
import { isTerminal, predecessorsOf, type ActionRecord, type ActionStatus, type CancelRequest, type StoredDecision } from '../../actions/action';
import { sha256Hex } from '../../shared/canonical-json';
import { ActionIdPattern } from '../../shared/ids';
import {
  InvalidCursorError,
  StatusTransitionError,
  type ActionPage,
  type ActionStore,
  type ClaimResult,
  type IdempotencyRecord,
  type IdempotencyStore,
  type ListActionsQuery,
  type StoredResponse,
} from '../../ports/ledger';
import { conditionalWrite, guard, isConditionFailure, N, S, type Item } from './dynamo-support';

/**
 * The ledger on DynamoDB: one table, single-item conditional writes only (no transactions,
 * so it runs unchanged on dynalite). The key design is written down in `ledger.md` beside
 * this file.
 */

export const Keys = {
  action: (id: string) => ({ pk: S(`ACTION#${id}`), sk: S('ACTION') }),
  actionByPrincipal: (sub: string) => `PRINCIPAL#${sub}`,
  /** Keys are hashed: they are up to 255 arbitrary printable characters chosen by agents. */
  idempotency: (scope: string, key: string) => ({
    pk: S(`IDEMP#${sha256Hex(`${scope}\n${key}`)}`),
    sk: S('IDEMP'),
  }),
};

/** The gsi1 sort key of an action in its principal's listing. */
const actionSortKey = (id: string) => `ACTION#${id}`;

/**
 * The full start key of a listing position (table and index keys), built from an action id
 * that was checked first: nothing a client sent is ever a key attribute.
 */
function actionStartKey(id: string, gsi1pk: string): Item {
  if (!ActionIdPattern.test(id)) throw new InvalidCursorError();
  return { ...Keys.action(id), gsi1pk: S(gsi1pk), gsi1sk: S(actionSortKey(id)) };
}

/** The action id at a LastEvaluatedKey; these keys come from our own items. */
function positionOf(key: Item | undefined): string | undefined {
  const sortKey = key?.gsi1sk?.S;
  if (sortKey === undefined) return undefined;
  const id = sortKey.slice(actionSortKey('').length);
  if (!sortKey.startsWith(actionSortKey('')) || !ActionIdPattern.test(id)) throw new Error(`Unexpected listing key ${sortKey.slice(0, 80)}`);
  return id;
}

const StoredResponseSchema = z.object({
  status: z.number().int(),
  headers: z.record(z.string(), z.string()),
  body: z.unknown(),
});

function toAction(item: Item | undefined): ActionRecord | undefined {
  const doc = item?.doc?.S;
  if (!doc) return undefined;
  const record = JSON.parse(doc) as ActionRecord;
  // Status and version live in their own attributes (conditions read them); they win.
  record.status = (item.status?.S ?? record.status) as ActionStatus;
  record.version = Number(item.version?.N ?? record.version);
  return record;
}

export interface DynamoLedgerOptions {
  client: DynamoDBClient;
  tableName: string;
}

export class DynamoLedger implements ActionStore, IdempotencyStore {
  private readonly client: DynamoDBClient;
  private readonly table: string;

  constructor(options: DynamoLedgerOptions) {
    this.client = options.client;
    this.table = options.tableName;
  }

  // ── idempotency ────────────────────────────────────────────────────────────

  async claim(input: {
    scope: string;
    key: string;
    fingerprint: string;
    proposedActionId: string;
    now: number;
    lockMs: number;
    retentionMs: number;
  }): Promise<ClaimResult> {
    const owner = `${input.proposedActionId}:${Math.random().toString(36).slice(2, 10)}`;
    const key = Keys.idempotency(input.scope, input.key);
    const values = {
      ':inprog': S('in_progress'),
      ':fp': S(input.fingerprint),
      ':lock': N(input.now + input.lockMs),
      ':owner': S(owner),
      ':exp': N(Math.ceil((input.now + input.retentionMs) / 1000)),
      ':nowSec': N(Math.floor(input.now / 1000)),
    };
    // 1. A new key, or one whose retention has run out: a fresh claim with a fresh action id.
    try {
      await guard(() =>
        this.client.send(
          new PutItemCommand({
            TableName: this.table,
            Item: {
              ...key,
              state: S('in_progress'),
              fingerprint: S(input.fingerprint),
              actionId: S(input.proposedActionId),
              lockExpiresAt: N(input.now + input.lockMs),
              owner: S(owner),
              expiresAt: N(Math.ceil((input.now + input.retentionMs) / 1000)),
            },
            ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :nowSec',
            ExpressionAttributeValues: { ':nowSec': values[':nowSec'] },
          }),
        ),
      );
      return { outcome: 'claimed', actionId: input.proposedActionId, owner, takenOver: false };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    // 2. An abandoned claim for the same payload: take it over and keep its action id, so the
    //    retry finishes what the crashed request started instead of starting a second action.
    try {
      const out = await guard(() =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: key,
            UpdateExpression: 'SET lockExpiresAt = :lock, #owner = :owner, expiresAt = :exp',
            ConditionExpression: '#state = :inprog AND lockExpiresAt < :now AND fingerprint = :fp',
            ExpressionAttributeNames: { '#state': 'state', '#owner': 'owner' },
            ExpressionAttributeValues: {
              ':inprog': values[':inprog'],
              ':fp': values[':fp'],
              ':lock': values[':lock'],
              ':owner': values[':owner'],
              ':exp': values[':exp'],
              ':now': N(input.now),
            },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      const actionId = out.Attributes?.actionId?.S ?? input.proposedActionId;
      return { outcome: 'claimed', actionId, owner, takenOver: true };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    const record = await this.read(input.scope, input.key);
    if (!record) {
      // Released between our attempts: let the caller retry from the start.
      return this.claim(input);
    }
    return { outcome: 'exists', record };
  }

  async complete(input: {
    scope: string;
    key: string;
    owner: string;
    response: StoredResponse;
    now: number;
    retentionMs: number;
  }): Promise<void> {
    // Another request took the claim over (ours outlived its lock); it will complete it.
    await conditionalWrite(
      this.client,
      new UpdateItemCommand({
        TableName: this.table,
        Key: Keys.idempotency(input.scope, input.key),
        UpdateExpression: 'SET #state = :complete, #response = :response, expiresAt = :exp REMOVE lockExpiresAt',
        ConditionExpression: '#state = :inprog AND #owner = :owner',
        ExpressionAttributeNames: { '#state': 'state', '#owner': 'owner', '#response': 'response' },
        ExpressionAttributeValues: {
          ':complete': S('complete'),
          ':inprog': S('in_progress'),
          ':owner': S(input.owner),
          ':response': S(JSON.stringify(input.response)),
          ':exp': N(Math.ceil((input.now + input.retentionMs) / 1000)),
        },
      }),
    );
  }

  async release(input: { scope: string; key: string; owner: string }): Promise<void> {
    await conditionalWrite(
      this.client,
      new DeleteItemCommand({
        TableName: this.table,
        Key: Keys.idempotency(input.scope, input.key),
        ConditionExpression: '#state = :inprog AND #owner = :owner',
        ExpressionAttributeNames: { '#state': 'state', '#owner': 'owner' },
        ExpressionAttributeValues: { ':inprog': S('in_progress'), ':owner': S(input.owner) },
      }),
    );
  }

  async read(scope: string, key: string): Promise<IdempotencyRecord | undefined> {
    const out = await guard(() =>
      this.client.send(
        new GetItemCommand({ TableName: this.table, Key: Keys.idempotency(scope, key), ConsistentRead: true }),
      ),
    );
    const item = out.Item;
    if (!item) return undefined;
    const fingerprint = item.fingerprint?.S ?? '';
    const actionId = item.actionId?.S ?? '';
    if (item.state?.S === 'complete' && item.response?.S) {
      const response = StoredResponseSchema.parse(JSON.parse(item.response.S)) as StoredResponse;
      return { state: 'complete', fingerprint, actionId, response };
    }
    return {
      state: 'in_progress',
      fingerprint,
      actionId,
      lockExpiresAt: Number(item.lockExpiresAt?.N ?? 0),
      owner: item.owner?.S ?? '',
    };
  }

  // ── actions ────────────────────────────────────────────────────────────────

  private actionItem(action: ActionRecord): Item {
    return {
      ...Keys.action(action.id),
      gsi1pk: S(Keys.actionByPrincipal(action.principal.sub)),
      gsi1sk: S(actionSortKey(action.id)),
      status: S(action.status),
      version: N(action.version),
      updatedAt: S(action.updatedAt),
      doc: S(JSON.stringify(action)),
    };
  }

  async createAction(action: ActionRecord): Promise<'created' | 'exists'> {
    return (await conditionalWrite(
      this.client,
      new PutItemCommand({
        TableName: this.table,
        Item: this.actionItem(action),
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    )) ? 'created' : 'exists';
  }

  async getAction(id: string): Promise<ActionRecord | undefined> {
    const out = await guard(() =>
      this.client.send(new GetItemCommand({ TableName: this.table, Key: Keys.action(id), ConsistentRead: true })),
    );
    return toAction(out.Item);
  }

  async listActions(query: ListActionsQuery): Promise<ActionPage> {
    const gsi1pk = Keys.actionByPrincipal(query.principalSub);
    const start = query.startAfter !== undefined ? actionStartKey(query.startAfter, gsi1pk) : undefined;
    const out = await guard(() =>
      this.client.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: 'gsi1',
          KeyConditionExpression: 'gsi1pk = :p AND begins_with(gsi1sk, :prefix)',
          ExpressionAttributeValues: {
            ':p': S(gsi1pk),
            ':prefix': S('ACTION#'),
            ...(query.status ? { ':s': S(query.status) } : {}),
          },
          ...(query.status
            ? { FilterExpression: '#status = :s', ExpressionAttributeNames: { '#status': 'status' } }
            : {}),
          ScanIndexForward: false,
          Limit: query.limit,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      ),
    );
    const items = (out.Items ?? []).map(toAction).filter((a): a is ActionRecord => a !== undefined);
    const lastEvaluated = positionOf(out.LastEvaluatedKey);
    return { items, ...(lastEvaluated ? { lastEvaluated } : {}) };
  }

  async transition(
    id: string,
    to: ActionStatus,
    patch: { statusReason?: string; decision?: StoredDecision; result?: unknown; receiptKey?: string; approvalId?: string } = {},
    now: Date = new Date(),
    known?: ActionRecord,
  ): Promise<ActionRecord> {
    const allowedFrom = predecessorsOf(to);
    // Optimistic loop: re-read after losing a race and try again only if the move is still legal.
    let hint = known?.id === id ? known : undefined;
    for (let attempt = 0; attempt < 10; attempt++) {
      const fromHint = hint !== undefined;
      const current = hint ?? (await this.getAction(id));
      hint = undefined;
      if (!current || !allowedFrom.includes(current.status)) {
        if (fromHint) continue; // the caller's copy may be stale: decide on a fresh read
        throw new StatusTransitionError(id, to, current?.status);
      }
      const next: ActionRecord = {
        ...current,
        status: to,
        updatedAt: now.toISOString(),
        version: current.version + 1,
        ...(patch.statusReason !== undefined ? { statusReason: patch.statusReason } : {}),
        ...(patch.decision !== undefined ? { decision: patch.decision } : {}),
        ...(patch.result !== undefined ? { result: patch.result } : {}),
        ...(patch.receiptKey !== undefined ? { receiptKey: patch.receiptKey } : {}),
        ...(patch.approvalId !== undefined
          ? { approvalIds: [...new Set([...(current.approvalIds ?? []), patch.approvalId])] }
          : {}),
      };
      try {
        await guard(() =>
          this.client.send(
            new UpdateItemCommand({
              TableName: this.table,
              Key: Keys.action(id),
              UpdateExpression: 'SET #status = :to, version = :next, updatedAt = :at, doc = :doc',
              ConditionExpression: '#status = :from AND version = :v',
              ExpressionAttributeNames: { '#status': 'status' },
              ExpressionAttributeValues: {
                ':to': S(to),
                ':from': S(current.status),
                ':v': N(current.version),
                ':next': N(next.version),
                ':at': S(next.updatedAt),
                ':doc': S(JSON.stringify(next)),
              },
            }),
          ),
        );
        return next;
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
    }
    const latest = await this.getAction(id);
    throw new StatusTransitionError(id, to, latest?.status);
  }

  async setDecision(id: string, decision: StoredDecision, now: Date = new Date()): Promise<void> {
    await this.patchDoc(id, (current) => ({ ...current, decision }), now);
  }

  async requestCancel(id: string, cancel: CancelRequest, now: Date = new Date()): Promise<ActionRecord | undefined> {
    if (!(await this.getAction(id))) return undefined;
    await this.patchDoc(id, (current) => (current.cancel || isTerminal(current.status) ? undefined : { ...current, cancel }), now);
    return this.getAction(id);
  }

  async setReceiptKey(id: string, receiptKey: string, now: Date = new Date(), current?: ActionRecord): Promise<ActionRecord | undefined> {
    return this.patchDoc(id, (doc) => (doc.receiptKey === receiptKey ? undefined : { ...doc, receiptKey }), now, current);
  }

  /**
   * Read-modify-write of the action document under a version check; status never changes here.
   * Resolves with the document written, or undefined when there was nothing to change.
   */
  private async patchDoc(id: string, change: (current: ActionRecord) => ActionRecord | undefined, now: Date, known?: ActionRecord): Promise<ActionRecord | undefined> {
    for (let attempt = 0; attempt < 10; attempt++) {
      // A caller's copy serves the first attempt; the version check refuses it if it is stale.
      const current = attempt === 0 && known?.id === id ? known : await this.getAction(id);
      if (!current) throw new StatusTransitionError(id, 'received', undefined);
      const changed = change(current);
      if (!changed) return undefined;
      const next = { ...changed, status: current.status, updatedAt: now.toISOString(), version: current.version + 1 };
      try {
        await guard(() =>
          this.client.send(
            new UpdateItemCommand({
              TableName: this.table,
              Key: Keys.action(id),
              UpdateExpression: 'SET version = :next, updatedAt = :at, doc = :doc',
              ConditionExpression: 'version = :v',
              ExpressionAttributeValues: {
                ':v': N(current.version),
                ':next': N(next.version),
                ':at': S(next.updatedAt),
                ':doc': S(JSON.stringify(next)),
              },
            }),
          ),
        );
        return next;
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
    }
    throw new Error(`Could not update action ${id}: too many concurrent writers`);
  }
}
