import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FunctionCallingFormats } from '../../lambdas/tools/function-calling';
import { travelPlan, startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';
import { anthropicToolViolations, geminiDeclarationViolations, openAiToolViolations } from '../helpers/function-calling-rules';

/**
 * GET /v1/tools?format=… over HTTP against the local control plane (every answer is also held
 * to docs/openapi.json), and a call shaped the way OpenAI's strict mode sends it: safe names,
 * `null` for the optional arguments left out.
 */
let cp: TestControlPlane;
let alice: string;

beforeAll(async () => {
  cp = await startTestControlPlane();
  alice = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
});
afterAll(async () => {
  await cp?.close();
});

describe('GET /v1/tools?format=', () => {
  it('renders the catalog for each function-calling API, within its documented rules', async () => {
    const catalog = await cp.get(alice, '/v1/tools');
    for (const format of FunctionCallingFormats) {
      const res = await cp.get(alice, `/v1/tools?format=${format}`);
      expect(res.status, format).toBe(200);
      expect(res.body.format).toBe(format);
      expect(res.body.caveats).toEqual([]);
      const tools: unknown[] = format === 'gemini' ? res.body.tools[0].functionDeclarations : res.body.tools;
      expect(tools).toHaveLength(catalog.body.tools.length);
      const check = format === 'openai' ? openAiToolViolations : format === 'anthropic' ? anthropicToolViolations : geminiDeclarationViolations;
      for (const tool of tools) expect(check(tool)).toEqual([]);
    }
  });

  it('answers an unknown format or parameter with a 400 problem naming it', async () => {
    for (const query of ['format=mistral', 'format=', 'style=openai']) {
      const res = await cp.get(alice, `/v1/tools?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.type).toBe('urn:airlock:problem:validation');
      expect(JSON.stringify(res.body.violations), query).toMatch(query.startsWith('format') ? /query:format/ : /style/);
    }
  });
});

describe('a call the way a strict-mode model makes it', () => {
  it('is the same request as the call without the nulls: accepted, and replayed under the same key', async () => {
    const plan = travelPlan({ mode: 'dry_run' });
    const strictStyle = {
      ...plan,
      plan: plan.plan.map((s) => ({
        ...s,
        tool: s.tool.replace('.', '-'),
        arguments: s.tool === 'payments.authorize' ? { ...s.arguments, description: null } : s.arguments,
      })),
    };
    const key = `strict-${Date.now()}`;
    const first = await cp.post(alice, strictStyle, { key });
    expect(first.status, JSON.stringify(first.body)).toBeLessThan(300);
    const second = await cp.post(alice, plan, { key });
    expect(second.status).toBe(first.status);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(second.body.id ?? second.body.actionId).toBe(first.body.id ?? first.body.actionId);
  });

  it('still refuses a null where the argument is required', async () => {
    const res = await cp.post(alice, { tool: 'travel-search_flights', arguments: { origin: null, destination: 'JFK', date: '2030-01-01' }, agent: { name: 'gpt' } });
    expect(res.status).toBe(400);
    expect(res.body.violations.map((v: { path: string }) => v.path)).toContain('/arguments/origin');
  });
});
