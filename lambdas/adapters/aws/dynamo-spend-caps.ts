import { randomUUID } from 'node:crypto';
import {
  type AttributeValue,
  BatchGetItemCommand,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type DynamoDBClient,
  type TransactWriteItem,
  type Update,
} from '@aws-sdk/client-dynamodb';
import type { CapCharge, CapUsage, Reservation, ReservationRequest, ReservationState, ReserveResult, SpendCapStore } from '../../ports/spend-caps';
import { LedgerThrottledError } from '../../ports/ledger';
import { conditionalWrite, guard, isConditionFailure, N, queryAll, S, type Item } from './dynamo-support';

/**
 * Spend-cap counters and reservations on the ledger table (see ledger.md).
 *
 * A counter (`SPENDCAP#<cap>#<period>#<subject>`) keeps `used` = `reserved` + `committed`.
 * DynamoDB conditions cannot add, so "reserved + committed + amount <= cap" is written as
 * `used <= :room` with `:room = cap - amount`, on the same item the `ADD` changes: no
 * read-modify-write, so no two writers can both take the last room.
 *
 * A reservation (`RESERVE#<actionId>` / `<stepId>`) is created in the same TransactWriteItems
 * as the counter updates, conditional on not existing: every cap admits the amount and the
 * reservation is recorded, or nothing happens; a retried reserve finds its reservation.
 * Settling flips the reservation's state conditionally in the same transaction as the
 * counters, so a retried settle changes nothing.
 *
 * dynalite (the local runtime's default) has no transactions. There the same writes run one
 * by one in a fixed order: the reservation as `pending`, each counter conditionally, then
 * `held`; a refused counter rolls back the ones before it. Each counter still never passes
 * its cap, but a crash between writes can strand a hold (it over-counts: fails closed), and
 * while a rollback is in flight a competing step may be refused by a cap it would have fit.
 */

/** A reservation as stored: `pending` while the stepwise path is charging its counters one by one. */
type StoredReservation = Omit<Reservation, 'state'> & { state: ReservationState | 'pending' | 'aborted'; applied: number; nonce?: string };

const counterKey = (key: string) => ({ pk: S(`SPENDCAP#${key}`), sk: S('SPENDCAP') });
const reservationKey = (actionId: string, stepId: string) => ({ pk: S(`RESERVE#${actionId}`), sk: S(stepId) });

/** How often the stepwise path starts afresh after losing a race to another attempt at the same step. */
const STEPWISE_ROUNDS = 20;

/** How often a transaction that lost to a concurrent one on the same counter is tried again. */
const CONFLICT_ATTEMPTS = 40;

function toReservation(item: Item): Reservation {
  return {
    actionId: (item.pk?.S ?? '').slice('RESERVE#'.length),
    stepId: item.sk?.S ?? '',
    connector: item.connector?.S ?? '',
    amount: Number(item.amount?.N ?? 0),
    caps: JSON.parse(item.caps?.S ?? '[]') as { key: string; capId: string }[],
    state: (item.state?.S ?? 'held') as ReservationState,
  };
}

/** The counter update that charges one cap, if it has room. */
function chargeUpdate(table: string, charge: CapCharge, amount: number): Update {
  return {
    TableName: table,
    Key: counterKey(charge.key),
    // `committed` is added as 0 so every counter has all three figures from its first write.
    UpdateExpression: 'ADD used :amt, reserved :amt, committed :zero SET capId = :cap, capLimit = :limit, expiresAt = :exp',
    ConditionExpression: 'attribute_not_exists(used) OR used <= :room',
    ExpressionAttributeValues: {
      ':amt': N(amount),
      ':zero': N(0),
      ':room': N(charge.limit - amount),
      ':cap': S(charge.capId),
      ':limit': N(charge.limit),
      ':exp': N(charge.expiresAt),
    },
  };
}

/** What settling does to a counter: final moves reserved to committed, release gives it back. */
function settleUpdate(table: string, key: string, amount: number, to: 'final' | 'released'): Update {
  return {
    TableName: table,
    Key: counterKey(key),
    UpdateExpression: to === 'final' ? 'ADD reserved :neg, committed :amt' : 'ADD reserved :neg, used :neg',
    ConditionExpression: 'attribute_exists(used)',
    // DynamoDB refuses a value the expression does not use.
    ExpressionAttributeValues: to === 'final' ? { ':amt': N(amount), ':neg': N(-amount) } : { ':neg': N(-amount) },
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The reasons DynamoDB gives for a cancelled transaction, one per item (`None` for those that were fine). */
function cancellationCodes(error: unknown): string[] | undefined {
  if (!(error instanceof Error) || error.name !== 'TransactionCanceledException') return undefined;
  const reasons = (error as Error & { CancellationReasons?: { Code?: string }[] }).CancellationReasons;
  return reasons?.map((r) => r.Code ?? 'None') ?? [];
}

/**
 * A transaction that failed without a verdict: DynamoDB's InternalServerError (DynamoDB Local
 * also answers it when a transaction waited too long for an item lock under contention). Trying
 * again is safe: if the first attempt did apply, the reservation's own condition makes the
 * retry a replay, and a settle's state condition makes it a no-op.
 */
function transientFailure(error: unknown): boolean {
  return error instanceof Error && error.name === 'InternalServerError';
}

export class DynamoSpendCapStore implements SpendCapStore {
  private readonly client: DynamoDBClient;
  private readonly table: string;
  /** Whether the endpoint has TransactWriteItems; `undefined` until the first attempt tells. */
  private transactions: boolean | undefined;

  constructor(options: { client: DynamoDBClient; tableName: string; transactions?: boolean }) {
    this.client = options.client;
    this.table = options.tableName;
    this.transactions = options.transactions;
  }

  async usage(keys: readonly string[]): Promise<Map<string, CapUsage>> {
    const out = new Map<string, CapUsage>();
    const unique = [...new Set(keys)];
    for (let i = 0; i < unique.length; i += 100) {
      let request: Record<string, { Keys: Item[]; ConsistentRead: boolean }> | undefined = {
        [this.table]: { Keys: unique.slice(i, i + 100).map(counterKey), ConsistentRead: true },
      };
      for (let attempt = 0; request && Object.keys(request).length > 0; attempt++) {
        if (attempt > 0) await sleep(Math.min(200, 10 * 2 ** attempt));
        if (attempt > 8) throw new LedgerThrottledError();
        const res = await guard(() => this.client.send(new BatchGetItemCommand({ RequestItems: request })));
        for (const item of res.Responses?.[this.table] ?? []) {
          out.set((item.pk?.S ?? '').slice('SPENDCAP#'.length), {
            used: Number(item.used?.N ?? 0),
            reserved: Number(item.reserved?.N ?? 0),
            committed: Number(item.committed?.N ?? 0),
          });
        }
        request = res.UnprocessedKeys as typeof request;
      }
    }
    return out;
  }

  async reserve(request: ReservationRequest, now: Date): Promise<ReserveResult> {
    if (!(Number.isSafeInteger(request.amount) && request.amount > 0)) throw new RangeError('A reservation is a positive whole number of minor units');
    // More than a cap can ever admit: refused without a write (the condition below would
    // otherwise admit it on a counter's first write).
    const tooBig = request.caps.find((c) => request.amount > c.limit);
    if (tooBig) {
      // A retry of a step that was admitted under an earlier, larger cap is still a replay.
      return (await this.getReservation(request.actionId, request.stepId)) ? { outcome: 'replayed' } : { outcome: 'refused', capId: tooBig.capId };
    }
    if (this.transactions !== false) {
      const result = await this.reserveInTransaction(request, now);
      if (result !== 'unsupported') return result;
      this.transactions = false;
    }
    return this.reserveStepwise(request, now);
  }

  private reservationItem(request: ReservationRequest, state: ReservationState | 'pending', now: Date): Item {
    return {
      ...reservationKey(request.actionId, request.stepId),
      connector: S(request.connector),
      amount: N(request.amount),
      caps: S(JSON.stringify(request.caps.map((c) => ({ key: c.key, capId: c.capId })))),
      state: S(state),
      reservedAt: S(now.toISOString()),
      // Kept as long as the longest counter it charged.
      expiresAt: N(Math.max(...request.caps.map((c) => c.expiresAt))),
    };
  }

  private async reserveInTransaction(request: ReservationRequest, now: Date): Promise<ReserveResult | 'unsupported'> {
    const items: TransactWriteItem[] = [
      {
        Put: {
          TableName: this.table,
          Item: this.reservationItem(request, 'held', now),
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      ...request.caps.map((c) => ({ Update: chargeUpdate(this.table, c, request.amount) })),
    ];
    for (let attempt = 0; ; attempt++) {
      try {
        await guard(() => this.client.send(new TransactWriteItemsCommand({ TransactItems: items })));
        this.transactions = true;
        return { outcome: 'reserved' };
      } catch (error) {
        if (error instanceof Error && error.name === 'UnknownOperationException') return 'unsupported';
        const codes = transientFailure(error) ? [] : cancellationCodes(error);
        if (!codes) throw error;
        if (codes[0] === 'ConditionalCheckFailed') return { outcome: 'replayed' };
        const full = codes.findIndex((code, i) => i > 0 && code === 'ConditionalCheckFailed');
        if (full > 0) return { outcome: 'refused', capId: request.caps[full - 1]!.capId };
        // Another transaction held one of these counters at the same moment: try again.
        if (attempt + 1 >= CONFLICT_ATTEMPTS) throw new LedgerThrottledError({ cause: error });
        await sleep(Math.random() * Math.min(100, 5 * 2 ** Math.min(attempt, 5)));
      }
    }
  }

  /**
   * The stepwise path (no transactions). Attempts at the same step may run side by side (a
   * retried IssueGrant while the first is still running, two runs of one action) or resume one
   * a crash cut off, so every write that moves a reservation on is conditional on its state:
   *
   * - progress (`applied`) and the final `held` are written only while it is `pending`;
   * - a refused attempt first marks it `aborted` (only from `pending`), then gives back the
   *   counters its progress says were charged, then deletes it. The mark is what keeps two
   *   attempts apart: one that finds it aborted, or loses a conditional write, never goes on
   *   charging counters that are being given back, and never gives back counters another
   *   attempt has built on. It starts afresh instead.
   *
   * What a lost attempt or a crash leaves charged stays charged: a counter may over-count (it
   * fails closed) but never holds less than its held reservations (test/spend/dynamo-spend-caps.test.ts).
   */
  private async reserveStepwise(request: ReservationRequest, now: Date): Promise<ReserveResult> {
    for (let round = 0; round < STEPWISE_ROUNDS; round++) {
      // Which reservation this is: one deleted and created again is another, and progress
      // written for the first must never land on the second.
      const nonce = randomUUID();
      const created = await conditionalWrite(
        this.client,
        new PutItemCommand({
          TableName: this.table,
          Item: { ...this.reservationItem(request, 'pending', now), applied: N(0), nonce: S(nonce) },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      const existing = created ? undefined : await this.getReservation(request.actionId, request.stepId);
      const instance = created ? nonce : existing?.nonce;
      // Deleted between the two: start afresh.
      if (!created && !existing) continue;
      if (existing?.state === 'aborted') {
        // A refused attempt is giving its counters back (or a crash stopped it doing so: what it
        // did not give back stays counted). Once it is gone, this one starts afresh.
        await this.deleteIn(request, 'aborted');
        continue;
      }
      if (existing && existing.state !== 'pending') return { outcome: 'replayed' };
      let applied = existing?.applied ?? 0;
      // Resuming a reservation a crash interrupted: its own list of counters, not the caller's.
      const caps = existing ? existing.caps.map((c) => request.caps.find((r) => r.key === c.key) ?? { ...c, limit: Number.MAX_SAFE_INTEGER, expiresAt: 0 }) : request.caps;
      let lost = false;
      for (; applied < caps.length; applied++) {
        const charged = await conditionalWrite(this.client, new UpdateItemCommand(chargeUpdate(this.table, caps[applied]!, request.amount)));
        if (!charged) {
          // Refused: mark it aborted first, then give back what its progress says was charged.
          if (await this.moveFrom(request, instance, 'SET #state = :aborted', { ':aborted': S('aborted') })) {
            for (let i = applied - 1; i >= 0; i--) {
              await guard(() => this.client.send(new UpdateItemCommand(settleUpdate(this.table, caps[i]!.key, request.amount, 'released'))));
            }
            // Nothing is charged any more: drop the reservation, so a later attempt starts afresh.
            await this.deleteIn(request, 'aborted');
            return { outcome: 'refused', capId: caps[applied]!.capId };
          }
          // Another attempt moved it on (held it, or is giving it back).
          lost = true;
          break;
        }
        // After the last counter, `held` below records the progress.
        if (applied + 1 === caps.length) continue;
        if (!(await this.moveFrom(request, instance, 'SET applied = :n', { ':n': N(applied + 1) }))) {
          lost = true;
          break;
        }
      }
      if (!lost && (await this.moveFrom(request, instance, 'SET #state = :held REMOVE applied, nonce', { ':held': S('held') }))) {
        return { outcome: existing ? 'replayed' : 'reserved' };
      }
      // Lost a race: held by the other attempt (a replay), or being given back (start afresh).
      const now2 = await this.getReservation(request.actionId, request.stepId);
      if (now2 && now2.state !== 'pending' && now2.state !== 'aborted') return { outcome: 'replayed' };
    }
    throw new LedgerThrottledError();
  }

  /**
   * Updates the reservation only while it is `pending` and the same one (`instance`, its nonce;
   * undefined for one written before nonces); false when it is not (moved on, gone, or another).
   */
  private moveFrom(request: ReservationRequest, instance: string | undefined, update: string, values: Record<string, AttributeValue>): Promise<boolean> {
    return conditionalWrite(
      this.client,
      new UpdateItemCommand({
        TableName: this.table,
        Key: reservationKey(request.actionId, request.stepId),
        UpdateExpression: update,
        ConditionExpression: instance === undefined ? '#state = :pending AND attribute_not_exists(nonce)' : '#state = :pending AND nonce = :nonce',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: { ':pending': S('pending'), ...(instance === undefined ? {} : { ':nonce': S(instance) }), ...values },
      }),
    );
  }

  /** Deletes the reservation if it is still in state `state`. */
  private async deleteIn(request: ReservationRequest, state: 'aborted'): Promise<void> {
    await conditionalWrite(
      this.client,
      new DeleteItemCommand({
        TableName: this.table,
        Key: reservationKey(request.actionId, request.stepId),
        ConditionExpression: '#state = :state',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: { ':state': S(state) },
      }),
    );
  }

  private async getReservation(actionId: string, stepId: string): Promise<StoredReservation | undefined> {
    const out = await guard(() =>
      this.client.send(new GetItemCommand({ TableName: this.table, Key: reservationKey(actionId, stepId), ConsistentRead: true })),
    );
    if (!out.Item) return undefined;
    return { ...toReservation(out.Item), state: (out.Item.state?.S ?? 'held') as StoredReservation['state'], applied: Number(out.Item.applied?.N ?? 0), ...(out.Item.nonce?.S ? { nonce: out.Item.nonce.S } : {}) };
  }

  async settle(actionId: string, stepId: string, to: 'final' | 'released', now: Date, known?: Reservation): Promise<boolean> {
    const found = known ?? (await this.getReservation(actionId, stepId));
    if (!found || found.state !== 'held') return false;
    const flip: Update = {
      TableName: this.table,
      Key: reservationKey(actionId, stepId),
      UpdateExpression: 'SET #state = :to, settledAt = :now',
      ConditionExpression: '#state = :held',
      ExpressionAttributeNames: { '#state': 'state' },
      ExpressionAttributeValues: { ':to': S(to), ':held': S('held'), ':now': S(now.toISOString()) },
    };
    if (this.transactions !== false) {
      for (let attempt = 0; ; attempt++) {
        try {
          await guard(() =>
            this.client.send(
              new TransactWriteItemsCommand({
                TransactItems: [{ Update: flip }, ...found.caps.map((c) => ({ Update: settleUpdate(this.table, c.key, found.amount, to) }))],
              }),
            ),
          );
          this.transactions = true;
          return true;
        } catch (error) {
          if (error instanceof Error && error.name === 'UnknownOperationException') {
            this.transactions = false;
            break;
          }
          const codes = transientFailure(error) ? [] : cancellationCodes(error);
          if (!codes) throw error;
          if (codes[0] === 'ConditionalCheckFailed') return false;
          if (attempt + 1 >= CONFLICT_ATTEMPTS) throw new LedgerThrottledError({ cause: error });
          await sleep(Math.random() * Math.min(100, 5 * 2 ** Math.min(attempt, 5)));
        }
      }
    }
    // Without transactions: whoever flips the state settles the counters.
    try {
      await guard(() => this.client.send(new UpdateItemCommand(flip)));
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
    // The flip is the guard; the counters are distinct items, each an atomic ADD: side by side.
    // A crash midway leaves some unsettled, as one by one it would leave a suffix.
    await Promise.all(found.caps.map((c) => guard(() => this.client.send(new UpdateItemCommand(settleUpdate(this.table, c.key, found.amount, to))))));
    return true;
  }

  async listReservations(actionId: string): Promise<Reservation[]> {
    const items = await queryAll(this.client, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': S(`RESERVE#${actionId}`) },
    });
    return items.map(toReservation).filter((r) => r.state === 'held' || r.state === 'final' || r.state === 'released');
  }
}
