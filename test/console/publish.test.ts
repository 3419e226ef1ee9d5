import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { run } from '../../bin/commands/console';

/** `airlock console publish`: what it sends to S3 (aws-sdk-client-mock), and what it refuses. */

const s3 = mockClient(S3Client);
afterEach(() => {
  s3.reset();
  vi.restoreAllMocks();
});

const CONFIG = { clientId: 'airlock-console', scope: 'openid', issuer: 'https://auth.example.com/', issuerLabel: 'auth.example.com' };

describe('airlock console publish', () => {
  it('uploads the built console and config.json with their content types, index.html last, never cached stale', async () => {
    // Prepare
    s3.on(PutObjectCommand).resolves({});
    const out = vi.spyOn(process.stdout, 'write').mockReturnValue(true);
    // Act
    const code = await run(['publish', '--bucket', 'console-bucket', '--config', JSON.stringify(CONFIG)], () => new S3Client({ region: 'eu-west-1' }));
    // Assess
    expect(code).toBe(0);
    const puts = s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input);
    expect(puts.map((p) => p.Key).sort()).toEqual(['app.css', 'app.js', 'config.json', 'index.html']);
    expect(puts.at(-1)!.Key).toBe('index.html');
    for (const p of puts) {
      expect(p.Bucket).toBe('console-bucket');
      expect(p.CacheControl).toBe('no-cache');
    }
    const byKey = Object.fromEntries(puts.map((p) => [p.Key, p]));
    expect(byKey['index.html']!.ContentType).toBe('text/html; charset=utf-8');
    expect(byKey['app.js']!.ContentType).toBe('text/javascript; charset=utf-8');
    expect(byKey['app.css']!.ContentType).toBe('text/css; charset=utf-8');
    expect(JSON.parse(Buffer.from(byKey['config.json']!.Body as Uint8Array).toString('utf8'))).toEqual(CONFIG);
    expect(String(out.mock.calls.at(-1)?.[0])).toMatch(/published .* to s3:\/\/console-bucket\//);
  });

  it.each([
    ['not JSON', '{', /not JSON/],
    ['an http issuer', JSON.stringify({ ...CONFIG, issuer: 'http://auth.example.com/' }), /issuer/],
    ['an unknown member', JSON.stringify({ ...CONFIG, extra: 1 }), /Unrecognized key/i],
  ])('refuses a config that is %s and uploads nothing', async (_label, config, message) => {
    const err = vi.spyOn(process.stderr, 'write').mockReturnValue(true);
    expect(await run(['publish', '--bucket', 'b', '--config', config], () => new S3Client({ region: 'eu-west-1' }))).toBe(2);
    expect(String(err.mock.calls[0]?.[0])).toMatch(message);
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
  });
});
