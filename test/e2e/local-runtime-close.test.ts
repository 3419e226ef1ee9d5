import { describe, expect, it } from 'vitest';
import type { LocalService } from '../../local/server';
import { startTestRuntime } from '../helpers/local-runtime';

/**
 * Stopping the runtime while a request is being handled: the handler may still write to a
 * database that outlives the runtime, so close() lets it finish before stopping services
 * and DynamoDB, and refuses new work meanwhile.
 */
describe('closing the local runtime with a request in flight', () => {
  it('finishes the request first, answers newcomers 503, then stops services', async () => {
    // Prepare: a handler that waits for a gate, and a service that records when it stops.
    const order: string[] = [];
    let entered!: () => void;
    const inHandler = new Promise<void>((resolve) => {
      entered = resolve;
    });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const service: LocalService = { name: 'probe', start: async () => ({ stop: async () => void order.push('service stopped') }) };
    const rt = await startTestRuntime({
      routes: [{ method: 'GET', path: '/slow', fn: 'intake', auth: true }],
      loadHandler: async () => async () => {
        entered();
        await gate;
        order.push('handler finished');
        return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: '{"ok":true}' };
      },
      services: [service],
    });
    const token = await rt.token('alice');
    const slow = fetch(`${rt.url}/slow`, { headers: { authorization: `Bearer ${token}` } });
    await inHandler;

    // Act
    const closed = rt.close();
    const newcomer = await fetch(`${rt.url}/slow`, { headers: { authorization: `Bearer ${token}` } });
    release();
    const first = await slow;
    await closed;

    // Assess
    expect(newcomer.status).toBe(503);
    expect(newcomer.headers.get('content-type')).toContain('application/problem+json');
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ ok: true });
    expect(order).toEqual(['handler finished', 'service stopped']);
  });
});
