import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import { DynamoLedger } from '../adapters/aws/dynamo-ledger';
import { DynamoSagaStore } from '../adapters/aws/dynamo-saga-store';
import { S3AuditStore } from '../adapters/aws/s3-audit-store';
import { SecretsManagerSecrets } from '../adapters/aws/secrets-manager';
import { FileAuditStore } from '../adapters/local/file-audit-store';
import { logger as defaultLogger, type Logger } from '../shared/logger';
import { AuditSecretNames, writeDigest, writeReceipt, type ReceiptsDeps, type WriteReceiptResult } from '../receipts/vault';
import type { Digest } from '../receipts/schema';
import type { SecretsPort } from '../ports/secrets';
import { provide, slot } from './aws';

/**
 * The receipts function's adapters (slot `receipts`): DynamoDB (read only), the S3 audit
 * vault and Secrets Manager in AWS; dynalite, the write-once file store and file secrets
 * locally, via {@link createLocalReceiptsRuntime}.
 */

export interface ReceiptsRuntime {
  deps: ReceiptsDeps;
  /** Runs after every stored receipt (locally: a digest right away). */
  afterReceipt?: (result: WriteReceiptResult) => Promise<void>;
}

const SLOT = 'receipts';

/** Installs the receipts adapters (local runtime, tests). */
export function installReceiptsRuntime(runtime: ReceiptsRuntime): void {
  provide(SLOT, runtime);
}

const ReceiptsEnv = z.object({
  LEDGER_TABLE: z.string().min(1),
  AUDIT_BUCKET: z.string().min(3),
  AUDIT_RETENTION_DAYS: z.coerce.number().int().min(1).max(36_500),
  /** Days between an action's creation and its receipt at most (approval timeout + a margin). */
  AUDIT_DIGEST_LOOKBACK_DAYS: z.coerce.number().int().min(1).max(400).default(4),
  /** The digest schedule (the stack's EventBridge rule), declared in every digest as its heartbeat. */
  AUDIT_DIGEST_INTERVAL_SECONDS: z.coerce.number().int().min(60).max(86_400).default(3600),
});

/** The receipts function's adapters; in AWS built once from the environment. */
export function receiptsRuntime(): Promise<ReceiptsRuntime> {
  return slot<ReceiptsRuntime>(SLOT, async () => {
    const env = ReceiptsEnv.parse(process.env);
    const dynamo = new DynamoDBClient({});
    const ledger = new DynamoLedger({ client: dynamo, tableName: env.LEDGER_TABLE });
    const store = new DynamoSagaStore({ client: dynamo, tableName: env.LEDGER_TABLE });
    return {
      deps: {
        actions: ledger,
        steps: store,
        events: store,
        store: new S3AuditStore({ bucket: env.AUDIT_BUCKET, retentionDays: env.AUDIT_RETENTION_DAYS, client: new S3Client({}) }),
        secrets: new SecretsManagerSecrets({ client: new SecretsManagerClient({}) }),
        logger: defaultLogger,
        now: () => new Date(),
        // A minute's margin covers PUTs in flight while the hourly digest lists the bucket.
        digests: { lookbackDays: env.AUDIT_DIGEST_LOOKBACK_DAYS, settleMs: 60_000, wholeSeconds: true, intervalSeconds: env.AUDIT_DIGEST_INTERVAL_SECONDS },
      },
    };
  });
}

/** Local secrets that can be created on first use (FileSecrets). */
interface EnsuringSecrets extends SecretsPort {
  ensureSecret(name: string, generate: () => string): Promise<string>;
}

export interface LocalReceiptsOptions {
  /** The state directory; receipts and digests go under `<stateDir>/audit/`. */
  stateDir: string;
  dynamo: { client: DynamoDBClient; tableName: string };
  secrets: SecretsPort;
  logger?: Logger;
  now?: () => Date;
  /** Write a digest after every receipt (default true): locally nothing else schedules one. */
  digestAfterEachReceipt?: boolean;
  /**
   * How often the caller writes digests on a timer (the control plane's digest timer): declared
   * in each digest as its heartbeat. Unset: digests promise no successor.
   */
  digestIntervalMs?: number;
}

export interface LocalReceipts {
  /** What `provide('receipts', …)` / {@link installReceiptsRuntime} takes. */
  runtime: ReceiptsRuntime;
  store: FileAuditStore;
  /**
   * Writes a digest now, after any in-flight one (digests are serialized). `closing`: the
   * writer stops after it (the control plane's shutdown), so it promises no successor.
   */
  writeDigestNow(options?: { closing?: boolean }): Promise<{ key: string; digest: Digest; sha256: string } | undefined>;
  /** Installs `runtime` into the `receipts` slot. */
  install(): void;
}

/** A random secret for the local redaction and digest keys: 256 bits, base64url. */
export function generateAuditSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The local receipts runtime: the same use cases over dynalite, the write-once file store
 * under `<stateDir>/audit/` and local secrets (created on first use when the port can).
 * Digests are serialized so two never chain onto the same head.
 */
export async function createLocalReceiptsRuntime(options: LocalReceiptsOptions): Promise<LocalReceipts> {
  const secrets = options.secrets as Partial<EnsuringSecrets>;
  if (typeof secrets.ensureSecret === 'function') {
    await secrets.ensureSecret(AuditSecretNames.redactionKey, generateAuditSecret);
    await secrets.ensureSecret(AuditSecretNames.digestSigningKey, generateAuditSecret);
  }
  const store = new FileAuditStore(join(options.stateDir, 'audit'));
  const ledger = new DynamoLedger({ client: options.dynamo.client, tableName: options.dynamo.tableName });
  const saga = new DynamoSagaStore({ client: options.dynamo.client, tableName: options.dynamo.tableName });
  const deps: ReceiptsDeps = {
    actions: ledger,
    steps: saga,
    events: saga,
    store,
    secrets: options.secrets,
    logger: options.logger ?? defaultLogger,
    now: options.now ?? (() => new Date()),
    // One process writes both receipts and digests here, in order: no settle margin needed.
    digests: {
      settleMs: 0,
      wholeSeconds: false,
      ...(options.digestIntervalMs ? { intervalSeconds: Math.max(1, Math.ceil(options.digestIntervalMs / 1000)) } : {}),
    },
  };
  let queue: Promise<unknown> = Promise.resolve();
  // What this writer wrote last: lets the next digest tell a pause from removed digests.
  let lastWritten: string | undefined;
  const writeDigestNow = (digestOptions: { closing?: boolean } = {}) => {
    const next = queue.then(async () => {
      const written = await writeDigest(deps, undefined, { ...digestOptions, ...(lastWritten ? { lastWritten } : {}) });
      if (written) lastWritten = written.key;
      return written;
    });
    queue = next.catch(() => undefined);
    return next;
  };
  const runtime: ReceiptsRuntime = {
    deps,
    ...(options.digestAfterEachReceipt === false ? {} : { afterReceipt: async () => void (await writeDigestNow()) }),
  };
  return { runtime, store, writeDigestNow, install: () => installReceiptsRuntime(runtime) };
}

export { writeReceipt, writeDigest };
