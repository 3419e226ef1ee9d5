/**
 * The audit vault: write-once storage for receipts and digests. S3 with Object Lock
 * (COMPLIANCE) in AWS; a write-once file store under `<AIRLOCK_HOME>/audit/` locally. There
 * is no update and no delete: the only write is put-if-absent.
 */

export interface AuditObjectInfo {
  key: string;
  size: number;
  /** When the store accepted the object (S3 LastModified; the file's mtime locally). */
  lastModified: Date;
}

export type PutResult = 'created' | 'identical';

export interface AuditStore {
  /**
   * Writes `body` at `key` unless an object is there already. The store checks the bytes
   * against `sha256` (hex) on arrival. When the key exists with the same bytes the call is a
   * no-op (`identical`); with other bytes it throws {@link AuditObjectConflictError}.
   */
  putIfAbsent(key: string, body: Uint8Array, sha256: string): Promise<PutResult>;
  /** The object's bytes, or undefined when there is none. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Every object whose key starts with `prefix`, sorted by key. */
  list(prefix: string): Promise<AuditObjectInfo[]>;
}

/**
 * A write found a different object already stored at its key. Never expected: receipts are
 * a pure function of the ledger. It means the ledger changed after the receipt was written,
 * or someone wrote to the vault. An alarm, not a retryable condition.
 */
export class AuditObjectConflictError extends Error {
  constructor(
    readonly key: string,
    readonly storedSha256: string,
    readonly newSha256: string,
    options?: { cause?: unknown },
  ) {
    super(`A different object is already stored at ${key} (stored ${storedSha256.slice(0, 12)}…, new ${newSha256.slice(0, 12)}…)`, options);
    this.name = 'AuditObjectConflictError';
  }
}

/** The bytes did not match the checksum the caller gave (S3 BadDigest): nothing was stored. */
export class AuditChecksumMismatchError extends Error {
  constructor(key: string, options?: { cause?: unknown }) {
    super(`The checksum of ${key} does not match its bytes`, options);
    this.name = 'AuditChecksumMismatchError';
  }
}

/** A request to change or remove a stored object: the vault refuses it. */
export class ObjectLockedError extends Error {
  constructor(key: string, options?: { cause?: unknown }) {
    super(`${key} is write-once: it cannot be overwritten or deleted`, options);
    this.name = 'ObjectLockedError';
  }
}

/** A key outside the vault's layout (traversal, unknown prefix, odd characters). */
export class InvalidAuditKeyError extends Error {
  constructor(key: string, options?: { cause?: unknown }) {
    super(`Invalid audit key ${JSON.stringify(key.slice(0, 120))}`, options);
    this.name = 'InvalidAuditKeyError';
  }
}

const KEY = /^(receipts|digests|reconciliations)\/[A-Za-z0-9=._-]+(\/[A-Za-z0-9=._-]+)*$/;

/** Checks a key against the vault layout (`receipts/…`, `digests/…` or `reconciliations/…`, no `.`/`..` segments). */
export function assertAuditKey(key: string): void {
  if (key.length > 512 || !KEY.test(key) || key.split('/').some((s) => s === '.' || s === '..' || s.startsWith('.'))) {
    throw new InvalidAuditKeyError(key);
  }
}
