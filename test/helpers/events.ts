import type { Context } from 'aws-lambda';
import type { HttpEvent } from '../../lambdas/middleware/http';
import { httpApiClaims } from '../../local/api-gateway-event';

/**
 * A JWS compact token carrying `claims`, as the Authorization header holds it once API
 * Gateway verified it. The signature is a placeholder: handlers decode, never verify.
 */
export function verifiedToken(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
  return `${part({ alg: 'ES256', typ: 'JWT' })}.${part(claims)}.${Buffer.from('signature').toString('base64url')}`;
}

/**
 * What API Gateway hands a handler for a verified token: the Authorization header it checked
 * and the authorizer's flattened claims (arrays as `[a b]`).
 */
export function verifiedIdentity(claims: Record<string, unknown>): { authorization: string; claims: Record<string, string> } {
  return { authorization: `Bearer ${verifiedToken(claims)}`, claims: httpApiClaims(claims) };
}

/**
 * An API Gateway v2 event as the JWT authorizer hands it over (token already verified): the
 * Authorization header and the flattened claims of the same token. `claims: null` sends
 * neither; a `headers.authorization` given here replaces the token's.
 */
export function httpEvent(input: {
  method: string;
  path: string;
  routeKey?: string;
  body?: string;
  headers?: Record<string, string>;
  claims?: Record<string, string | number | boolean | string[]> | null;
  pathParameters?: Record<string, string>;
  query?: Record<string, string>;
}): HttpEvent {
  const claims = input.claims === null ? undefined : (input.claims ?? { sub: 'alice', roles: ['employee'] });
  const identity = claims ? verifiedIdentity(claims) : undefined;
  return {
    version: '2.0',
    routeKey: input.routeKey ?? `${input.method} ${input.path}`,
    rawPath: input.path,
    rawQueryString: new URLSearchParams(input.query ?? {}).toString(),
    headers: {
      'content-type': 'application/json',
      ...(identity ? { authorization: identity.authorization } : {}),
      ...(input.headers ?? {}),
    },
    ...(input.query ? { queryStringParameters: input.query } : {}),
    ...(input.pathParameters ? { pathParameters: input.pathParameters } : {}),
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: '127.0.0.1',
      domainPrefix: '127',
      http: { method: input.method, path: input.path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      requestId: `req-${Math.random().toString(36).slice(2)}`,
      routeKey: input.routeKey ?? `${input.method} ${input.path}`,
      stage: '$default',
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
      authorizer: { principalId: '', integrationLatency: 0, jwt: { claims: identity?.claims ?? {}, scopes: [] } },
    },
    ...(input.body !== undefined ? { body: input.body } : {}),
    isBase64Encoded: false,
  } as HttpEvent;
}

export const lambdaContext = { awsRequestId: 'test', functionName: 'test' } as Context;
