import type { Context } from 'aws-lambda';
import type { HttpEvent } from '../../lambdas/handlers/http';

/** An API Gateway v2 event as the JWT authorizer hands it over (claims already verified). */
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
  return {
    version: '2.0',
    routeKey: input.routeKey ?? `${input.method} ${input.path}`,
    rawPath: input.path,
    rawQueryString: new URLSearchParams(input.query ?? {}).toString(),
    headers: { 'content-type': 'application/json', ...(input.headers ?? {}) },
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
      authorizer: { principalId: '', integrationLatency: 0, jwt: { claims: (claims ?? {}) as Record<string, string>, scopes: [] } },
    },
    ...(input.body !== undefined ? { body: input.body } : {}),
    isBase64Encoded: false,
  } as HttpEvent;
}

export const lambdaContext = { awsRequestId: 'test', functionName: 'test' } as Context;
