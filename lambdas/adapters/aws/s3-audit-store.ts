import {
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import {
  AuditChecksumMismatchError,
  AuditObjectConflictError,
  assertAuditKey,
  type AuditObjectInfo,
  type AuditStore,
  type PutResult,
} from '../../ports/audit-store';

/**
 * The audit vault on S3 Object Lock. Every PutObject is conditional (`If-None-Match: *`, so
 * an existing key is never replaced, not even by a new version), carries its SHA-256
 * (`x-amz-checksum-sha256`, which S3 checks before storing, and which Object Lock requires
 * in place of Content-MD5), and names its retention explicitly: COMPLIANCE until the
 * configured date. That last part needs `s3:PutObjectRetention`; COMPLIANCE retention can
 * only be lengthened, never shortened or removed, so the permission cannot weaken the vault.
 */
export class S3AuditStore implements AuditStore {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly retentionDays: number;
  private readonly now: () => Date;

  constructor(options: { bucket: string; retentionDays: number; client?: S3Client; now?: () => Date }) {
    this.client = options.client ?? new S3Client({});
    this.bucket = options.bucket;
    this.retentionDays = options.retentionDays;
    this.now = options.now ?? (() => new Date());
  }

  async putIfAbsent(key: string, body: Uint8Array, sha256: string): Promise<PutResult> {
    assertAuditKey(key);
    const checksum = Buffer.from(sha256, 'hex').toString('base64');
    // A 409 ConditionalRequestConflict means a concurrent write to the same key was in
    // flight; once it settles, the object is either there (compare) or not (write again).
    for (let attempt = 0; ; attempt++) {
      try {
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: body,
            ContentType: 'application/json',
            IfNoneMatch: '*',
            ChecksumSHA256: checksum,
            ObjectLockMode: 'COMPLIANCE',
            ObjectLockRetainUntilDate: new Date(this.now().getTime() + this.retentionDays * 86_400_000),
          }),
        );
        return 'created';
      } catch (error) {
        const status = httpStatus(error);
        if (status === 412) break;
        if (status === 409 && attempt < 3) {
          await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
          continue;
        }
        if (status === 409) break;
        if (errorName(error) === 'BadDigest' || errorName(error) === 'InvalidDigest') throw new AuditChecksumMismatchError(key, { cause: error });
        throw error;
      }
    }
    const stored = await this.get(key);
    if (!stored) throw new Error(`S3 refused ${key} as existing but it cannot be read`);
    const storedSha = createHash('sha256').update(stored).digest('hex');
    if (storedSha === sha256) return 'identical';
    throw new AuditObjectConflictError(key, storedSha, sha256);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    assertAuditKey(key);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!out.Body) return new Uint8Array();
      return await out.Body.transformToByteArray();
    } catch (error) {
      if (error instanceof NoSuchKey || errorName(error) === 'NoSuchKey' || httpStatus(error) === 404) return undefined;
      throw error;
    }
  }

  async list(prefix: string): Promise<AuditObjectInfo[]> {
    const out: AuditObjectInfo[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }),
      );
      for (const o of page.Contents ?? []) {
        if (o.Key) out.push({ key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
}

function httpStatus(error: unknown): number | undefined {
  if (error instanceof S3ServiceException) return error.$metadata?.httpStatusCode;
  return (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

function errorName(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}
