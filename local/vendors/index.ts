import { join } from 'node:path';
import { ensurePrivateDir } from '../state-dir';
import { iamVendor } from './iam';
import { paymentsVendor } from './payments';
import { procurementVendor } from './procurement';
import { effectSequence, startSandboxVendor, type RunningSandboxVendor, type SandboxVendorSpec, type LiveEffect, type VendorEffect, type VendorFaults, type VendorStats } from './sandbox-server';
import { travelVendor } from './travel';

export type { CommitThenDropFault, FailNextFault, LiveEffect, OversizeFault, TimeoutFault, VendorEffect, VendorFaults, VendorStats } from './sandbox-server';
export { VendorStateCorruptError } from './state-file';
export { DEFAULT_HOLD_TTL_MS } from './travel';

/** The connectors that have a sandbox vendor. */
export const SANDBOX_CONNECTORS = ['travel', 'payments', 'procurement', 'iam'] as const;
export type SandboxConnector = (typeof SANDBOX_CONNECTORS)[number];

/** Options of `startSandboxVendors`. */
export interface StartSandboxVendorsOptions {
  /** API key each vendor accepts (the connector's vendor credential). Vendors without a key are not started. */
  credentials: Partial<Record<SandboxConnector, string>> & Record<string, string>;
  /** Faults per vendor at start-up; change them later with `admin.setFaults`. */
  faults?: Partial<Record<SandboxConnector, VendorFaults>>;
  /** Shared clock (epoch ms), so tests can expire holds and role assignments without waiting. */
  now?: () => number;
  /** Seat hold lifetime of the travel vendor; 15 minutes unless given. */
  holdTtlMs?: number;
  /** Admin token for `/_admin/*` on every vendor; random unless given. */
  adminToken?: string;
  /**
   * Folder (created 0700) where each vendor keeps its state as `<name>.json` (0600), so a
   * restart — even after SIGKILL — finds the holds, payments, orders and grants it answered
   * for. In memory only when omitted. Faults are never kept.
   */
  stateDir?: string;
}

/** In-process control of all running sandbox vendors. */
export interface SandboxVendorsAdmin {
  setFaults(connector: string, faults: VendorFaults): void;
  /** Adds faults to a vendor's current set (lists appended, scalar settings replaced). */
  addFaults(connector: string, faults: VendorFaults): void;
  /** A vendor's side-effect log, in the order performed (numbered across all the vendors). */
  effects(connector: string): VendorEffect[];
  /** The objects a vendor's side effects left in effect now (holds, bookings, authorizations, orders, roles). */
  live(connector: string): LiveEffect[];
  /** Makes a vendor forget one object by id (a lost booking or refund): false when it has none. */
  lose(connector: string, id: string): boolean;
  /** Resets one vendor (state, stats, idempotency records, faults), or all when none is named. */
  reset(connector?: string): void;
  stats(connector: string): VendorStats;
}

export interface SandboxVendors {
  /** Base URL per connector, e.g. `{ travel: 'http://127.0.0.1:49152' }`. */
  baseUrls: Record<string, string>;
  /** Admin token per connector, for the HTTP admin endpoint (`x-admin-token`). */
  adminTokens: Record<string, string>;
  admin: SandboxVendorsAdmin;
  close(): Promise<void>;
}

function specFor(connector: SandboxConnector, options: StartSandboxVendorsOptions): SandboxVendorSpec<unknown> {
  switch (connector) {
    case 'travel':
      return travelVendor(options.holdTtlMs === undefined ? {} : { holdTtlMs: options.holdTtlMs }) as SandboxVendorSpec<unknown>;
    case 'payments':
      return paymentsVendor() as SandboxVendorSpec<unknown>;
    case 'procurement':
      return procurementVendor() as SandboxVendorSpec<unknown>;
    case 'iam':
      return iamVendor() as SandboxVendorSpec<unknown>;
  }
}

/**
 * Starts the sandbox vendors (travel, payments, procurement, IAM) on 127.0.0.1 with ephemeral
 * ports. Used by `npm start`, the integration tests and the demo.
 */
export async function startSandboxVendors(options: StartSandboxVendorsOptions): Promise<SandboxVendors> {
  const running = new Map<string, RunningSandboxVendor>();
  // One numbering for every vendor, so a plan's effects (and its compensations) can be ordered across vendors.
  const sequence = effectSequence();
  try {
    if (options.stateDir) await ensurePrivateDir(options.stateDir);
    for (const connector of SANDBOX_CONNECTORS) {
      const apiKey = options.credentials[connector];
      if (!apiKey) continue;
      const vendor = await startSandboxVendor(specFor(connector, options), {
        apiKey,
        ...(options.adminToken ? { adminToken: options.adminToken } : {}),
        ...(options.faults?.[connector] ? { faults: options.faults[connector] } : {}),
        ...(options.now ? { now: options.now } : {}),
        ...(options.stateDir ? { stateFile: join(options.stateDir, `${connector}.json`) } : {}),
        sequence,
      });
      running.set(connector, vendor);
    }
  } catch (err) {
    await Promise.all([...running.values()].map((v) => v.close()));
    throw err;
  }

  const vendor = (connector: string): RunningSandboxVendor => {
    const v = running.get(connector);
    if (!v) throw new Error(`No sandbox vendor running for ${connector}`);
    return v;
  };
  return {
    baseUrls: Object.fromEntries([...running].map(([name, v]) => [name, v.baseUrl])),
    adminTokens: Object.fromEntries([...running].map(([name, v]) => [name, v.adminToken])),
    admin: {
      setFaults: (connector, faults) => vendor(connector).admin.setFaults(faults),
      addFaults: (connector, faults) => vendor(connector).admin.addFaults(faults),
      effects: (connector) => vendor(connector).admin.effects(),
      live: (connector) => vendor(connector).admin.live(),
      lose: (connector, id) => vendor(connector).admin.lose(id),
      reset: (connector) => {
        if (connector) vendor(connector).admin.reset();
        else for (const v of running.values()) v.admin.reset();
      },
      stats: (connector) => vendor(connector).admin.stats(),
    },
    async close() {
      await Promise.all([...running.values()].map((v) => v.close()));
      running.clear();
    },
  };
}
