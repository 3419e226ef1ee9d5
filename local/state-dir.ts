import { chmod, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';

/**
 * The local state directory: everything the embedded runtime keeps (DynamoDB data, issuer
 * keys, secrets, audit store) lives under one folder, so deleting it resets the machine.
 */

/** Default folder name under the working directory; git-ignored. */
export const DEFAULT_STATE_DIR_NAME = '.airlock';

/** Environment variable that moves the state directory (tests always set a temp dir). */
export const STATE_DIR_ENV = 'AIRLOCK_HOME';

/**
 * Resolves the state directory: an explicit path wins, then `AIRLOCK_HOME`, then
 * `.airlock/` under `cwd`. Always absolute, so later `chdir`s cannot move it.
 */
export function resolveStateDir(
  explicit?: string,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): string {
  const chosen = explicit ?? (env[STATE_DIR_ENV] && env[STATE_DIR_ENV].trim() !== '' ? env[STATE_DIR_ENV] : undefined);
  if (chosen) return isAbsolute(chosen) ? chosen : resolve(cwd, chosen);
  return resolve(cwd, DEFAULT_STATE_DIR_NAME);
}

/**
 * Creates a directory readable only by the current user. `mkdir`'s mode is filtered by the
 * umask and ignored for directories that already exist, hence the explicit chmod.
 */
export async function ensurePrivateDir(path: string): Promise<string> {
  await mkdir(path, { recursive: true, mode: 0o700 });
  await chmod(path, 0o700);
  return path;
}

/** Another live runtime already uses this state directory (its DynamoDB files are locked). */
export class StateDirInUseError extends Error {
  constructor(
    readonly stateDir: string,
    readonly pid: number,
  ) {
    super(`${stateDir} is in use by another airlock runtime (pid ${pid}); stop it or set AIRLOCK_HOME`);
    this.name = 'StateDirInUseError';
  }
}

const LOCK_FILE = 'runtime.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the state directory for this runtime. dynalite's LevelDB store cannot be shared
 * and fails badly (an uncaught throw on the first request) when it is, so a second runtime
 * is refused up front. A lock left by a dead process is taken over. Returns the release.
 */
export async function acquireStateLock(stateDir: string): Promise<() => Promise<void>> {
  const path = join(stateDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return async () => {
        await unlink(path).catch(() => undefined);
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) throw new StateDirInUseError(stateDir, pid);
    await unlink(path).catch(() => undefined);
  }
  throw new Error(`Could not lock ${stateDir}`);
}
