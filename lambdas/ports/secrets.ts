/**
 * Secrets: the grant-signing key and one vendor credential per connector. Secrets Manager in
 * AWS; files under the state directory locally. Values never reach logs, receipts or errors.
 */
export interface SecretsPort {
  /** Returns the secret's current string value; throws SecretNotFoundError when absent. */
  getSecret(name: string): Promise<string>;
}

export class SecretNotFoundError extends Error {
  constructor(name: string, options?: { cause?: unknown }) {
    super(`Secret ${name} does not exist`, options);
    this.name = 'SecretNotFoundError';
  }
}

/** Secret names, shared by the stack, the adapters and the local runtime. */
export const SecretNames = {
  grantSigningKey: 'airlock/grant-signing-key',
  /** HMAC key of receipt redaction tokens (read only by the receipts function). */
  receiptRedactionKey: 'airlock/receipt-redaction-key',
  /** Seed of the Ed25519 key that signs audit digests (read only by the receipts function). */
  digestSigningKey: 'airlock/digest-signing-key',
  /** HMAC key of page cursors (read by the intake and approvals functions). */
  cursorKey: 'airlock/cursor-key',
  vendorCredential: (connector: string) => `airlock/vendor/${connector}`,
} as const;
