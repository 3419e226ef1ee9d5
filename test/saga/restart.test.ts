import { GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeActionBody } from '../../lambdas/adapters/aws/action-body';
import { toAction } from '../../lambdas/adapters/aws/dynamo-ledger';
import { FileSecrets } from '../../lambdas/adapters/local/file-secrets';
import { connectors } from '../../lambdas/tools/registry';
import { SecretNames } from '../../lambdas/ports/secrets';
import { provisionLocalSecrets } from '../../local/provision-secrets';
import { ensurePrivateDir } from '../../local/state-dir';
import { SANDBOX_CONNECTORS, startSandboxVendors, type SandboxVendors } from '../../local/vendors/index';
import { startTestControlPlane, travelPlan } from '../helpers/control-plane';
import { isoDay } from '../helpers/dates';

let stateDir: string;
let vendors: SandboxVendors;

beforeAll(async () => {
  // Vendors outlive Airlock, as real ones do: provision the state dir's secrets first so
  // the vendors accept the credentials both runs will read.
  stateDir = await mkdtemp(join(tmpdir(), 'airlock-restart-'));
  await ensurePrivateDir(join(stateDir, 'secrets'));
  const secrets = new FileSecrets(join(stateDir, 'secrets'));
  await provisionLocalSecrets(secrets, connectors.map((c) => c.name));
  const credentials: Record<string, string> = {};
  for (const name of SANDBOX_CONNECTORS) credentials[name] = await secrets.getSecret(SecretNames.vendorCredential(name));
  vendors = await startSandboxVendors({ credentials });
});
afterAll(async () => {
  await vendors?.close();
  await rm(stateDir, { recursive: true, force: true });
});

describe('restarting the local control plane mid-saga', () => {
  // Holds whether the ledger dies with the runtime (dynalite) or outlives it (DynamoDB Local
  // via AIRLOCK_DYNAMODB_ENDPOINT): after close() nothing of the first run may write.
  it('resumes the interrupted action on start: nothing lost, nothing done twice', async () => {
    // Prepare: the payment vendor commits the authorization and never answers, so the saga is
    // inside the pay step, waiting on the vendor, when we stop.
    vendors.admin.setFaults('payments', { commitThenDrop: [{ operation: 'authorize', count: 1, mode: 'hang' }] });
    const vendorTimeoutMs = 30_000;
    const first = await startTestControlPlane({ stateDir, controlPlane: { externalVendors: vendors, vendorTimeoutMs } });
    const alice = await first.token('alice', { roles: ['employee'], manager: 'bob' });
    const accepted = await first.post(alice, travelPlan(), { prefer: 'respond-async' });
    expect(accepted.status).toBe(202);
    const id = accepted.body.id as string;
    await expect.poll(() => vendors.admin.stats('payments').sideEffects, { timeout: 20_000 }).toEqual({ authorize: 1 });

    // Act: stop while the connector still waits for the vendor's answer, then restart.
    const stopping = Date.now();
    await first.close();
    // The vendor call was cut short (not waited out) and its handler awaited: nothing of the
    // first run is still running, so nothing can write to the ledger any more.
    expect(Date.now() - stopping).toBeLessThan(vendorTimeoutMs / 2);
    expect(first.cp.runner.inFlightTasks).toBe(0);
    expect(vendors.admin.stats('payments').sideEffects).toEqual({ authorize: 1 });
    vendors.admin.setFaults('payments', {});
    const second = await startTestControlPlane({ stateDir, controlPlane: { externalVendors: vendors } });
    try {
      await second.cp.runner.idle();
      // Assess: the resumed attempt sent the same idempotency key and got the stored answer.
      const action = await second.cp.ledger.getAction(id);
      expect(action?.status).toBe('completed');
      expect(vendors.admin.stats('payments').sideEffects).toEqual({ authorize: 1 });
      expect(vendors.admin.stats('travel').sideEffects).toEqual({ hold_seat: 1, book_flight: 1 });
      const steps = await second.cp.store.listSteps(id);
      // A late write of the first run (its handler completing the step after close) would
      // have made this 1.
      expect(steps.find((s) => s.stepId === 'pay')?.attempts).toBe(2);
      expect(steps.find((s) => s.stepId === 'hold')?.attempts).toBe(1);
    } finally {
      await second.close();
    }
  });

  // Found by the chaos storm (npm run chaos): a SIGKILL after SettleAction and before the
  // receipt write left a terminal action that no restart looked at again, so it never got a
  // receipt. The crash is reproduced by taking the receipt back out of the ledger and the vault.
  it('writes the receipt of an action that settled but crashed before its receipt was stored', async () => {
    const first = await startTestControlPlane({ stateDir, controlPlane: { externalVendors: vendors } });
    const alice = await first.token('alice', { roles: ['employee'], manager: 'bob' });
    const done = await first.post(alice, travelPlan({ date: isoDay(15) }), { prefer: 'wait=20' });
    const id = done.body.id as string;
    await expect.poll(async () => (await first.cp.ledger.getAction(id))?.receiptKey, { timeout: 20_000 }).toBeDefined();
    const action = (await first.cp.ledger.getAction(id))!;
    expect(action.status).toBe('completed');
    const receiptFile = join(stateDir, 'audit', action.receiptKey!);
    const { tableName, client } = first.runtime.dynamo;
    const item = await client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: `ACTION#${id}` }, sk: { S: 'ACTION' } } }));
    const { receiptKey: _dropped, ...doc } = toAction(item.Item)!;
    await client.send(
      new UpdateItemCommand({ TableName: tableName, Key: { pk: { S: `ACTION#${id}` }, sk: { S: 'ACTION' } }, UpdateExpression: 'SET body = :body', ExpressionAttributeValues: { ':body': { B: encodeActionBody(doc) } } }),
    );
    await rm(receiptFile);
    await first.close();

    const second = await startTestControlPlane({ stateDir, controlPlane: { externalVendors: vendors } });
    try {
      await second.cp.runner.idle();
      const after = await second.cp.ledger.getAction(id);
      expect(after?.status).toBe('completed');
      expect(after?.receiptKey).toBe(action.receiptKey);
      await expect(access(receiptFile)).resolves.toBeUndefined();
      // Only the receipt was missing: nothing ran at the vendors again.
      expect(vendors.admin.effects('travel').filter((e) => e.idempotencyKey?.startsWith(id))).toHaveLength(2);
    } finally {
      await second.close();
    }
  });
});
