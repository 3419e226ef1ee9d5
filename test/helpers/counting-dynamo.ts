import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/**
 * Counts the DynamoDB round trips a client makes (one per command sent, retries of the SDK
 * included as separate attempts are not: a command is one billed request here) and the
 * request units DynamoDB reports for them. The middleware asks for `ReturnConsumedCapacity:
 * TOTAL` on every command that takes it, which changes nothing but the response's extra
 * member, so the counts come from the engine (dynalite or DynamoDB Local), not from a guess
 * at item sizes. Used by the round-trip tests and by `npm run bench` / `bench:cost`.
 */

/** What one counter saw. */
export interface DynamoCounts {
  /** Commands sent, by name (`GetItemCommand`, …). */
  calls: Record<string, number>;
  /** Commands sent, by the item kind they address (the partition key's prefix: `ACTION`, `STEP`, `BREAKER`, …; `batch` for batch and transact calls). */
  byKind: Record<string, number>;
  /**
   * Commands sent, by the phase of the action that sent them: the innermost function on the
   * call's stack that the counter was told a phase of (see {@link countDynamo}); `other` when
   * none is on it, `timed` for every call on {@link TIMED_KINDS} (cached or leased: not a
   * phase's own cost).
   */
  byPhase: Record<string, number>;
  /** Read request units and write request units, as the engine reported them. */
  readUnits: number;
  writeUnits: number;
}

/** Commands whose input takes ReturnConsumedCapacity. */
const REPORTS_CAPACITY = new Set([
  'GetItemCommand',
  'PutItemCommand',
  'UpdateItemCommand',
  'DeleteItemCommand',
  'QueryCommand',
  'ScanCommand',
  'BatchGetItemCommand',
  'BatchWriteItemCommand',
  'TransactWriteItemsCommand',
  'TransactGetItemsCommand',
]);

const WRITES = new Set(['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'BatchWriteItemCommand', 'TransactWriteItemsCommand']);

interface Capacity {
  CapacityUnits?: number;
  ReadCapacityUnits?: number;
  WriteCapacityUnits?: number;
}

/** A counter attached to a client; `reset()` starts a new tally, `snapshot()` copies it. */
export interface DynamoCounter {
  snapshot(): DynamoCounts;
  reset(): void;
  /** Total commands sent since the last reset. */
  total(): number;
  /** Removes the middleware from the client. */
  detach(): void;
}

const empty = (): DynamoCounts => ({ calls: {}, byKind: {}, byPhase: {}, readUnits: 0, writeUnits: 0 });

/** The phase of the innermost function on `stack` that `phases` names (V8 keeps the awaiting callers on it). */
function phaseOf(stack: string, phases: Readonly<Record<string, string>>): string {
  for (const line of stack.split('\n')) {
    const name = /^\s*at (?:async )?([\w$.]+) \(/.exec(line)?.[1]?.split('.').pop();
    if (name && Object.hasOwn(phases, name)) return phases[name]!;
  }
  return 'other';
}

type Attr = { S?: string } | undefined;
/** The partition key's prefix (`ACTION#…` → `ACTION`) of the item a single-item command or query addresses. */
function kindOf(input: Record<string, unknown>): string {
  const key = (input.Key ?? input.Item) as { pk?: Attr } | undefined;
  const values = input.ExpressionAttributeValues as Record<string, Attr> | undefined;
  const pk = key?.pk?.S ?? values?.[':pk']?.S;
  return pk ? pk.split('#')[0]! : 'batch';
}

/**
 * Attaches a counting middleware to `client` (every adapter sharing the client is counted).
 * `phases`: function names (`issueGrant`, `settle`, …) and the phase each stands for, to
 * count calls by the part of the action that made them (`byPhase`).
 */
export function countDynamo(client: DynamoDBClient, options: { phases?: Readonly<Record<string, string>> } = {}): DynamoCounter {
  let counts = empty();
  const name = `airlock-counting-${Math.random().toString(36).slice(2)}`;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = String((context as { commandName?: string }).commandName ?? 'unknown');
      counts.calls[command] = (counts.calls[command] ?? 0) + 1;
      const input = args.input as Record<string, unknown>;
      const kind = kindOf(input);
      counts.byKind[kind] = (counts.byKind[kind] ?? 0) + 1;
      if (options.phases) {
        const phase = TIMED_KINDS.includes(kind) ? 'timed' : phaseOf(new Error().stack ?? '', options.phases);
        counts.byPhase[phase] = (counts.byPhase[phase] ?? 0) + 1;
      }
      const asked = REPORTS_CAPACITY.has(command) && input.ReturnConsumedCapacity === undefined;
      const out = await next(asked ? { ...args, input: { ...input, ReturnConsumedCapacity: 'TOTAL' } } : args);
      const output = out.output as { ConsumedCapacity?: Capacity | Capacity[] };
      const consumed = output.ConsumedCapacity;
      for (const c of Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) {
        const units = c.CapacityUnits ?? (c.ReadCapacityUnits ?? 0) + (c.WriteCapacityUnits ?? 0);
        if (WRITES.has(command)) counts.writeUnits += units;
        else counts.readUnits += units;
      }
      // Callers that did not ask for it never see it: the response is what they would get.
      if (asked) delete (output as Record<string, unknown>).ConsumedCapacity;
      return out;
    },
    { step: 'initialize', name },
  );
  return {
    snapshot: () => structuredClone(counts),
    reset: () => void (counts = empty()),
    total: () => Object.values(counts.calls).reduce((a, b) => a + b, 0),
    detach: () => void client.middlewareStack.remove(name),
  };
}

/** `after - before`, per command and per unit kind. */
export function diffCounts(after: DynamoCounts, before: DynamoCounts): DynamoCounts {
  const calls: Record<string, number> = {};
  for (const [k, v] of Object.entries(after.calls)) {
    const d = v - (before.calls[k] ?? 0);
    if (d !== 0) calls[k] = d;
  }
  const byKind: Record<string, number> = {};
  for (const [k, v] of Object.entries(after.byKind)) {
    const d = v - (before.byKind[k] ?? 0);
    if (d !== 0) byKind[k] = d;
  }
  const byPhase: Record<string, number> = {};
  for (const [k, v] of Object.entries(after.byPhase)) {
    const d = v - (before.byPhase[k] ?? 0);
    if (d !== 0) byPhase[k] = d;
  }
  return { calls, byKind, byPhase, readUnits: after.readUnits - before.readUnits, writeUnits: after.writeUnits - before.writeUnits };
}

/** Total commands in a tally. */
export const totalCalls = (counts: DynamoCounts) => Object.values(counts.calls).reduce((a, b) => a + b, 0);

/**
 * Item kinds whose reads are cached per function instance for a time (breaker states, 2 s)
 * or leased in blocks (rate-limit windows): how many land in a few sequential requests
 * depends on the clock, so the tests' ceilings leave them out (the bench counts everything).
 */
export const TIMED_KINDS: readonly string[] = ['BREAKER', 'RATE', 'HALT', 'HALTS'];

/** Total commands in a tally, less those addressing {@link TIMED_KINDS}. */
export const untimedCalls = (counts: DynamoCounts) =>
  totalCalls(counts) - TIMED_KINDS.reduce((sum, kind) => sum + (counts.byKind[kind] ?? 0), 0);
