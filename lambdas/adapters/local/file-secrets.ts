import { statSync } from 'node:fs';
import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { join, relative, isAbsolute } from 'node:path';
import { SecretNotFoundError, type SecretsPort } from '../../ports/secrets';
import { createPrivateFileOnce, isErrno, readIfExists } from './private-file';

/**
 * Secrets Manager's local stand-in: one file per secret under `<stateDir>/secrets/`,
 * directory 0700 and files 0600, generated on first run and never committed.
 */

/** Thrown when a secret name could escape the secrets folder or collide with another name. */
export class InvalidSecretNameError extends Error {
  constructor(name: string) {
    super(`Invalid secret name ${JSON.stringify(name.slice(0, 80))}`);
    this.name = 'InvalidSecretNameError';
  }
}

// Secrets Manager allows [A-Za-z0-9/_+=.@-]. Segments must not start with '.' (no '.', '..'
// or hidden files) and must not start or end with '_' nor contain '__', because '__' is the
// separator the '/' turns into: with those rules the mapping is injective.
const SEGMENT = /^[A-Za-z0-9+=@-]([A-Za-z0-9_+=.@-]{0,254}[A-Za-z0-9+=.@-])?$/;

/**
 * Maps a secret name to its file name: `airlock/vendor/travel` → `airlock__vendor__travel`.
 * Refuses anything that is not a plain Secrets Manager name (traversal, absolute paths,
 * empty segments, `__`).
 */
export function secretFileName(name: string): string {
  if (name.length === 0 || name.length > 512) throw new InvalidSecretNameError(name);
  const segments = name.split('/');
  for (const segment of segments) {
    if (!SEGMENT.test(segment) || segment.includes('__')) throw new InvalidSecretNameError(name);
  }
  return segments.join('__');
}

/** The file-backed SecretsPort used by the local runtime and integration tests. */
export class FileSecrets implements SecretsPort {
  /** @param dir the secrets folder, normally `<stateDir>/secrets`. */
  constructor(readonly dir: string) {}

  /** Path of the file holding `name`, after the name checks; never outside `dir`. */
  pathOf(name: string): string {
    const path = join(this.dir, secretFileName(name));
    const rel = relative(this.dir, path);
    // Defense in depth: the name rules already forbid this.
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new InvalidSecretNameError(name);
    return path;
  }

  /**
   * Each secret as last read, with the identity of the file it was read from (inode, size,
   * change time). A rotation replaces the file (rename: a new inode), so a changed file is
   * read again at once, by this process or any other writer; an unchanged one costs one
   * `stat` instead of an open, read and close (two secret reads per local action, profiled).
   */
  private readonly cache = new Map<string, { stamp: string; value: string }>();

  async getSecret(name: string): Promise<string> {
    const path = this.pathOf(name);
    const stamp = fileStamp(path);
    const hit = this.cache.get(path);
    if (stamp !== undefined && hit?.stamp === stamp) return hit.value;
    let value: string | undefined;
    try {
      value = await readIfExists(path);
    } catch (cause) {
      if (isErrno(cause, 'ENOTDIR')) throw new SecretNotFoundError(name, { cause });
      throw cause;
    }
    if (value === undefined) {
      this.cache.delete(path);
      throw new SecretNotFoundError(name);
    }
    // Stamped as before the read: were the file replaced in between, the next read's stamp differs.
    if (stamp !== undefined) this.cache.set(path, { stamp, value });
    return value;
  }

  /**
   * Returns the secret, creating it with `generate()` when it does not exist. Safe against a
   * concurrent first start: exactly one generated value wins and both callers get it.
   */
  async ensureSecret(name: string, generate: () => string | Promise<string>): Promise<string> {
    const path = this.pathOf(name);
    await this.ensureDir();
    return createPrivateFileOnce(path, generate);
  }

  /**
   * Replaces an existing secret (a local rotation): written to a private temp file and renamed
   * over the old one, so a reader sees either the old value or the new one, never half.
   */
  async replaceSecret(name: string, value: string): Promise<void> {
    const path = this.pathOf(name);
    await this.getSecret(name);
    const temp = `${path}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(temp, value, { mode: 0o600, flag: 'wx' });
    await rename(temp, path);
  }

  private async ensureDir(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700);
  }
}

/** The file's identity for the cache above; undefined when it cannot be had (the read decides). */
function fileStamp(path: string): string | undefined {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch {
    return undefined;
  }
}
