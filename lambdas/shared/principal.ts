import * as z from 'zod';

/**
 * The human an agent acts for. Built only from verified token claims, never from anything
 * the agent sends in a body or header.
 */
export interface Principal {
  sub: string;
  roles: string[];
  manager?: string;
  department?: string;
  /**
   * The agent (OAuth client) presenting the token on the principal's behalf, from verified
   * claims only (see agentFromClaims): what delegations are matched against. Absent when the
   * token names no agent (a person calling directly).
   */
  agent?: string;
}

/** The agent: recorded as the actor (RFC 8693 `act`), never trusted as an identity. */
export const ActorSchema = z
  .object({
    name: z.string().min(1).max(128),
    model: z.string().min(1).max(128).optional(),
  })
  .strict();
export type Actor = z.infer<typeof ActorSchema>;

/** Claim names Airlock reads from a verified JWT. */
export const ClaimNames = { roles: 'roles', manager: 'manager', department: 'department' } as const;

/**
 * Where the agent's id is read, first match wins: `act.sub` (RFC 8693 token exchange: the
 * actor acting for `sub`; the outermost `act` is the current actor), then `azp` (OpenID
 * Connect: the client the token was issued to), then `client_id` (RFC 9068 access tokens).
 */
export const AgentClaimOrder = ['act.sub', 'azp', 'client_id'] as const;

/** Most roles one token may carry; identity providers cap group claims well below this. */
export const MAX_ROLES = 256;
/** Longest `sub`, role, manager or department Airlock accepts (ledger keys include `sub`). */
export const MAX_CLAIM_CHARS = 256;

/** A claim the token carries in a shape Airlock does not accept: the token is refused (401). */
export class InvalidClaimsError extends Error {
  /** Paths of the offending claims, for logs; never the values. */
  readonly claims: string[];
  constructor(claims: string[], options?: { cause?: unknown }) {
    super(`The token's claims are not usable: ${claims.join(', ')}`, options);
    this.name = 'InvalidClaimsError';
    this.claims = claims;
  }
}

// A lone surrogate cannot be encoded as UTF-8: DynamoDB, Cedar and receipts would each
// handle it differently, so a name holding one is refused rather than repaired.
const LONE_SURROGATE = /\p{Cs}/u;
const claimText = z
  .string()
  .min(1)
  .max(MAX_CLAIM_CHARS)
  .refine((s) => !LONE_SURROGATE.test(s), 'must be well-formed Unicode');

/**
 * The claims Airlock reads, in the JSON types the identity provider issued them in. Every
 * other claim is ignored. `roles` is a JSON array of strings, read element by element: a
 * role named "Security Admins" or "a,b" is one role, exactly as issued.
 */
export const VerifiedClaimsSchema = z
  .object({
    sub: claimText,
    [ClaimNames.roles]: z.array(claimText).max(MAX_ROLES).optional(),
    [ClaimNames.manager]: claimText.optional(),
    [ClaimNames.department]: claimText.optional(),
    act: z.object({ sub: claimText }).loose().optional(),
    azp: claimText.optional(),
    client_id: claimText.optional(),
  })
  .loose();

/** The agent a verified token names, by {@link AgentClaimOrder}; undefined when none. */
export function agentFromClaims(claims: { act?: { sub: string } | undefined; azp?: string | undefined; client_id?: string | undefined }): string | undefined {
  return claims.act?.sub ?? claims.azp ?? claims.client_id;
}

/**
 * Maps a verified token's JSON payload to a Principal. Throws InvalidClaimsError when `sub`
 * is missing or any claim Airlock reads has another shape (a roles claim that is a string, a
 * number, or holds a non-string): refusing beats guessing what an identity provider meant.
 * Roles are a set: duplicates collapse and the order is normalized.
 */
export function principalFromVerifiedClaims(payload: unknown): Principal {
  const parsed = VerifiedClaimsSchema.safeParse(payload);
  if (!parsed.success) {
    throw new InvalidClaimsError([...new Set(parsed.error.issues.map((i) => i.path.join('.') || '(root)'))], { cause: parsed.error });
  }
  const claims = parsed.data;
  const manager = claims[ClaimNames.manager];
  const department = claims[ClaimNames.department];
  const agent = agentFromClaims(claims);
  return {
    sub: claims.sub,
    roles: [...new Set(claims[ClaimNames.roles] ?? [])].sort(),
    ...(manager !== undefined ? { manager } : {}),
    ...(department !== undefined ? { department } : {}),
    ...(agent !== undefined ? { agent } : {}),
  };
}
