import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAGE_CSP } from '../../local/site';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';
import { isoDay } from '../helpers/dates';

/**
 * The console as the local runtime serves it (not the API: these paths are not in
 * docs/openapi.json, so they are read with node:http rather than the contract-checked fetch),
 * and GET /v1/actions/{id}/receipt's refusals through the checked fetch.
 */

let cp: TestControlPlane;
beforeAll(async () => {
  cp = await startTestControlPlane();
});
afterAll(() => cp?.close());

function get(path: string, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${cp.url}${path}`, { method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the console on the local runtime', () => {
  it('redirects /console to /console/ and serves the page with a strict CSP and security headers', async () => {
    const bare = await get('/console');
    expect(bare.status).toBe(308);
    expect(bare.headers.location).toBe('/console/');
    const page = await get('/console/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toBe(PAGE_CSP);
    expect(PAGE_CSP).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.body).toContain('<script src="app.js" defer></script>');
  });

  it('serves the bundle, the styles and a config.json that signs in at the dev issuer', async () => {
    const js = await get('/console/app.js');
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    // Nothing in the bundle writes HTML from strings.
    expect(js.body).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    expect((await get('/console/app.css')).headers['content-type']).toBe('text/css; charset=utf-8');
    const config = JSON.parse((await get('/console/config.json')).body);
    expect(config).toMatchObject({ clientId: 'airlock-console', authorizationEndpoint: '/dev-issuer/authorize', tokenEndpoint: '/dev-issuer/token' });
  });

  it('answers problems for unknown files and other methods', async () => {
    const missing = await get('/console/secret.txt');
    expect(missing.status).toBe(404);
    expect(missing.headers['content-type']).toMatch(/^application\/problem\+json/);
    const post = await get('/console/', 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('is absent when the runtime is started without it', async () => {
    const { startTestRuntime } = await import('../helpers/local-runtime');
    const rt = await startTestRuntime({ console: false });
    try {
      const res = await fetch(`${rt.url}/console/`);
      expect(res.status).toBe(404);
    } finally {
      await rt.close();
    }
  });
});

describe('GET /v1/actions/{id}/receipt refusals', () => {
  it('says 404 for an unknown action, a malformed id, and another person’s action', async () => {
    const alice = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
    const own = await cp.post(alice, { tool: 'travel.search_flights', arguments: { origin: 'SFO', destination: 'JFK', date: isoDay(9) }, agent: { name: 't' } });
    // 200 when it finished within the wait, 202 on a busy machine: either way it is alice's.
    expect([200, 202]).toContain(own.status);
    const mallory = await cp.token('mallory', { roles: ['Employee'] });
    expect((await cp.get(mallory, `/v1/actions/${own.body.id}/receipt`)).status).toBe(404);
    expect((await cp.get(alice, '/v1/actions/act_01J00000000000000000000000/receipt')).status).toBe(404);
    expect((await cp.get(alice, '/v1/actions/nope/receipt')).status).toBe(404);
    expect((await fetch(`${cp.url}/v1/actions/${own.body.id}/receipt`)).status).toBe(401);
  });
});
