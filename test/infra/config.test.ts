import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { deriveSagaTimeouts, EXPRESS_TASK_MAX_SECONDS, STANDARD_MAX_EXECUTION_SECONDS, TASK_TIMEOUT_MARGIN_SECONDS } from '../../lambdas/saga/timeouts';
import { readAsl } from '../../lib/constructs/saga';
import {
  type AirlockConfig,
  type AirlockConfigInput,
  CONFIG_CONTEXT_KEY,
  CONFIG_FILE_CONTEXT_KEY,
  CONFIG_FILE_ENV,
  InvalidConfigError,
  loadConfig,
  parseConfig,
  PLACEHOLDER_ISSUER,
  sagaTimeoutConfig,
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
      console: { clientId: 'airlock-console', scope: 'openid' },
      auditRetentionDays: 365,
      requireDelegation: true,
      approvalTimeoutSeconds: 259_200,
      grantTtlSeconds: 300,
      grantKeyRotationDays: 30,
      logRetentionDays: 90,
      throttling: { rateLimit: 50, burstLimit: 100 },
      lambda: { memoryMiB: 1024, timeoutSeconds: 10, connectorTimeoutSeconds: 30 },
      grantKeyReaders: ['saga'],
      vendorBaseUrls: {},
      removalPolicy: 'retain',
      alarms: { approvalPendingHours: 24, vendorErrorRatePercent: 20, api5xxRatePercent: 1 },
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

describe('parseConfig: timeouts the saga can honour', () => {
  const executionOf = (config: AirlockConfigInput) => {
    const parsed = { approvalTimeoutSeconds: 259_200, ...config, lambda: { timeoutSeconds: 10, connectorTimeoutSeconds: 30, ...config.lambda } };
    return deriveSagaTimeouts(readAsl(), sagaTimeoutConfig(parsed as AirlockConfig));
  };

  it('refuses a one-year approval wait: the execution would time out first, naming the fields and the largest value that fits', () => {
    const input = { approvalTimeoutSeconds: STANDARD_MAX_EXECUTION_SECONDS };
    expect(() => parseConfig(input)).toThrow(InvalidConfigError);
    const room = STANDARD_MAX_EXECUTION_SECONDS - executionOf(input).runSeconds;
    const message = (() => {
      try {
        parseConfig(input);
      } catch (error) {
        return (error as Error).message;
      }
      return '';
    })();
    for (const field of ['approvalTimeoutSeconds', 'lambda.timeoutSeconds', 'lambda.connectorTimeoutSeconds', `at most ${room}`]) {
      expect(message).toContain(field);
    }
    // Exactly at the limit is fine; one second more is not.
    expect(parseConfig({ approvalTimeoutSeconds: room }).approvalTimeoutSeconds).toBe(room);
    expect(() => parseConfig({ approvalTimeoutSeconds: room + 1 })).toThrow(/approvalTimeoutSeconds/);
  });

  it('counts the Lambda timeouts: the longest functions leave less room for the approval', () => {
    // The slowest functions one step attempt of the Express run can hold.
    const longest = EXPRESS_TASK_MAX_SECONDS - TASK_TIMEOUT_MARGIN_SECONDS;
    const slow = { lambda: { timeoutSeconds: longest, connectorTimeoutSeconds: longest } };
    const room = STANDARD_MAX_EXECUTION_SECONDS - executionOf(slow).runSeconds;
    expect(room).toBeLessThan(STANDARD_MAX_EXECUTION_SECONDS - executionOf({}).runSeconds);
    expect(() => parseConfig({ ...slow, approvalTimeoutSeconds: room })).not.toThrow();
    expect(() => parseConfig({ ...slow, approvalTimeoutSeconds: room + 1 })).toThrow(new RegExp(`lambda\\.connectorTimeoutSeconds = ${longest}`));
    // One more second and a step attempt no longer fits in an Express run: refused, naming the field.
    expect(() => parseConfig({ lambda: { connectorTimeoutSeconds: longest + 1 } })).toThrow(/RunStep.*lambda\.connectorTimeoutSeconds/);
  });

  it('accepts a config exactly when its derived execution fits in a year (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 60, max: STANDARD_MAX_EXECUTION_SECONDS }),
        fc.integer({ min: 1, max: 900 }),
        fc.integer({ min: 1, max: 900 }),
        (approvalTimeoutSeconds, timeoutSeconds, connectorTimeoutSeconds) => {
          const input = { approvalTimeoutSeconds, lambda: { timeoutSeconds, connectorTimeoutSeconds } };
          const fits = executionOf(input).executionSeconds <= STANDARD_MAX_EXECUTION_SECONDS;
          const stepFits = Math.max(timeoutSeconds, connectorTimeoutSeconds) + TASK_TIMEOUT_MARGIN_SECONDS <= EXPRESS_TASK_MAX_SECONDS;
          if (fits && stepFits) expect(parseConfig(input).approvalTimeoutSeconds).toBe(approvalTimeoutSeconds);
          else expect(() => parseConfig(input)).toThrow(fits ? /connectorTimeoutSeconds/ : /approvalTimeoutSeconds/);
        },
      ),
      { numRuns: 100 },
    );
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
