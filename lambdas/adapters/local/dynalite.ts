import type { AddressInfo } from 'node:net';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';

/**
 * Embedded DynamoDB: dynalite on a loopback port, reached through the real SDK client, so
 * conditional writes and expressions are evaluated by a DynamoDB implementation, not a mock.
 */

/**
 * Dummy credentials, never valid anywhere real. Letters only: AWS's DynamoDB Local rejects an
 * access key with a hyphen (UnrecognizedClientException), dynalite accepts anything.
 */
export const LOCAL_AWS_CREDENTIALS = { accessKeyId: 'airlocklocal', secretAccessKey: 'airlocklocal' } as const;
/** Region the local runtime pretends to be in. */
export const LOCAL_AWS_REGION = 'us-east-1';

export interface DynaliteOptions {
  /** LevelDB folder for persistent data; in memory when omitted. */
  path?: string;
  /** Loopback port; 0 (the default) picks a free one. */
  port?: number;
}

export interface RunningDynalite {
  /** `http://127.0.0.1:<port>`. */
  endpoint: string;
  /** An SDK client bound to the endpoint with dummy credentials. */
  client: DynamoDBClient;
  /** Stops the client and the server and closes the LevelDB store. Idempotent. */
  close(): Promise<void>;
}

/** Builds a DynamoDB client for a local endpoint (dynalite, DynamoDB Local) with dummy static credentials. */
export function localDynamoClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: LOCAL_AWS_REGION,
    credentials: LOCAL_AWS_CREDENTIALS,
    // Local endpoints answer in milliseconds; a short retry budget surfaces a dead server quickly.
    maxAttempts: 3,
  });
}

/**
 * Starts dynalite in-process on 127.0.0.1. Tables become ACTIVE at once (no simulated
 * CREATING delay), which keeps tests fast and start-up deterministic.
 */
export async function startDynalite(options: DynaliteOptions = {}): Promise<RunningDynalite> {
  const server = dynalite({
    ...(options.path ? { path: options.path } : {}),
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', onError);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  const client = localDynamoClient(endpoint);
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      client.destroy();
      await new Promise<void>((resolve, reject) => {
        server.close((error?: Error) => (error ? reject(error) : resolve()));
        // Keep-alive sockets of other SDK clients (handlers build their own) would hold
        // close() open until they time out.
        server.closeAllConnections();
      });
    })();
    return closing;
  };
  return { endpoint, client, close };
}
