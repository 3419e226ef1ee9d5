import { z } from 'zod';
import { fail, parseBody, type Reply, type Route, type SandboxEnv, type SandboxVendorSpec } from './sandbox-server';

/**
 * Sandbox IAM: a small directory of principals with role assignments. Every grant and revoke
 * is a change record holding the principal's roles before and after, found again by its
 * client reference, so an auditor (and a reconciling connector) can see exactly what moved.
 */

interface Assignment {
  assignmentId: string;
  role: string;
  grantedAt: number;
  expiresAt: number | null;
  reason: string;
}

interface Change {
  changeId: string;
  kind: 'grant' | 'revoke';
  principalId: string;
  role: string;
  before: string[];
  after: string[];
  clientReference: string | null;
  at: number;
}

interface IamState {
  assignments: Map<string, Assignment[]>;
  changes: Change[];
}

/** Roles the sandbox knows; anything else is refused as unknown. */
export const SANDBOX_ROLES = ['viewer', 'editor', 'billing-admin', 'auditor', 'admin'] as const;

const seedPrincipals: Record<string, string[]> = {
  alice: ['viewer'],
  bob: ['viewer', 'editor'],
  carol: [],
  dave: ['auditor'],
};

const savedAssignment: z.ZodType<Assignment> = z.object({
  assignmentId: z.string(),
  role: z.string(),
  grantedAt: z.number(),
  expiresAt: z.number().nullable(),
  reason: z.string(),
});
const savedChange: z.ZodType<Change> = z.object({
  changeId: z.string(),
  kind: z.enum(['grant', 'revoke']),
  principalId: z.string(),
  role: z.string(),
  before: z.array(z.string()),
  after: z.array(z.string()),
  clientReference: z.string().nullable(),
  at: z.number(),
});
const SavedIamSchema: z.ZodType<IamState> = z.object({ assignments: z.map(z.string(), z.array(savedAssignment)), changes: z.array(savedChange) });

const grantBody = z.object({
  role: z.string().min(1),
  reason: z.string().min(1).max(500),
  expiresAt: z.string().datetime().optional(),
  clientReference: z.string().max(255).optional(),
});
const revokeBody = z.object({ reason: z.string().max(500).optional(), clientReference: z.string().max(255).optional() });

const iso = (t: number) => new Date(t).toISOString();
const roleNames = (list: Assignment[]) => list.map((a) => a.role).sort();
const assignmentView = (a: Assignment) => ({ ...a, grantedAt: iso(a.grantedAt), expiresAt: a.expiresAt === null ? null : iso(a.expiresAt) });
const changeView = (c: Change) => ({ ...c, at: iso(c.at) });

/** Assignments past their expiry no longer count, whether or not anyone looked. */
function current(state: IamState, principalId: string, env: SandboxEnv): Assignment[] | undefined {
  const list = state.assignments.get(principalId);
  if (!list) return undefined;
  const live = list.filter((a) => a.expiresAt === null || a.expiresAt > env.now());
  state.assignments.set(principalId, live);
  return live;
}

function checkGrant(state: IamState, principalId: string, input: z.infer<typeof grantBody>, env: SandboxEnv): Reply | Assignment[] {
  const list = current(state, principalId, env);
  if (!list) return fail(404, 'principal_not_found', `no principal ${principalId}`);
  if (!(SANDBOX_ROLES as readonly string[]).includes(input.role)) return fail(400, 'unknown_role', `no role ${input.role}`);
  if (list.some((a) => a.role === input.role)) return fail(409, 'already_assigned', `${principalId} already has ${input.role}`);
  if (input.expiresAt && Date.parse(input.expiresAt) <= env.now()) return fail(400, 'expiry_in_past', 'expiresAt is in the past');
  return list;
}

/** The IAM sandbox's state and routes. */
export function iamVendor(): SandboxVendorSpec<IamState> {
  const routes: Route<IamState>[] = [
    {
      method: 'GET',
      path: '/v1/principals/:id/roles',
      operation: 'get_role_assignments',
      sideEffect: false,
      handle({ params }, state, env) {
        const list = current(state, params.id!, env);
        if (!list) return fail(404, 'principal_not_found', `no principal ${params.id}`);
        return { status: 200, body: { principalId: params.id, roles: list.map(assignmentView) } };
      },
    },
    {
      method: 'POST',
      path: '/v1/principals/:id/roles/validate',
      operation: 'validate_grant',
      sideEffect: false,
      handle({ params, body }, state, env) {
        const p = parseBody(grantBody, body);
        if (!p.ok) return p.reply;
        const list = checkGrant(state, params.id!, p.value, env);
        if ('body' in list) return list;
        return { status: 200, body: { valid: true, before: roleNames(list), after: [...roleNames(list), p.value.role].sort() } };
      },
    },
    {
      method: 'POST',
      path: '/v1/principals/:id/roles',
      operation: 'grant_role',
      sideEffect: true,
      handle({ params, body }, state, env) {
        const p = parseBody(grantBody, body);
        if (!p.ok) return p.reply;
        const list = checkGrant(state, params.id!, p.value, env);
        if ('body' in list) return list;
        const before = roleNames(list);
        const assignment: Assignment = {
          assignmentId: env.newId('asg'),
          role: p.value.role,
          grantedAt: env.now(),
          expiresAt: p.value.expiresAt ? Date.parse(p.value.expiresAt) : null,
          reason: p.value.reason,
        };
        list.push(assignment);
        const change: Change = {
          changeId: env.newId('chg'),
          kind: 'grant',
          principalId: params.id!,
          role: p.value.role,
          before,
          after: roleNames(list),
          clientReference: p.value.clientReference ?? null,
          at: env.now(),
        };
        state.changes.push(change);
        return { status: 201, body: changeView(change) };
      },
    },
    {
      method: 'POST',
      path: '/v1/principals/:id/roles/:role/revoke',
      operation: 'revoke_role',
      sideEffect: true,
      handle({ params, body }, state, env) {
        const p = parseBody(revokeBody, body ?? {});
        if (!p.ok) return p.reply;
        const list = current(state, params.id!, env);
        if (!list) return fail(404, 'principal_not_found', `no principal ${params.id}`);
        if (!list.some((a) => a.role === params.role)) return fail(409, 'role_not_assigned', `${params.id} does not have ${params.role}`);
        const before = roleNames(list);
        const after = list.filter((a) => a.role !== params.role);
        state.assignments.set(params.id!, after);
        const change: Change = {
          changeId: env.newId('chg'),
          kind: 'revoke',
          principalId: params.id!,
          role: params.role!,
          before,
          after: roleNames(after),
          clientReference: p.value.clientReference ?? null,
          at: env.now(),
        };
        state.changes.push(change);
        return { status: 200, body: changeView(change) };
      },
    },
    {
      method: 'GET',
      path: '/v1/role-changes',
      operation: 'list_role_changes',
      sideEffect: false,
      handle({ query }, state) {
        const ref = query.get('clientReference');
        return { status: 200, body: { data: state.changes.filter((c) => !ref || c.clientReference === ref).map(changeView) } };
      },
    },
  ];
  return {
    name: 'iam',
    createState: (env) => ({
      assignments: new Map(
        Object.entries(seedPrincipals).map(([principal, roles]) => [
          principal,
          roles.map((role) => ({ assignmentId: env.newId('asg'), role, grantedAt: env.now(), expiresAt: null, reason: 'seed' })),
        ]),
      ),
      changes: [],
    }),
    restoreState: (saved) => SavedIamSchema.parse(saved),
    // A grant is in effect while its principal still holds the role.
    live: (state, env) =>
      state.changes
        .filter((c) => c.kind === 'grant' && (current(state, c.principalId, env) ?? []).some((a) => a.role === c.role))
        .map((c) => ({ object: `role ${c.role} of ${c.principalId}`, clientReference: c.clientReference })),
    routes,
  };
}
