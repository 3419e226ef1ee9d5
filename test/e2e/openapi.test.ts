import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToolCatalogSchema, ToolSchema } from '../../lambdas/api/schemas';
import { openApiDocument } from '../../lambdas/api/openapi';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';

/** The served document is the checked-in one, public, and what it describes is what is served. */
describe('GET /openapi.json on the local runtime', () => {
  let rt: TestControlPlane;

  beforeAll(async () => {
    rt = await startTestControlPlane();
  });
  afterAll(async () => {
    await rt?.close();
  });

  it('serves the checked-in document with 200 and no token', async () => {
    const res = await fetch(`${rt.url}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body: unknown = await res.json();
    expect(body).toEqual(JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'openapi.json'), 'utf8')));
    expect(body).toEqual(openApiDocument());
  });

  it('serves a tool catalog that matches its documented schema exactly', async () => {
    const token = await rt.token('alice', { roles: ['Employee'] });
    const res = await fetch(`${rt.url}/v1/tools`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    const catalog = ToolCatalogSchema.strict().parse(await res.json());
    expect(catalog.tools.length).toBeGreaterThan(0);
    for (const tool of catalog.tools) ToolSchema.strict().parse(tool);
  });
});
