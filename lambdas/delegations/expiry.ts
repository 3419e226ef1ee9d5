import { createHash } from 'node:crypto';
import type { AuditStore } from '../ports/audit-store';
import type { Delegation, DelegationStore } from '../ports/delegations';
import { expiryReceiptKey, type ExpiryReceipt } from '../receipts/consent';
import { RECEIPT_SCHEMA_VERSION } from '../receipts/schema';
import { canonicalJson } from '../shared/canonical-json';
import type { Logger } from '../shared/logger';
import { stopWorkInFlight, type RevocationDeps, type StoppedWork, type WorkEnd } from './delegations';

/**
 * The expiry sweep: when a delegation reaches its expiry, its agent's pending approvals for
 * that principal are cancelled (as a revocation does), its running sagas stop before their
 * next step (they also re-read the delegation themselves: saga-guard.ts), and an expiry
 * receipt goes to the vault. New actions need no sweep: intake refuses an expired delegation
 * by its clock.
 *
 * Exactly once, with any number of concurrent sweepers and crashes between any two writes:
 * the delegation item moves active→expired by one conditional write, whose winner stamps
 * `sweptAt` and the receipt key; the receipt is built only from that stored record, so every
 * sweeper (and every retry after a crash) writes the same bytes to the same key, which the
 * write-once vault keeps once. The queue entry is cleared last, so a sweep cut short is
 * finished by the next one.
 */

export interface ExpirySweepDeps extends Pick<RevocationDeps, 'actions' | 'cancel'> {
  store: Pick<DelegationStore, 'getDelegation' | 'expireDelegation' | 'listDueExpiries' | 'clearDueExpiry' | 'recordDelegationEvent'>;
  vault: AuditStore;
  now: () => Date;
  logger?: Logger;
}

/** How many due delegations one sweep takes on; the rest wait for the next run (a minute later in AWS). */
export const EXPIRY_SWEEP_BATCH = 100;

/** What one sweep did. */
export interface ExpirySweepReport {
  /** Delegations this run ended (or finished ending after an earlier run was cut short). */
  expired: string[];
  /** The work in flight it stopped, over every delegation it ended. */
  stopped: StoppedWork;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The expiry receipt of an expired delegation: only stored fields, so every sweeper builds the same bytes. */
export function expiryReceiptOf(delegation: Delegation): ExpiryReceipt | undefined {
  if (delegation.status !== 'expired' || !delegation.sweptAt) return undefined;
  return {
    schemaVersion: RECEIPT_SCHEMA_VERSION,
    kind: 'airlock.expiry',
    delegationId: delegation.id,
    principal: delegation.principal,
    agent: delegation.agent,
    expiredAt: delegation.expiresAt,
    sweptAt: delegation.sweptAt,
    consentReceiptKey: delegation.consentReceiptKey,
  };
}

function expiryEnd(delegation: Delegation): WorkEnd {
  return {
    by: 'airlock',
    at: delegation.sweptAt ?? delegation.expiresAt,
    reason: `delegation ${delegation.id} expired at ${delegation.expiresAt}`,
  };
}

/** Ends every delegation whose expiry has passed by `deps.now()` (at most `limit` per run). */
export async function sweepExpiredDelegations(deps: ExpirySweepDeps, options: { limit?: number } = {}): Promise<ExpirySweepReport> {
  const now = deps.now();
  const report: ExpirySweepReport = { expired: [], stopped: { cancelled: [], stopping: [] } };
  for (const due of await deps.store.listDueExpiries(now, options.limit ?? EXPIRY_SWEEP_BATCH)) {
    const current = await deps.store.getDelegation(due.principal, due.id);
    let delegation = current;
    if (current?.status === 'active') {
      // The queue is keyed by the expiry the delegation was stored with; never end one early.
      if (Date.parse(current.expiresAt) > now.getTime()) continue;
      const sweptAt = now.toISOString();
      const expired = await deps.store.expireDelegation(current.principal, current.id, { sweptAt, expiryReceiptKey: expiryReceiptKey(current.id, current.expiresAt) });
      // Lost the race to another sweeper (or a revocation): take the winner's record.
      delegation = expired ?? (await deps.store.getDelegation(current.principal, current.id));
      if (expired) {
        await deps.store.recordDelegationEvent(current.principal, {
          type: 'delegation.expired',
          at: sweptAt,
          actor: 'airlock',
          data: { delegationId: current.id, agent: current.agent, expiresAt: current.expiresAt, receiptKey: expired.expiryReceiptKey },
        });
        deps.logger?.info('delegation expired', { delegationId: current.id, principal: current.principal, agent: current.agent });
      }
    }
    const receipt = delegation && expiryReceiptOf(delegation);
    if (delegation && receipt && delegation.expiryReceiptKey) {
      // Repeated by every sweeper of this delegation: cancels are idempotent, and a sweep cut
      // short by a crash is finished here.
      const stopped = await stopWorkInFlight(deps, delegation, expiryEnd(delegation));
      report.stopped.cancelled.push(...stopped.cancelled);
      report.stopped.stopping.push(...stopped.stopping);
      const bytes = Buffer.from(`${canonicalJson(receipt)}\n`, 'utf8');
      await deps.vault.putIfAbsent(delegation.expiryReceiptKey, bytes, sha256Hex(bytes));
      report.expired.push(delegation.id);
    }
    // Ended, revoked before its expiry, or never stored (a grant cut short): nothing left to do.
    await deps.store.clearDueExpiry(due);
  }
  return report;
}
