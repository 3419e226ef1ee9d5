import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { readLimitsFile } from '../../lambdas/limits/config';
import { startControlPlane } from '../../local/control-plane';
import type { SandboxVendors } from '../../local/vendors/index';

/**
 * The storm's control plane: `tsx control-plane-main.ts <AIRLOCK_HOME> <vendors-info-file>`,
 * the local runtime of `npm start` (same handlers, ASL, policies, dynalite on disk) against the
 * vendors' own process. Prints `READY <url>`; SIGTERM stops it cleanly, SIGKILL is the point.
 */
const [home, infoFile] = process.argv.slice(2);
if (!home || !infoFile) {
  process.stderr.write('usage: control-plane-main.ts <home> <vendors-info-file>\n');
  process.exit(2);
}
const info = z
  .object({ baseUrls: z.record(z.string(), z.string()), adminTokens: z.record(z.string(), z.string()) })
  .parse(JSON.parse(await readFile(infoFile, 'utf8')));
const notHere = () => {
  throw new Error('the storm controls its vendors over their admin endpoint');
};
const externalVendors: SandboxVendors = {
  baseUrls: info.baseUrls,
  adminTokens: info.adminTokens,
  admin: { setFaults: notHere, addFaults: notHere, effects: notHere, live: notHere, lose: notHere, reset: notHere, stats: notHere },
  close: async () => undefined,
};
const num = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
const runtime = await startControlPlane({
  stateDir: home,
  port: 0,
  controlPlane: {
    externalVendors,
    retryIntervalMs: num('CHAOS_RETRY_INTERVAL_MS', 50),
    // A paused saga waits 6 × this for the resume (ExecuteStep's pause retrier), longer than
    // the storm's pauses last, so a lifted pause resumes the saga rather than compensating it.
    pauseRetryIntervalMs: num('CHAOS_PAUSE_RETRY_INTERVAL_MS', 4_000),
    vendorTimeoutMs: num('CHAOS_VENDOR_TIMEOUT_MS', 1_500),
    approvalTimeoutSeconds: num('CHAOS_APPROVAL_TIMEOUT_SECONDS', 20),
    // The reconcile schedule resumes what a dead run left unfinished every 15 minutes (in AWS,
    // after 10 minutes still): the storm's bound is shorter, so its own timer does it often.
    // Runs still live in this process are never resumed; 30 s still outlasts any quiet spell
    // of a healthy run (a pause waited out, a vendor timeout) that a restart did not end.
    // Each sweep lists the actions of the last days: every 20 s keeps it cheap at 10,000.
    resumeIntervalMs: num('CHAOS_RESUME_INTERVAL_MS', 20_000),
    resumeStalledAfterMs: num('CHAOS_RESUME_STALLED_AFTER_MS', 30_000),
    // The storm's own limits file (scripts/chaos/limits.ts): tight enough to be hit.
    ...(process.env.CHAOS_LIMITS_FILE ? { limits: readLimitsFile(process.env.CHAOS_LIMITS_FILE) } : {}),
  },
});
process.stdout.write(`READY ${runtime.url}\n`);
process.once('SIGTERM', () => {
  void runtime.close().then(() => process.exit(0));
});
