import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { METRICS_FILE } from '../../lambdas/adapters/local/file-metrics';
import { createLogger, tracer } from '../../lambdas/middleware/powertools';
import { startTestControlPlane, travelPlan, type TestControlPlane } from '../helpers/control-plane';
import { isoDay } from '../helpers/dates';

/**
 * A full saga with every log line captured at debug level (the runtime's logger and anything
 * written to stdout), then a scan for secret material: the grant-signing key, the vendor
 * credentials, any JWT (grants and bearer tokens). The same scan covers the recorded metrics
 * and every X-Ray annotation the handlers make (tracing switched on around the Powertools
 * tracer, without a segment, so annotations are captured instead of sent).
 */
let cp: TestControlPlane;
const captured: string[] = [];
const annotations: [string, unknown][] = [];

beforeAll(async () => {
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    captured.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  });
  vi.spyOn(tracer, 'isTracingEnabled').mockReturnValue(true);
  vi.spyOn(tracer, 'getSegment').mockReturnValue(undefined);
  vi.spyOn(tracer, 'annotateColdStart').mockImplementation(() => undefined);
  vi.spyOn(tracer, 'addServiceNameAnnotation').mockImplementation(() => undefined);
  vi.spyOn(tracer, 'addErrorAsMetadata').mockImplementation(() => undefined);
  vi.spyOn(tracer, 'putAnnotation').mockImplementation((key: string, value: unknown) => void annotations.push([key, value]));
  cp = await startTestControlPlane({ logger: createLogger({ level: 'debug', sink: (line) => captured.push(line) }) });
});
afterAll(async () => {
  await cp?.close();
  vi.restoreAllMocks();
});

describe('secret hygiene over a whole saga', () => {
  it('keeps keys, credentials and grants out of logs, metrics, trace annotations, the action and the receipt', async () => {
    const alice = await cp.token('alice', { roles: ['Employee'], manager: 'bob' });
    cp.cp.vendors.admin.setFaults('travel', { failNext: [{ operation: 'book_flight', count: 1, status: 400 }] });
    const failed = await cp.post(alice, travelPlan({ date: isoDay(27) }));
    const ok = await cp.post(alice, travelPlan({ date: isoDay(28) }));
    await cp.cp.runner.idle();
    // The POST answers with the status its wait saw (under load, maybe still `received`): judge the end by the views.
    const views = await Promise.all([ok.body.id, failed.body.id].map((id: string) => cp.get(alice, `/v1/actions/${id}`)));
    expect(views.map((v) => v.body.status)).toEqual(['completed', 'compensated']);

    const secretsDir = join(cp.stateDir, 'secrets');
    const secrets = readdirSync(secretsDir).map((f) => readFileSync(join(secretsDir, f), 'utf8'));
    const needles = secrets.flatMap((value) => {
      try {
        // A JWK: its private part is the secret; the public part may be published.
        const jwk = JSON.parse(value) as { d?: string };
        return jwk.d ? [jwk.d] : [value];
      } catch {
        return [value];
      }
    });
    expect(needles.length).toBeGreaterThanOrEqual(5);

    const receipts = views.map((v) => readFileSync(join(cp.stateDir, 'audit', v.body.receipt as string), 'utf8'));
    cp.cp.metrics.flush();
    const haystacks = {
      logs: captured.join('\n'),
      actions: JSON.stringify(views.map((v) => v.body)),
      receipts: receipts.join('\n'),
      metrics: readFileSync(join(cp.stateDir, METRICS_FILE), 'utf8'),
      annotations: JSON.stringify(annotations),
    };
    expect(haystacks.logs.length).toBeGreaterThan(1_000);
    expect(haystacks.metrics).toContain('"CompensationExecuted"');
    // Annotations are indexed and readable by anyone with X-Ray access: ids, tools and outcomes only.
    expect(new Set(annotations.map(([k]) => k))).toEqual(new Set(['actionId', 'tool', 'outcome']));
    expect(annotations).toContainEqual(['actionId', ok.body.id]);
    for (const [, value] of annotations) expect(typeof value).toBe('string');
    for (const [where, text] of Object.entries(haystacks)) {
      for (const needle of needles) expect(text.includes(needle), `a secret appears in ${where}`).toBe(false);
      expect(text, `a JWT appears in ${where}`).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\./);
      expect(text).not.toContain(alice);
      if (where === 'metrics' || where === 'annotations') expect(text, `the principal appears in ${where}`).not.toContain('"alice"');
    }
  });
});
