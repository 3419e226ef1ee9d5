import { randomUUID } from 'node:crypto';
import { invokeTool, type ConnectorRuntimeDeps, type InvokeToolRequest } from '../../lambdas/tools/invoke';
import { SecretNames, SecretNotFoundError, type SecretsPort } from '../../lambdas/ports/secrets';
import { startSandboxVendors, type SandboxVendors, type StartSandboxVendorsOptions } from '../../local/vendors/index';
import { toolRegistry } from '../../lambdas/tools/registry';

/** Test harness: sandbox vendors on loopback plus a runtime wired to them with an in-memory secrets port. */
export interface Harness {
  vendors: SandboxVendors;
  credentials: Record<string, string>;
  /** Everything the runtime logged, one JSON-ish line per entry. */
  logs: string[];
  /** Current fake time used by the vendors. */
  clock: { now: number };
  call(tool: string, input: unknown, opts?: Partial<InvokeToolRequest>): Promise<unknown>;
  deps: ConnectorRuntimeDeps;
}

export async function startHarness(options: Partial<StartSandboxVendorsOptions> = {}): Promise<Harness> {
  const credentials: Record<string, string> = options.credentials ?? {
    travel: `sk_travel_${randomUUID()}`,
    payments: `sk_payments_${randomUUID()}`,
    procurement: `sk_procurement_${randomUUID()}`,
    iam: `sk_iam_${randomUUID()}`,
  };
  const clock = { now: Date.now() };
  const vendors = await startSandboxVendors({ credentials, now: () => clock.now, ...options });
  const secrets: SecretsPort = {
    async getSecret(name) {
      for (const [connector, value] of Object.entries(credentials)) if (name === SecretNames.vendorCredential(connector)) return value;
      throw new SecretNotFoundError(name);
    },
  };
  const logs: string[] = [];
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    logs.push(JSON.stringify({ level, message, ...fields }));
  };
  const deps: ConnectorRuntimeDeps = {
    tools: toolRegistry,
    secrets,
    baseUrls: vendors.baseUrls,
    logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    // Short so "commit then drop" and timeouts resolve quickly, long enough for a busy CI box.
    timeoutMs: 1_000,
  };
  return {
    vendors,
    credentials,
    logs,
    clock,
    deps,
    call: (tool, input, opts = {}) =>
      invokeTool({ tool, input, idempotencyKey: randomUUID(), dryRun: false, deadline: Date.now() + 5_000, ...opts }, deps),
  };
}

/** Captures a rejection so tests can assert on its class, name and fields. */
export async function failure(promise: Promise<unknown>): Promise<Error & { vendorCode?: string; vendorStatus?: number; retryable?: boolean }> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to fail');
}
