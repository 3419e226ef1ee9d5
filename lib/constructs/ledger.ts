import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import type { AirlockFunction } from './airlock-function';
import { EnvNames } from '../../lambdas/composition/env';

/** Env var holding the ledger table name in every function bound to it. */
export const LEDGER_TABLE_ENV = EnvNames.ledgerTable;
/** Name of the overloaded global secondary index (`gsi1pk` / `gsi1sk`). */
export const LEDGER_GSI1 = 'gsi1';
/** Name of the day index (`gsi2pk` / `gsi2sk`: every principal's actions by UTC day, on action items only). */
export const LEDGER_DAY_INDEX = 'gsi2';
/** Key prefixes a connector may touch: its step records (which also hold the single-use grant ids it consumed). */
export const CONNECTOR_KEY_PREFIXES = ['STEP#'] as const;

/** The kill switch's audit trail partition (adapters/aws/dynamo-guardrails.ts). */
export const HALT_LOG_KEY = 'HALTLOG';

/** The one partition a connector's function may touch besides STEP#: its own breaker. */
export const connectorBreakerKey = (connector: string) => `BREAKER#${connector}`;

/**
 * Item-level actions of the core functions. Listed one by one (no `dynamodb:*`), and no
 * Scan: nothing needs to read the whole ledger. The spend-cap store's TransactWriteItems
 * (one reservation across every applicable cap) needs nothing more: IAM authorizes each Put
 * and Update inside a transaction as PutItem and UpdateItem.
 */
/** Single-item operations and queries of the delegation expiry sweep (no Scan, no batch, no transaction). */
export const DELEGATION_EXPIRY_ACTIONS = ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'] as const;
/** The partitions the sweep reaches (see lambdas/adapters/aws/ledger.md). */
export const DELEGATION_EXPIRY_KEY_PREFIXES = ['DLGEXPIRY', 'DELEGATIONS#*', 'DLGLOG#*', 'ACTION#*', 'APPROVAL#*'];

export const LEDGER_READ_WRITE_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:ConditionCheckItem',
] as const;

/** What a connector needs for step records and jti single-use: read, conditional put, update. */
export const LEDGER_CONNECTOR_ACTIONS = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'] as const;

/**
 * KMS actions a DynamoDB client needs on the table's key: decrypt on reads, data keys on
 * writes. Named exactly rather than `kms:GenerateDataKey*` / `kms:ReEncrypt*`.
 */
const TABLE_KEY_ACTIONS = ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey'];

/** Props of {@link Ledger}. */
export interface LedgerProps {
  readonly removalPolicy: RemovalPolicy;
  /** Refuse DeleteTable (on unless the stack is a throwaway dev stack). */
  readonly deletionProtection: boolean;
}

/**
 * The ledger: one DynamoDB table for actions, idempotency keys, steps, approvals and
 * counters (`pk`/`sk`, GSI `gsi1`, TTL on `expiresAt`), on demand, with point-in-time
 * recovery, deletion protection and a customer-managed, rotating KMS key.
 */
export class Ledger extends Construct {
  readonly table: Table;
  readonly key: Key;

  constructor(scope: Construct, id: string, props: LedgerProps) {
    super(scope, id);
    this.key = new Key(this, 'Key', {
      description: 'Airlock ledger table encryption',
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy,
    });
    this.table = new Table(this, 'Table', {
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.key,
      deletionProtection: props.deletionProtection,
      timeToLiveAttribute: 'expiresAt',
      removalPolicy: props.removalPolicy,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: LEDGER_GSI1,
      partitionKey: { name: 'gsi1pk', type: AttributeType.STRING },
      sortKey: { name: 'gsi1sk', type: AttributeType.STRING },
      // ALL: listing a principal's actions reads whole records from the index. The action's
      // record is one compressed attribute (ledger.md, "Action body"), so each copy stays
      // under 1 KB for a read: one write unit. Keep in step with ledgerTableDefinition.
      projectionType: ProjectionType.ALL,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: LEDGER_DAY_INDEX,
      partitionKey: { name: 'gsi2pk', type: AttributeType.STRING },
      sortKey: { name: 'gsi2sk', type: AttributeType.STRING },
      // Sparse: only action items carry its keys. It projects what the auditors' listing filters
      // on and nothing that changes, so only an action's creation writes to it (ledger.md).
      projectionType: ProjectionType.INCLUDE,
      nonKeyAttributes: ['principal', 'tools'],
    });
  }

  /** Sets LEDGER_TABLE and grants item-level read/write on the table and its GSI. */
  bindReadWrite(fn: AirlockFunction): void {
    fn.addEnvironment(LEDGER_TABLE_ENV, this.table.tableName);
    fn.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'LedgerItemReadWrite',
        actions: [...LEDGER_READ_WRITE_ACTIONS],
        resources: [this.table.tableArn, `${this.table.tableArn}/index/${LEDGER_GSI1}`, `${this.table.tableArn}/index/${LEDGER_DAY_INDEX}`],
      }),
    );
    this.grantKey(fn);
  }

  /** Read-only item access (GetItem, Query on the table): the receipts function reads, never writes. */
  bindReader(fn: AirlockFunction): void {
    fn.addEnvironment(LEDGER_TABLE_ENV, this.table.tableName);
    fn.role.addToPrincipalPolicy(
      new PolicyStatement({ sid: 'LedgerItemRead', actions: ['dynamodb:GetItem', 'dynamodb:Query'], resources: [this.table.tableArn] }),
    );
    fn.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'LedgerKeyDecryptViaDynamoDB',
        actions: ['kms:Decrypt', 'kms:DescribeKey'],
        resources: [this.key.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `dynamodb.${Stack.of(this).region}.amazonaws.com` } },
      }),
    );
  }

  /**
   * Rate-limit window counters only (ledger.md `RATE#…`): for a function that otherwise only
   * reads the ledger but serves a /v1 route, so its requests count like every other's.
   * `dynamodb:LeadingKeys` keeps its writes to RATE# partitions.
   */
  bindRateCounters(fn: AirlockFunction): void {
    fn.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'LedgerRateCounters',
        actions: ['dynamodb:UpdateItem', 'dynamodb:BatchGetItem'],
        resources: [this.table.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['RATE#*'] } },
      }),
    );
    this.grantKey(fn);
  }

  /**
   * Appends to the kill switch's audit trail only (the `HALTLOG` partition): for a function
   * that refuses kill-switch-role operations but otherwise never touches halts.
   */
  bindHaltLog(fn: AirlockFunction): void {
    fn.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'LedgerHaltLogAppend',
        actions: ['dynamodb:PutItem'],
        resources: [this.table.tableArn],
        conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [HALT_LOG_KEY] } },
      }),
    );
    this.grantKey(fn);
  }

  /**
   * The reconcile function: it lists recent commit steps on the step-day index (Query on
   * gsi1 only), reads step and action items (GetItem, `dynamodb:LeadingKeys` STEP#/ACTION#),
   * and appends `reconcile.finding` events to an action's chain (Query for the chain head,
   * conditional PutItem, ACTION# partitions only). No Scan, UpdateItem or DeleteItem.
   */
  bindReconciler(fn: AirlockFunction): void {
    fn.addEnvironment(LEDGER_TABLE_ENV, this.table.tableName);
    fn.role.addToPrincipalPolicy(
      new PolicyStatement({ sid: 'LedgerStepDayIndex', actions: ['dynamodb:Query'], resources: [`${this.table.tableArn}/index/${LEDGER_GSI1}`] }),
    );
    fn.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'LedgerReconcileReads',
        actions: ['dynamodb:GetItem'],
        resources: [this.table.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['STEP#*', 'ACTION#*'] } },
      }),
    );
    fn.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'LedgerReconcileEvents',
        actions: ['dynamodb:Query', 'dynamodb:PutItem'],
        resources: [this.table.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['ACTION#*'] } },
      }),
    );
    this.grantKey(fn);
  }

  /**
   * The approvals gauge: it counts the `APPROVALS#pending` partition of the status index and
   * reads its oldest item, so Query on gsi1 is all it holds (no table resource, no GetItem,
   * no write), plus decrypting through DynamoDB.
   */
  bindApprovalGauge(fn: AirlockFunction): void {
    fn.addEnvironment(LEDGER_TABLE_ENV, this.table.tableName);
    fn.role.addToPrincipalPolicy(
      new PolicyStatement({ sid: 'LedgerApprovalStatusIndex', actions: ['dynamodb:Query'], resources: [`${this.table.tableArn}/index/${LEDGER_GSI1}`] }),
    );
    fn.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'LedgerKeyDecryptViaDynamoDB',
        actions: ['kms:Decrypt', 'kms:DescribeKey'],
        resources: [this.key.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `dynamodb.${Stack.of(this).region}.amazonaws.com` } },
      }),
    );
  }

  /**
   * Sets LEDGER_TABLE and grants the delegation expiry sweep only the items it reads and
   * writes: the expiry queue, delegations and their audit trail, and the actions and approvals
   * it cancels (`dynamodb:LeadingKeys`), plus the principal partitions of `gsi1` where it lists a
   * principal's actions. No idempotency keys, spend counters, halts, steps or grants.
   */
  bindDelegationExpiry(fn: AirlockFunction): void {
    fn.addEnvironment(LEDGER_TABLE_ENV, this.table.tableName);
    fn.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'LedgerDelegationExpiryItems',
        actions: [...DELEGATION_EXPIRY_ACTIONS],
        resources: [this.table.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': DELEGATION_EXPIRY_KEY_PREFIXES } },
      }),
    );
    fn.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'LedgerDelegationExpiryActionList',
        actions: ['dynamodb:Query'],
        resources: [`${this.table.tableArn}/index/${LEDGER_GSI1}`],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['PRINCIPAL#*'] } },
      }),
    );
    this.grantKey(fn);
  }

  /**
   * Sets LEDGER_TABLE and grants a connector only its own kind of items. A connector runs
   * vendor code paths with vendor data, so it is the function most likely to be tricked;
   * `dynamodb:LeadingKeys` keeps it to partition keys starting with STEP#, so it can record
   * steps (and burn grant ids on them), and count outcomes on its own BREAKER#<connector>
   * item, but never read or forge APPROVAL# (or any other) items nor trip another breaker.
   * ForAllValues is vacuously true when the key is absent (Scan), which is why the action
   * list holds only single-item operations that always carry the partition key.
   */
  bindConnector(fn: AirlockFunction, connector: string): void {
    fn.addEnvironment(LEDGER_TABLE_ENV, this.table.tableName);
    fn.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'LedgerConnectorItems',
        actions: [...LEDGER_CONNECTOR_ACTIONS],
        resources: [this.table.tableArn],
        conditions: {
          'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': CONNECTOR_KEY_PREFIXES.map((p) => `${p}*`) },
        },
      }),
    );
    // Its own circuit breaker only (the outcome of every vendor call it makes is counted there):
    // one exact partition, so it can neither trip nor reset another connector's breaker.
    fn.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'LedgerConnectorBreaker',
        actions: [...LEDGER_CONNECTOR_ACTIONS],
        resources: [this.table.tableArn],
        conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [connectorBreakerKey(connector)] } },
      }),
    );
    this.grantKey(fn);
  }

  private grantKey(fn: AirlockFunction): void {
    fn.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'LedgerKeyViaDynamoDB',
        effect: Effect.ALLOW,
        actions: TABLE_KEY_ACTIONS,
        resources: [this.key.keyArn],
        // Only through DynamoDB: the role cannot use the key to decrypt anything else.
        conditions: { StringEquals: { 'kms:ViaService': `dynamodb.${Stack.of(this).region}.amazonaws.com` } },
      }),
    );
  }
}
