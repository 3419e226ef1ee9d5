import { z } from 'zod';

/**
 * The human an agent acts for. Built only from verified token claims, never from anything
 * the agent sends in a body or header.
 */
export interface Principal {
  sub: string;
  roles: string[];
  manager?: string;
  department?: string;
}

/** The agent: recorded as the actor (RFC 8693 `act`), never trusted as an identity. */
export const ActorSchema = z
  .object({
    name: z.string().min(1).max(128),
    model: z.string().min(1).max(128).optional(),
  })
  .strict();
export type Actor = z.infer<typeof ActorSchema>;

const claimString = z.string().min(1).max(256);

/**
 * Reads list claims in every shape they arrive in: a JSON array from jose locally, and the
 * `[a b]` string API Gateway's HTTP API JWT authorizer makes of an array claim.
 */
function listClaim(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string' && v.length > 0);
  if (typeof value !== 'string' || value.length === 0) return [];
  const trimmed = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value;
  return trimmed.split(/[\s,]+/).filter((v) => v.length > 0);
}

/** Claim names Airlock reads from a verified JWT. */
export const ClaimNames = { roles: 'roles', manager: 'manager', department: 'department' } as const;

/**
 * Maps verified JWT claims to a Principal. Returns undefined when the token carries no
 * usable subject, so the caller answers 401.
 */
export function principalFromClaims(claims: Record<string, unknown> | undefined): Principal | undefined {
  if (!claims) return undefined;
  const sub = claimString.safeParse(claims.sub);
  if (!sub.success) return undefined;
  const manager = claimString.safeParse(claims[ClaimNames.manager]);
  const department = claimString.safeParse(claims[ClaimNames.department]);
  return {
    sub: sub.data,
    roles: [...new Set(listClaim(claims[ClaimNames.roles]))].sort(),
    ...(manager.success ? { manager: manager.data } : {}),
    ...(department.success ? { department: department.data } : {}),
  };
}
