import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Rule, RuleTargetInput, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { AnyPrincipal, Effect, Policy, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  type CfnBucket,
  ObjectLockRetention,
  ObjectOwnership,
} from 'aws-cdk-lib/aws-s3';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { SecretNames } from '../../lambdas/ports/secrets';
import type { AirlockFunction } from './airlock-function';
import { EnvNames } from '../../lambdas/composition/env';

/** Env var holding the audit bucket name in the receipts function. */
export const AUDIT_BUCKET_ENV = EnvNames.auditBucket;
/** Env var with the COMPLIANCE retention (days) the receipts function sets on every object. */
export const AUDIT_RETENTION_ENV = EnvNames.auditRetentionDays;
/** Env var with how many days back the digest looks for receipts keyed by their action's creation day. */
export const AUDIT_LOOKBACK_ENV = EnvNames.auditLookbackDays;
/** Env var with the digest schedule in seconds, which every digest declares as its heartbeat. */
export const AUDIT_DIGEST_INTERVAL_ENV = EnvNames.auditDigestIntervalSeconds;
/** How often digests are written: the schedule's rate and the heartbeat `audit verify` checks. */
export const DIGEST_INTERVAL = Duration.hours(1);
/** Key prefixes the receipts writer owns: receipts and the signed digests chaining them. */
export const AUDIT_PREFIXES = ['receipts/', 'digests/'] as const;

/**
 * Object actions of the receipts writer. Every PutObject names its retention explicitly
 * (ObjectLockMode COMPLIANCE + RetainUntilDate), which needs s3:PutObjectRetention; in
 * COMPLIANCE mode that permission can only lengthen a retention, never shorten or remove
 * it. Deliberately absent: s3:PutObjectLegalHold, s3:BypassGovernanceRetention,
 * s3:PutBucketObjectLockConfiguration and s3:DeleteObject*.
 */
export const RECEIPT_OBJECT_ACTIONS = ['s3:PutObject', 's3:PutObjectRetention', 's3:GetObject'] as const;

/** Key prefix of the reconciliation run reports (lambdas/reconcile/reconcile.ts `reconciliationKey`). */
export const RECONCILIATION_PREFIX = 'reconciliations/';
/** Where consent and revocation receipts go (receipts/consent.ts): beside action receipts, under the digests. */
export const CONSENT_RECEIPTS = 'receipts/dt=*/dlg_*';
/** Object actions of the reconcile function: its reports only, written like receipts. */
export const RECONCILIATION_OBJECT_ACTIONS = ['s3:PutObject', 's3:PutObjectRetention', 's3:GetObject'] as const;

/** Props of {@link AuditVault}. */
export interface AuditVaultProps {
  /** Default COMPLIANCE-mode retention of every object version. */
  readonly retentionDays: number;
  /** Removal policy of the KMS key and the access-log bucket; the vault itself is always retained. */
  readonly removalPolicy: RemovalPolicy;
}

/** Options of {@link AuditVault.bindReceiptWriter}. */
export interface ReceiptWriterOptions {
  /** Longest time (days) from an action's creation to its receipt: the saga's execution timeout, rounded up, plus a day. */
  readonly lookbackDays: number;
}

/**
 * The WORM store for receipts and digests: S3 Object Lock with a default COMPLIANCE
 * retention, versioning, no public access, TLS only, a customer-managed rotating KMS key,
 * and server access logs to a separate bucket, so reads of the evidence leave evidence.
 */
export class AuditVault extends Construct {
  readonly bucket: Bucket;
  readonly accessLogs: Bucket;
  readonly key: Key;
  /** HMAC key of receipt redaction tokens. */
  readonly redactionKey: Secret;
  /** Seed of the Ed25519 key that signs digests. */
  readonly digestSigningKey: Secret;
  private readonly retentionDays: number;

  constructor(scope: Construct, id: string, props: AuditVaultProps) {
    super(scope, id);
    this.retentionDays = props.retentionDays;

    this.key = new Key(this, 'Key', {
      description: 'Airlock audit vault encryption',
      enableKeyRotation: true,
      // Receipts outlive the stack; losing the key would make them unreadable.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // S3 server access logging only delivers to SSE-S3 buckets, so this one cannot use the
    // KMS key; it still refuses plain HTTP and public access.
    this.accessLogs = new Bucket(this, 'AccessLogs', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      lifecycleRules: [{ expiration: Duration.days(Math.max(props.retentionDays, 90)) }],
      removalPolicy: props.removalPolicy,
    });
    Validations.of(this.accessLogs).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'This is the server-access-log target of the audit vault. Logging a log bucket into itself loops, and into a third bucket only moves the finding; its contents are S3-written delivery records. (cdk-nag 3 already exempts log-target buckets; the acknowledgement records the decision should that change.)',
    });

    this.bucket = new Bucket(this, 'Bucket', {
      objectLockEnabled: true,
      objectLockDefaultRetention: ObjectLockRetention.compliance(Duration.days(props.retentionDays)),
      versioned: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      encryption: BucketEncryption.KMS,
      encryptionKey: this.key,
      bucketKeyEnabled: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'audit-vault/',
      // COMPLIANCE-locked versions cannot be deleted before they expire, whatever the stack
      // says; retaining keeps CloudFormation from failing on a bucket it cannot empty.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // Object Lock stops a version from being deleted, but a plain DeleteObject still adds a
    // delete marker that hides the receipt from anyone listing current versions. Nobody
    // deletes from the vault; changing this takes an explicit bucket-policy change.
    this.bucket.addToResourcePolicy(
      new PolicyStatement({
        sid: 'DenyDeletes',
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ['s3:DeleteObject', 's3:DeleteObjectVersion'],
        resources: [this.bucket.arnForObjects('*')],
      }),
    );

    // Losing either key would orphan the evidence (tokens no longer linkable, digests no
    // longer continuable by the same key), so both outlive the stack.
    this.redactionKey = this.auditSecret('RedactionKey', SecretNames.receiptRedactionKey, 'Airlock receipt redaction key (HMAC-SHA-256 of PII fields)');
    this.digestSigningKey = this.auditSecret('DigestSigningKey', SecretNames.digestSigningKey, 'Airlock digest signing key (seed of the Ed25519 key)');
  }

  private auditSecret(id: string, name: string, description: string): Secret {
    const secret = new Secret(this, id, {
      secretName: name,
      description,
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(secret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'Rotating the redaction key breaks the linkability of PII tokens across receipts, and rotating the digest key needs the new public key published first; both are deliberate, manual operations (docs/audit.md).',
    });
    return secret;
  }

  /**
   * Lets the reconcile function store its run reports under `reconciliations/` (nothing
   * else): PutObject with its explicit COMPLIANCE retention (which needs
   * s3:PutObjectRetention), and GetObject for the compare a conditional put falls back to
   * when a retried PUT finds its own object already there. No List, no receipts, no digests.
   */
  bindReconciliationWriter(fn: AirlockFunction): void {
    fn.addEnvironment(AUDIT_BUCKET_ENV, this.bucket.bucketName);
    fn.addEnvironment(AUDIT_RETENTION_ENV, String(this.retentionDays));
    const policy = new Policy(fn, 'ReconciliationVaultPolicy', {
      roles: [fn.role],
      statements: [
        new PolicyStatement({ sid: 'WriteReconciliations', actions: [...RECONCILIATION_OBJECT_ACTIONS], resources: [this.bucket.arnForObjects(`${RECONCILIATION_PREFIX}*`)] }),
        new PolicyStatement({
          sid: 'VaultKeyViaS3',
          actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
          resources: [this.key.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `s3.${Stack.of(this).region}.amazonaws.com` } },
        }),
      ],
    });
    const bucketLogicalId = Stack.of(this).resolve(Stack.of(this).getLogicalId(this.bucket.node.defaultChild as CfnBucket));
    Validations.of(policy).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${String(bucketLogicalId)}.Arn>/${RECONCILIATION_PREFIX}*]`,
      reason: `Object ARNs under one key prefix need a trailing wildcard; ${RECONCILIATION_PREFIX}* is the narrowest scope that covers one report per run (reconciliations/dt=<day>/<runId>.json), and the actions are only PutObject (conditional, COMPLIANCE-locked), PutObjectRetention and GetObject.`,
    });
  }

  /**
   * Lets the intake function store consent and revocation receipts (nothing else): PutObject
   * with its COMPLIANCE retention and GetObject for a retried PUT's compare, on
   * `receipts/dt=*\/dlg_*` only — no action receipts, no digests, no List.
   */
  bindConsentWriter(fn: AirlockFunction): void {
    fn.addEnvironment(AUDIT_BUCKET_ENV, this.bucket.bucketName);
    fn.addEnvironment(AUDIT_RETENTION_ENV, String(this.retentionDays));
    const policy = new Policy(fn, 'ConsentVaultPolicy', {
      roles: [fn.role],
      statements: [
        new PolicyStatement({ sid: 'WriteConsentReceipts', actions: [...RECONCILIATION_OBJECT_ACTIONS], resources: [this.bucket.arnForObjects(CONSENT_RECEIPTS)] }),
        new PolicyStatement({
          sid: 'VaultKeyViaS3',
          actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
          resources: [this.key.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `s3.${Stack.of(this).region}.amazonaws.com` } },
        }),
      ],
    });
    const bucketLogicalId = Stack.of(this).resolve(Stack.of(this).getLogicalId(this.bucket.node.defaultChild as CfnBucket));
    Validations.of(policy).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${String(bucketLogicalId)}.Arn>/${CONSENT_RECEIPTS}]`,
      reason: `Consent and revocation receipts are keyed by day and delegation id (receipts/dt=<day>/<dlg_id>.consent.json); ${CONSENT_RECEIPTS} is the narrowest pattern that covers them and no action receipt or digest, and the actions are only PutObject (conditional, COMPLIANCE-locked), PutObjectRetention and GetObject.`,
    });
  }

  /**
   * Lets the receipts function write and read receipts and digests (nothing else), sets
   * AUDIT_BUCKET, and lets it use the vault key only through S3.
   */
  bindReceiptWriter(fn: AirlockFunction, options: ReceiptWriterOptions): void {
    fn.addEnvironment(AUDIT_BUCKET_ENV, this.bucket.bucketName);
    fn.addEnvironment(AUDIT_RETENTION_ENV, String(this.retentionDays));
    fn.addEnvironment(AUDIT_LOOKBACK_ENV, String(options.lookbackDays));
    fn.addEnvironment(AUDIT_DIGEST_INTERVAL_ENV, String(DIGEST_INTERVAL.toSeconds()));
    const objectArns = AUDIT_PREFIXES.map((prefix) => this.bucket.arnForObjects(`${prefix}*`));
    const policy = new Policy(fn, 'AuditVaultPolicy', {
      roles: [fn.role],
      statements: [
        new PolicyStatement({ sid: 'WriteReceipts', actions: [...RECEIPT_OBJECT_ACTIONS], resources: objectArns }),
        // Lets a missing digest read as 404 instead of 403 when the writer looks up the chain head.
        new PolicyStatement({
          sid: 'ListReceiptPrefixes',
          actions: ['s3:ListBucket'],
          resources: [this.bucket.bucketArn],
          conditions: { StringLike: { 's3:prefix': AUDIT_PREFIXES.map((prefix) => `${prefix}*`) } },
        }),
        new PolicyStatement({
          sid: 'VaultKeyViaS3',
          actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
          resources: [this.key.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `s3.${Stack.of(this).region}.amazonaws.com` } },
        }),
      ],
    });
    const bucketLogicalId = Stack.of(this).resolve(Stack.of(this).getLogicalId(this.bucket.node.defaultChild as CfnBucket));
    for (const prefix of AUDIT_PREFIXES) {
      Validations.of(policy).acknowledge({
        id: `AwsSolutions-IAM5[Resource::<${String(bucketLogicalId)}.Arn>/${prefix}*]`,
        reason: `Object ARNs under one key prefix need a trailing wildcard; ${prefix}* is the narrowest scope that covers the receipts writer's keys, and the actions are only PutObject (conditional, COMPLIANCE-locked), PutObjectRetention and GetObject.`,
      });
    }

    for (const secret of [this.redactionKey, this.digestSigningKey]) {
      secret.grantRead(fn.role);
      // Only the receipts function may read these, whatever other roles in the account allow.
      secret.addToResourcePolicy(
        new PolicyStatement({
          sid: 'OnlyReceiptsFunction',
          effect: Effect.DENY,
          principals: [new AnyPrincipal()],
          actions: ['secretsmanager:GetSecretValue'],
          resources: ['*'],
          conditions: { StringNotEquals: { 'aws:PrincipalArn': [fn.role.roleArn] } },
        }),
      );
    }

    // Hourly digests, as CloudTrail delivers its digest files; empty ones too, so the chain has
    // a heartbeat and a vault that stops early is visible to the verifier.
    new Rule(this, 'DigestSchedule', {
      description: 'Airlock: sign and chain the receipts written in the last hour',
      schedule: Schedule.rate(DIGEST_INTERVAL),
      targets: [new LambdaFunction(fn.function, { event: RuleTargetInput.fromObject({ task: 'WriteDigest' }), retryAttempts: 4 })],
    });
  }
}
