/**
 * The demo people of the local runtime: who they are and the claims their tokens carry. The
 * startup banner prints ready-made tokens for them and the dev issuer's sign-in page
 * (local/dev-issuer-oidc.ts) offers them, so the console can be tried as each of them.
 */
export const DEMO_PEOPLE = [
  { label: 'employee', sub: 'alice', roles: ['Employee'], manager: 'bob', department: 'sales' },
  { label: 'her manager', sub: 'bob', roles: ['Employee', 'Manager'], department: 'sales' },
  { label: 'security admin', sub: 'carol', roles: ['Employee', 'SecurityAdmin'], department: 'security' },
  { label: 'security admin', sub: 'dave', roles: ['Employee', 'SecurityAdmin'], department: 'security' },
  { label: 'auditor', sub: 'audrey', roles: ['Auditor'], department: 'audit' },
  { label: 'on call', sub: 'olivia', roles: ['Employee', 'KillSwitch'], department: 'ops' },
] as const;

/** One demo person. */
export type DemoPerson = (typeof DEMO_PEOPLE)[number];

/** The claims a token for `person` carries. */
export function demoClaims(person: DemoPerson): { sub: string; roles: string[]; department: string; manager?: string } {
  return { sub: person.sub, roles: [...person.roles], department: person.department, ...('manager' in person ? { manager: person.manager } : {}) };
}
