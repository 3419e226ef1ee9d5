import { randomBytes } from 'node:crypto';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';

/**
 * Creates `path` with `content` (mode 0600) only if it does not exist yet, and returns what
 * the file holds afterwards. Two processes starting on a fresh state directory (`airlock
 * dev` and `airlock token`) must agree on one key, so the file is written to a temporary
 * name and hard-linked into place: `link` fails if the target exists, which makes
 * create-if-absent atomic and means a reader never sees a half-written file.
 */
export async function createPrivateFileOnce(path: string, generate: () => string | Promise<string>): Promise<string> {
  const existing = await readIfExists(path);
  if (existing !== undefined) return existing;
  const content = await generate();
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temp, content, { mode: 0o600, flag: 'wx' });
  try {
    await link(temp, path);
    return content;
  } catch (error) {
    if (isErrno(error, 'EEXIST')) {
      const winner = await readIfExists(path);
      if (winner !== undefined) return winner;
    }
    throw error;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/** Reads a UTF-8 file, or undefined when it does not exist. */
export async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw error;
  }
}

/** Narrows an unknown error to a Node system error with the given code. */
export function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
