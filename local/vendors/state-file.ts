import { open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * A sandbox vendor's state on disk: one JSON snapshot, replaced atomically (write a temp
 * file, fsync it, rename it over the old one, fsync the folder), so a SIGKILL at any moment
 * leaves either the previous snapshot or the new one. Changes are group-committed: every
 * caller of durable() waits for a snapshot taken after its change, and one write covers all
 * changes made while the previous write ran.
 */

/** The snapshot on disk cannot be read back; the vendor refuses to start rather than forget. */
export class VendorStateCorruptError extends Error {
  constructor(
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(`sandbox vendor state ${path} is unreadable; move it away to start that vendor empty`, options);
    this.name = 'VendorStateCorruptError';
  }
}

const MAP_TAG = '$map';

/** JSON with Maps kept as Maps (tagged `{"$map": [[k, v], …]}`). */
export function encodeSnapshot(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v instanceof Map ? { [MAP_TAG]: [...v] } : v));
}

/** The inverse of encodeSnapshot. The result is untrusted: callers validate it. */
export function decodeSnapshot(text: string): unknown {
  return JSON.parse(text, (_key, v: unknown) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const keys = Object.keys(v);
      const entries = (v as Record<string, unknown>)[MAP_TAG];
      if (keys.length === 1 && keys[0] === MAP_TAG && Array.isArray(entries)) {
        if (!entries.every((e) => Array.isArray(e) && e.length === 2)) throw new Error('malformed map entry');
        return new Map(entries as [unknown, unknown][]);
      }
    }
    return v;
  });
}

export class VendorStateFile {
  private changes = 0;
  private written = 0;
  private writing: Promise<void> | undefined;

  /** `snapshot` is called at write time, so a write carries every change made before it. */
  constructor(
    readonly path: string,
    private readonly snapshot: () => unknown,
  ) {}

  /** The saved snapshot, undefined when there is none yet. */
  async load(): Promise<unknown> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    try {
      return decodeSnapshot(text);
    } catch (error) {
      throw new VendorStateCorruptError(this.path, { cause: error });
    }
  }

  /** Records that the state changed; durable() then waits for a write that includes it. */
  changed(): void {
    this.changes++;
  }

  /** Resolves once every change recorded so far is on disk. */
  async durable(): Promise<void> {
    const target = this.changes;
    while (this.written < target) {
      this.writing ??= this.write().finally(() => {
        this.writing = undefined;
      });
      await this.writing;
    }
  }

  private async write(): Promise<void> {
    const upTo = this.changes;
    const text = encodeSnapshot(this.snapshot());
    const tmp = `${this.path}.tmp`;
    const file = await open(tmp, 'w', 0o600);
    try {
      await file.writeFile(text, 'utf8');
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, this.path);
    // The rename itself must survive a crash too.
    const dir = await open(dirname(this.path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    this.written = upTo;
  }

  /** Removes a temp file a killed process left behind (the snapshot itself is intact). */
  async discardPartialWrite(): Promise<void> {
    await unlink(`${this.path}.tmp`).catch(() => undefined);
  }
}
