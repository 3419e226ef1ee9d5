import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CONFIG_CONTEXT_KEY,
  CONFIG_FILE_CONTEXT_KEY,
  CONFIG_FILE_ENV,
  InvalidConfigError,
  loadConfig,
  parseConfig,
  PLACEHOLDER_ISSUER,
} from '../../lib/config';

const dir = mkdtempSync(join(tmpdir(), 'airlock-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeJson(name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

describe('parseConfig', () => {
  it('fills every key with a safe default', () => {
    expect(parseConfig({})).toEqual({
      stackName: 'Airlock',
      jwt: { issuer: PLACEHOLDER_ISSUER, audience: ['airlock'] },
      auditRetentionDays: 365,
      approvalTimeoutSeconds: 259_200,
      grantTtlSeconds: 300,
      grantKeyRotationDays: 30,
      logRetentionDays: 90,
      throttling: { rateLimit: 50, burstLimit: 100 },
      lambda: { memoryMiB: 1024, timeoutSeconds: 10, connectorTimeoutSeconds: 30 },
      grantKeyReaders: ['policy'],
      vendorBaseUrls: {},
      removalPolicy: 'retain',
    });
  });

  it('keeps defaults for the keys a partial nested object leaves out', () => {
    const config = parseConfig({ throttling: { rateLimit: 5 }, jwt: { issuer: 'https://id.example.com/' } });
    expect(config.throttling).toEqual({ rateLimit: 5, burstLimit: 100 });
    expect(config.jwt).toEqual({ issuer: 'https://id.example.com/', audience: ['airlock'] });
  });

  it.each([
    [{ jwt: { issuer: 'http://id.example.com/' } }, 'jwt.issuer'],
    [{ jwt: { audience: [] } }, 'jwt.audience'],
    [{ auditRetentionDays: 0 }, 'auditRetentionDays'],
    [{ approvalTimeoutSeconds: 40_000_000 }, 'approvalTimeoutSeconds'],
    [{ grantTtlSeconds: 301 }, 'grantTtlSeconds'],
    [{ grantKeyRotationDays: 0 }, 'grantKeyRotationDays'],
    [{ logRetentionDays: 2 }, 'logRetentionDays'],
    [{ grantKeyReaders: ['connector'] }, 'grantKeyReaders'],
    [{ removalPolicy: 'snapshot' }, 'removalPolicy'],
    [{ auditRetentionDays: '365' }, 'auditRetentionDays'],
    [{ unknownKey: true }, 'unknownKey'],
  ])('rejects %j, naming %s', (input, key) => {
    expect(() => parseConfig(input)).toThrow(InvalidConfigError);
    expect(() => parseConfig(input)).toThrow(key);
  });
});

describe('loadConfig', () => {
  it('reads context "airlock" as an object or as JSON text', () => {
    const asObject = new App({ context: { [CONFIG_CONTEXT_KEY]: { auditRetentionDays: 730 } } });
    const asText = new App({ context: { [CONFIG_CONTEXT_KEY]: '{"auditRetentionDays":731}' } });
    expect(loadConfig(asObject, {}).auditRetentionDays).toBe(730);
    expect(loadConfig(asText, {}).auditRetentionDays).toBe(731);
  });

  it('layers context over the file over the defaults, key by key', () => {
    const file = writeJson('airlock.json', {
      jwt: { issuer: 'https://file.example.com/', audience: ['from-file'] },
      grantTtlSeconds: 60,
    });
    const app = new App({
      context: { [CONFIG_FILE_CONTEXT_KEY]: file, [CONFIG_CONTEXT_KEY]: { jwt: { audience: ['from-context'] } } },
    });
    const config = loadConfig(app, {});
    expect(config.jwt).toEqual({ issuer: 'https://file.example.com/', audience: ['from-context'] });
    expect(config.grantTtlSeconds).toBe(60);
    expect(config.auditRetentionDays).toBe(365);
  });

  it('falls back to AIRLOCK_CONFIG_FILE when no file is named in context', () => {
    const file = writeJson('env.json', { approvalTimeoutSeconds: 3600 });
    expect(loadConfig(new App(), { [CONFIG_FILE_ENV]: file }).approvalTimeoutSeconds).toBe(3600);
  });

  it('fails with a clear error on a missing file, bad JSON or a non-object', () => {
    expect(() => loadConfig(new App({ context: { [CONFIG_FILE_CONTEXT_KEY]: join(dir, 'missing.json') } }), {})).toThrow(
      /Cannot read config file/,
    );
    expect(() => loadConfig(new App({ context: { [CONFIG_CONTEXT_KEY]: '{not json' } }), {})).toThrow(/not valid JSON/);
    expect(() => loadConfig(new App({ context: { [CONFIG_CONTEXT_KEY]: '[1]' } }), {})).toThrow(/must be a JSON object/);
  });
});
