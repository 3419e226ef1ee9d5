import { GetSecretValueCommand, ResourceNotFoundException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SecretNotFoundError, type SecretsPort } from '../../ports/secrets';

/** A Secrets Manager client, made with the adapter (the composition loads both on first use, with only the commands used). */
export function secretsManagerClient(): SecretsManagerClient {
  return new SecretsManagerClient({});
}

/**
 * Secrets Manager behind the secrets port, with a bounded in-memory cache: a warm function
 * reads each secret at most once per `cacheMs`, and a rotation reaches it within that time.
 * Values are never logged or put in error messages.
 */
export class SecretsManagerSecrets implements SecretsPort {
  private readonly cache = new Map<string, { at: number; value: Promise<string> }>();

  constructor(
    private readonly options: { client: SecretsManagerClient; cacheMs?: number; now?: () => number },
  ) {}

  getSecret(name: string): Promise<string> {
    const now = (this.options.now ?? Date.now)();
    const hit = this.cache.get(name);
    if (hit && now - hit.at < (this.options.cacheMs ?? 5 * 60_000)) return hit.value;
    const value = this.fetch(name);
    this.cache.set(name, { at: now, value });
    // A failed read is not cached: the next call tries again.
    value.catch(() => {
      if (this.cache.get(name)?.value === value) this.cache.delete(name);
    });
    return value;
  }

  private async fetch(name: string): Promise<string> {
    try {
      const out = await this.options.client.send(new GetSecretValueCommand({ SecretId: name }));
      if (typeof out.SecretString !== 'string') throw new SecretNotFoundError(name);
      return out.SecretString;
    } catch (error) {
      if (error instanceof ResourceNotFoundException || (error instanceof Error && error.name === 'ResourceNotFoundException')) {
        throw new SecretNotFoundError(name, { cause: error });
      }
      throw error;
    }
  }
}
