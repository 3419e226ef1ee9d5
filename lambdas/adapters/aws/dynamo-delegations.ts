import { DeleteItemCommand, GetItemCommand, PutItemCommand, QueryCommand, UpdateItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { monotonicFactory } from 'ulid';
import type { Delegation, DelegationAuditEvent, DelegationStore, DueExpiry } from '../../ports/delegations';
import { conditionalWrite, guard, queryAll, S } from './dynamo-support';

/**
 * Delegations on the ledger table (see ledger.md): one partition per principal
 * (`DELEGATIONS#<sub>`, so a principal only ever reaches their own: another principal's id is
 * simply not there), their audit trail in another (`DLGLOG#<sub>`). Single-item conditional
 * writes only. Each delegation also has an entry in the expiry queue (`DLGEXPIRY`, sorted by
 * expiry), written before the delegation and deleted once the expiry sweep is done with it:
 * the sweep's one Query finds every due delegation of every principal.
 */

const pkOf = (principal: string) => S(`DELEGATIONS#${principal}`);
const skOf = (id: string) => S(`DLG#${id}`);
const nextUlid = monotonicFactory();
/** The expiry queue: one partition (a delegation grant is rare next to a partition's write capacity). */
const EXPIRY_PK = S('DLGEXPIRY');
const expirySk = (expiresAt: string, id: string) => S(`EXP#${expiresAt}#${id}`);

function parse(doc: string | undefined): Delegation | undefined {
  return doc ? (JSON.parse(doc) as Delegation) : undefined;
}

export class DynamoDelegationStore implements DelegationStore {
  private readonly client: DynamoDBClient;
  private readonly table: string;

  constructor(options: { client: DynamoDBClient; tableName: string }) {
    this.client = options.client;
    this.table = options.tableName;
  }

  async createDelegation(delegation: Delegation): Promise<void> {
    // The queue entry first: a crash between the two leaves an entry the sweep finds nothing
    // behind (and clears), never a delegation the sweep would not end.
    await guard(() =>
      this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: { pk: EXPIRY_PK, sk: expirySk(delegation.expiresAt, delegation.id), principal: S(delegation.principal), id: S(delegation.id), expiresAt: S(delegation.expiresAt) },
        }),
      ),
    );
    await guard(() =>
      this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: { pk: pkOf(delegation.principal), sk: skOf(delegation.id), status: S(delegation.status), doc: S(JSON.stringify(delegation)) },
          ConditionExpression: 'attribute_not_exists(sk)',
        }),
      ),
    );
  }

  async getDelegation(principal: string, id: string): Promise<Delegation | undefined> {
    const out = await guard(() => this.client.send(new GetItemCommand({ TableName: this.table, Key: { pk: pkOf(principal), sk: skOf(id) }, ConsistentRead: true })));
    return parse(out.Item?.doc?.S);
  }

  async listDelegations(principal: string): Promise<Delegation[]> {
    const items = await queryAll(this.client, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :d)',
      ExpressionAttributeValues: { ':pk': pkOf(principal), ':d': S('DLG#') },
      ScanIndexForward: false,
      // Revocation must be seen at once by the next action: a strongly consistent read.
      ConsistentRead: true,
    });
    return items.map((i) => parse(i.doc?.S)).filter((d): d is Delegation => d !== undefined);
  }

  async revokeDelegation(
    principal: string,
    id: string,
    patch: { revokedAt: string; revokedBy: string; revokeReason: string; revocationReceiptKey: string },
  ): Promise<Delegation | undefined> {
    const current = await this.getDelegation(principal, id);
    if (!current || current.status !== 'active') return undefined;
    const next: Delegation = { ...current, ...patch, status: 'revoked' };
    const applied = await conditionalWrite(
      this.client,
      new UpdateItemCommand({
        TableName: this.table,
        Key: { pk: pkOf(principal), sk: skOf(id) },
        UpdateExpression: 'SET #s = :revoked, doc = :doc',
        ConditionExpression: '#s = :active',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':revoked': S('revoked'), ':active': S('active'), ':doc': S(JSON.stringify(next)) },
      }),
    );
    return applied ? next : undefined;
  }

  async expireDelegation(principal: string, id: string, patch: { sweptAt: string; expiryReceiptKey: string }): Promise<Delegation | undefined> {
    const current = await this.getDelegation(principal, id);
    if (!current || current.status !== 'active') return undefined;
    const next: Delegation = { ...current, ...patch, status: 'expired' };
    const applied = await conditionalWrite(
      this.client,
      new UpdateItemCommand({
        TableName: this.table,
        Key: { pk: pkOf(principal), sk: skOf(id) },
        UpdateExpression: 'SET #s = :expired, doc = :doc',
        ConditionExpression: '#s = :active',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':expired': S('expired'), ':active': S('active'), ':doc': S(JSON.stringify(next)) },
      }),
    );
    return applied ? next : undefined;
  }

  async listDueExpiries(now: Date, limit: number): Promise<DueExpiry[]> {
    const out = await guard(() =>
      this.client.send(
        new QueryCommand({
          TableName: this.table,
          // `EXP#<now>$` sorts after every entry expiring at or before `now` (`$` > `#`).
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          ExpressionAttributeValues: { ':pk': EXPIRY_PK, ':from': S('EXP#'), ':to': S(`EXP#${now.toISOString()}$`) },
          Limit: Math.max(1, Math.min(limit, 1000)),
          ConsistentRead: true,
        }),
      ),
    );
    return (out.Items ?? []).flatMap((i) =>
      i.principal?.S && i.id?.S && i.expiresAt?.S ? [{ principal: i.principal.S, id: i.id.S, expiresAt: i.expiresAt.S }] : [],
    );
  }

  async clearDueExpiry(entry: DueExpiry): Promise<void> {
    await guard(() => this.client.send(new DeleteItemCommand({ TableName: this.table, Key: { pk: EXPIRY_PK, sk: expirySk(entry.expiresAt, entry.id) } })));
  }

  async recordDelegationEvent(principal: string, event: DelegationAuditEvent): Promise<void> {
    await guard(() =>
      this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: { pk: S(`DLGLOG#${principal}`), sk: S(`EVENT#${event.at}#${nextUlid()}`), doc: S(JSON.stringify(event)) },
          ConditionExpression: 'attribute_not_exists(sk)',
        }),
      ),
    );
  }

  async listDelegationEvents(principal: string): Promise<DelegationAuditEvent[]> {
    const items = await queryAll(this.client, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :ev)',
      ExpressionAttributeValues: { ':pk': S(`DLGLOG#${principal}`), ':ev': S('EVENT#') },
    });
    return items.map((i) => JSON.parse(i.doc?.S ?? '{}') as DelegationAuditEvent);
  }
}
