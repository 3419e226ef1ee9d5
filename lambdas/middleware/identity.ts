import { InvalidClaimsError, principalFromVerifiedClaims, type Principal } from '../shared/principal';
import { unauthorized } from '../shared/problem';
import type { Logger } from '../shared/logger';

/**
 * The principal of an authenticated request, read from the token API Gateway verified.
 *
 * API Gateway's JWT authorizer checks the token in the Authorization header and hands the
 * handler its claims, but flattened to strings: an array claim arrives as `[a b]`, so a role
 * named "Employee SecurityAdmin" and the two roles "Employee" and "SecurityAdmin" look the
 * same. The handler therefore never reads identity from those strings. It decodes the payload
 * of the same Authorization header (already verified; decoding needs no key), checks that it
 * is the token the authorizer verified (same `sub`, `iss`, `jti`, `iat`, `exp`, `nbf`, and
 * the same scalar claims Airlock reads), and reads roles from the token's real JSON array.
 */

/** `Bearer <JWS compact>`, scheme case-insensitive (RFC 9110 §11.1), or the bare token API Gateway also accepts. */
const AUTHORIZATION = /^(?:bearer +)?([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*) *$/i;

/** Claims compared between the decoded token and the authorizer's flattened copy. */
const CROSS_CHECKED = ['sub', 'iss', 'jti', 'iat', 'exp', 'nbf', 'manager', 'department', 'azp', 'client_id'] as const;

/** Largest Authorization header decoded; API Gateway refuses far smaller headers anyway. */
const MAX_AUTHORIZATION_CHARS = 16 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeSegment(segment: string): unknown {
  // Strict base64url (the regex) and strict UTF-8: a token jose would refuse is refused here.
  return JSON.parse(utf8.decode(Buffer.from(segment, 'base64url')));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Why a request's identity was refused; logged, never sent (the caller sees a plain 401). */
export type IdentityRefusal = 'no-authorizer' | 'no-token' | 'malformed-token' | 'token-mismatch' | 'invalid-claims';

/** The request's token could not give a principal. */
export class IdentityRefusedError extends Error {
  readonly reason: IdentityRefusal;
  readonly claims: string[];
  constructor(reason: IdentityRefusal, claims: string[] = [], options?: { cause?: unknown }) {
    super(`identity refused: ${reason}${claims.length ? ` (${claims.join(', ')})` : ''}`, options);
    this.name = 'IdentityRefusedError';
    this.reason = reason;
    this.claims = claims;
  }
}

/**
 * Decodes the payload of a JWS compact token from an Authorization header value. Only shape
 * is checked here: the signature was verified by the authorizer in front of the handler.
 */
export function decodeAuthorizationPayload(header: string | undefined): Record<string, unknown> {
  if (header === undefined || header.length === 0) throw new IdentityRefusedError('no-token');
  // A repeated Authorization header arrives comma-joined and fails the pattern: one token only.
  const match = header.length <= MAX_AUTHORIZATION_CHARS ? AUTHORIZATION.exec(header.trim()) : null;
  if (!match) throw new IdentityRefusedError('malformed-token');
  let protectedHeader: unknown;
  let payload: unknown;
  try {
    protectedHeader = decodeSegment(match[1]!);
    payload = decodeSegment(match[2]!);
  } catch (cause) {
    throw new IdentityRefusedError('malformed-token', [], { cause });
  }
  if (!isObject(protectedHeader) || typeof protectedHeader.alg !== 'string' || protectedHeader.alg.toLowerCase() === 'none') {
    throw new IdentityRefusedError('malformed-token');
  }
  if (!isObject(payload)) throw new IdentityRefusedError('malformed-token');
  return payload;
}

/** The authorizer's string form of a scalar claim equals the token's JSON value. */
function sameClaim(flattened: unknown, issued: unknown): boolean {
  if (flattened === undefined || issued === undefined) return flattened === issued;
  if (typeof issued === 'number') return Number(flattened) === issued;
  if (typeof issued === 'string' || typeof issued === 'boolean') return String(flattened) === String(issued);
  // Airlock reads these claims as scalars; any other JSON type is refused by the claims schema.
  return true;
}

/**
 * The verified principal of an API Gateway request: decodes the Authorization header's token,
 * checks it against the authorizer's claims, and reads the claims from its JSON. Throws
 * IdentityRefusedError.
 */
export function principalFromRequest(authorizerClaims: Record<string, unknown> | undefined, authorization: string | undefined): Principal {
  if (!authorizerClaims || Object.keys(authorizerClaims).length === 0) throw new IdentityRefusedError('no-authorizer');
  const payload = decodeAuthorizationPayload(authorization);
  const differing = CROSS_CHECKED.filter((name) => !sameClaim(authorizerClaims[name], payload[name]));
  if (differing.length > 0) throw new IdentityRefusedError('token-mismatch', differing);
  try {
    return principalFromVerifiedClaims(payload);
  } catch (error) {
    if (error instanceof InvalidClaimsError) throw new IdentityRefusedError('invalid-claims', error.claims, { cause: error });
    throw error;
  }
}

/** What the caller is told for every refusal: which check failed stays in the log. */
export function identityProblem(error: IdentityRefusedError, log: Logger) {
  log.warn('identity refused', { reason: error.reason, claims: error.claims });
  return unauthorized(
    error.reason === 'invalid-claims'
      ? `The bearer token's claims are not usable (${error.claims.join(', ')}): roles must be a JSON array of strings; sub, manager and department strings of 1–256 characters.`
      : 'A valid bearer token is required.',
  );
}
