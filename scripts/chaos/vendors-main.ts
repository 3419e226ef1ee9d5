import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileSecrets } from '../../lambdas/adapters/local/file-secrets';
import { SecretNames } from '../../lambdas/ports/secrets';
import { provisionLocalSecrets } from '../../local/provision-secrets';
import { SANDBOX_CONNECTORS, startSandboxVendors } from '../../local/vendors/index';

/**
 * The storm's sandbox vendors, in a process of their own (real vendors outlive the control
 * plane): `tsx vendors-main.ts <AIRLOCK_HOME> <info-file>`. Writes their URLs and admin tokens
 * to the info file, then serves until SIGTERM. Their state lives under <home>/vendors, as the
 * control plane's own vendors' would.
 */
const [home, infoFile] = process.argv.slice(2);
if (!home || !infoFile) {
  process.stderr.write('usage: vendors-main.ts <home> <info-file>\n');
  process.exit(2);
}
const secrets = new FileSecrets(join(home, 'secrets'));
// The same first-run secrets the control plane would make, so both read one set of credentials.
await provisionLocalSecrets(secrets, SANDBOX_CONNECTORS);
const credentials: Record<string, string> = {};
for (const name of SANDBOX_CONNECTORS) credentials[name] = await secrets.getSecret(SecretNames.vendorCredential(name));
const vendors = await startSandboxVendors({ stateDir: join(home, 'vendors'), credentials });
await writeFile(infoFile, JSON.stringify({ baseUrls: vendors.baseUrls, adminTokens: vendors.adminTokens }), { mode: 0o600 });
process.stdout.write('READY\n');
process.once('SIGTERM', () => {
  void vendors.close().then(() => process.exit(0));
});
