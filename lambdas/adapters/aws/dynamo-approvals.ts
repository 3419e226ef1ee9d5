import {
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import * as z from 'zod';
import { InvalidCursorError } from '../../ports/ledger';
import { ApprovalStatuses, type AcceptVotes, type AcceptedVote, type ApprovalPage, type ApprovalRecord, type ApprovalStatus, type ApprovalStore, type ClaimRefusalResult, type CreateApprovalResult, type PendingApprovalsReader, type PendingApprovalsSummary, type PutVoteResult, type VoteRecord, type VoteRefusalReason } from '../../ports/approvals';
import { ApprovalIdPattern } from '../../shared/ids';
import { conditionalWrite, guard, isConditionFailure, N, queryAll, S, type Item } from './dynamo-support';

/**
 * Approvals and votes on the ledger table (see ledger.md): the approval item at
 * `APPROVAL#<id> / APPROVAL`, listed by status through gsi1 (`APPROVALS#<status>`), and one
 * vote item per voter at `APPROVAL#<id> / VOTE#<sub>`. Single-item conditional writes only.
 */

export const ApprovalKeys = {
  approval: (id: string) => ({ pk: S(`APPROVAL#${id}`), sk: S('APPROVAL') }),
  vote: (id: string, voter: string) => ({ pk: S(`APPROVAL#${id}`), sk: S(`VOTE#${voter}`) }),
  refusal: (id: string, reason: string, voter: string) => ({ pk: S(`APPROVAL#${id}`), sk: S(`REFUSAL#${reason}#${voter}`) }),
  refusalCount: (id: string) => ({ pk: S(`APPROVAL#${id}`), sk: S('REFUSALCOUNT') }),
  byStatus: (status: ApprovalStatus) => `APPROVALS#${status}`,
};

/** What a record is read from: everything but the task token, which is read on its own. */
const RECORD_ATTRIBUTES = 'pk, sk, gsi1pk, gsi1sk, #status, updatedAt, doc, outcome, answeredAt, accepted, revision';

/** Kept after the outcome so the approval (and its votes) can still be shown and audited. */
const RETENTION_SECONDS = 400 * 24 * 3600;

const RecordSchema = z.object({
  id: z.string(),
  actionId: z.string(),
  status: z.enum(ApprovalStatuses),
  planHash: z.string(),
  quorum: z.number().int(),
  approverRule: z.string().nullable(),
  requester: z.string(),
  grantees: z.array(z.string()),
  createdAt: z.string(),
  updatedAt: z.string(),
  expiresAt: z.string(),
  outcome: z.object({ by: z.string(), reason: z.string(), at: z.string() }).optional(),
  answeredAt: z.string().optional(),
});

const AcceptedSchema = z.array(
  z.object({ voter: z.string(), decision: z.enum(['approve', 'reject']), at: z.string(), acceptedAt: z.string() }),
);

const VoteSchema = z.object({
  approvalId: z.string(),
  voter: z.string(),
  decision: z.enum(['approve', 'reject']),
  planHash: z.string(),
  comment: z.string().optional(),
  at: z.string(),
});

function toRecord(item: Item | undefined): ApprovalRecord | undefined {
  const doc = item?.doc?.S;
  if (!item || !doc) return undefined;
  const parsed = RecordSchema.parse(JSON.parse(doc));
  // Top-level attributes are what conditions read and what updates change: they win.
  const status = item.status?.S;
  const record: ApprovalRecord = {
    ...parsed,
    status: ApprovalStatuses.includes(status as ApprovalStatus) ? (status as ApprovalStatus) : parsed.status,
    updatedAt: item.updatedAt?.S ?? parsed.updatedAt,
  };
  const outcome = item.outcome?.S;
  if (outcome) record.outcome = RecordSchema.shape.outcome.unwrap().parse(JSON.parse(outcome));
  if (item.answeredAt?.S) record.answeredAt = item.answeredAt.S;
  // Approvals stored before votes were accepted on the item have neither attribute.
  if (item.accepted?.S) record.accepted = AcceptedSchema.parse(JSON.parse(item.accepted.S)) as AcceptedVote[];
  if (item.revision?.N) record.revision = Number(item.revision.N);
  return record;
}

function toVote(item: Item): VoteRecord {
  return VoteSchema.parse(JSON.parse(item.doc?.S ?? '{}')) as VoteRecord;
}


export interface DynamoApprovalStoreOptions {
  client: DynamoDBClient;
  tableName: string;
}

export class DynamoApprovalStore implements ApprovalStore, PendingApprovalsReader {
  private readonly client: DynamoDBClient;
  private readonly table: string;

  constructor(options: DynamoApprovalStoreOptions) {
    this.client = options.client;
    this.table = options.tableName;
  }

  async createApproval(record: ApprovalRecord, taskToken: string): Promise<CreateApprovalResult> {
    const { outcome: _o, answeredAt: _a, accepted: _v, revision: _r, ...doc } = record;
    return (await conditionalWrite(
      this.client,
      new PutItemCommand({
        TableName: this.table,
        Item: {
          ...ApprovalKeys.approval(record.id),
          gsi1pk: S(ApprovalKeys.byStatus(record.status)),
          gsi1sk: S(record.id),
          status: S(record.status),
          actionId: S(record.actionId),
          updatedAt: S(record.updatedAt),
          taskToken: S(taskToken),
          doc: S(JSON.stringify(doc)),
          // What acceptVotes' condition compares `now` with: ISO strings of one format sort as times.
          voteDeadline: S(new Date(record.expiresAt).toISOString()),
          accepted: S(JSON.stringify(record.accepted ?? [])),
          revision: N(record.revision ?? 0),
          expiresAt: N(Math.ceil(Date.parse(record.expiresAt) / 1000) + RETENTION_SECONDS),
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    )) ? 'created' : 'exists';
  }

  private async item(id: string, projection?: string): Promise<Item | undefined> {
    const out = await guard(() =>
      this.client.send(
        new GetItemCommand({
          TableName: this.table,
          Key: ApprovalKeys.approval(id),
          ConsistentRead: true,
          ...(projection ? { ProjectionExpression: projection, ExpressionAttributeNames: { '#status': 'status' } } : {}),
        }),
      ),
    );
    return out.Item;
  }

  async getApproval(id: string): Promise<ApprovalRecord | undefined> {
    // Never project the token into a record.
    return toRecord(await this.item(id, RECORD_ATTRIBUTES));
  }

  async getTaskToken(id: string): Promise<string | undefined> {
    return (await this.item(id, 'taskToken, #status'))?.taskToken?.S;
  }

  async replaceTaskToken(id: string, taskToken: string, now: Date): Promise<void> {
    await guard(() =>
      this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: ApprovalKeys.approval(id),
          UpdateExpression: 'SET taskToken = :t, updatedAt = :at REMOVE answeredAt',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':t': S(taskToken), ':at': S(now.toISOString()) },
        }),
      ),
    );
  }

  async putVote(vote: VoteRecord): Promise<PutVoteResult> {
    try {
      await guard(() =>
        this.client.send(
          new PutItemCommand({
            TableName: this.table,
            Item: { ...ApprovalKeys.vote(vote.approvalId, vote.voter), decision: S(vote.decision), at: S(vote.at), doc: S(JSON.stringify(vote)) },
            // One vote per person: the conditional put is the whole guarantee.
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      );
      return { outcome: 'recorded' };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    const existing = await this.getVote(vote.approvalId, vote.voter);
    if (!existing) throw new Error(`Vote of ${vote.voter} on ${vote.approvalId} vanished after a conflicting write`);
    return { outcome: 'exists', vote: existing };
  }

  async getVote(approvalId: string, voter: string): Promise<VoteRecord | undefined> {
    const out = await guard(() =>
      this.client.send(new GetItemCommand({ TableName: this.table, Key: ApprovalKeys.vote(approvalId, voter), ConsistentRead: true })),
    );
    return out.Item ? toVote(out.Item) : undefined;
  }

  async listVotes(approvalId: string): Promise<VoteRecord[]> {
    // Strongly consistent (queryAll's default): a voter who just voted must see it when counting.
    const items = await queryAll(this.client, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :v)',
      ExpressionAttributeValues: { ':pk': S(`APPROVAL#${approvalId}`), ':v': S('VOTE#') },
    });
    return items.map(toVote).sort((a, b) => a.at.localeCompare(b.at));
  }

  async settle(id: string, to: Exclude<ApprovalStatus, 'pending'>, outcome: { by: string; reason: string }, now: Date): Promise<boolean> {
    return conditionalWrite(
      this.client,
      new UpdateItemCommand({
        TableName: this.table,
        Key: ApprovalKeys.approval(id),
        UpdateExpression: 'SET #status = :to, gsi1pk = :g, updatedAt = :at, outcome = :outcome',
        ConditionExpression: '#status = :pending',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':to': S(to),
          ':pending': S('pending'),
          ':g': S(ApprovalKeys.byStatus(to)),
          ':at': S(now.toISOString()),
          ':outcome': S(JSON.stringify({ ...outcome, at: now.toISOString() })),
        },
      }),
    );
  }

  async acceptVotes(id: string, change: AcceptVotes, now: Date): Promise<boolean> {
    const at = now.toISOString();
    const set = ['accepted = :accepted', 'revision = :next', 'updatedAt = :at'];
    const values: Item = { ':accepted': S(JSON.stringify(change.accepted)), ':next': N(change.revision + 1), ':at': S(at), ':pending': S('pending'), ':now': S(at) };
    if (change.settle) {
      set.push('#status = :to', 'gsi1pk = :g', 'outcome = :outcome');
      values[':to'] = S(change.settle.to);
      values[':g'] = S(ApprovalKeys.byStatus(change.settle.to));
      values[':outcome'] = S(JSON.stringify({ ...change.settle.outcome, at }));
    }
    // An approval stored before this attribute existed has no revision yet: it counts as 0.
    const revision = change.revision === 0 ? '(attribute_not_exists(revision) OR revision = :rev)' : 'revision = :rev';
    values[':rev'] = N(change.revision);
    return conditionalWrite(
      this.client,
      new UpdateItemCommand({
        TableName: this.table,
        Key: ApprovalKeys.approval(id),
        UpdateExpression: `SET ${set.join(', ')}`,
        // The deadline is judged here, in the same write as the status: an expiry that landed
        // first fails `#status = :pending`, a vote that lands first leaves the expiry nothing.
        ConditionExpression: `#status = :pending AND ${revision} AND (attribute_not_exists(voteDeadline) OR voteDeadline > :now)`,
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: values,
      }),
    );
  }

  async claimRefusal(approvalId: string, voter: string, reason: VoteRefusalReason, limit: number, now: Date): Promise<ClaimRefusalResult> {
    const expiresAt = N(Math.ceil(now.getTime() / 1000) + RETENTION_SECONDS);
    // First the (voter, reason) marker, so a repeat costs no slot under the cap.
    const first = await conditionalWrite(
      this.client,
      new PutItemCommand({
        TableName: this.table,
        Item: { ...ApprovalKeys.refusal(approvalId, reason, voter), at: S(now.toISOString()), expiresAt },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    if (!first) return { outcome: 'duplicate' };
    try {
      const out = await guard(() =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: ApprovalKeys.refusalCount(approvalId),
            UpdateExpression: 'ADD #n :one SET expiresAt = :exp',
            ConditionExpression: 'attribute_not_exists(#n) OR #n < :limit',
            ExpressionAttributeNames: { '#n': 'n' },
            ExpressionAttributeValues: { ':one': N(1), ':limit': N(limit), ':exp': expiresAt },
            ReturnValues: 'UPDATED_NEW',
          }),
        ),
      );
      return { outcome: 'recorded', count: Number(out.Attributes?.n?.N ?? limit) };
    } catch (error) {
      if (isConditionFailure(error)) return { outcome: 'capped' };
      throw error;
    }
  }

  async markAnswered(id: string, now: Date): Promise<void> {
    await guard(() =>
      this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: ApprovalKeys.approval(id),
          UpdateExpression: 'SET answeredAt = :at',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':at': S(now.toISOString()) },
        }),
      ),
    );
  }

  async listApprovals(query: { status: ApprovalStatus; limit: number; startAfter?: string }): Promise<ApprovalPage> {
    const gsi1pk = ApprovalKeys.byStatus(query.status);
    let start: Item | undefined;
    if (query.startAfter !== undefined) {
      // The start key is rebuilt from a checked id: nothing a client sent is a key attribute.
      if (!ApprovalIdPattern.test(query.startAfter)) throw new InvalidCursorError();
      start = { ...ApprovalKeys.approval(query.startAfter), gsi1pk: S(gsi1pk), gsi1sk: S(query.startAfter) };
    }
    const out = await guard(() =>
      this.client.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: 'gsi1',
          KeyConditionExpression: 'gsi1pk = :p',
          ExpressionAttributeValues: { ':p': S(gsi1pk) },
          ProjectionExpression: RECORD_ATTRIBUTES,
          ExpressionAttributeNames: { '#status': 'status' },
          // Approval ids are ULIDs: descending is newest first.
          ScanIndexForward: false,
          Limit: query.limit,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      ),
    );
    const items = (out.Items ?? []).map(toRecord).filter((r): r is ApprovalRecord => r !== undefined);
    const last = out.LastEvaluatedKey?.gsi1sk?.S;
    if (last !== undefined && !ApprovalIdPattern.test(last)) throw new Error(`Unexpected listing key ${last.slice(0, 80)}`);
    return { items, ...(last !== undefined ? { lastEvaluated: last } : {}) };
  }

  /**
   * The pending partition of the status index, counted (`Select: COUNT`, page by page), and
   * its first item read ascending: approval ids are ULIDs of their action, so that is the
   * approval of the oldest action still waiting, requested seconds after its action (the
   * saga's first states), which is as exact as an alarm measured in hours needs. The index is eventually consistent: an approval settled a moment ago may still
   * count, which a gauge sampled every few minutes can afford.
   */
  async summarizePending(): Promise<PendingApprovalsSummary> {
    const partition = { KeyConditionExpression: 'gsi1pk = :p', ExpressionAttributeValues: { ':p': S(ApprovalKeys.byStatus('pending')) } };
    let count = 0;
    let start: Item | undefined;
    do {
      const page = await guard(() =>
        this.client.send(new QueryCommand({ TableName: this.table, IndexName: 'gsi1', ...partition, Select: 'COUNT', ...(start ? { ExclusiveStartKey: start } : {}) })),
      );
      count += page.Count ?? 0;
      start = page.LastEvaluatedKey;
    } while (start);
    if (count === 0) return { count };
    const first = await guard(() =>
      this.client.send(
        new QueryCommand({ TableName: this.table, IndexName: 'gsi1', ...partition, ProjectionExpression: 'pk, sk, gsi1pk, gsi1sk, #status, updatedAt, doc', ExpressionAttributeNames: { '#status': 'status' }, ScanIndexForward: true, Limit: 1 }),
      ),
    );
    const oldest = toRecord(first.Items?.[0]);
    return oldest ? { count, oldestCreatedAt: oldest.createdAt } : { count };
  }
}
