import * as z from 'zod';
import { defineConnector, defineTool, lazySchema } from '../sdk';
import { callOptions, commitOnce, reachGoalState } from '../vendor-http';
import { createIamClient, type IamClient, type VendorRoleChange } from './client';

/** IAM: read, grant and revoke role assignments, recording the roles before and after each change. */

const principalId = z.string().regex(/^[a-z0-9][a-z0-9._@-]{0,127}$/, 'a principal id such as alice');
const role = z.string().regex(/^[a-z][a-z0-9-]{1,63}$/, 'a role name such as editor');

const changeOutput = lazySchema(() => z.object({
  changeId: z.string().nullable(),
  principalId: z.string(),
  role: z.string(),
  /** The principal's roles before the change (pre-snapshot). */
  before: z.array(z.string()),
  /** The principal's roles after the change (post-snapshot). */
  after: z.array(z.string()),
}));

const changeOut = (c: VendorRoleChange): z.infer<ReturnType<typeof changeOutput>> => ({
  changeId: c.changeId,
  principalId: c.principalId,
  role: c.role,
  before: c.before,
  after: c.after,
});

const getRoleAssignments = defineTool({
  name: 'get_role_assignments',
  description: "Lists a principal's current role assignments with when they were granted and when they expire.",
  tier: 'read',
  input: () => z.object({ principalId }).strict(),
  output: () => z.object({
    principalId: z.string(),
    roles: z.array(z.object({ role: z.string(), assignmentId: z.string(), grantedAt: z.string(), expiresAt: z.string().nullable() })),
  }),
  async execute(client: IamClient, input, ctx) {
    const res = await client.getAssignments(input.principalId, callOptions(ctx));
    return {
      principalId: res.principalId,
      roles: res.roles.map((r) => ({ role: r.role, assignmentId: r.assignmentId, grantedAt: r.grantedAt, expiresAt: r.expiresAt })),
    };
  },
});

const grantRole = defineTool({
  name: 'grant_role',
  description: 'Grants a role to a principal, optionally until an expiry. Refused if the principal already has it. Output records roles before and after. Revoke to undo.',
  tier: 'commit',
  input: () => z
    .object({ principalId, role, reason: z.string().min(3).max(500), expiresAt: z.string().datetime({ offset: true }).optional() })
    .strict(),
  output: changeOutput,
  compensation: { tool: 'revoke_role', input: (input, _output) => ({ principalId: input.principalId, role: input.role, reason: 'saga compensation' }) },
  // Who receives the role: policy (and the approvals code) never let them approve it.
  grantee: (input) => input.principalId,
  async preview(client: IamClient, input, ctx) {
    const v = await client.validateGrant(input.principalId, { role: input.role, reason: input.reason, expiresAt: input.expiresAt }, callOptions(ctx));
    return { dryRun: true, check: 'validation', details: { before: v.before, after: v.after } };
  },
  async execute(client: IamClient, input, ctx) {
    const o = callOptions(ctx);
    const change = await commitOnce(ctx, {
      send: () => client.grant(input.principalId, { role: input.role, reason: input.reason, expiresAt: input.expiresAt }, o),
      lookup: async () => (await client.findChanges(ctx.idempotencyKey, o)).data[0],
    });
    return changeOut(change);
  },
});

const revokeRole = defineTool({
  name: 'revoke_role',
  description: 'Removes a role from a principal. Succeeds (with no change) if the principal does not have it. Output records roles before and after.',
  tier: 'commit',
  input: () => z.object({ principalId, role, reason: z.string().max(500).optional() }).strict(),
  output: changeOutput,
  async preview(client: IamClient, input, ctx) {
    const res = await client.getAssignments(input.principalId, callOptions(ctx));
    const before = res.roles.map((r) => r.role).sort();
    return { dryRun: true, check: 'lookup', details: { before, after: before.filter((r) => r !== input.role) } };
  },
  async execute(client: IamClient, input, ctx) {
    const o = callOptions(ctx);
    const unchanged = async (): Promise<VendorRoleChange> => {
      // Already in the goal state: report the change this call made (if a lost response made
      // one) or a no-op snapshot, so a retried compensation converges instead of failing.
      const made = (await client.findChanges(ctx.idempotencyKey, o)).data[0];
      if (made) return made;
      const roles = (await client.getAssignments(input.principalId, o)).roles.map((r) => r.role).sort();
      return { changeId: '', kind: 'revoke', principalId: input.principalId, role: input.role, before: roles, after: roles, clientReference: null, at: new Date().toISOString() };
    };
    const change = await reachGoalState({ send: () => client.revoke(input.principalId, input.role, input.reason, o), current: unchanged, reached: (c) => !c.after.includes(input.role) }, ['role_not_assigned']);
    return { ...changeOut(change), changeId: change.changeId === '' ? null : change.changeId };
  },
});

/** The IAM connector. */
export const iam = defineConnector<IamClient>({
  name: 'iam',
  description: 'Identity and access: role assignments per principal, with before/after snapshots of every change.',
  vendor: { name: 'Sandbox IAM', defaultBaseUrl: 'http://127.0.0.1:8794', createClient: createIamClient },
  tools: [getRoleAssignments, grantRole, revokeRole],
});
