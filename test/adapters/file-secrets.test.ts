import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importJWK } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileSecrets, InvalidSecretNameError, secretFileName } from '../../lambdas/adapters/local/file-secrets';
import { provisionLocalSecrets } from '../../local/provision-secrets';
import { SecretNames, SecretNotFoundError } from '../../lambdas/ports/secrets';

let root: string;
let secrets: FileSecrets;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'airlock-secrets-'));
  secrets = new FileSecrets(join(root, 'secrets'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('secretFileName', () => {
  it('maps slashes to double underscores', () => {
    expect(secretFileName('airlock/vendor/travel')).toBe('airlock__vendor__travel');
    expect(secretFileName(SecretNames.grantSigningKey)).toBe('airlock__grant-signing-key');
  });

  it.each([
    '',
    '..',
    '../etc/passwd',
    'airlock/../../x',
    'airlock/./x',
    '/absolute',
    'trailing/',
    'a//b',
    '.hidden',
    'a\\b',
    'a b',
    'a\0b',
    'a__b',
    '_lead',
    'trail_',
    'x'.repeat(600),
  ])('refuses %j', (name) => {
    expect(() => secretFileName(name)).toThrow(InvalidSecretNameError);
  });

  it('keeps distinct names distinct', () => {
    const names = ['a/b', 'a_b', 'a/b/c', 'a.b', 'a-b', 'a/b_c', 'a_b/c'];
    expect(new Set(names.map(secretFileName)).size).toBe(names.length);
  });
});

describe('FileSecrets', () => {
  it('creates on first use with 0600 files in a 0700 folder, then keeps the value', async () => {
    // Prepare
    let calls = 0;
    const gen = () => `value-${++calls}`;
    // Act
    const first = await secrets.ensureSecret('airlock/vendor/travel', gen);
    const second = await secrets.ensureSecret('airlock/vendor/travel', gen);
    // Assess
    expect(first).toBe('value-1');
    expect(second).toBe('value-1');
    expect(calls).toBe(1);
    expect(await secrets.getSecret('airlock/vendor/travel')).toBe('value-1');
    expect((await stat(secrets.dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(secrets.dir, 'airlock__vendor__travel'))).mode & 0o777).toBe(0o600);
  });

  it('agrees on one value when first runs race', async () => {
    const values = await Promise.all(
      Array.from({ length: 20 }, (_, i) => secrets.ensureSecret('airlock/race', () => `v${i}`)),
    );
    expect(new Set(values).size).toBe(1);
    expect(await readdir(secrets.dir)).toEqual(['airlock__race']);
  });

  it('throws SecretNotFoundError for an absent secret and refuses traversal on read', async () => {
    await expect(secrets.getSecret('airlock/none')).rejects.toBeInstanceOf(SecretNotFoundError);
    await expect(secrets.getSecret('../../etc/passwd')).rejects.toBeInstanceOf(InvalidSecretNameError);
    await expect(secrets.ensureSecret('../escape', () => 'x')).rejects.toBeInstanceOf(InvalidSecretNameError);
  });

  it('provisions a grant-signing Ed25519 JWK with kid and one key per connector', async () => {
    const names = await provisionLocalSecrets(secrets, ['travel', 'echo']);
    expect(names).toEqual([SecretNames.grantSigningKey, SecretNames.receiptRedactionKey, SecretNames.digestSigningKey, SecretNames.cursorKey, 'airlock/vendor/travel', 'airlock/vendor/echo']);
    expect(await secrets.getSecret(SecretNames.cursorKey)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const jwk = JSON.parse(await secrets.getSecret(SecretNames.grantSigningKey)) as Record<string, string>;
    expect(jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
    expect(jwk.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(jwk.d).toBeTruthy();
    await expect(importJWK(jwk)).resolves.toBeTruthy();
    const travel = await secrets.getSecret('airlock/vendor/travel');
    expect(travel).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(travel).not.toBe(await secrets.getSecret('airlock/vendor/echo'));
    // A second provisioning keeps every value.
    await provisionLocalSecrets(secrets, ['travel', 'echo']);
    expect(await secrets.getSecret('airlock/vendor/travel')).toBe(travel);
  });
});

describe('FileSecrets reads', () => {
  it('see a rotation at once, by this instance or by another process’s, and a removed secret as gone', async () => {
    await secrets.ensureSecret('airlock/vendor/echo', () => 'v1');
    expect(await secrets.getSecret('airlock/vendor/echo')).toBe('v1');
    expect(await secrets.getSecret('airlock/vendor/echo')).toBe('v1');
    await secrets.replaceSecret('airlock/vendor/echo', 'v2');
    expect(await secrets.getSecret('airlock/vendor/echo')).toBe('v2');
    // Another writer (the `airlock` CLI, another process) on the same folder.
    await new FileSecrets(join(root, 'secrets')).replaceSecret('airlock/vendor/echo', 'v3-same');
    expect(await secrets.getSecret('airlock/vendor/echo')).toBe('v3-same');
    await rm(secrets.pathOf('airlock/vendor/echo'));
    await expect(secrets.getSecret('airlock/vendor/echo')).rejects.toBeInstanceOf(SecretNotFoundError);
  });
});
