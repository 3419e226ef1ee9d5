/**
 * The HTTP API's routes: which function serves each, and whether it needs a verified token.
 * The CDK stack builds API Gateway routes from this table and the local server routes with
 * it, so the two cannot drift. Data only: importing it loads no handler.
 */
export type FunctionName = 'intake' | 'approvals' | 'receipts' | 'reconcile';

export interface RouteSpec {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  /** API Gateway path syntax: `/v1/actions/{id}`. */
  path: string;
  fn: FunctionName;
  auth: boolean;
  /** Served by the local runtime only (the stack creates no API Gateway route for it). */
  localOnly?: true;
  /**
   * `auth: false` routes only: the function verifies the bearer token itself (same issuer and
   * audience) because its 401 must carry a challenge the gateway's authorizer cannot send.
   */
  verifiesOwnToken?: boolean;
}

export const routes: readonly RouteSpec[] = [
  { method: 'GET', path: '/healthz', fn: 'intake', auth: false },
  { method: 'GET', path: '/openapi.json', fn: 'intake', auth: false },
  { method: 'GET', path: '/v1/tools', fn: 'intake', auth: true },
  { method: 'POST', path: '/v1/actions', fn: 'intake', auth: true },
  { method: 'GET', path: '/v1/actions', fn: 'intake', auth: true },
  { method: 'GET', path: '/v1/actions/{id}', fn: 'intake', auth: true },
  { method: 'POST', path: '/v1/actions/{id}/cancel', fn: 'intake', auth: true },
  { method: 'GET', path: '/v1/actions/{id}/receipt', fn: 'receipts', auth: true },
  { method: 'POST', path: '/v1/decisions', fn: 'intake', auth: true },
  { method: 'GET', path: '/v1/halts', fn: 'intake', auth: true },
  { method: 'POST', path: '/v1/halts', fn: 'intake', auth: true },
  { method: 'DELETE', path: '/v1/halts/{id}', fn: 'intake', auth: true },
  { method: 'GET', path: '/v1/delegations', fn: 'intake', auth: true },
  { method: 'POST', path: '/v1/delegations', fn: 'intake', auth: true },
  { method: 'DELETE', path: '/v1/delegations/{id}', fn: 'intake', auth: true },
  { method: 'GET', path: '/v1/limits', fn: 'intake', auth: true },
  { method: 'GET', path: '/v1/approvals', fn: 'approvals', auth: true },
  { method: 'GET', path: '/v1/approvals/{id}', fn: 'approvals', auth: true },
  { method: 'POST', path: '/v1/approvals/{id}/decision', fn: 'approvals', auth: true },
  { method: 'POST', path: '/v1/reconciliations', fn: 'reconcile', auth: true },
  { method: 'GET', path: '/v1/metrics', fn: 'intake', auth: true, localOnly: true },
  // MCP (Streamable HTTP): 401 with WWW-Authenticate resource_metadata, so the token is checked in intake.
  { method: 'POST', path: '/mcp', fn: 'intake', auth: false, verifiesOwnToken: true },
  { method: 'GET', path: '/.well-known/oauth-protected-resource', fn: 'intake', auth: false },
  { method: 'GET', path: '/.well-known/oauth-protected-resource/mcp', fn: 'intake', auth: false },
];

/** `GET /v1/tools`, the API Gateway v2 route key. */
export const routeKey = (r: Pick<RouteSpec, 'method' | 'path'>) => `${r.method} ${r.path}`;
