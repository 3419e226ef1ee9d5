/**
 * Spend-cap counters and per-step reservations on the ledger. One counter item per cap and
 * period (a principal's day, a department's month, the tenant's month) holds `used`
 * (= reserved + committed), `reserved` and `committed`, in minor units of the base currency.
 * A reservation is keyed by action and step, so a retried reserve or settle never counts twice.
 */

/** One cap-period counter a reservation goes against. */
export interface CapCharge {
  /** The counter's id (cap, period, subject): `principal-daily#2026-12-02#alice`. */
  key: string;
  /** The cap's id in the limits file, named when it refuses. */
  capId: string;
  /** The cap, minor units of the base currency: `used + amount` may never pass it. */
  limit: number;
  /** Epoch seconds after which the counter may be dropped (the period's end plus a margin). */
  expiresAt: number;
}

/** A counter's figures, minor units of the base currency (zeros for a counter never written). */
export interface CapUsage {
  used: number;
  reserved: number;
  committed: number;
}

export interface ReservationRequest {
  actionId: string;
  stepId: string;
  connector: string;
  /** Minor units of the base currency; > 0. */
  amount: number;
  /** Every applicable counter: either each admits the amount or none is charged. */
  caps: CapCharge[];
}

export type ReserveResult =
  /** Charged now, or (`replayed`) charged by an earlier attempt of the same step. */
  | { outcome: 'reserved' | 'replayed' }
  /** Not charged anywhere: this cap (the first that could not admit it) is full. */
  | { outcome: 'refused'; capId: string };

export type ReservationState = 'held' | 'final' | 'released';

/** What a step holds against its caps. */
export interface Reservation {
  actionId: string;
  stepId: string;
  connector: string;
  amount: number;
  caps: { key: string; capId: string }[];
  state: ReservationState;
}

export interface SpendCapStore {
  /** The figures of each counter asked for (by key); absent counters read as zeros. */
  usage(keys: readonly string[]): Promise<Map<string, CapUsage>>;
  /** Reserves a step's amount against all its caps at once, or against none. */
  reserve(request: ReservationRequest, now: Date): Promise<ReserveResult>;
  /**
   * Moves a held reservation to `final` (completed spend: reserved → committed) or `released`
   * (undone or never spent: reserved and used go back down). False when it was not held
   * (already settled, or never made): settling twice changes nothing. `known`: the reservation
   * as just listed, saving a read (a stale copy only makes the conditional flip fail).
   */
  settle(actionId: string, stepId: string, to: Exclude<ReservationState, 'held'>, now: Date, known?: Reservation): Promise<boolean>;
  /** Every reservation an action made. */
  listReservations(actionId: string): Promise<Reservation[]>;
}
