import {
  type AttributeValue,
  BatchGetItemCommand,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { randomUUID } from 'node:crypto';
import * as z from 'zod';
import { isTerminal, predecessorsOf, type ActionRecord, type ActionStatus, type CancelRequest, type StoredDecision } from '../../actions/action';
import { sha256Hex } from '../../shared/canonical-json';
import { toolsOf } from '../../actions/view';
import { ActionIdPattern, actionIdRange, actionIdTime } from '../../shared/ids';
import {
  InvalidCursorError,
  StatusTransitionError,
  LedgerThrottledError,
  type AccessLog,
  type AccessRefusal,
  type ActionPage,
  type ActionStore,
  type ListAllActionsQuery,
  type ClaimResult,
  type IdempotencyRecord,
  type IdempotencyStore,
  type ListActionsQuery,
  type ReadAnswer,
  type StoredResponse,
} from '../../ports/ledger';
import { conditionalWrite, guard, isConditionFailure, N, queryAll, S, type Item } from './dynamo-support';
import { decodeActionBody, encodeActionBody } from './action-body';

/** The UTC day before `day` (`YYYY-MM-DD`). */
function previousDay(day: string): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
}

/**
 * The ledger on DynamoDB: one table, single-item conditional writes only (no transactions,
 * so it runs unchanged on dynalite). The key design is written down in `ledger.md` beside
 * this file.
 */

export const Keys = {
  action: (id: string) => ({ pk: S(`ACTION#${id}`), sk: S('ACTION') }),
  actionByPrincipal: (sub: string) => `PRINCIPAL#${sub}`,
  /** An action's entry in the day index (every principal's actions of one UTC day). */
  actionRef: (id: string) => ({ pk: S(`ACTIONREF#${id}`), sk: S('DAY') }),
  actionsOfDay: (day: string) => `ACTIONS#${day}`,
  /** The access trail of one UTC day. */
  accessLog: (day: string) => `ACCESSLOG#${day}`,
  /** Keys are hashed: they are up to 255 arbitrary printable characters chosen by agents. */
  idempotency: (scope: string, key: string) => ({
    pk: S(`IDEMP#${sha256Hex(`${scope}\n${key}`)}`),
    sk: S('IDEMP'),
  }),
};

/** The day index's GSI: `gsi2pk` = `ACTIONS#<day>`, `gsi2sk` = the action id, on action items only (sparse). */
export const DAY_INDEX = 'gsi2';

/**
 * Ledger tables with no day index GSI (a local dynalite table persisted before it existed:
 * dynalite cannot add a GSI to a table). Their actions keep the separate day-index entries of
 * before (`ACTIONREF#`, in gsi1). Filled by the local runtime's table check (ensureTables),
 * never in AWS, where the stack declares the index.
 */
export const tablesWithoutDayIndex = new Set<string>();

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

/** The UTC day an action id was minted on: its day-index partition. */
const dayOfAction = (id: string) => new Date(actionIdTime(id)).toISOString().slice(0, 10);

/**
 * The day index's two streams: the action items' own keys (gsi2) and the separate entries of
 * before (gsi1, `ACTIONREF#`), each with the start key of a listing position (an action id
 * checked first; the item need not exist).
 */
const DAY_STREAMS = [
  { index: DAY_INDEX, pk: 'gsi2pk', sk: 'gsi2sk', startKey: (id: string, day: string): Item => ({ ...Keys.action(id), gsi2pk: S(Keys.actionsOfDay(day)), gsi2sk: S(id) }) },
  { index: 'gsi1', pk: 'gsi1pk', sk: 'gsi1sk', startKey: (id: string, day: string): Item => ({ ...Keys.actionRef(id), gsi1pk: S(Keys.actionsOfDay(day)), gsi1sk: S(id) }) },
] as const;

/** Index entries one page may examine in each index: a filter matching little cannot make one request read days of traffic. */
const MAX_EXAMINED_PER_PAGE = 500;
/** BatchGetItem's per-request key limit. */
const BATCH_KEYS = 100;

const AccessRefusalSchema = z.object({ at: z.string(), actor: z.string(), attempted: z.string(), requiredRole: z.string(), roles: z.array(z.string()) });

const StoredResponseSchema = z.object({
  status: z.number().int(),
  headers: z.record(z.string(), z.string()),
  body: z.unknown(),
});

/** The action record an `ACTION#<id>` / `ACTION` item holds (undefined: no item). */
export function toAction(item: Item | undefined): ActionRecord | undefined {
  // `body` (B, action-body.ts) since the body was compressed; `doc` (S, plain JSON) on items
  // no write has touched since: both read the same.
  const body = item?.body?.B;
  const doc = item?.doc?.S;
  if (!item || (!body && !doc)) return undefined;
  const record = body ? decodeActionBody(body) : (JSON.parse(doc!) as ActionRecord);
  // Status and version live in their own attributes (conditions read them); they win.
  record.status = (item.status?.S ?? record.status) as ActionStatus;
  record.version = Number(item.version?.N ?? record.version);
  return record;
}

export interface DynamoLedgerOptions {
  client: DynamoDBClient;
  tableName: string;
  /** Day-index entries one page of `listAllActions` may examine (500; tests make it small). */
  maxExaminedPerPage?: number;
}

export class DynamoLedger implements ActionStore, IdempotencyStore, AccessLog {
  private readonly client: DynamoDBClient;
  private readonly table: string;

  private readonly maxExamined: number;

  constructor(options: DynamoLedgerOptions) {
    this.client = options.client;
    this.table = options.tableName;
    this.maxExamined = options.maxExaminedPerPage ?? MAX_EXAMINED_PER_PAGE;
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
  }): Promise<StoredResponse | undefined> {
    // A failed condition: another request completed it first (its answer stands: see `pin`), or
    // took the claim over (ours outlived its lock) and will complete it.
    const stored = await this.storeAnswer(input, '#owner = :owner', { '#owner': 'owner' }, { ':owner': S(input.owner) });
    if (stored) return undefined;
    const record = await this.read(input.scope, input.key);
    return record?.state === 'complete' ? record.response : undefined;
  }

  async pin(input: { scope: string; key: string; actionId: string; response: StoredResponse; now: number; retentionMs: number }): Promise<StoredResponse> {
    // Any owner: the answer is the action's, not a request's.
    const stored = await this.storeAnswer(input, 'actionId = :aid', {}, { ':aid': S(input.actionId) });
    if (stored) return input.response;
    const record = await this.read(input.scope, input.key);
    return record?.state === 'complete' && record.actionId === input.actionId ? record.response : input.response;
  }

  /** Completes an in-progress claim with `response` where `condition` also holds; false when it does not. */
  private storeAnswer(
    input: { scope: string; key: string; response: StoredResponse; now: number; retentionMs: number },
    condition: string,
    names: Record<string, string>,
    values: Record<string, AttributeValue>,
  ): Promise<boolean> {
    return conditionalWrite(
      this.client,
      new UpdateItemCommand({
        TableName: this.table,
        Key: Keys.idempotency(input.scope, input.key),
        UpdateExpression: 'SET #state = :complete, #response = :response, expiresAt = :exp REMOVE lockExpiresAt',
        ConditionExpression: `#state = :inprog AND ${condition}`,
        ExpressionAttributeNames: { '#state': 'state', '#response': 'response', ...names },
        ExpressionAttributeValues: {
          ':complete': S('complete'),
          ':inprog': S('in_progress'),
          ':response': S(JSON.stringify(input.response)),
          ':exp': N(Math.ceil((input.now + input.retentionMs) / 1000)),
          ...values,
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

  /** Whether this table has the day index GSI (else actions get separate day-index entries). */
  private get dayIndexed(): boolean {
    return !tablesWithoutDayIndex.has(this.table);
  }

  private actionItem(action: ActionRecord): Item {
    return {
      ...Keys.action(action.id),
      gsi1pk: S(Keys.actionByPrincipal(action.principal.sub)),
      gsi1sk: S(actionSortKey(action.id)),
      // The day index (ledger.md): immutable facts only, projected into gsi2 (the principal and
      // the tools are what its listing filters on); no later write of the item changes them.
      ...(this.dayIndexed
        ? {
            gsi2pk: S(Keys.actionsOfDay(dayOfAction(action.id))),
            gsi2sk: S(action.id),
            principal: S(action.principal.sub),
            tools: { L: toolsOf(action.envelope).map((t) => S(t)) },
          }
        : {}),
      status: S(action.status),
      version: N(action.version),
      updatedAt: S(action.updatedAt),
      body: { B: encodeActionBody(action) },
    };
  }

  /**
   * The action's day-index entry as it was before the day index was on the action item (and
   * still is on a table without gsi2): immutable facts only (principal, tools), so it never
   * needs updating. Written before the action, so no action is ever missing from the index; an
   * entry whose action was never written is skipped by the listing.
   */
  private async putActionRef(action: ActionRecord): Promise<void> {
    // Conditional like every ledger write: a retried create finds its entry there and keeps it.
    await conditionalWrite(
      this.client,
      new PutItemCommand({
        TableName: this.table,
        Item: {
          ...Keys.actionRef(action.id),
          gsi1pk: S(Keys.actionsOfDay(dayOfAction(action.id))),
          gsi1sk: S(action.id),
          principal: S(action.principal.sub),
          tools: { L: toolsOf(action.envelope).map((t) => S(t)) },
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async createAction(action: ActionRecord): Promise<'created' | 'exists'> {
    // The item itself carries its day-index keys (gsi2): one write, and never an action
    // missing from the index nor an entry without its action.
    if (!this.dayIndexed) await this.putActionRef(action);
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

  async listAllActions(query: ListAllActionsQuery): Promise<ActionPage> {
    const { from, to } = actionIdRange(query.since.getTime(), query.until.getTime());
    if (query.startAfter !== undefined && !ActionIdPattern.test(query.startAfter)) throw new InvalidCursorError();
    const ids: string[] = [];
    let examined = 0;
    let last: string | undefined;
    // Days newest first, from the cursor's day (or `until`'s) back to `since`'s.
    let day = dayOfAction(query.startAfter ?? to);
    const firstDay = dayOfAction(from);
    let after: string | undefined = query.startAfter;
    const filters: string[] = [];
    const values: Item = { ':from': S(from), ':to': S(to) };
    // Names through placeholders: no attribute name can collide with a reserved word.
    const names: Record<string, string> = {};
    if (query.principalSub !== undefined) {
      filters.push('#who = :who');
      names['#who'] = 'principal';
      values[':who'] = S(query.principalSub);
    }
    if (query.tool !== undefined) {
      filters.push('contains(#tools, :tool)');
      names['#tools'] = 'tools';
      values[':tool'] = S(query.tool);
    }
    const filter = filters.length > 0 ? { FilterExpression: filters.join(' AND '), ExpressionAttributeNames: names } : {};
    // A day's two streams, merged: the action items' own day keys (gsi2) and the separate
    // entries actions had before (gsi1), which deployed tables still hold.
    const streams = this.dayIndexed ? DAY_STREAMS : DAY_STREAMS.filter((d) => d.index === 'gsi1');
    while (day >= firstDay) {
      const limit = Math.min(query.limit - ids.length, this.maxExamined - examined);
      const pages = await Promise.all(
        streams.map(async (stream) => {
          const out = await guard(() =>
            this.client.send(
              new QueryCommand({
                TableName: this.table,
                IndexName: stream.index,
                KeyConditionExpression: `${stream.pk} = :p AND ${stream.sk} BETWEEN :from AND :to`,
                ExpressionAttributeValues: { ...values, ':p': S(Keys.actionsOfDay(day)) },
                ...filter,
                ProjectionExpression: stream.sk,
                ScanIndexForward: false,
                Limit: limit,
                ...(after !== undefined ? { ExclusiveStartKey: stream.startKey(after, day) } : {}),
              }),
            ),
          );
          const lastKey = out.LastEvaluatedKey?.[stream.sk]?.S;
          if (lastKey !== undefined && !ActionIdPattern.test(lastKey)) throw new Error(`Unexpected listing key ${lastKey.slice(0, 80)}`);
          const found = (out.Items ?? []).map((item) => item[stream.sk]?.S).filter((id): id is string => id !== undefined && ActionIdPattern.test(id));
          return { found, lastKey, scanned: out.ScannedCount ?? 0 };
        }),
      );
      examined = Math.max(examined, ...pages.map((p) => examined + p.scanned));
      // Each stream has examined every entry down to its last key (all of them when it has
      // none), so both have down to the larger of those; what lies below waits for the next query.
      const bound = pages.reduce<string | undefined>((b, p) => (p.lastKey !== undefined && (b === undefined || p.lastKey > b) ? p.lastKey : b), undefined);
      // An action taken over across a deployment may have both an entry and its own keys: once.
      const merged = [...new Set(pages.flatMap((p) => p.found))].filter((id) => bound === undefined || id >= bound).sort((a, b) => (a < b ? 1 : -1));
      const room = query.limit - ids.length;
      ids.push(...merged.slice(0, room));
      if (merged.length > room) {
        // More than the page holds: continue after the last one it took.
        last = ids[ids.length - 1];
        break;
      }
      const finished = bound === undefined && day <= firstDay;
      if (finished) break;
      if (ids.length >= query.limit || examined >= this.maxExamined) {
        // Stopped early: continue after the last entry examined; when this day is done, after
        // the smallest id it could hold, so the next page starts on the day before.
        last = bound ?? actionIdRange(Date.parse(`${day}T00:00:00Z`), 0).from;
        break;
      }
      if (bound !== undefined) {
        after = bound;
        continue;
      }
      after = undefined;
      day = previousDay(day);
    }
    const actions = await this.getActions(ids);
    const items = ids
      .map((id) => actions.get(id))
      .filter((a): a is ActionRecord => a !== undefined && (query.status === undefined || a.status === query.status));
    return { items, ...(last !== undefined ? { lastEvaluated: last } : {}) };
  }

  /** Actions by id (consistent reads, in batches); ids with no action are absent from the map. */
  private async getActions(ids: readonly string[]): Promise<Map<string, ActionRecord>> {
    const found = new Map<string, ActionRecord>();
    for (let i = 0; i < ids.length; i += BATCH_KEYS) {
      let pending: Item[] | undefined = ids.slice(i, i + BATCH_KEYS).map((id) => Keys.action(id));
      for (let round = 0; pending && pending.length > 0 && round < 8; round++) {
        const request: Item[] = pending;
        const out = await guard(() => this.client.send(new BatchGetItemCommand({ RequestItems: { [this.table]: { Keys: request, ConsistentRead: true } } })));
        for (const item of out.Responses?.[this.table] ?? []) {
          const action = toAction(item);
          if (action) found.set(action.id, action);
        }
        pending = out.UnprocessedKeys?.[this.table]?.Keys as Item[] | undefined;
      }
      // A page with holes would silently drop actions: say the ledger is busy instead.
      if (pending && pending.length > 0) throw new LedgerThrottledError();
    }
    return found;
  }

  // ── access trail ───────────────────────────────────────────────────────────

  async recordAccessRefusal(refusal: AccessRefusal): Promise<void> {
    const at = refusal.at;
    await guard(() =>
      this.client.send(
        new PutItemCommand({
          TableName: this.table,
          // One partition per day keeps each small; the sort key orders the day's refusals.
          Item: { pk: S(Keys.accessLog(at.slice(0, 10))), sk: S(`EVENT#${at}#${randomUUID()}`), doc: S(JSON.stringify(refusal)) },
          // Never overwrites: every refusal is its own record.
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
  }

  async listAccessRefusals(day: string): Promise<AccessRefusal[]> {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new InvalidCursorError();
    const items = await queryAll(this.client, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :p AND begins_with(sk, :e)',
      ExpressionAttributeValues: { ':p': S(Keys.accessLog(day)), ':e': S('EVENT#') },
    });
    return items.map((item) => AccessRefusalSchema.parse(JSON.parse(item.doc?.S ?? '{}')));
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
        ...(isTerminal(to) ? { settledAt: now.toISOString() } : {}),
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
              // REMOVE doc: an item written before the body existed moves to it on its next write.
              UpdateExpression: 'SET #status = :to, version = :next, updatedAt = :at, body = :body REMOVE doc',
              ConditionExpression: '#status = :from AND version = :v',
              ExpressionAttributeNames: { '#status': 'status' },
              ExpressionAttributeValues: {
                ':to': S(to),
                ':from': S(current.status),
                ':v': N(current.version),
                ':next': N(next.version),
                ':at': S(next.updatedAt),
                ':body': { B: encodeActionBody(next) },
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

  async setReceiptKey(id: string, receiptKey: string, now: Date = new Date(), current?: ActionRecord, answer?: ReadAnswer): Promise<ActionRecord | undefined> {
    return this.patchDoc(id, (doc) => (doc.receiptKey === receiptKey ? undefined : { ...doc, receiptKey }), now, current, answer);
  }

  async getReadAnswer(id: string): Promise<{ action: ActionRecord; answer: ReadAnswer } | undefined> {
    const out = await guard(() => this.client.send(new GetItemCommand({ TableName: this.table, Key: Keys.action(id), ConsistentRead: true })));
    const item = out.Item;
    const waitMs = item?.answerWaitMs?.N;
    const action = toAction(item);
    // The answer holds for the action as that write left it: a later write of the item (none
    // is expected once it completed) voids it, and the replay takes the usual way.
    if (!action || waitMs === undefined || item?.answerVersion?.N !== String(action.version)) return undefined;
    return { action, answer: { waitMs: Number(waitMs) } };
  }

  /**
   * Read-modify-write of the action document under a version check; status never changes here.
   * Resolves with the document written, or undefined when there was nothing to change.
   */
  private async patchDoc(
    id: string,
    change: (current: ActionRecord) => ActionRecord | undefined,
    now: Date,
    known?: ActionRecord,
    answer?: ReadAnswer,
  ): Promise<ActionRecord | undefined> {
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
              // The read answer (ReadAnswer) beside the record, bound to the version this write makes.
              UpdateExpression: `SET version = :next, updatedAt = :at, body = :body${answer ? ', answerWaitMs = :wait, answerVersion = :next' : ''} REMOVE doc`,
              ConditionExpression: 'version = :v',
              ExpressionAttributeValues: {
                ':v': N(current.version),
                ':next': N(next.version),
                ':at': S(next.updatedAt),
                ':body': { B: encodeActionBody(next) },
                ...(answer ? { ':wait': N(answer.waitMs) } : {}),
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
