import { createHash } from 'node:crypto';
import { monotonicFactory } from 'ulid';
import type { ActionStatus } from '../actions/action';
import type { AuditStore } from '../ports/audit-store';
import type { ActionStore } from '../ports/ledger';
import type { Metrics } from '../ports/metrics';
import type { SecretsPort } from '../ports/secrets';
import type { EventLog, StepIndex, StepKey, StepRecord, StepStore } from '../ports/steps';
import type { RegisteredTool, ToolRegistry } from '../ports/tools';
import { canonicalJson } from '../shared/canonical-json';
import { stepIdempotencyKey, utcDay } from '../shared/ids';
import type { Logger } from '../shared/logger';
import { invokeTool, vendorClientOf } from '../tools/invoke';
import type { ConnectorDefinition, ToolContext, VendorRecord } from '../tools/sdk';

/**
 * Reconciliation against vendors: for each recent commit step in the ledger, ask the vendor
 * what it holds under the step's client reference (its idempotency key) and compare; then
 * list what the vendor holds for our credential and flag what the ledger never saw. Every
 * finding is an audit event on its action (when it has one), a metric and a line in the
 * run's reconciliation receipt in the vault; `fix` runs the missing compensation where that
 * is safe (a known step of a finished action whose tool has a compensation).
 */

/** What a finding says. */
export const FindingKinds = ['orphan', 'compensated_live', 'duplicate', 'unknown'] as const;
export type FindingKind = (typeof FindingKinds)[number];

const DESCRIBE: Record<FindingKind, string> = {
  orphan: 'committed at the vendor, but the ledger never recorded the step as done, and nothing undid it',
  compensated_live: 'compensated in Airlock, but still in force at the vendor',
  duplicate: 'the vendor holds more than one record for one step',
  unknown: 'held at the vendor for our credential, but the ledger has no such step (made outside Airlock?)',
};

/** One divergence between the ledger and a vendor. */
export interface Finding {
  kind: FindingKind;
  connector: string;
  /** Full name of the forward tool (`travel.book_flight`). */
  tool: string;
  vendorId: string;
  /** The step it belongs to (none for `unknown`). */
  actionId?: string;
  stepId?: string;
  /** A human sentence, safe to print and to store (ids only, never personal data). */
  detail: string;
  /** What `fix` did: the compensation it ran and how that went; why not, when it did not. */
  fix?: { tool: string; outcome: 'compensated' | 'failed'; error?: string } | { skipped: string };
}

/** A reconciliation run's record, written once to the vault. */
export interface ReconciliationReport {
  type: 'airlock.reconciliation';
  runId: string;
  startedAt: string;
  finishedAt: string;
  /** UTC days of ledger steps examined. */
  days: string[];
  fix: boolean;
  /** Steps compared per connector, and vendor records listed per connector. */
  checked: Record<string, { steps: number; vendorRecords: number }>;
  /** Connectors the vendor could not be asked (the run goes on without them). */
  unreachable: { connector: string; error: string }[];
  findings: Finding[];
  /** Where the report is in the vault. */
  receiptKey: string;
}

export interface ReconcileDeps {
  tools: ToolRegistry;
  actions: Pick<ActionStore, 'getAction'>;
  steps: Pick<StepStore, 'getStep'>;
  index: StepIndex;
  events: Pick<EventLog, 'append'>;
  vault: AuditStore;
  secrets: SecretsPort;
  baseUrls: Record<string, string>;
  logger: Logger;
  metrics?: Metrics;
  now: () => Date;
  /** Per vendor call. */
  timeoutMs: number;
  fetch?: typeof fetch;
}

export interface ReconcileOptions {
  /** How many UTC days back (today included) to examine; 2 unless given. */
  days?: number;
  /** Run the missing compensations where safe. */
  fix?: boolean;
  /** Who ran it (an operator's `sub`, or `airlock` for the schedule). */
  actor?: string;
}

const nextUlid = monotonicFactory();
/** The statuses in which the saga will never touch the action's steps again. */
const SETTLED: readonly ActionStatus[] = ['completed', 'denied', 'rejected', 'expired', 'failed', 'compensated', 'cancelled'];
const UNDONE: readonly ActionStatus[] = ['compensated', 'cancelled', 'failed'];
const CLIENT_REFERENCE = /^(act_[0-9A-HJKMNP-TV-Z]{26})\.([A-Za-z0-9_-]{1,64})$/;
const DAY_MS = 86_400_000;

/** The vault key of a run's report. */
export function reconciliationKey(startedAt: string, runId: string): string {
  return `reconciliations/dt=${startedAt.slice(0, 10)}/${runId}.json`;
}

/** Runs one reconciliation and stores its report; returns the report. */
export async function reconcile(deps: ReconcileDeps, options: ReconcileOptions = {}): Promise<ReconciliationReport> {
  const started = deps.now();
  const runId = `rec_${nextUlid(started.getTime())}`;
  const actor = options.actor ?? 'airlock';
  const fix = options.fix ?? false;
  const dayCount = Math.min(Math.max(Math.trunc(options.days ?? 2), 1), 31);
  const days = Array.from({ length: dayCount }, (_, i) => utcDay(new Date(started.getTime() - i * DAY_MS))).reverse();
  const log = deps.logger.child({ runId });
  const checked: ReconciliationReport['checked'] = {};
  const unreachable: ReconciliationReport['unreachable'] = [];
  const findings: Finding[] = [];
  const runtime = { tools: deps.tools, secrets: deps.secrets, baseUrls: deps.baseUrls, logger: log, timeoutMs: deps.timeoutMs, ...(deps.fetch ? { fetch: deps.fetch } : {}) };
  const ctx = (idempotencyKey: string): ToolContext => ({ idempotencyKey, grant: undefined, logger: log, deadline: deps.now().getTime() + deps.timeoutMs, dryRun: false });

  const clients = new Map<string, unknown>();
  const clientOf = async (connector: ConnectorDefinition<any>): Promise<unknown> => {
    if (!clients.has(connector.name)) clients.set(connector.name, await vendorClientOf(connector, runtime));
    return clients.get(connector.name);
  };
  const seenReferences = new Set<string>();
  const down = new Set<string>();
  const markDown = (connector: string, error: unknown) => {
    if (down.has(connector)) return;
    down.add(connector);
    unreachable.push({ connector, error: error instanceof Error ? error.name : 'UnknownError' });
    log.warn('reconcile: vendor not reachable', { connector, error: error instanceof Error ? error.name : 'unknown' });
  };
  const tally = (connector: string) => (checked[connector] ??= { steps: 0, vendorRecords: 0 });

  // 1. The ledger's recent commit steps, each asked of its vendor by client reference.
  const keys: StepKey[] = [];
  for (const day of days) keys.push(...(await deps.index.listForwardSteps(day)));
  for (const key of keys) {
    const step = await deps.steps.getStep(key);
    if (!step || step.dryRun) continue;
    const entry = deps.tools.find(step.tool);
    const op = entry?.connector.reconcile;
    if (!entry || !op || entry.tool.tier !== 'commit' || !op.tools.includes(entry.tool.name) || down.has(entry.connector.name)) continue;
    seenReferences.add(step.idempotencyKey);
    let records: VendorRecord[];
    try {
      const client = await clientOf(entry.connector);
      records = await op.lookup(client, { tool: entry.tool.name, clientReference: step.idempotencyKey }, ctx(step.idempotencyKey));
    } catch (error) {
      markDown(entry.connector.name, error);
      continue;
    }
    tally(entry.connector.name).steps += 1;
    findings.push(...(await compareStep(deps, entry, step, records)));
  }

  // 2. What each vendor holds for our credential that no recent step accounts for.
  for (const connector of new Set(deps.tools.all().map((t) => t.connector))) {
    const op = connector.reconcile;
    if (!op?.recent || down.has(connector.name)) continue;
    let records: VendorRecord[];
    try {
      records = await op.recent(await clientOf(connector), ctx(`${runId}.recent`));
    } catch (error) {
      markDown(connector.name, error);
      continue;
    }
    tally(connector.name).vendorRecords += records.length;
    for (const record of records) {
      if (!record.live || (record.clientReference !== null && seenReferences.has(record.clientReference))) continue;
      const entry = deps.tools.find(`${connector.name}.${record.tool}`);
      if (!entry) continue;
      const ref = record.clientReference === null ? null : CLIENT_REFERENCE.exec(record.clientReference);
      if (ref) {
        // A step older than the window: compare it like the others rather than call it unknown.
        const step = await deps.steps.getStep({ actionId: ref[1]!, stepId: ref[2]!, kind: 'forward' });
        if (step && step.tool === entry.fullName) {
          seenReferences.add(step.idempotencyKey);
          findings.push(...(await compareStep(deps, entry, step, [record])));
          continue;
        }
      }
      findings.push({
        kind: 'unknown',
        connector: connector.name,
        tool: entry.fullName,
        vendorId: record.id,
        detail: `${entry.fullName} ${record.id}: ${DESCRIBE.unknown}`,
      });
    }
  }

  if (fix) {
    for (const finding of findings) finding.fix = await fixFinding(deps, runtime, finding, runId);
  }

  for (const finding of findings) {
    deps.metrics?.count('ReconcileFinding', { kind: finding.kind, connector: finding.connector });
    if (finding.fix && 'outcome' in finding.fix) deps.metrics?.count('ReconcileFixed', { connector: finding.connector, outcome: finding.fix.outcome });
    log.warn('ALARM reconcile finding', { kind: finding.kind, connector: finding.connector, tool: finding.tool, vendorId: finding.vendorId, actionId: finding.actionId });
    if (finding.actionId) {
      await deps.events.append(finding.actionId, {
        type: 'reconcile.finding',
        actor,
        data: { runId, kind: finding.kind, tool: finding.tool, vendorId: finding.vendorId, stepId: finding.stepId, ...(finding.fix ? { fix: finding.fix } : {}) },
      });
    }
  }
  deps.metrics?.count('ReconcileRun', { outcome: findings.length > 0 ? 'findings' : unreachable.length > 0 ? 'partial' : 'clean' });

  const startedAt = started.toISOString();
  const receiptKey = reconciliationKey(startedAt, runId);
  const report: ReconciliationReport = {
    type: 'airlock.reconciliation',
    runId,
    startedAt,
    finishedAt: deps.now().toISOString(),
    days,
    fix,
    checked,
    unreachable,
    findings,
    receiptKey,
  };
  const body = Buffer.from(`${canonicalJson({ ...report, actor })}\n`, 'utf8');
  await deps.vault.putIfAbsent(receiptKey, body, createHash('sha256').update(body).digest('hex'));
  log.info('reconcile run', { findings: findings.length, unreachable: unreachable.length, receiptKey });
  return report;
}

/** Compares one ledger step with what its vendor holds under its client reference. */
async function compareStep(deps: ReconcileDeps, entry: RegisteredTool, step: StepRecord, records: VendorRecord[]): Promise<Finding[]> {
  const out: Finding[] = [];
  const base = { connector: entry.connector.name, tool: entry.fullName, actionId: step.actionId, stepId: step.stepId };
  const live = records.filter((r) => r.live);
  const recordedId = idOf(step.output);
  if (records.length > 1) {
    // The one the ledger recorded stays; the others were made by nothing Airlock knows of.
    const keep = records.find((r) => r.id === recordedId) ?? records[0]!;
    for (const extra of records) {
      if (extra === keep || !extra.live) continue;
      out.push({ ...base, kind: 'duplicate', vendorId: extra.id, detail: `${entry.fullName} ${extra.id} for step ${step.stepId} of ${step.actionId}: ${DESCRIBE.duplicate}` });
    }
  }
  const primary = records.find((r) => r.id === recordedId) ?? records[0];
  if (!primary?.live || live.length === 0) return out;
  const action = await deps.actions.getAction(step.actionId);
  const compensation = await deps.steps.getStep({ actionId: step.actionId, stepId: step.stepId, kind: 'compensate' });
  if (compensation?.status === 'complete') {
    out.push({ ...base, kind: 'compensated_live', vendorId: primary.id, detail: `${entry.fullName} ${primary.id} for step ${step.stepId} of ${step.actionId}: ${DESCRIBE.compensated_live}` });
  } else if (action && SETTLED.includes(action.status) && (step.status !== 'complete' || UNDONE.includes(action.status))) {
    out.push({ ...base, kind: 'orphan', vendorId: primary.id, detail: `${entry.fullName} ${primary.id} for step ${step.stepId} of ${step.actionId} (action ${action.status}): ${DESCRIBE.orphan}` });
  } else if (!action) {
    out.push({ ...base, kind: 'orphan', vendorId: primary.id, detail: `${entry.fullName} ${primary.id} for step ${step.stepId}: the ledger has no action ${step.actionId}` });
  }
  return out;
}

/** The vendor id a tool output names (`bookingId`, `holdId`, `captureId`, …): its first `…Id` string field. */
function idOf(output: unknown): string | undefined {
  if (typeof output !== 'object' || output === null) return undefined;
  for (const [k, v] of Object.entries(output)) if (k.endsWith('Id') && typeof v === 'string') return v;
  return undefined;
}

async function fixFinding(
  deps: ReconcileDeps,
  runtime: Parameters<typeof invokeTool>[1],
  finding: Finding,
  runId: string,
): Promise<NonNullable<Finding['fix']>> {
  if (finding.kind === 'unknown' || !finding.actionId || !finding.stepId) return { skipped: 'no ledger step: a person must decide (made outside Airlock?)' };
  const entry = deps.tools.find(finding.tool);
  const undo = entry && deps.tools.compensationOf(entry);
  if (!entry?.tool.compensation || !undo) return { skipped: `${finding.tool} has no compensation` };
  const forward = await deps.steps.getStep({ actionId: finding.actionId, stepId: finding.stepId, kind: 'forward' });
  if (!forward) return { skipped: 'the step record is gone' };
  const op = entry.connector.reconcile!;
  // Re-read the vendor's record now: the compensation is built from what it holds, not from a stale copy.
  let record: VendorRecord | undefined;
  try {
    const client = await vendorClientOf(entry.connector, runtime);
    const records = await op.lookup(client, { tool: entry.tool.name, clientReference: forward.idempotencyKey }, {
      idempotencyKey: forward.idempotencyKey,
      grant: undefined,
      logger: runtime.logger,
      deadline: deps.now().getTime() + deps.timeoutMs,
      dryRun: false,
    });
    record = records.find((r) => r.id === finding.vendorId);
  } catch (error) {
    return { tool: undo.fullName, outcome: 'failed', error: error instanceof Error ? error.name : 'UnknownError' };
  }
  if (!record?.live) return { skipped: 'no longer in force at the vendor' };
  let input: unknown;
  try {
    input = entry.tool.compensation.input(forward.input, record.output);
  } catch (error) {
    return { skipped: `the compensation input could not be built (${error instanceof Error ? error.name : 'error'})` };
  }
  // Deterministic per finding, so running --fix twice never undoes twice.
  const key = `${stepIdempotencyKey({ actionId: finding.actionId, stepId: finding.stepId, kind: 'compensate' })}.rec.${finding.kind === 'duplicate' ? finding.vendorId : 'primary'}`;
  try {
    await invokeTool({ tool: undo.fullName, input, idempotencyKey: key, dryRun: false, deadline: deps.now().getTime() + deps.timeoutMs }, runtime);
    deps.logger.warn('reconcile: compensation run', { runId, tool: undo.fullName, actionId: finding.actionId, stepId: finding.stepId, vendorId: finding.vendorId });
    return { tool: undo.fullName, outcome: 'compensated' };
  } catch (error) {
    return { tool: undo.fullName, outcome: 'failed', error: error instanceof Error ? error.name : 'UnknownError' };
  }
}
