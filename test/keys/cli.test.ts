import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../../bin/commands/keys';
import { FileSecrets } from '../../lambdas/adapters/local/file-secrets';
import { GrantKeyring, mintGrant, verifyGrant, type GrantSubject } from '../../lambdas/steps/grants';
import { provisionLocalSecrets } from '../../local/provision-secrets';
import { SecretNames } from '../../lambdas/ports/secrets';

let home: string;
let secrets: FileSecrets;
const subject: GrantSubject = {
  principal: 'alice', agent: 'bot', connector: 'travel', tool: 'travel.hold_seat', actionId: 'act_01J00000000000000000000000',
  stepId: 'hold', kind: 'forward', planHash: 'a'.repeat(64), inputHash: 'b'.repeat(64),
};
const expect_ = { connector: 'travel', tool: 'travel.hold_seat', actionId: subject.actionId, stepId: 'hold', kind: 'forward' as const, planHash: subject.planHash, inputHash: subject.inputHash };

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'airlock-keys-'));
  secrets = new FileSecrets(join(home, 'secrets'));
  await provisionLocalSecrets(secrets, ['travel']);
  vi.stubEnv('AIRLOCK_HOME', home);
});
afterAll(async () => {
  vi.unstubAllEnvs();
  await rm(home, { recursive: true, force: true });
});

async function cli(args: string[]) {
  const out: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => (out.push(String(c)), true));
  try {
    return { code: await run(args), text: out.join('') };
  } finally {
    write.mockRestore();
  }
}

describe('airlock keys rotate (local)', () => {
  it('rotates without refusing in-flight grants, prints key ids only, keeps the file private', async () => {
    // Prepare: a grant minted before any rotation.
    const before = await mintGrant(new GrantKeyring(secrets, { cacheMs: 0 }), subject);
    const original = await secrets.getSecret(SecretNames.grantSigningKey);
    // Act: two rotations (the first publishes a successor, the second lets it sign).
    const first = await cli(['rotate']);
    const afterFirst = await verifyGrant(new GrantKeyring(secrets, { cacheMs: 0 }), before.token, expect_);
    const second = await cli(['rotate']);
    // Assess
    expect(first.code).toBe(0);
    expect(second.code).toBe(0);
    expect(afterFirst.jti).toBe(before.jti);
    await expect(verifyGrant(new GrantKeyring(secrets, { cacheMs: 0 }), before.token, expect_)).resolves.toMatchObject({ jti: before.jti });
    const now = await mintGrant(new GrantKeyring(secrets, { cacheMs: 0 }), subject);
    const kid = (t: string) => (JSON.parse(Buffer.from(t.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
    expect(kid(now.token)).not.toBe(kid(before.token));
    expect(second.text).toMatch(/^rotated: signer \S+, next \S+/);
    expect(`${first.text}${second.text}`).not.toContain((JSON.parse(original) as { d: string }).d);
    expect((await stat(secrets.pathOf(SecretNames.grantSigningKey))).mode & 0o777).toBe(0o600);
  });

  it('refuses anything but `rotate`', async () => {
    expect((await cli(['spin'])).code).toBe(2);
  });
});
