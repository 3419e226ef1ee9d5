import { createHash } from 'node:crypto';
import { AuditObjectConflictError, assertAuditKey, type AuditObjectInfo, type AuditStore, type PutResult } from '../../lambdas/ports/audit-store';

/** An in-memory write-once store with a settable clock: fast fixtures for property tests. */
export class MemoryAuditStore implements AuditStore {
  readonly objects = new Map<string, { bytes: Uint8Array; lastModified: Date }>();
  constructor(public clock: () => Date) {}

  async putIfAbsent(key: string, body: Uint8Array, sha256: string): Promise<PutResult> {
    assertAuditKey(key);
    const existing = this.objects.get(key);
    if (existing) {
      const stored = createHash('sha256').update(existing.bytes).digest('hex');
      if (stored === sha256) return 'identical';
      throw new AuditObjectConflictError(key, stored, sha256);
    }
    this.objects.set(key, { bytes: new Uint8Array(body), lastModified: this.clock() });
    return 'created';
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const o = this.objects.get(key);
    return o ? new Uint8Array(o.bytes) : undefined;
  }

  async list(prefix: string): Promise<AuditObjectInfo[]> {
    return [...this.objects.entries()]
      .filter(([k]) => k.startsWith(prefix))
      .map(([key, o]) => ({ key, size: o.bytes.length, lastModified: o.lastModified }))
      .sort((a, b) => (a.key < b.key ? -1 : 1));
  }
}
