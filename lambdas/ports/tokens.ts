/**
 * Verifying bearer tokens inside a function, for the routes that must answer a missing or bad
 * token themselves (MCP: `401` with `WWW-Authenticate: Bearer resource_metadata=…`, which API
 * Gateway's JWT authorizer cannot send). Same issuer, audience and keys as the authorizer.
 */
export interface TokenVerifier {
  /** The issuer every accepted token names (`iss`); published as the authorization server. */
  readonly issuer: string;
  /** The token's claims once its signature, issuer, audience and lifetime check out; else rejects with TokenRejectedError. */
  verify(token: string): Promise<Record<string, unknown>>;
}

/** A token that did not verify; `reason` is for logs only, never sent to the caller. */
export class TokenRejectedError extends Error {
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`token rejected: ${reason}`, options);
    this.name = 'TokenRejectedError';
  }
}
