import { GetItemCommand, PutItemCommand, UpdateItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { monotonicFactory } from 'ulid';
import type {
  BreakerPhase,
  BreakerState,
  BreakerStore,
  BreakerTransition,
  Halt,
  HaltActor,
  HaltAuditEvent,
  HaltStore,
} from '../../ports/guardrails';
import { conditionalWrite, guard, isConditionFailure, N, queryAll, S, type Item } from './dynamo-support';

/**
 * Circuit breakers and halts on the ledger table (see ledger.md): a breaker is one item per
 * connector (`BREAKER#<connector>` / `STATE`) with its transitions beside it; halts live in
 * one small partition (`HALTS`), their audit trail in another (`HALTLOG`), and the actions a
 * halt met under `HALT#<id>`. Single-item conditional writes only.
 */

const breakerKey = (connector: string) => ({ pk: S(`BREAKER#${connector}`), sk: S('STATE') });
const PHASES: readonly BreakerPhase[] = ['closed', 'open', 'half_open'];

function toBreaker(connector: string, item: Item | undefined): BreakerState {
  const phase = item?.phase?.S as BreakerPhase | undefined;
  return {
    connector,
    phase: phase && PHASES.includes(phase) ? phase : 'closed',
    version: Number(item?.version?.N ?? 0),
    windowStart: Number(item?.windowStart?.N ?? 0),
    failures: Number(item?.failures?.N ?? 0),
    successes: Number(item?.successes?.N ?? 0),
    retryAt: Number(item?.retryAt?.N ?? 0),
    changedAt: Number(item?.changedAt?.N ?? 0),
  };
}

const nextUlid = monotonicFactory();
/** Sortable: the event's time, then a ULID (monotonic within a process, random across them). */
const eventSk = (at: string) => `EVENT#${at}#${nextUlid()}`;

export class DynamoGuardrailStore implements BreakerStore, HaltStore {
  private readonly client: DynamoDBClient;
  private readonly table: string;

  constructor(options: { client: DynamoDBClient; tableName: string }) {
    this.client = options.client;
    this.table = options.tableName;
  }

  // ── breakers ───────────────────────────────────────────────────────────────

  async getBreaker(connector: string): Promise<BreakerState> {
    const out = await guard(() => this.client.send(new GetItemCommand({ TableName: this.table, Key: breakerKey(connector), ConsistentRead: true })));
    return toBreaker(connector, out.Item);
  }

  async countBreaker(connector: string, field: 'failures' | 'successes', expect: { version: number; windowStart?: number }): Promise<number | undefined> {
    // A breaker never written has nothing to add to: its first count is a replace.
    if (expect.version === 0) return undefined;
    const values: Item = { ':one': N(1), ':v': N(expect.version) };
    let condition = 'version = :v';
    if (field === 'failures' && expect.windowStart !== undefined) {
      condition += ' AND windowStart = :ws';
      values[':ws'] = N(expect.windowStart);
    }
    try {
      const out = await guard(() =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: breakerKey(connector),
            UpdateExpression: 'ADD #f :one',
            ConditionExpression: condition,
            ExpressionAttributeNames: { '#f': field },
            ExpressionAttributeValues: values,
            ReturnValues: 'UPDATED_NEW',
          }),
        ),
      );
      return Number(out.Attributes?.[field]?.N ?? 0);
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  async replaceBreaker(next: BreakerState, expectVersion: number, transition?: BreakerTransition): Promise<boolean> {
    const applied = await conditionalWrite(
      this.client,
      new PutItemCommand({
        TableName: this.table,
        Item: {
          ...breakerKey(next.connector),
          phase: S(next.phase),
          version: N(expectVersion + 1),
          windowStart: N(next.windowStart),
          failures: N(next.failures),
          successes: N(next.successes),
          retryAt: N(next.retryAt),
          changedAt: N(next.changedAt),
        },
        ConditionExpression: expectVersion === 0 ? 'attribute_not_exists(pk)' : 'version = :v',
        ...(expectVersion === 0 ? {} : { ExpressionAttributeValues: { ':v': N(expectVersion) } }),
      }),
    );
    if (applied && transition) {
      await guard(() =>
        this.client.send(
          new PutItemCommand({
            TableName: this.table,
            Item: { pk: S(`BREAKER#${next.connector}`), sk: S(eventSk(transition.at)), doc: S(JSON.stringify(transition)) },
            ConditionExpression: 'attribute_not_exists(sk)',
          }),
        ),
      );
    }
    return applied;
  }

  async listBreakerTransitions(connector: string): Promise<BreakerTransition[]> {
    const items = await queryAll(this.client, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :ev)',
      ExpressionAttributeValues: { ':pk': S(`BREAKER#${connector}`), ':ev': S('EVENT#') },
    });
    return items.map((i) => JSON.parse(i.doc?.S ?? '{}') as BreakerTransition);
  }

  // ── halts ──────────────────────────────────────────────────────────────────

  async createHalt(halt: Halt): Promise<void> {
    await guard(() =>
      this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: { pk: S('HALTS'), sk: S(`HALT#${halt.id}`), status: S(halt.status), doc: S(JSON.stringify(halt)) },
          ConditionExpression: 'attribute_not_exists(sk)',
        }),
      ),
    );
  }

  async getHalt(id: string): Promise<Halt | undefined> {
    const out = await guard(() =>
      this.client.send(new GetItemCommand({ TableName: this.table, Key: { pk: S('HALTS'), sk: S(`HALT#${id}`) }, ConsistentRead: true })),
    );
    return out.Item ? (JSON.parse(out.Item.doc?.S ?? '{}') as Halt) : undefined;
  }

  async listHalts(): Promise<Halt[]> {
    const items = await queryAll(this.client, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :h)',
      ExpressionAttributeValues: { ':pk': S('HALTS'), ':h': S('HALT#') },
      ScanIndexForward: false,
    });
    return items.map((i) => JSON.parse(i.doc?.S ?? '{}') as Halt);
  }

  async resumeHalt(id: string, by: HaltActor, reason: string, at: Date): Promise<Halt | undefined> {
    const current = await this.getHalt(id);
    if (!current || current.status !== 'active') return undefined;
    const next: Halt = { ...current, status: 'resumed', resumedBy: by, resumedAt: at.toISOString(), resumeReason: reason };
    const applied = await conditionalWrite(
      this.client,
      new UpdateItemCommand({
        TableName: this.table,
        Key: { pk: S('HALTS'), sk: S(`HALT#${id}`) },
        UpdateExpression: 'SET #s = :resumed, doc = :doc',
        ConditionExpression: '#s = :active',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':resumed': S('resumed'), ':active': S('active'), ':doc': S(JSON.stringify(next)) },
      }),
    );
    return applied ? next : undefined;
  }

  async recordHaltEvent(event: HaltAuditEvent): Promise<void> {
    await guard(() =>
      this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: { pk: S('HALTLOG'), sk: S(eventSk(event.at)), doc: S(JSON.stringify(event)) },
          ConditionExpression: 'attribute_not_exists(sk)',
        }),
      ),
    );
  }

  async listHaltEvents(): Promise<HaltAuditEvent[]> {
    const items = await queryAll(this.client, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :ev)',
      ExpressionAttributeValues: { ':pk': S('HALTLOG'), ':ev': S('EVENT#') },
    });
    return items.map((i) => JSON.parse(i.doc?.S ?? '{}') as HaltAuditEvent);
  }

  async markAffected(haltId: string, actionId: string, effect: string, at: Date): Promise<boolean> {
    return conditionalWrite(
      this.client,
      new PutItemCommand({
        TableName: this.table,
        Item: { pk: S(`HALT#${haltId}`), sk: S(`ACTION#${actionId}#${effect}`), at: S(at.toISOString()) },
        ConditionExpression: 'attribute_not_exists(sk)',
      }),
    );
  }
}
