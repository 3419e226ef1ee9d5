import { request as httpRequest } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { importJWK, SignJWT, UnsecuredJWT, generateKeyPair, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { httpApi, type HttpEvent } from '../../lambdas/middleware/http';
import { ProblemType } from '../../lambdas/shared/problem';
import { SecretNames } from '../../lambdas/ports/secrets';
import { ISSUER_KEY_FILE, LOCAL_AUDIENCE, LOCAL_ISSUER } from '../../local/dev-issuer';
import type { LocalService } from '../../local/server';
import { strictSchemaProblems, validateResponse } from '../helpers/contract';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';
import { startTestRuntime, type TestRuntime } from '../helpers/local-runtime';

/** Every response body seen, checked at the end for leaked stack frames. */
const bodies: string[] = [];

async function call(url: string, init: RequestInit = {}) {
  const res = await fetch(url, init);
  const text = await res.text();
  bodies.push(text);
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

const STACK_FRAME = /\bat [^\n]*\(?[^\s()]+:\d+:\d+\)?|\n\s+at /;

describe('local runtime over HTTP (default routes and handlers)', () => {
  let rt: TestControlPlane;
  let alice: string;

  beforeAll(async () => {
    rt = await startTestControlPlane();
    alice = await rt.token('alice', { roles: ['employee'], manager: 'bob', department: 'sales' });
  });
  afterAll(async () => {
    await rt?.close();
  });

  it('serves GET /healthz without a token', async () => {
    const res = await call(`${rt.url}/healthz`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
    expect(res.headers.get('apigw-requestid')).toBeTruthy();
  });

  it('answers 401 problem+json with WWW-Authenticate when the token is missing', async () => {
    const res = await call(`${rt.url}/v1/tools`);
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(res.json()).toMatchObject({ type: ProblemType.unauthorized, status: 401 });
  });

  it('answers 401 for bad, expired, foreign, wrong-audience and alg-none tokens', async () => {
    const jwk = JSON.parse(await readFile(join(rt.stateDir, 'issuer', ISSUER_KEY_FILE), 'utf8')) as JWK;
    const ourKey = await importJWK(jwk, 'ES256');
    const { privateKey: otherKey } = await generateKeyPair('ES256');
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: 'alice', roles: ['admin'], iat: now, exp: now + 300 };
    const header = { alg: 'ES256', kid: rt.runtime.issuer.kid };
    const tokens = {
      garbage: 'not.a.jwt',
      expired: await rt.token('alice', { roles: ['employee'], ttl: 1 }).then(async () =>
        rt.runtime.issuer.sign({ sub: 'alice' }, 60, { now: new Date(Date.now() - 3_600_000) }),
      ),
      wrongAudience: await new SignJWT({ ...claims, iss: LOCAL_ISSUER, aud: 'not-airlock' }).setProtectedHeader(header).sign(ourKey),
      wrongIssuer: await new SignJWT({ ...claims, iss: 'https://idp.example', aud: LOCAL_AUDIENCE }).setProtectedHeader(header).sign(ourKey),
      foreignKey: await new SignJWT({ ...claims, iss: LOCAL_ISSUER, aud: LOCAL_AUDIENCE }).setProtectedHeader(header).sign(otherKey),
      algNone: new UnsecuredJWT({ ...claims, iss: LOCAL_ISSUER, aud: LOCAL_AUDIENCE }).encode(),
    };
    for (const [name, token] of Object.entries(tokens)) {
      const res = await call(`${rt.url}/v1/tools`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status, name).toBe(401);
      expect(res.headers.get('www-authenticate'), name).toBe('Bearer');
      expect(res.json().type, name).toBe(ProblemType.unauthorized);
    }
    // A valid token in the wrong place or scheme is not a bearer token either.
    const misplaced: Array<Record<string, string>> = [{ authorization: alice }, { authorization: `Basic ${alice}` }, { 'x-api-key': alice }];
    for (const headers of misplaced) {
      expect((await call(`${rt.url}/v1/tools`, { headers })).status).toBe(401);
    }
    expect((await call(`${rt.url}/v1/tools?access_token=${alice}`)).status).toBe(401);
  });

  it('serves the tool catalog to a valid token, with draft 2020-12 input schemas', async () => {
    const res = await call(`${rt.url}/v1/tools`, { headers: { authorization: `Bearer ${alice}` } });
    expect(res.status).toBe(200);
    const { tools } = res.json() as { tools: Array<Record<string, unknown>> };
    expect(tools.length).toBeGreaterThan(0);
    expect(tools.map((t) => t.name)).toContain('echo.say');
    for (const tool of tools) {
      expect(tool, String(tool.name)).toMatchObject({ name: expect.any(String), tier: expect.stringMatching(/^(read|draft|commit)$/) });
      const schema = tool.inputSchema as Record<string, unknown>;
      expect(schema.$schema, String(tool.name)).toBe('https://json-schema.org/draft/2020-12/schema');
      expect(schema.type, String(tool.name)).toBe('object');
      expect(strictSchemaProblems(schema), String(tool.name)).toEqual([]);
    }
  });

  it('answers 404 problem+json for an unknown route', async () => {
    const res = await call(`${rt.url}/v1/nothing-here`, { headers: { authorization: `Bearer ${alice}` } });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.json()).toMatchObject({ type: ProblemType.notFound, status: 404 });
  });

  it('answers 405 problem+json with Allow for a known path and wrong method', async () => {
    const res = await call(`${rt.url}/v1/tools`, { method: 'DELETE', headers: { authorization: `Bearer ${alice}` } });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET');
    expect(res.json()).toMatchObject({ type: ProblemType.methodNotAllowed, allow: ['GET'] });
  });

  it('answers 400 for a body that is not JSON', async () => {
    const res = await call(`${rt.url}/v1/actions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json', 'idempotency-key': 'k-1' },
      body: '{"tool": "echo.say", ',
    });
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ type: ProblemType.malformedJson, status: 400 });
  });

  it('answers 413 for a body over 64 KiB without reading it', async () => {
    const res = await call(`${rt.url}/v1/actions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
      body: JSON.stringify({ pad: 'x'.repeat(70 * 1024) }),
    });
    expect(res.status).toBe(413);
    expect(res.json()).toMatchObject({ type: ProblemType.payloadTooLarge, limit: 65536 });
  });

  it('stops reading a chunked body once it passes 64 KiB', async () => {
    const { status, body, headers } = await new Promise<{ status: number; body: string; headers: Record<string, string> }>((resolve, reject) => {
      const req = httpRequest(
        `${rt.url}/v1/actions`,
        { method: 'POST', headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' } },
        (res) => {
          answered = true;
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => {
            resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers as Record<string, string> });
            req.destroy();
          });
        },
      );
      let answered = false;
      req.on('error', (error) => {
        if (!answered) reject(error);
      });
      const chunk = 'y'.repeat(16 * 1024);
      let sent = 0;
      // Stream well past 64 KiB but never end the request: the answer must come without the
      // end, and staying under the server's drain allowance keeps the socket open to read it.
      const pump = () => {
        if (answered || sent >= 512 * 1024) return;
        sent += chunk.length;
        if (req.write(chunk)) setImmediate(pump);
        else req.once('drain', pump);
      };
      pump();
    });
    bodies.push(body);
    expect(status).toBe(413);
    // Not a fetch, so not validated by the wrapper in test/setup.ts: check it here.
    validateResponse({ method: 'POST', path: '/v1/actions', status, headers, body });
  });

  it('never puts a stack trace in a response body', () => {
    expect(bodies.length).toBeGreaterThan(10);
    for (const body of bodies) expect(body).not.toMatch(STACK_FRAME);
  });
});

describe('local runtime as API Gateway (custom routes)', () => {
  let rt: TestRuntime;
  const seen: HttpEvent[] = [];
  const stops: string[] = [];

  const echo = httpApi({
    'POST /probe/{id}': {
      auth: true,
      handle: async (req) => ({ status: 200, body: { principal: req.principal, body: req.body, id: req.pathParameters.id } }),
    },
    'GET /public': { auth: false, handle: async (req) => ({ status: 200, body: { principal: req.principal ?? null } }) },
    'GET /boom': {
      auth: true,
      handle: async () => {
        throw new Error('secret internals at /srv/app.ts:12:3');
      },
    },
  });

  const services: LocalService[] = [
    {
      name: 'first',
      start: async (ctx) => {
        expect(ctx.dynamo.tableName).toBe('airlock-ledger');
        return { env: { FIRST_URL: 'http://first' }, info: { first: 'http://first' }, stop: async () => void stops.push('first') };
      },
    },
    {
      name: 'second',
      start: async (ctx) => {
        expect(ctx.env.FIRST_URL).toBe('http://first');
        return { stop: async () => void stops.push('second') };
      },
    },
  ];

  beforeAll(async () => {
    rt = await startTestRuntime({
      routes: [
        { method: 'POST', path: '/probe/{id}', fn: 'intake', auth: true },
        { method: 'GET', path: '/public', fn: 'intake', auth: false },
        { method: 'GET', path: '/boom', fn: 'intake', auth: true },
        // A route whose module nobody has written must not stop the runtime from starting.
        { method: 'GET', path: '/missing', fn: 'receipts-not-written' as 'receipts', auth: true },
      ],
      loadHandler: async (fn) => {
        if (fn !== 'intake') throw new Error(`no module for ${fn}`);
        return async (event, context) => {
          seen.push(event);
          return echo(event, context);
        };
      },
      services,
    });
  });
  afterAll(async () => {
    await rt?.close();
    expect(stops).toEqual(['second', 'first']);
  });

  it('takes identity only from the verified token, never from headers or body', async () => {
    const token = await rt.token('alice', { roles: ['employee', 'buyer'], manager: 'bob' });
    const res = await call(`${rt.url}/probe/a%2Fb?x=1&x=2`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'x-airlock-principal': 'mallory',
        'x-amzn-oidc-identity': 'mallory',
      },
      body: JSON.stringify({ principal: { sub: 'mallory', roles: ['admin'] }, sub: 'mallory' }),
    });
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({ principal: { sub: 'alice', roles: ['buyer', 'employee'], manager: 'bob' }, id: 'a/b' });
    const event = seen.at(-1)!;
    expect(event.version).toBe('2.0');
    expect(event.routeKey).toBe('POST /probe/{id}');
    expect(event.queryStringParameters).toEqual({ x: '1,2' });
    expect(event.requestContext.authorizer.jwt.claims).toMatchObject({ sub: 'alice', roles: '[employee buyer]', iss: LOCAL_ISSUER });
  });

  it('gives public routes no principal even when a token is sent', async () => {
    const token = await rt.token('alice');
    const res = await call(`${rt.url}/public`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.json()).toEqual({ principal: null });
    expect('authorizer' in seen.at(-1)!.requestContext).toBe(false);
  });

  it('turns a handler crash or a missing handler module into a 500 problem with no internals', async () => {
    const token = await rt.token('alice');
    for (const path of ['/boom', '/missing']) {
      const res = await call(`${rt.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status, path).toBe(500);
      expect(res.json(), path).toMatchObject({ type: ProblemType.internal, requestId: expect.any(String) });
      expect(res.text, path).not.toMatch(/secret internals|srv\/app|no module/);
    }
  });

  it('publishes the ledger configuration and service variables, and leaves process.env alone (handlers are composed, not configured by it)', () => {
    expect(rt.runtime.env).toMatchObject({ LEDGER_TABLE: 'airlock-ledger', FIRST_URL: 'http://first', AIRLOCK_HOME: rt.stateDir });
    expect(process.env.AWS_ENDPOINT_URL_DYNAMODB).toBeUndefined();
    expect(process.env.LEDGER_TABLE).toBeUndefined();
    expect(rt.runtime.services.map((s) => s.name)).toEqual(['first', 'second']);
  });

  it('never puts a stack trace in a response body', () => {
    for (const body of bodies) expect(body).not.toMatch(STACK_FRAME);
  });
});

describe('local runtime restart', () => {
  it('keeps issuer keys, secrets and DynamoDB data in the state directory', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'airlock-restart-'));
    try {
      // Prepare: first run
      const first = await startTestControlPlane({ stateDir });
      const token = await first.token('alice', { roles: ['employee'] });
      const grantKey = await first.runtime.secrets.getSecret(SecretNames.grantSigningKey);
      await first.runtime.dynamo.client.send(
        new PutItemCommand({ TableName: first.runtime.dynamo.tableName, Item: { pk: { S: 'probe' }, sk: { S: '1' } } }),
      );
      await first.close();
      expect(process.env.AWS_ENDPOINT_URL_DYNAMODB).toBeUndefined();
      await expect(fetch(`${first.url}/healthz`)).rejects.toThrow();

      // Act: second run on the same state directory
      const second = await startTestControlPlane({ stateDir });
      try {
        // Assess
        const res = await call(`${second.url}/v1/tools`, { headers: { authorization: `Bearer ${token}` } });
        expect(res.status).toBe(200);
        expect(await second.runtime.secrets.getSecret(SecretNames.grantSigningKey)).toBe(grantKey);
        const item = await second.runtime.dynamo.client.send(
          new GetItemCommand({ TableName: second.runtime.dynamo.tableName, Key: { pk: { S: 'probe' }, sk: { S: '1' } } }),
        );
        expect(item.Item?.pk?.S).toBe('probe');
      } finally {
        await second.close();
      }
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  it('refuses a second runtime on a state directory in use', async () => {
    const first = await startTestControlPlane();
    try {
      await expect(startTestControlPlane({ stateDir: first.stateDir })).rejects.toThrow(/in use by another airlock runtime/);
      // The refused start released its port and left the first one serving.
      expect((await call(`${first.url}/healthz`)).status).toBe(200);
    } finally {
      await first.close();
    }
  });
});
