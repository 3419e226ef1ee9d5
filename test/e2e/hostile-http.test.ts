import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProblemType } from '../../lambdas/shared/problem';
import { MAX_HEADER_BYTES } from '../../local/server';
import { bigTrip, startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';
import { isoDay } from '../helpers/dates';
import { rawHttp, type RawResponse } from '../helpers/raw-http';

/**
 * Bad input over the real HTTP path never gets a 5xx or a bare status: forged cursors,
 * repeated or malformed headers, requests Node's parser refuses. Each answer is an RFC 9457
 * problem document.
 */
let cp: TestControlPlane;
let port: number;
let pager: string;
const echo = (message: string) => ({ tool: 'echo.say', arguments: { message }, agent: { name: 'e2e' } });

beforeAll(async () => {
  cp = await startTestControlPlane();
  port = cp.runtime.port;
  pager = await cp.token('pager', { roles: ['Employee'] });
});
afterAll(async () => {
  await cp?.close();
});

async function get(path: string, token: string) {
  const res = await fetch(`${cp.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as Record<string, any> };
}

function expectProblem(res: RawResponse, status: number, type: string) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toBe('application/problem+json');
  expect(res.raw).not.toMatch(/\n\s+at /);
  const doc = JSON.parse(res.body) as Record<string, unknown>;
  expect(doc).toMatchObject({ type, status });
  expect(typeof doc.detail).toBe('string');
}

describe('requests Node’s HTTP parser refuses', () => {
  it('answers a 100 KB bearer token with a 431 problem', async () => {
    const res = await rawHttp(port, `GET /v1/tools HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${'a'.repeat(100_000)}\r\n\r\n`);
    expectProblem(res, 431, ProblemType.headersTooLarge);
    expect(res.headers.connection).toBe('close');
  });

  it(`answers headers just over ${MAX_HEADER_BYTES} bytes with 431, and a large valid request normally`, async () => {
    const over = await rawHttp(port, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ${'p'.repeat(MAX_HEADER_BYTES)}\r\n\r\n`);
    expectProblem(over, 431, ProblemType.headersTooLarge);
    const under = await rawHttp(port, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ${'p'.repeat(MAX_HEADER_BYTES - 200)}\r\nConnection: close\r\n\r\n`);
    expect(under.status).toBe(200);
  });

  it.each([
    ['a control character in a header value', `GET /v1/tools HTTP/1.1\r\nHost: x\r\nX-Probe: a\u0001b\r\n\r\n`],
    ['NUL in the Authorization header', `GET /v1/tools HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\u0000b\r\n\r\n`],
    ['a control character in Idempotency-Key', `POST /v1/actions HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k\u001b[31m\r\nContent-Length: 0\r\n\r\n`],
    ['a space in a header name', `GET /v1/tools HTTP/1.1\r\nHost: x\r\nBad Name: a\r\n\r\n`],
    ['a broken request line', `GARBAGE\r\n\r\n`],
    ['an unknown HTTP version', `GET /v1/tools HTTP/9.9\r\nHost: x\r\n\r\n`],
    ['broken chunked framing', `POST /v1/actions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nIdempotency-Key: k\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`],
    ['a chunk cut short', `POST /v1/decisions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":1}\r\n0\r\n\r\n`],
    ['both Content-Length and chunked', `POST /v1/actions HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`],
  ])('answers %s with a 400 malformed-request problem', async (_label, request) => {
    const res = await rawHttp(port, request.replace('{token}', pager), { untilClose: true });
    expectProblem(res, 400, ProblemType.malformedRequest);
    // One answer per request: never the problem and then a second one for the same bytes.
    expect(res.raw.match(/HTTP\/1\.1 \d{3} /g)).toHaveLength(1);
  });

  it('answers the request before a malformed pipelined one first, then the problem', async () => {
    const res = await rawHttp(port, `GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\nX: \u0000\r\n\r\n`, { untilClose: true });
    expect(res.status).toBe(200);
    const second = res.raw.slice(res.raw.indexOf('{"status":"ok"}') + '{"status":"ok"}'.length);
    expect(second).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(second).toContain('application/problem+json');
    expect(second).toContain(ProblemType.malformedRequest);
  });

  it('answers any bytes in a header value with the route’s answer or a 400 problem, never 5xx', async () => {
    const token = await cp.token('prober', { roles: ['Employee'] });
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 40 }), async (bytes) => {
        const value = Buffer.from(bytes).toString('latin1').replace(/[\r\n]/g, '');
        const res = await rawHttp(
          port,
          Buffer.concat([Buffer.from(`GET /v1/tools HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\nX-Probe: `, 'latin1'), Buffer.from(value, 'latin1'), Buffer.from('\r\n\r\n')]),
        );
        expect([200, 400]).toContain(res.status);
        if (res.status === 400) expectProblem(res, 400, ProblemType.malformedRequest);
      }),
      { numRuns: 40 },
    );
  });
});

describe('Idempotency-Key over HTTP', () => {
  const post = (headers: string) => {
    const body = JSON.stringify(echo('repeat'));
    return rawHttp(
      port,
      `POST /v1/actions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${pager}\r\nContent-Type: application/json\r\n${headers}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  };

  it('refuses a repeated header with a 400 problem, and records nothing', async () => {
    const before = (await get('/v1/actions?limit=100', pager)).body.items.length;
    for (const headers of ['Idempotency-Key: one\r\nIdempotency-Key: two\r\n', 'Idempotency-Key: same\r\nIdempotency-Key: same\r\n', 'Idempotency-Key: "one"\r\nIdempotency-Key: "two"\r\n', 'Idempotency-Key: one, two\r\n']) {
      const res = await post(headers);
      expectProblem(res, 400, ProblemType.validation);
      expect(JSON.parse(res.body).violations).toEqual([expect.objectContaining({ path: 'header:Idempotency-Key' })]);
    }
    expect((await get('/v1/actions?limit=100', pager)).body.items.length).toBe(before);
  });

  it('takes a quoted key with a comma, and replays it', async () => {
    const first = await post('Idempotency-Key: "trip,2026"\r\n');
    expect(first.status).toBe(200);
    const again = await post('Idempotency-Key: "trip,2026"\r\n');
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(JSON.parse(again.body).id).toBe(JSON.parse(first.body).id);
  });
});

describe('page cursors over HTTP', () => {
  const oldStyle = (key: Record<string, unknown>) => Buffer.from(JSON.stringify(key)).toString('base64url');
  /** The report's forged cursors: DynamoDB keys with empty or mismatching attributes. */
  const forged = (partition: string) => [
    oldStyle({ pk: '', sk: '', gsi1pk: partition, gsi1sk: '' }),
    oldStyle({ pk: 'ACTION#x', sk: 'ACTION', gsi1pk: partition, gsi1sk: 'APPROVAL#y' }),
    oldStyle({ pk: 'APPROVAL#apr_01J00000000000000000000010', sk: 'VOTE#bob', gsi1pk: partition, gsi1sk: '' }),
    oldStyle({ pk: 'x'.repeat(2000), sk: 'ACTION', gsi1pk: partition, gsi1sk: 'x' }),
    'forged',
    '.',
  ];

  it('pages through every action once, newest first', async () => {
    const ids: string[] = [];
    for (const m of ['a', 'b', 'c']) ids.push((await cp.post(pager, echo(`page-${m}`), { prefer: 'respond-async' })).body.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: Record<string, any> } = await get(`/v1/actions?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, pager);
      expect(page.status).toBe(200);
      seen.push(...page.body.items.map((a: { id: string }) => a.id));
      cursor = page.body.nextCursor;
    } while (cursor && seen.length < 50);
    expect(seen.filter((id) => ids.includes(id))).toEqual([...ids].reverse());
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('answers forged, foreign and re-filtered action cursors with a 400 problem', async () => {
    const page = await get('/v1/actions?limit=1', pager);
    const mine = page.body.nextCursor as string;
    const other = await cp.token('someone-else', { roles: ['Employee'] });
    const attempts: Array<[string, string]> = [
      ...forged('PRINCIPAL#pager').map((c): [string, string] => [pager, `/v1/actions?cursor=${encodeURIComponent(c)}`]),
      [other, `/v1/actions?cursor=${encodeURIComponent(mine)}`],
      [pager, `/v1/actions?status=completed&cursor=${encodeURIComponent(mine)}`],
      [pager, `/v1/actions?cursor=${encodeURIComponent(`${mine.slice(0, -1)}${mine.endsWith('A') ? 'B' : 'A'}`)}`],
    ];
    for (const [token, path] of attempts) {
      const res = await get(path, token);
      expect(res.status, path).toBe(400);
      expect(res.type).toBe('application/problem+json');
      expect(res.body).toMatchObject({ type: ProblemType.validation, violations: [{ path: 'query:cursor' }] });
    }
  });

  it('answers any cursor string on either listing with 200 or a 400 problem, never 5xx', async () => {
    const boss = await cp.token('boss', { roles: ['Employee', 'Manager'] });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('/v1/actions', '/v1/approvals'), fc.string({ minLength: 1, maxLength: 200, unit: 'grapheme' }), async (path, cursor) => {
        const res = await get(`${path}?cursor=${encodeURIComponent(cursor)}`, path === '/v1/actions' ? pager : boss);
        expect([200, 400]).toContain(res.status);
        if (res.status === 400) expect(res.type).toBe('application/problem+json');
      }),
      { numRuns: 60 },
    );
  });

  it('pages through the approvals inbox once each, and refuses forged and foreign cursors', async () => {
    const tripper = await cp.token('tripper', { roles: ['Employee'], manager: 'boss' });
    const boss = await cp.token('boss', { roles: ['Employee', 'Manager'] });
    const otherManager = await cp.token('other-boss', { roles: ['Employee', 'Manager'] });
    const actionIds: string[] = [];
    for (const day of [isoDay(20), isoDay(21), isoDay(22)]) {
      const res = await cp.post(tripper, bigTrip(day), { prefer: 'respond-async' });
      expect(res.status).toBe(202);
      actionIds.push(res.body.id as string);
    }
    const wanted = actionIds.map((id) => id.replace(/^act_/, 'apr_'));
    await expect
      .poll(async () => (await get('/v1/approvals?limit=100', boss)).body.items.filter((i: { id: string }) => wanted.includes(i.id)).length, { timeout: 15_000 })
      .toBe(3);

    const seen: string[] = [];
    let cursor: string | null = null;
    let first: string | undefined;
    do {
      const page: { status: number; body: Record<string, any> } = await get(`/v1/approvals?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, boss);
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(1);
      seen.push(...page.body.items.map((a: { id: string }) => a.id));
      cursor = page.body.nextCursor;
      first ??= cursor ?? undefined;
    } while (cursor && seen.length < 50);
    expect(seen.filter((id) => wanted.includes(id))).toEqual([...wanted].reverse());
    expect(new Set(seen).size).toBe(seen.length);

    const attempts: Array<[string, string]> = [
      ...forged('APPROVALS#pending').map((c): [string, string] => [boss, `/v1/approvals?cursor=${encodeURIComponent(c)}`]),
      [otherManager, `/v1/approvals?cursor=${encodeURIComponent(first!)}`],
      [boss, `/v1/approvals?status=approved&cursor=${encodeURIComponent(first!)}`],
    ];
    for (const [token, path] of attempts) {
      const res = await get(path, token);
      expect(res.status, path).toBe(400);
      expect(res.body).toMatchObject({ type: ProblemType.validation, violations: [{ path: 'query:cursor' }] });
    }
  });
});
