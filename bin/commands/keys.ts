import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FileSecrets } from '../../lambdas/adapters/local/file-secrets';
import { rotateGrantKeySet, testPendingValue } from '../../lambdas/keys/rotation';
import { SecretNames } from '../../lambdas/ports/secrets';
import { resolveStateDir } from '../../local/state-dir';

/** `airlock keys rotate`: the grant-signing key rotation the stack schedules, on the local secrets. */
export const summary = 'Rotate the local grant-signing key: keys rotate (same steps as the AWS rotation function)';

const usage = `Usage: airlock keys rotate

Rotates the grant-signing key under AIRLOCK_HOME/secrets (default ./.airlock) exactly as the
Secrets Manager rotation function does in AWS: the successor published by the previous
rotation starts signing, the retired signer keeps verifying in-flight grants, and a new
successor is published. A running control plane picks the new set up within its key cache
window (5 minutes); no grant is refused meanwhile. Prints key ids only, never key material.
`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  if (values.help || positionals[0] !== 'rotate' || positionals.length !== 1) {
    process.stdout.write(usage);
    return values.help ? 0 : 2;
  }
  const secrets = new FileSecrets(join(resolveStateDir(), 'secrets'));
  const current = await secrets.getSecret(SecretNames.grantSigningKey).catch(() => undefined);
  if (current === undefined) {
    process.stderr.write('airlock keys: no grant-signing key here yet; start the control plane once (npm start) to create it\n');
    return 1;
  }
  const { value, summary: done } = await rotateGrantKeySet(current);
  // The same check the AWS rotation's testSecret step makes before the new set goes live.
  await testPendingValue(value, current);
  await secrets.replaceSecret(SecretNames.grantSigningKey, value);
  process.stdout.write(
    `rotated: signer ${done.signer}, next ${done.next}${done.kept.length ? `, still verifying ${done.kept.join(', ')}` : ''}${done.dropped.length ? `, dropped ${done.dropped.join(', ')}` : ''}\n`,
  );
  return 0;
}
