import * as z from 'zod';
import { lazySchema, type VendorClientConfig } from '../sdk';
import { VendorHttp, type CallOptions } from '../vendor-http';

/** Response shapes of the IAM vendor, parsed because the vendor is untrusted. */
export const vendorAssignments = lazySchema(() => z.object({
  principalId: z.string(),
  roles: z.array(z.object({ assignmentId: z.string(), role: z.string(), grantedAt: z.string(), expiresAt: z.string().nullable(), reason: z.string() })),
}));

export const vendorRoleChange = lazySchema(() => z.object({
  changeId: z.string(),
  kind: z.enum(['grant', 'revoke']),
  principalId: z.string(),
  role: z.string(),
  before: z.array(z.string()),
  after: z.array(z.string()),
  clientReference: z.string().nullable(),
  at: z.string(),
}));

const vendorValidation = lazySchema(() => z.object({ valid: z.literal(true), before: z.array(z.string()), after: z.array(z.string()) }));

export type VendorAssignments = z.infer<ReturnType<typeof vendorAssignments>>;
export type VendorRoleChange = z.infer<ReturnType<typeof vendorRoleChange>>;

export interface GrantRequest {
  role: string;
  reason: string;
  expiresAt?: string | undefined;
}

const seg = encodeURIComponent;

/** Typed calls to the IAM vendor's HTTP API. */
export class IamClient {
  constructor(private readonly http: VendorHttp) {}

  getAssignments(principalId: string, o: CallOptions) {
    return this.http.get(`/v1/principals/${seg(principalId)}/roles`, vendorAssignments(), o);
  }
  validateGrant(principalId: string, body: GrantRequest, o: CallOptions) {
    return this.http.check(`/v1/principals/${seg(principalId)}/roles/validate`, body, vendorValidation(), o);
  }
  grant(principalId: string, body: GrantRequest, o: CallOptions) {
    return this.http.mutate('POST', `/v1/principals/${seg(principalId)}/roles`, { ...body, clientReference: o.idempotencyKey }, vendorRoleChange(), o);
  }
  revoke(principalId: string, role: string, reason: string | undefined, o: CallOptions) {
    return this.http.mutate('POST', `/v1/principals/${seg(principalId)}/roles/${seg(role)}/revoke`, { reason, clientReference: o.idempotencyKey }, vendorRoleChange(), o);
  }
  findChanges(clientReference: string, o: CallOptions) {
    return this.http.get('/v1/role-changes', z.object({ data: z.array(vendorRoleChange()) }), o, { clientReference });
  }
}

/** Builds the IAM client for one credential. */
export function createIamClient(config: VendorClientConfig): IamClient {
  return new IamClient(new VendorHttp({ ...config, vendorName: 'Sandbox IAM' }));
}
