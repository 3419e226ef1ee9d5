import { GetItemCommand, PutItemCommand, UpdateItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { monotonicFactory } from 'ulid';
import type { Delegation, DelegationAuditEvent, DelegationStore } from '../../ports/delegations';
import { conditionalWrite, guard, queryAll, S } from './dynamo-support';

/**
 * Delegations on the ledger table (see ledger.md): one partition per principal
 * (`DELEGATIONS#<sub>`, so a principal only ever reaches their own: another principal's id is
 * simply not there), their audit trail in another (`DLGLOG#<sub>`). Single-item conditional
 * writes only.
 */

const pkOf = (principal: string) => S(`DELEGATIONS#${principal}`);
const skOf = (id: string) => S(`DLG#${id}`);
const nextUlid = monotonicFactory();

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
