import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileAuditStore } from '../../lambdas/adapters/local/file-audit-store';
import { FileSecrets } from '../../lambdas/adapters/local/file-secrets';
import { writeDigest } from '../../lambdas/receipts/vault';
import { silentLogger } from '../../local/server';
import { DigestSchema, type Digest } from '../../lambdas/receipts/schema';
import { verifyVault } from '../../lambdas/receipts/verify';
import { startTestControlPlane } from '../helpers/control-plane';

/**
 * The local control plane keeps the vault's heartbeat: digests on its timer declaring the
 * schedule, and a closing digest at shutdown, so a stopped vault still verifies without
 * --until while a vault cut short does not.
 */

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function digestsIn(store: FileAuditStore): Promise<Digest[]> {
  const out: Digest[] = [];
  for (const o of await store.list('digests/dt=')) out.push(DigestSchema.parse(JSON.parse(Buffer.from((await store.get(o.key))!).toString('utf8'))));
  return out;
}

describe('the local control plane', () => {
  it('writes heartbeat digests on its timer and a closing digest when it stops; a restart continues the chain', async () => {
    // Prepare
    const stateDir = await mkdtemp(join(tmpdir(), 'airlock-heartbeat-'));
    dirs.push(stateDir);
    const store = new FileAuditStore(join(stateDir, 'audit'));
    const first = await startTestControlPlane({ stateDir, controlPlane: { digestIntervalMs: 200 } });
    // Act: let the timer run
    try {
      expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
      await expect.poll(async () => (await digestsIn(store)).length, { timeout: 10_000, interval: 50 }).toBeGreaterThanOrEqual(2);
      // Assess: a running vault verifies against now
      const running = await verifyVault(store, { graceMs: 60_000 });
      expect(running.findings).toEqual([]);
      expect(running.tail.heartbeat).toEqual({ intervalSeconds: 1 });
      expect(running.tail.allowedMs).toBe(11_000);
    } finally {
      await first.close();
    }
    const afterStop = await digestsIn(store);
    const closing = afterStop.at(-1)!;
    expect(closing.heartbeat).toEqual({ intervalSeconds: 1, stopped: true });
    expect(afterStop.slice(0, -1).every((d) => d.heartbeat?.intervalSeconds === 1 && !d.heartbeat.stopped)).toBe(true);

    // A stopped vault verifies a day later without --until, and is held to an explicit one.
    const dayLater = new Date(Date.parse(closing.endTime) + 86_400_000);
    expect((await verifyVault(store, { now: dayLater })).findings).toEqual([]);
    expect((await verifyVault(store, { now: dayLater, until: dayLater })).findings.map((f) => [f.kind, f.key])).toEqual([['truncated-tail', closing.key]]);

    // A restart chains onto the closing digest; the stop is no gap.
    const second = await startTestControlPlane({ stateDir, controlPlane: { digestIntervalMs: 200 } });
    try {
      await expect.poll(async () => (await digestsIn(store)).length, { timeout: 10_000, interval: 50 }).toBeGreaterThan(afterStop.length);
      const resumed = (await digestsIn(store))[afterStop.length]!;
      expect(resumed.previous?.key).toBe(closing.key);
      expect((await verifyVault(store, { graceMs: 60_000 })).findings).toEqual([]);
    } finally {
      await second.close();
    }
  }, 40_000);

  it('a restart after a crash writes the dead writer\'s overdue successor at once, not an interval later', async () => {
    // Prepare: a vault whose head promises a successor within 1 s, as a writer killed
    // (SIGKILL) between two heartbeats leaves it: no closing digest.
    const stateDir = await mkdtemp(join(tmpdir(), 'airlock-heartbeat-'));
    dirs.push(stateDir);
    const store = new FileAuditStore(join(stateDir, 'audit'));
    const first = await startTestControlPlane({ stateDir, controlPlane: { digestIntervalMs: 200 } });
    await first.close();
    const dead = await writeDigest(
      { store, secrets: new FileSecrets(join(stateDir, 'secrets')), logger: silentLogger, now: () => new Date(), digests: { settleMs: 0, wholeSeconds: false, intervalSeconds: 1 } },
    );
    expect(dead?.digest.heartbeat).toEqual({ intervalSeconds: 1 });

    // Act: restart with a timer that would not fire during the test.
    const second = await startTestControlPlane({ stateDir, controlPlane: { digestIntervalMs: 600_000 } });
    try {
      // Assess: the successor is there once the restart is up, chained onto the dead writer's head.
      const after = await digestsIn(store);
      const successor = after.find((d) => d.previous?.key === dead!.key);
      expect(successor?.heartbeat).toEqual({ intervalSeconds: 600 });
    } finally {
      await second.close();
    }
  }, 40_000);
});
