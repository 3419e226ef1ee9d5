import { createHash } from 'node:crypto';
import * as z from 'zod';
import { SecretNames, type SecretsPort } from '../ports/secrets';
import type { RegisteredTool, ToolRegistry } from '../ports/tools';
import type { ConnectorDefinition, DryRunResult, ToolContext, ToolLogger, VerifiedGrant } from './sdk';

/**
 * The connector runtime: the one way a step runs a tool. It validates the agent-supplied input,
 * checks the grant names exactly this tool, fetches the connector's own vendor credential,
 * runs the tool (or its dry run) and validates what comes back. The connector Lambda handler
 * and the local runtime both call `invokeTool`.
 */

/** One tool call, as the saga's ExecuteSteps / Compensate states send it. */
export interface InvokeToolRequest {
  /** Full tool name, `<connector>.<tool>`. */
  tool: string;
  /** Untrusted arguments; validated against the tool's zod schema here. */
  input: unknown;
  /** Deterministic per step; sent to the vendor as `Idempotency-Key` and `clientReference`. */
  idempotencyKey: string;
  dryRun: boolean;
  grant?: VerifiedGrant;
  /** Epoch milliseconds by which the call must return. */
  deadline: number;
}

/** What the runtime needs from its host. */
export interface ConnectorRuntimeDeps {
  /** Where the tool is looked up (the composition root's registry). */
  tools: ToolRegistry;
  secrets: SecretsPort;
  /** Vendor base URL per connector name; falls back to the connector's `defaultBaseUrl`. */
  baseUrls: Record<string, string>;
  logger: ToolLogger;
  /** HTTP implementation handed to vendor clients; global `fetch` unless given. */
  fetch?: typeof fetch;
  /** Per-HTTP-call timeout in milliseconds (the deadline may shorten it); 5 s unless given. */
  timeoutMs?: number;
}

/** The named tool does not exist in the registry. Not retryable. */
export class ToolNotFoundError extends Error {
  readonly retryable = false;
  constructor(tool: string) {
    super(`No tool named ${tool}`);
    this.name = 'ToolNotFoundError';
  }
}

/** One problem with a tool input: where, and what is wrong (never the offending value). */
export interface InputViolation {
  path: string;
  message: string;
}

/** The tool input failed its schema. Not retryable: the same input fails the same way. */
export class ToolInputInvalidError extends Error {
  readonly retryable = false;
  constructor(
    readonly tool: string,
    readonly violations: InputViolation[],
    options?: { cause?: unknown },
  ) {
    super(`Invalid input for ${tool}: ${violations.map((v) => `${v.path || '(root)'}: ${v.message}`).join('; ')}`, options);
    this.name = 'ToolInputInvalidError';
  }
}

/** The tool produced output that fails its own schema: a connector or vendor bug. Not retryable. */
export class ToolOutputInvalidError extends Error {
  readonly retryable = false;
  constructor(tool: string, paths: string[], options?: { cause?: unknown }) {
    super(`Output of ${tool} failed its schema at ${paths.join(', ') || '(root)'}`, options);
    this.name = 'ToolOutputInvalidError';
  }
}

/** The grant does not name this connector and tool, or has expired. Not retryable. */
export class GrantMismatchError extends Error {
  readonly retryable = false;
  constructor(message: string) {
    super(message);
    this.name = 'GrantMismatchError';
  }
}

/** The tool has side effects and no dry run. Not retryable. */
export class DryRunUnsupportedError extends Error {
  readonly retryable = false;
  constructor(tool: string) {
    super(`${tool} has no dry run`);
    this.name = 'DryRunUnsupportedError';
  }
}

/** The connector has no vendor base URL configured. Not retryable. */
export class ConnectorConfigError extends Error {
  readonly retryable = false;
  constructor(message: string) {
    super(message);
    this.name = 'ConnectorConfigError';
  }
}

const dryRunResultSchema: z.ZodType<DryRunResult> = z.object({
  dryRun: z.literal(true),
  check: z.string(),
  quote: z.object({ amount: z.number(), currency: z.string() }).optional(),
  details: z.record(z.string(), z.unknown()).optional(),
});

function violations(error: z.ZodError): InputViolation[] {
  return error.issues.slice(0, 20).map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
}

/**
 * Vendor clients are built once per (connector, base URL, credential): a rotated credential
 * gets a fresh client, an unchanged one reuses its connection pool. Keyed by a hash so the
 * cache never holds the credential as a map key. Bounded because rotations accumulate.
 */
const clientCache = new Map<string, unknown>();
const CLIENT_CACHE_MAX = 64;
const fetchIds = new WeakMap<typeof fetch, number>();
let nextFetchId = 1;

function clientFor(entry: Pick<RegisteredTool, 'connector'>, baseUrl: string, credential: string, deps: ConnectorRuntimeDeps): unknown {
  let fetchId = 0;
  if (deps.fetch) {
    fetchId = fetchIds.get(deps.fetch) ?? nextFetchId++;
    fetchIds.set(deps.fetch, fetchId);
  }
  const key = createHash('sha256')
    .update(`${entry.connector.name}\n${baseUrl}\n${deps.timeoutMs ?? ''}\n${fetchId}\n${credential}`)
    .digest('hex');
  let client = clientCache.get(key);
  if (client === undefined) {
    client = entry.connector.vendor.createClient({
      baseUrl,
      credential,
      ...(deps.timeoutMs !== undefined ? { timeoutMs: deps.timeoutMs } : {}),
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
    });
    if (clientCache.size >= CLIENT_CACHE_MAX) {
      const oldest = clientCache.keys().next().value;
      if (oldest !== undefined) clientCache.delete(oldest);
    }
    clientCache.set(key, client);
  }
  return client;
}

/**
 * The vendor client of a connector, built as a tool call builds it (its own credential, the
 * configured base URL, the shared cache): what reconciliation asks the vendor through.
 */
export async function vendorClientOf(connector: ConnectorDefinition<any>, deps: ConnectorRuntimeDeps): Promise<unknown> {
  const baseUrl = deps.baseUrls[connector.name] ?? connector.vendor.defaultBaseUrl;
  if (!baseUrl) throw new ConnectorConfigError(`No vendor base URL configured for connector ${connector.name}`);
  const credential = await deps.secrets.getSecret(SecretNames.vendorCredential(connector.name));
  return clientFor({ connector }, baseUrl, credential, deps);
}

function checkGrant(grant: VerifiedGrant | undefined, entry: RegisteredTool): void {
  if (!grant) return;
  if (grant.aud !== entry.connector.name) throw new GrantMismatchError(`Grant is for connector ${grant.aud}, not ${entry.connector.name}`);
  if (grant.scope !== entry.fullName) throw new GrantMismatchError(`Grant is for ${grant.scope}, not ${entry.fullName}`);
  if (grant.exp * 1000 <= Date.now()) throw new GrantMismatchError('Grant has expired');
}

/**
 * Runs one tool call and returns its validated output (for a dry run of a tool with side
 * effects, a `DryRunResult`). Throws `ToolInputInvalidError`, `GrantMismatchError`, the named
 * vendor errors from `./errors`, or `ToolOutputInvalidError`.
 */
export async function invokeTool(req: InvokeToolRequest, deps: ConnectorRuntimeDeps): Promise<unknown> {
  const entry = deps.tools.find(req.tool);
  if (!entry) throw new ToolNotFoundError(req.tool);
  const { tool, connector } = entry;

  const parsed = tool.input.safeParse(req.input);
  if (!parsed.success) throw new ToolInputInvalidError(entry.fullName, violations(parsed.error), { cause: parsed.error });
  checkGrant(req.grant, entry);

  const baseUrl = deps.baseUrls[connector.name] ?? connector.vendor.defaultBaseUrl;
  if (!baseUrl) throw new ConnectorConfigError(`No vendor base URL configured for connector ${connector.name}`);
  const credential = await deps.secrets.getSecret(SecretNames.vendorCredential(connector.name));
  const client = clientFor(entry, baseUrl, credential, deps);

  const ctx: ToolContext = {
    idempotencyKey: req.idempotencyKey,
    grant: req.grant,
    logger: deps.logger,
    deadline: req.deadline,
    dryRun: req.dryRun,
  };
  const started = Date.now();
  const fields = { tool: entry.fullName, dryRun: req.dryRun, idempotencyKey: req.idempotencyKey };
  try {
    let result: unknown;
    if (req.dryRun && tool.tier !== 'read') {
      if (!tool.preview) throw new DryRunUnsupportedError(entry.fullName);
      const preview = dryRunResultSchema.safeParse(await tool.preview(client, parsed.data, ctx));
      if (!preview.success) {
        throw new ToolOutputInvalidError(entry.fullName, violations(preview.error).map((v) => v.path), { cause: preview.error });
      }
      result = preview.data;
    } else {
      const output = await tool.execute(client, parsed.data, ctx);
      const checked = tool.output.safeParse(output);
      if (!checked.success) {
        throw new ToolOutputInvalidError(entry.fullName, violations(checked.error).map((v) => v.path), { cause: checked.error });
      }
      result = checked.data;
    }
    deps.logger.info('tool completed', { ...fields, durationMs: Date.now() - started });
    return result;
  } catch (err) {
    const name = err instanceof Error ? err.name : 'UnknownError';
    deps.logger.warn('tool failed', { ...fields, durationMs: Date.now() - started, error: name });
    throw err;
  }
}
