import { describe, expect, it } from 'vitest';
import type { RouteSpec } from '../../lambdas/api/routes';
import {
  apiGatewayTime,
  buildApiGatewayEvent,
  compileRoutes,
  httpApiClaims,
  matchRoute,
  resultToResponse,
  scopesOf,
  type IncomingRequest,
} from '../../local/api-gateway-event';

const table: RouteSpec[] = [
  { method: 'GET', path: '/healthz', fn: 'intake', auth: false },
  { method: 'GET', path: '/v1/actions/{id}', fn: 'intake', auth: true },
  { method: 'POST', path: '/v1/actions', fn: 'intake', auth: true },
  { method: 'GET', path: '/v1/actions/pending', fn: 'approvals', auth: true },
  { method: 'POST', path: '/v1/actions/{id}/approve', fn: 'approvals', auth: true },
  { method: 'GET', path: '/files/{key+}', fn: 'receipts', auth: true },
];
const matcher = compileRoutes(table);

describe('matchRoute', () => {
  it('matches literal routes and builds the route key', () => {
    expect(matchRoute(matcher, 'GET', '/healthz')).toMatchObject({ kind: 'matched', routeKey: 'GET /healthz' });
  });

  it('extracts decoded path parameters', () => {
    const m = matchRoute(matcher, 'POST', '/v1/actions/act%201/approve');
    expect(m).toMatchObject({ kind: 'matched', routeKey: 'POST /v1/actions/{id}/approve', pathParameters: { id: 'act 1' } });
  });

  it('prefers a literal segment over a parameter', () => {
    expect(matchRoute(matcher, 'GET', '/v1/actions/pending')).toMatchObject({ routeKey: 'GET /v1/actions/pending' });
    expect(matchRoute(matcher, 'GET', '/v1/actions/a1')).toMatchObject({ routeKey: 'GET /v1/actions/{id}' });
  });

  it('supports greedy parameters', () => {
    expect(matchRoute(matcher, 'GET', '/files/a/b/c.json')).toMatchObject({ pathParameters: { key: 'a/b/c.json' } });
    expect(matchRoute(matcher, 'GET', '/files/')).toEqual({ kind: 'not-found' });
  });

  it('answers 405 with the allowed methods for a known path', () => {
    expect(matchRoute(matcher, 'DELETE', '/v1/actions')).toEqual({ kind: 'method-not-allowed', allow: ['POST'] });
    expect(matchRoute(matcher, 'post', '/healthz')).toEqual({ kind: 'method-not-allowed', allow: ['GET'] });
  });

  it('answers not-found for unknown, partial, trailing-slash and malformed paths', () => {
    for (const p of ['/nope', '/v1', '/healthz/', '/v1/actions/a/b', '/v1/actions/%E0%A4%A', '', 'healthz']) {
      expect(matchRoute(matcher, 'GET', p)).toEqual({ kind: 'not-found' });
    }
  });
});

function request(overrides: Partial<IncomingRequest> = {}): IncomingRequest {
  return {
    method: 'POST',
    url: '/v1/actions/a%2F1/approve?x=1&x=2&y=hello%20world',
    headers: {
      host: ['127.0.0.1:8787'],
      'content-type': ['application/json'],
      'x-multi': ['a', 'b'],
      'user-agent': ['curl/8'],
      cookie: ['a=1; b=2'],
    },
    sourceIp: '127.0.0.1',
    body: Buffer.from('{"ok":true}'),
    requestId: 'req-1',
    now: new Date(Date.UTC(2024, 2, 5, 7, 8, 9)),
    ...overrides,
  };
}

describe('buildApiGatewayEvent', () => {
  const match = matchRoute(matcher, 'POST', '/v1/actions/a%2F1/approve');
  if (match.kind !== 'matched') throw new Error('route table broken');

  it('builds a payload format 2.0 event', () => {
    // Act
    const event = buildApiGatewayEvent(request(), match, {
      claims: { sub: 'alice', roles: ['employee', 'buyer'], exp: 123, admin: false, scope: 'actions:write actions:read' },
    });
    // Assess
    expect(event).toMatchObject({
      version: '2.0',
      routeKey: 'POST /v1/actions/{id}/approve',
      rawPath: '/v1/actions/a%2F1/approve',
      rawQueryString: 'x=1&x=2&y=hello%20world',
      queryStringParameters: { x: '1,2', y: 'hello world' },
      pathParameters: { id: 'a/1' },
      cookies: ['a=1', 'b=2'],
      body: '{"ok":true}',
      isBase64Encoded: false,
    });
    expect(event.headers).toMatchObject({
      'content-type': 'application/json',
      'x-multi': 'a,b',
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-proto': 'http',
    });
    expect(event.headers.cookie).toBeUndefined();
    expect(event.requestContext).toMatchObject({
      requestId: 'req-1',
      routeKey: 'POST /v1/actions/{id}/approve',
      stage: '$default',
      http: { method: 'POST', path: '/v1/actions/a%2F1/approve', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'curl/8' },
      time: '05/Mar/2024:07:08:09 +0000',
      timeEpoch: Date.UTC(2024, 2, 5, 7, 8, 9),
    });
    expect(event.requestContext.authorizer.jwt).toEqual({
      claims: { sub: 'alice', roles: '[employee buyer]', exp: '123', admin: 'false', scope: 'actions:write actions:read' },
      scopes: ['actions:write', 'actions:read'],
    });
  });

  it('omits authorizer, body and optional maps when absent', () => {
    const health = matchRoute(matcher, 'GET', '/healthz');
    if (health.kind !== 'matched') throw new Error('route table broken');
    const event = buildApiGatewayEvent(request({ method: 'GET', url: '/healthz', body: undefined, headers: {} }), health, undefined);
    expect('authorizer' in event.requestContext).toBe(false);
    expect('body' in event).toBe(false);
    expect(event.isBase64Encoded).toBe(false);
    expect(event.queryStringParameters).toBeUndefined();
    expect(event.pathParameters).toBeUndefined();
    expect(event.cookies).toBeUndefined();
    expect(event.rawQueryString).toBe('');
  });

  it('base64-encodes non-text bodies', () => {
    const bytes = Buffer.from([0, 255, 1, 2]);
    const event = buildApiGatewayEvent(
      request({ headers: { 'content-type': ['application/octet-stream'] }, body: bytes }),
      match,
      undefined,
    );
    expect(event.isBase64Encoded).toBe(true);
    expect(Buffer.from(event.body!, 'base64')).toEqual(bytes);
  });

  it('appends the source IP to a client-sent X-Forwarded-For', () => {
    const event = buildApiGatewayEvent(request({ headers: { 'x-forwarded-for': ['10.0.0.9'] } }), match, undefined);
    expect(event.headers['x-forwarded-for']).toBe('10.0.0.9, 127.0.0.1');
  });
});

describe('claims as the HTTP API authorizer passes them', () => {
  it('turns every value into a string and arrays into [a b]', () => {
    expect(httpApiClaims({ sub: 's', n: 1, b: true, arr: ['x', 'y'], obj: { k: 1 } })).toEqual({
      sub: 's',
      n: '1',
      b: 'true',
      arr: '[x y]',
      obj: '{"k":1}',
    });
  });

  it('flattens arrays ambiguously, as API Gateway does: handlers must read the token instead', () => {
    // One role with a space and two roles come out the same: why the principal is never read from it.
    expect(httpApiClaims({ sub: 'a', roles: ['Employee SecurityAdmin'] }).roles).toBe(httpApiClaims({ sub: 'a', roles: ['Employee', 'SecurityAdmin'] }).roles);
    expect(httpApiClaims({ sub: 'a', roles: ['a,b', '[x]'] }).roles).toBe('[a,b [x]]');
  });

  it('passes the Authorization header the authorizer verified to the handler untouched', () => {
    const match = matchRoute(matcher, 'POST', '/v1/actions');
    if (match.kind !== 'matched') throw new Error('route table broken');
    const event = buildApiGatewayEvent(request({ url: '/v1/actions', headers: { authorization: ['Bearer a.b.c'] } }), match, { claims: { sub: 'alice' } });
    expect(event.headers.authorization).toBe('Bearer a.b.c');
  });

  it('reads scopes from scope or scp, else null', () => {
    expect(scopesOf({ scope: 'a b' })).toEqual(['a', 'b']);
    expect(scopesOf({ scp: ['c'] })).toEqual(['c']);
    expect(scopesOf({})).toBeNull();
  });

  it('formats requestContext.time like API Gateway', () => {
    expect(apiGatewayTime(new Date(Date.UTC(2020, 11, 31, 23, 59, 0)))).toBe('31/Dec/2020:23:59:00 +0000');
  });
});

describe('resultToResponse', () => {
  it('uses a structured result as is', () => {
    const r = resultToResponse({ statusCode: 201, headers: { 'X-A': 1 }, body: '{}', cookies: ['c=1'] });
    expect(r).toEqual({ statusCode: 201, headers: { 'x-a': '1', 'set-cookie': ['c=1'] }, body: Buffer.from('{}') });
  });

  it('decodes base64 bodies', () => {
    const r = resultToResponse({ statusCode: 200, body: Buffer.from('hi').toString('base64'), isBase64Encoded: true });
    expect(r?.body.toString()).toBe('hi');
  });

  it('sends anything else as a 200 JSON body', () => {
    expect(resultToResponse({ a: 1 })).toEqual({
      statusCode: 200,
      headers: { 'content-type': 'application/json' },
      body: Buffer.from('{"a":1}'),
    });
    expect(resultToResponse('"x"')?.body.toString()).toBe('"x"');
  });

  it('rejects a malformed structured result', () => {
    expect(resultToResponse({ statusCode: 'nope' })).toBeUndefined();
    expect(resultToResponse({ statusCode: 200, body: 5 })).toBeUndefined();
  });
});
