import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  dynamoEndpointFromEnv,
  InvalidDynamoEndpointError,
  InvalidTableNameError,
  tableNameFromEnv,
} from '../../lambdas/adapters/local/local-dynamo';
import { LOCAL_AWS_CREDENTIALS } from '../../lambdas/adapters/local/dynalite';

describe('AIRLOCK_DYNAMODB_ENDPOINT', () => {
  it('is optional and read as an http(s) origin', () => {
    expect(dynamoEndpointFromEnv({})).toBeUndefined();
    expect(dynamoEndpointFromEnv({ AIRLOCK_DYNAMODB_ENDPOINT: '  ' })).toBeUndefined();
    expect(dynamoEndpointFromEnv({ AIRLOCK_DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000/' })).toBe('http://127.0.0.1:8000');
    expect(dynamoEndpointFromEnv({ AIRLOCK_DYNAMODB_ENDPOINT: 'https://dynamodb.example.test' })).toBe('https://dynamodb.example.test');
  });

  it('refuses anything but an http(s) URL without credentials', () => {
    for (const bad of ['localhost:8000', 'ftp://127.0.0.1', 'http://user:secret@127.0.0.1:8000', 'not a url']) {
      expect(() => dynamoEndpointFromEnv({ AIRLOCK_DYNAMODB_ENDPOINT: bad })).toThrow(InvalidDynamoEndpointError);
    }
    // A password in the URL never reaches the message (airlock dev prints it).
    expect(() => dynamoEndpointFromEnv({ AIRLOCK_DYNAMODB_ENDPOINT: 'http://user:s3cr3t@127.0.0.1:8000' })).toThrow(/^(?!.*s3cr3t)/s);
  });

  it('either yields an http(s) URL or throws InvalidDynamoEndpointError, whatever the value (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.webUrl({ withQueryParameters: true, withFragments: true }), fc.webUrl().map((u) => u.replace('://', '://u:p@'))), (value) => {
        let result: string | undefined;
        try {
          result = dynamoEndpointFromEnv({ AIRLOCK_DYNAMODB_ENDPOINT: value });
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidDynamoEndpointError);
          return;
        }
        if (result === undefined) {
          expect(value.trim()).toBe('');
          return;
        }
        const url = new URL(result);
        expect(['http:', 'https:']).toContain(url.protocol);
        expect(url.username + url.password).toBe('');
        expect(url.search + url.hash).toBe('');
      }),
      { numRuns: 100 },
    );
  });
});

describe('AIRLOCK_DYNAMODB_TABLE', () => {
  it('accepts DynamoDB table names only', () => {
    expect(tableNameFromEnv({})).toBeUndefined();
    expect(tableNameFromEnv({ AIRLOCK_DYNAMODB_TABLE: 'airlock-ledger.dev_2' })).toBe('airlock-ledger.dev_2');
    for (const bad of ['ab', 'has space', 'x'.repeat(256), 'tab/le', 'ünicode']) {
      expect(() => tableNameFromEnv({ AIRLOCK_DYNAMODB_TABLE: bad })).toThrow(InvalidTableNameError);
    }
  });
});

describe('local credentials', () => {
  it('carry no hyphen, which DynamoDB Local refuses in an access key', () => {
    expect(LOCAL_AWS_CREDENTIALS.accessKeyId).toMatch(/^[A-Za-z0-9]+$/);
  });
});
