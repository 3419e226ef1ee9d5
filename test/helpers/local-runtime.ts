import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkContractOf, forgetContractOrigin } from './contract';
import { silentLogger, startLocalRuntime, type LocalRuntime, type LocalRuntimeOptions } from '../../local/server';
import { runtimeTable } from './dynamo';

/** Claims for a test principal besides `sub`. */
export interface TestTokenOptions {
  roles?: string[];
  manager?: string;
  department?: string;
  /** Seconds or `15m`, `1h`; default 1h. */
  ttl?: number | string;
  /** Extra claims (e.g. `scope`). */
  claims?: Record<string, unknown>;
}

export interface TestRuntime {
  /** `http://127.0.0.1:<port>` */
  url: string;
  stateDir: string;
  runtime: LocalRuntime;
  /** A bearer token for `sub` from the runtime's dev issuer. */
  token(sub: string, options?: TestTokenOptions): Promise<string>;
  /** Stops the runtime and deletes the temp state directory (unless it was given). */
  close(): Promise<void>;
}

/**
 * Starts the local runtime on a free port with a fresh temp state directory and a silent
 * logger. Pass `stateDir` to reuse one (e.g. to test a restart); it is then not deleted.
 * With AIRLOCK_DYNAMODB_ENDPOINT set it gets a table of its own there (see helpers/dynamo.ts).
 * Always `await close()` in afterAll/afterEach.
 */
export async function startTestRuntime(
  options: Omit<LocalRuntimeOptions, 'port'> = {},
): Promise<TestRuntime> {
  const owned = options.stateDir === undefined;
  const stateDir = options.stateDir ?? (await mkdtemp(join(tmpdir(), 'airlock-test-')));
  const table = runtimeTable(owned ? undefined : stateDir);
  let runtime: LocalRuntime;
  try {
    runtime = await startLocalRuntime({ logger: silentLogger, ...(table.tableName ? { tableName: table.tableName } : {}), ...options, port: 0, stateDir });
  } catch (error) {
    await table.cleanup();
    if (owned) await rm(stateDir, { recursive: true, force: true });
    throw error;
  }
  // Custom route tables are not the published API; only the default one is held to it.
  const contract = options.routes === undefined;
  if (contract) checkContractOf(runtime.url);
  return {
    url: runtime.url,
    stateDir,
    runtime,
    token: (sub, o = {}) =>
      runtime.issuer.sign(
        {
          ...o.claims,
          sub,
          roles: o.roles ?? [],
          ...(o.manager ? { manager: o.manager } : {}),
          ...(o.department ? { department: o.department } : {}),
        },
        o.ttl ?? '1h',
      ),
    close: async () => {
      await runtime.close();
      await table.cleanup();
      if (contract) forgetContractOrigin(runtime.url);
      if (owned) await rm(stateDir, { recursive: true, force: true });
    },
  };
}
