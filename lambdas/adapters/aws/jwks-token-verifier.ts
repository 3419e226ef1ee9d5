import { createRemoteJWKSet, customFetch, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { TokenRejectedError, type TokenVerifier } from '../../ports/tokens';

/**
 * Verifies bearer tokens the way API Gateway's JWT authorizer does: the issuer's keys from its
 * OpenID discovery document (`<issuer>/.well-known/openid-configuration` → `jwks_uri`), then
 * signature, `iss`, `aud` (any of the configured audiences), `exp` and `nbf`. Keys are cached
 * by jose per process and refetched when a token names an unknown `kid`.
 */
export interface JwksTokenVerifierOptions {
  issuer: string;
  audience: readonly string[];
  /** For tests: the fetch used for discovery and keys. */
  fetch?: typeof fetch;
  /** Clock skew tolerated on `exp` / `nbf`, seconds. */
  clockToleranceSeconds?: number;
}

/** Largest token accepted; API Gateway refuses far larger headers anyway. */
const MAX_TOKEN_CHARS = 16 * 1024;

export class JwksTokenVerifier implements TokenVerifier {
  readonly issuer: string;
  private keys: Promise<JWTVerifyGetKey> | undefined;

  constructor(private readonly options: JwksTokenVerifierOptions) {
    this.issuer = options.issuer;
  }

  private keySet(): Promise<JWTVerifyGetKey> {
    this.keys ??= (async () => {
      const doFetch = this.options.fetch ?? fetch;
      const discovery = `${this.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
      const res = await doFetch(discovery, { signal: AbortSignal.timeout(5_000) });
      if (!res.ok) throw new Error(`OpenID discovery answered ${res.status}`);
      const doc = (await res.json()) as { jwks_uri?: unknown };
      if (typeof doc.jwks_uri !== 'string') throw new Error('OpenID discovery document has no jwks_uri');
      return createRemoteJWKSet(new URL(doc.jwks_uri), this.options.fetch ? { [customFetch]: this.options.fetch } : {});
    })();
    // A failed discovery is retried on the next token rather than remembered.
    this.keys.catch(() => {
      this.keys = undefined;
    });
    return this.keys;
  }

  async verify(token: string): Promise<Record<string, unknown>> {
    if (token.length === 0 || token.length > MAX_TOKEN_CHARS) throw new TokenRejectedError('size');
    let keys: JWTVerifyGetKey;
    try {
      keys = await this.keySet();
    } catch (cause) {
      throw new TokenRejectedError('keys-unavailable', { cause });
    }
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: this.issuer,
        audience: [...this.options.audience],
        clockTolerance: this.options.clockToleranceSeconds ?? 5,
        requiredClaims: ['sub', 'exp'],
      });
      return payload as Record<string, unknown>;
    } catch (cause) {
      const code = cause instanceof Error && 'code' in cause && typeof cause.code === 'string' ? cause.code : 'invalid';
      throw new TokenRejectedError(code, { cause });
    }
  }
}
