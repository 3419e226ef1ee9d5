import { isDelegationReceiptKey } from '../receipts/consent';
import type { AuditStore } from '../ports/audit-store';
import type { ToolRegistry } from '../ports/tools';
import { toolFacts } from '../policy/decider';
import { ReceiptSchema, type Receipt } from '../receipts/schema';
import { verifyVault, type Finding } from '../receipts/verify';
import { baseMinorToMajor, committedSpend, type MoneyConfig } from '../shared/money';

/**
 * The weekly safety report (`airlock report --since 7d`): what the receipts in the audit vault
 * say about a window — actions by outcome, denials by policy, approvals and how long they
 * took, compensations, refusals, spend, and what the verifier finds. Read from the vault, not
 * the metrics, so it is the record an auditor can check, not a sampled counter.
 */

const DAY = 86_400_000;

/** A receipt key the report could not read as a receipt (a finding on its own). */
export interface UnreadableReceipt {
  key: string;
  why: string;
}

export interface SafetyReport {
  since: string;
  until: string;
  actions: number;
  byOutcome: Record<string, number>;
  deniedByPolicy: Record<string, number>;
  approvals: { requested: number; byOutcome: Record<string, number>; medianDecisionSeconds: number | null; maxDecisionSeconds: number | null };
  compensations: { executed: number; failed: number; actionsCompensated: number };
  refusals: { votes: Record<string, number> };
  /** Committed spend that stayed done (completed, executed actions), base currency major units. */
  spend: { currency: string; total: number; byConnector: Record<string, number> };
  dryRuns: number;
  findings: Finding[];
  unreadable: UnreadableReceipt[];
}

export interface ReportDeps {
  store: AuditStore;
  tools: ToolRegistry;
  money: MoneyConfig;
}

const bump = (record: Record<string, number>, key: string, by = 1) => void (record[key] = (record[key] ?? 0) + by);

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Receipts of actions settled in [since, until], plus the verifier's findings for the window. */
export async function buildSafetyReport(deps: ReportDeps, window: { since: Date; until: Date }): Promise<SafetyReport> {
  const { since, until } = window;
  // Receipts are keyed by the day their action was created, which is at most the saga's
  // execution timeout (days) before it settled: look a few days further back.
  const keys: string[] = [];
  for (let day = Math.floor((since.getTime() - 7 * DAY) / DAY); day <= Math.floor(until.getTime() / DAY); day++) {
    const prefix = `receipts/dt=${new Date(day * DAY).toISOString().slice(0, 10)}/`;
    // Consent and revocation receipts are not actions: the report counts actions.
    keys.push(...(await deps.store.list(prefix)).map((o) => o.key).filter((k) => !isDelegationReceiptKey(k)));
  }
  const report: SafetyReport = {
    since: since.toISOString(),
    until: until.toISOString(),
    actions: 0,
    byOutcome: {},
    deniedByPolicy: {},
    approvals: { requested: 0, byOutcome: {}, medianDecisionSeconds: null, maxDecisionSeconds: null },
    compensations: { executed: 0, failed: 0, actionsCompensated: 0 },
    refusals: { votes: {} },
    spend: { currency: deps.money.baseCurrency, total: 0, byConnector: {} },
    dryRuns: 0,
    findings: [],
    unreadable: [],
  };
  const decisionSeconds: number[] = [];
  let spentMinor = 0;
  const spentByConnector = new Map<string, number>();
  for (const key of keys) {
    const bytes = await deps.store.get(key);
    if (!bytes) continue;
    let receipt: Receipt;
    try {
      const parsed = ReceiptSchema.safeParse(JSON.parse(Buffer.from(bytes).toString('utf8')));
      if (!parsed.success) {
        report.unreadable.push({ key, why: 'does not match the receipt schema' });
        continue;
      }
      receipt = parsed.data;
    } catch {
      report.unreadable.push({ key, why: 'is not JSON' });
      continue;
    }
    const settled = Date.parse(receipt.outcome.settledAt);
    if (settled < since.getTime() || settled > until.getTime()) continue;
    report.actions += 1;
    bump(report.byOutcome, receipt.outcome.status);
    if (receipt.request.mode === 'dry_run') report.dryRuns += 1;
    if (receipt.outcome.status === 'denied') {
      const ids = receipt.decision?.policyIds.length ? receipt.decision.policyIds : ['default'];
      for (const id of new Set(ids)) bump(report.deniedByPolicy, id);
    }
    for (const approval of receipt.approvals) {
      report.approvals.requested += 1;
      bump(report.approvals.byOutcome, approval.outcome);
      if (approval.requestedAt && approval.decidedAt) decisionSeconds.push((Date.parse(approval.decidedAt) - Date.parse(approval.requestedAt)) / 1000);
      for (const refused of approval.refusedVotes ?? []) bump(report.refusals.votes, refused.reason);
    }
    const compensations = receipt.steps.filter((s) => s.kind === 'compensate');
    report.compensations.executed += compensations.filter((s) => s.status === 'complete').length;
    report.compensations.failed += compensations.filter((s) => s.status === 'failed').length;
    if (receipt.outcome.status === 'compensated') report.compensations.actionsCompensated += 1;
    if (receipt.outcome.status === 'completed' && receipt.request.mode === 'execute') {
      const done = receipt.steps.filter((s) => s.kind === 'forward' && s.status === 'complete' && deps.tools.find(s.tool));
      const spent = committedSpend(
        done.map((s) => toolFacts(deps.tools, s.tool, (s.input ?? {}) as Record<string, unknown>)),
        deps.money,
      );
      spentMinor += spent.total;
      for (const [connector, minor] of spent.byConnector) spentByConnector.set(connector, (spentByConnector.get(connector) ?? 0) + minor);
    }
  }
  report.approvals.medianDecisionSeconds = median(decisionSeconds);
  report.approvals.maxDecisionSeconds = decisionSeconds.length ? Math.max(...decisionSeconds) : null;
  report.spend.total = baseMinorToMajor(spentMinor, deps.money);
  for (const [connector, minor] of spentByConnector) if (minor > 0) report.spend.byConnector[connector] = baseMinorToMajor(minor, deps.money);
  // The window's integrity, as `audit verify --from … --to …` sees it (open-ended: the vault may still be written).
  report.findings = (await verifyVault(deps.store, { from: since, to: until, now: until, until: since })).findings;
  return report;
}

const table = (head: [string, string], rows: [string, string | number][]) =>
  rows.length === 0 ? ['_none_'] : [`| ${head[0]} | ${head[1]} |`, '| --- | ---: |', ...rows.map(([k, v]) => `| ${k} | ${v} |`)];

const sortedEntries = (record: Record<string, number>) => Object.entries(record).sort(([a, x], [b, y]) => y - x || a.localeCompare(b));

const seconds = (s: number | null) => (s === null ? '—' : s < 120 ? `${s.toFixed(0)} s` : s < 7200 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`);

/** The report as Markdown. */
export function renderSafetyReport(r: SafetyReport): string {
  const money = (n: number) => `${n.toFixed(2)} ${r.spend.currency}`;
  return [
    `# Airlock safety report`,
    '',
    `${r.since} → ${r.until}: **${r.actions}** action(s) settled${r.dryRuns ? ` (${r.dryRuns} dry run(s))` : ''}.`,
    '',
    '## Actions by outcome',
    '',
    ...table(['outcome', 'actions'], sortedEntries(r.byOutcome)),
    '',
    '## Denials by policy',
    '',
    ...table(['policy', 'denials'], sortedEntries(r.deniedByPolicy)),
    '',
    '## Approvals',
    '',
    `${r.approvals.requested} requested; median time to decision ${seconds(r.approvals.medianDecisionSeconds)}, longest ${seconds(r.approvals.maxDecisionSeconds)}.`,
    '',
    ...table(['outcome', 'approvals'], sortedEntries(r.approvals.byOutcome)),
    '',
    '## Compensations',
    '',
    `${r.compensations.executed} compensating call(s) completed, **${r.compensations.failed} failed**; ${r.compensations.actionsCompensated} action(s) fully compensated.`,
    '',
    '## Refusals',
    '',
    ...table(['refused vote reason', 'votes'], sortedEntries(r.refusals.votes)),
    '',
    '## Spend (completed actions)',
    '',
    `Total ${money(r.spend.total)}.`,
    '',
    ...table(['connector', 'spend'], sortedEntries(r.spend.byConnector).map(([k, v]) => [k, money(v)])),
    '',
    '## Verification',
    '',
    ...(r.findings.length === 0 && r.unreadable.length === 0
      ? ['No findings: every digest in the window verifies and lists the receipts written in it.']
      : [
          ...r.findings.map((f) => `- **${f.kind}** \`${f.key}\`: ${f.detail}`),
          ...r.unreadable.map((u) => `- **UNREADABLE** \`${u.key}\` ${u.why}`),
        ]),
    '',
  ].join('\n');
}
