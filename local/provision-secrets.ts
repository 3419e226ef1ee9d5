import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { SecretNames } from '../lambdas/ports/secrets';
import type { FileSecrets } from '../lambdas/adapters/local/file-secrets';

/**
 * First-run secrets of the local runtime: what the stack creates in Secrets Manager, made
 * here once and kept under `<stateDir>/secrets/`.
 */

/** Algorithm recorded in the grant-signing JWK (`alg`). */
export const GRANT_SIGNING_ALG = 'EdDSA';

/**
 * An Ed25519 private JWK (`kty: OKP`, `crv: Ed25519`) with `kid` (RFC 7638 thumbprint),
 * `alg: EdDSA` and `use: sig`, serialized as JSON. `importJWK(JSON.parse(value))` in jose
 * gives the signing key; drop `d` for the public half.
 */
export async function generateGrantSigningKey(): Promise<string> {
  const { privateKey } = await generateKeyPair('Ed25519', { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  return JSON.stringify({ ...jwk, kid, alg: GRANT_SIGNING_ALG, use: 'sig' });
}

/** A random secret (a sandbox vendor's API key, an HMAC or signing seed): 256 bits, base64url. */
export function generateRandomSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Ensures the grant-signing key, the receipt, digest and cursor keys, and one vendor
 * credential per connector exist. Existing
 * values are never replaced, so restarts keep grants and vendor keys stable.
 */
export async function provisionLocalSecrets(secrets: FileSecrets, connectorNames: readonly string[]): Promise<string[]> {
  const names = [
    SecretNames.grantSigningKey,
    SecretNames.receiptRedactionKey,
    SecretNames.digestSigningKey,
    SecretNames.cursorKey,
    ...connectorNames.map((c) => SecretNames.vendorCredential(c)),
  ];
  await secrets.ensureSecret(SecretNames.grantSigningKey, generateGrantSigningKey);
  // Receipt redaction (HMAC) and digest signing (Ed25519 seed): 256 random bits each.
  await secrets.ensureSecret(SecretNames.receiptRedactionKey, generateRandomSecret);
  await secrets.ensureSecret(SecretNames.digestSigningKey, generateRandomSecret);
  // Page-cursor HMAC key: 256 random bits, like the stack's generated secret.
  await secrets.ensureSecret(SecretNames.cursorKey, generateRandomSecret);
  for (const connector of connectorNames) {
    await secrets.ensureSecret(SecretNames.vendorCredential(connector), generateRandomSecret);
  }
  return names;
}
