import { localDynamoClient, startDynalite, type RunningDynalite } from './dynalite';

/**
 * Which DynamoDB the local runtime talks to: dynalite in-process (the default), or any
 * DynamoDB-compatible endpoint named by AIRLOCK_DYNAMODB_ENDPOINT — AWS's DynamoDB Local is
 * the real engine and rejects things dynalite lets through, so CI runs the integration
 * suites against both.
 */

/** Names an external DynamoDB-compatible endpoint used instead of starting dynalite. */
export const DYNAMODB_ENDPOINT_ENV = 'AIRLOCK_DYNAMODB_ENDPOINT';
/** Names the ledger table (default `airlock-ledger`); lets runtimes share one external endpoint. */
export const DYNAMODB_TABLE_ENV = 'AIRLOCK_DYNAMODB_TABLE';

/** AIRLOCK_DYNAMODB_ENDPOINT is not an http(s) URL without credentials. */
export class InvalidDynamoEndpointError extends Error {
  constructor(options?: { cause?: unknown }) {
    // The value is not echoed: it may carry a password.
    super(`${DYNAMODB_ENDPOINT_ENV} must be an http(s) URL without user or password, such as http://127.0.0.1:8000`, options);
    this.name = 'InvalidDynamoEndpointError';
  }
}

/** AIRLOCK_DYNAMODB_TABLE is not a valid DynamoDB table name. */
export class InvalidTableNameError extends Error {
  constructor(value: string) {
    super(`${DYNAMODB_TABLE_ENV} must be 3-255 characters of a-z, A-Z, 0-9, '_', '-' and '.', not ${JSON.stringify(value.slice(0, 80))}`);
    this.name = 'InvalidTableNameError';
  }
}

const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;

/** Reads AIRLOCK_DYNAMODB_ENDPOINT; undefined when unset or blank. */
export function dynamoEndpointFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const raw = env[DYNAMODB_ENDPOINT_ENV]?.trim();
  if (!raw) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch (error) {
    throw new InvalidDynamoEndpointError({ cause: error });
  }
  // Credentials in the URL would end up in the banner and in handlers' environment.
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password) throw new InvalidDynamoEndpointError();
  return url.origin + url.pathname.replace(/\/+$/, '');
}

/** Reads AIRLOCK_DYNAMODB_TABLE; undefined when unset or blank. */
export function tableNameFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const raw = env[DYNAMODB_TABLE_ENV]?.trim();
  if (!raw) return undefined;
  if (!TABLE_NAME.test(raw)) throw new InvalidTableNameError(raw);
  return raw;
}

/** A DynamoDB the local runtime uses; `external` when it outlives the runtime. */
export interface LocalDynamoConnection extends RunningDynalite {
  external: boolean;
}

/**
 * Connects to `endpoint` when given (closing only destroys the client: an external database
 * outlives the runtime), else starts dynalite (in memory, or persisted under `path`).
 */
export async function openLocalDynamo(options: { endpoint?: string | undefined; path?: string | undefined }): Promise<LocalDynamoConnection> {
  if (options.endpoint) {
    const client = localDynamoClient(options.endpoint);
    return {
      endpoint: options.endpoint,
      client,
      external: true,
      close: async () => client.destroy(),
    };
  }
  // The runtime's own client skips the SDK's serialization for item operations (dynalite.ts);
  // the SDK's path to dynalite is what the tests and every other client take.
  const dynalite = await startDynalite({ ...(options.path ? { path: options.path } : {}), bypassSdk: true });
  return { ...dynalite, external: false };
}
