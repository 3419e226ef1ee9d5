import fc from 'fast-check';
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { httpApi, type HttpEvent, type HttpResult } from '../../lambdas/middleware/http';
import { buildApiGatewayEvent, compileRoutes, matchRoute } from '../../local/api-gateway-event';

/**
 * The shared HTTP edge decides which errors a body can cause, and the OpenAPI document lists
 * them per operation: a GET's body is ignored (no 400/415 on reads), and a body on a route that
 * takes one can only fail as 400, 413 or 415 problem documents, never as a 5xx.
 */
const routes = [
  { method: 'GET' as const, path: '/read', fn: 'intake' as const, auth: false },
  { method: 'POST' as const, path: '/write', fn: 'intake' as const, auth: false },
];
const seen: unknown[] = [];
const api = httpApi({
  'GET /read': { auth: false, handle: async (req) => (seen.push(req.body), { status: 200, body: { ok: true } }) },
  'POST /write': { auth: false, handle: async (req) => ({ status: 200, body: { got: req.body ?? null } }) },
});
const matcher = compileRoutes(routes);
const context = { awsRequestId: 'test' } as Context;

async function send(method: 'GET' | 'POST', path: string, body: Buffer | undefined, contentType?: string): Promise<HttpResult> {
  const match = matchRoute(matcher, method, path);
  if (match.kind !== 'matched') throw new Error('route');
  const event: HttpEvent = buildApiGatewayEvent(
    { method, url: path, headers: contentType ? { 'content-type': [contentType] } : {}, sourceIp: '127.0.0.1', body, requestId: 'r', now: new Date() },
    match,
    undefined,
  );
  return (await api(event, context)) as HttpResult;
}

const contentTypes = fc.oneof(fc.constant(undefined), fc.constantFrom('application/json', 'text/plain', 'application/merge-patch+json', 'multipart/form-data'), fc.string({ maxLength: 40 }));
const bodies = fc.oneof(fc.string({ maxLength: 200 }), fc.json(), fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')));

describe('the HTTP edge and request bodies', () => {
  it('ignores whatever body a GET carries (property)', async () => {
    await fc.assert(
      fc.asyncProperty(bodies, contentTypes, async (body, type) => {
        seen.length = 0;
        const res = await send('GET', '/read', Buffer.from(body, 'latin1'), type);
        expect(res.statusCode).toBe(200);
        expect(seen).toEqual([undefined]);
      }),
      { numRuns: 150 },
    );
  });

  it('answers any body on a POST with the handler or a 400/413/415 problem, never a 5xx (property)', async () => {
    await fc.assert(
      fc.asyncProperty(bodies, contentTypes, async (body, type) => {
        const res = await send('POST', '/write', Buffer.from(body, 'latin1'), type);
        if (res.statusCode === 200) return;
        expect([400, 413, 415]).toContain(res.statusCode);
        expect(res.headers?.['content-type']).toBe('application/problem+json');
        expect(JSON.parse(String(res.body))).toMatchObject({ status: res.statusCode, type: expect.stringMatching(/^urn:airlock:problem:(malformed-json|payload-too-large|unsupported-media-type)$/) });
      }),
      { numRuns: 150 },
    );
  });

  it('still parses a JSON body on a POST and refuses one over the limit', async () => {
    expect(JSON.parse(String((await send('POST', '/write', Buffer.from('{"a":1}'), 'application/json')).body))).toEqual({ got: { a: 1 } });
    expect((await send('POST', '/write', Buffer.from(JSON.stringify({ pad: 'x'.repeat(70_000) })), 'application/json')).statusCode).toBe(413);
  });
});
