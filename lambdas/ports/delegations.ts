import type { DelegationBudget, DelegationRules } from '../delegations/model';

/**
 * Delegations on the ledger: a principal's consent that one agent may act for them within a
 * scope, a budget and an expiry. Single-item conditional writes only: a delegation is created
 * once (its id is new) and revoked once (only while active).
 */

/** A delegation as stored. Never deleted: the audit trail and receipts name it. */
export interface Delegation {
  /** `dlg_` + ULID. */
  id: string;
  /** The verified `sub` of the principal who granted it. */
  principal: string;
  /** The agent it is granted to (the verified agent claim: act.sub, azp or client_id). */
  agent: string;
  /** Full tool names it covers (`travel.book_flight`). */
  tools: string[];
  /** Connectors whose every tool it covers (`travel`). */
  connectors: string[];
  budget: DelegationBudget | null;
  rules: DelegationRules;
  /** What the principal said it is for (kept in the consent receipt). */
  purpose: string | null;
  createdAt: string;
  expiresAt: string;
  /** `expired` once the expiry sweep has ended it (before that, an active one past `expiresAt` is refused all the same). */
  status: 'active' | 'revoked' | 'expired';
  revokedAt?: string;
  revokedBy?: string;
  revokeReason?: string;
  /** The policy set and limits file in force when it was granted (the consent receipt names both). */
  policySetVersion: string;
  limitsVersion: string;
  /** Where its consent receipt is in the audit vault. */
  consentReceiptKey: string;
  /** Where its revocation receipt is, once revoked. */
  revocationReceiptKey?: string;
  /** When the expiry sweep that ended it ran (the winner of the active→expired write). */
  sweptAt?: string;
  /** Where its expiry receipt is, once the sweep has ended it. */
  expiryReceiptKey?: string;
}

/** A delegation the expiry sweep has yet to end: its principal, id and expiry. */
export interface DueExpiry {
  principal: string;
  id: string;
  expiresAt: string;
}

/** An entry of a principal's delegation audit trail (grants, revocations, refusals). */
export interface DelegationAuditEvent {
  type: 'delegation.created' | 'delegation.revoked' | 'delegation.expired' | 'delegation.refused';
  at: string;
  /** The verified `sub` of whoever acted (or tried to). */
  actor: string;
  data: Record<string, unknown>;
}

export interface DelegationStore {
  /** Stores a new delegation (conditional on its id being new). */
  createDelegation(delegation: Delegation): Promise<void>;
  /** The principal's delegation `id`; undefined when that principal has none by this id. */
  getDelegation(principal: string, id: string): Promise<Delegation | undefined>;
  /** Every delegation the principal granted (active and revoked), newest first. */
  listDelegations(principal: string): Promise<Delegation[]>;
  /**
   * Marks an active delegation revoked; undefined when it is not active (revoked before, or
   * absent). Conditional on its status, so two revocations have one winner.
   */
  revokeDelegation(principal: string, id: string, patch: { revokedAt: string; revokedBy: string; revokeReason: string; revocationReceiptKey: string }): Promise<Delegation | undefined>;
  /**
   * Marks an active delegation expired; undefined when it is not active. Conditional on its
   * status, so of concurrent sweepers exactly one ends it (and names the receipt's fields).
   */
  expireDelegation(principal: string, id: string, patch: { sweptAt: string; expiryReceiptKey: string }): Promise<Delegation | undefined>;
  /**
   * Delegations whose expiry is at or before `now` and that the sweep has not yet let go of,
   * oldest expiry first, at most `limit` (every principal's: the sweep is the deployment's).
   */
  listDueExpiries(now: Date, limit: number): Promise<DueExpiry[]>;
  /** Lets go of a due expiry once its delegation is ended (or revoked, or gone); idempotent. */
  clearDueExpiry(entry: DueExpiry): Promise<void>;
  /** Appends to the principal's delegation audit trail. */
  recordDelegationEvent(principal: string, event: DelegationAuditEvent): Promise<void>;
  listDelegationEvents(principal: string): Promise<DelegationAuditEvent[]>;
}
