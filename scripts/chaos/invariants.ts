import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { toolFacts } from '../../lambdas/policy/decider';
import { committedSpend, type MoneyConfig } from '../../lambdas/shared/money';
import type { RateLimit } from '../../lambdas/limits/config';
import { amountTowardCap, capSubject, periodKey, resolveCaps, type ResolvedCap } from '../../lambdas/spend/caps';
import type { ReceiptApproval } from '../../lambdas/receipts/schema';
import { defaultToleranceMs, type Finding } from '../../lambdas/receipts/verify';
import { toolRegistry } from '../../lambdas/tools/registry';
import { TERMINAL, type ActionRun, type FinalView, type HttpRecord, type Observations } from './storm';

/**
 * The invariants checked after every storm. Each reads only the observations (the agents'
 * answers, the control plane's final views, the vendors' own effect logs and counters, the
 * vault, the logs), so a new guarantee is one more entry in INVARIANTS.
 */

export interface InvariantResult {
  /** How many things were checked (actions, effects, responses…). */
  checked: number;
  violations: string[];
}

export interface Invariant {
  name: string;
  /** The guarantee, in one line, for the table. */
  summary: string;
  check(obs: Observations): InvariantResult;
}

const MAX_LISTED = 20;

function result(checked: number, violations: string[]): InvariantResult {
  return { checked, violations };
}

/** The action id and step id an effect's Idempotency-Key names (`<actionId>.<stepId>[.undo]`). */
export function parseEffectKey(key: string): { actionId: string; stepId: string; undo: boolean } | undefined {
  const parts = key.split('.');
  if (parts.length === 2) return { actionId: parts[0]!, stepId: parts[1]!, undo: false };
  if (parts.length === 3 && parts[2] === 'undo') return { actionId: parts[0]!, stepId: parts[1]!, undo: true };
  return undefined;
}

const runsById = (obs: Observations) => {
  const map = new Map<string, ActionRun>();
  for (const r of obs.runs) for (const id of r.ids) map.set(id, r);
  return map;
};

interface Effect {
  vendor: string;
  seq: number;
  operation: string;
  stepId: string;
  undo: boolean;
}

/** Effects grouped by action id. */
function effectsByAction(obs: Observations): Map<string, Effect[]> {
  const map = new Map<string, Effect[]>();
  for (const [vendor, list] of Object.entries(obs.effects)) {
    for (const e of list) {
      const k = e.idempotencyKey ? parseEffectKey(e.idempotencyKey) : undefined;
      if (!k) continue;
      map.set(k.actionId, [...(map.get(k.actionId) ?? []), { vendor, seq: e.seq, operation: e.operation, stepId: k.stepId, undo: k.undo }]);
    }
  }
  return map;
}

export const terminalWithinBound: Invariant = {
  name: 'terminal within bound',
  summary: 'every action reached a terminal status within the bound after the last restart; every agent got its answers',
  check(obs) {
    const v: string[] = [];
    for (const id of obs.settle.unsettled) v.push(`${id} is ${obs.views.get(id)?.status ?? 'unreadable'} ${obs.settle.boundMs / 1000} s after the last restart`);
    for (const r of obs.runs) for (const p of r.problems) v.push(`action #${r.spec.index}: ${p}`);
    return result(obs.runs.length, v);
  },
};

export const idempotentRetries: Invariant = {
  name: 'retries are idempotent',
  summary: 'duplicates, aborted and late retries with one Idempotency-Key name one action; none got a 422',
  check(obs) {
    const v: string[] = [];
    for (const r of obs.runs) {
      if (r.ids.length > 1) v.push(`action #${r.spec.index} (key ${r.key}) answered with ${r.ids.length} ids: ${r.ids.join(', ')}`);
      if (r.answer?.status === 422) v.push(`action #${r.spec.index}: 422 ${r.answer.type ?? ''} for a retry of the same body`);
    }
    return result(obs.runs.length, v);
  },
};

export const sideEffectsMatchOutcomes: Invariant = {
  name: 'side effects = outcomes',
  summary: 'vendor effect logs and counters: no doubled effect, no orphan, no missing compensation, none for dry runs or refusals',
  check(obs) {
    const v: string[] = [];
    const runs = runsById(obs);
    const seen = new Map<string, string>();
    let checked = 0;
    for (const [vendor, list] of Object.entries(obs.effects)) {
      const counted: Record<string, number> = {};
      for (const e of list) {
        checked++;
        counted[e.operation] = (counted[e.operation] ?? 0) + 1;
        if (!e.idempotencyKey) {
          v.push(`${vendor}.${e.operation} #${e.seq} carried no Idempotency-Key`);
          continue;
        }
        const prior = seen.get(e.idempotencyKey);
        if (prior) v.push(`doubled: ${e.idempotencyKey} performed twice (${prior}, ${vendor}.${e.operation} #${e.seq})`);
        seen.set(e.idempotencyKey, `${vendor}.${e.operation} #${e.seq}`);
        const k = parseEffectKey(e.idempotencyKey);
        if (!k || !runs.has(k.actionId)) v.push(`stray: ${vendor}.${e.operation} under ${e.idempotencyKey} belongs to no action of the storm`);
      }
      const counters = obs.sideEffectCounters[vendor] ?? {};
      for (const op of new Set([...Object.keys(counted), ...Object.keys(counters)])) {
        if ((counted[op] ?? 0) !== (counters[op] ?? 0)) v.push(`${vendor}.${op}: counter says ${counters[op] ?? 0}, effect log has ${counted[op] ?? 0}`);
      }
    }
    const byAction = effectsByAction(obs);
    // What is still in effect at the vendors, by the key of the step that made it.
    const liveByKey = new Map<string, string>();
    for (const [vendor, list] of Object.entries(obs.live)) for (const l of list) if (l.clientReference) liveByKey.set(l.clientReference, `${vendor} ${l.object}`);
    for (const [id, view] of obs.views) {
      const run = runs.get(id);
      if (!run) continue;
      const effects = byAction.get(id) ?? [];
      const label = `${id} (#${run.spec.index}, ${view.status})`;
      if (view.mode === 'dry_run' && effects.length > 0) v.push(`${label}: a dry run left ${effects.length} vendor effect(s)`);
      const forward = new Map(effects.filter((e) => !e.undo).map((e) => [e.stepId, e]));
      const undone = new Map(effects.filter((e) => e.undo).map((e) => [e.stepId, e]));
      if (view.mode === 'dry_run') continue;
      if (view.status === 'completed') {
        for (const s of run.spec.steps.filter((x) => x.commit)) {
          if (!forward.has(s.id)) v.push(`${label}: completed but ${s.tool} (${s.id}) left no effect at the vendor`);
          else if (!liveByKey.has(`${id}.${s.id}`)) v.push(`missing: ${label}: what ${s.tool} (${s.id}) did is no longer in effect`);
        }
        for (const s of undone.keys()) v.push(`${label}: completed but step ${s} was compensated at the vendor`);
      } else if (TERMINAL.has(view.status)) {
        for (const [stepId, e] of forward) {
          const still = liveByKey.get(`${id}.${stepId}`);
          if (still) v.push(`orphan: ${label}: ${still} from ${e.operation} of step ${stepId} is still in effect`);
        }
      }
      for (const [stepId] of undone) if (!forward.has(stepId)) v.push(`${label}: step ${stepId} compensated at the vendor but never performed there`);
      for (const s of view.steps) {
        if (s.compensation?.status === 'completed' && liveByKey.has(`${id}.${s.id}`)) v.push(`${label}: the ledger says step ${s.id} was compensated, the vendor still has it`);
        if (s.status === 'completed' && run.spec.steps.find((x) => x.id === s.id)?.commit && !forward.has(s.id) && view.mode === 'execute') {
          v.push(`${label}: the ledger says ${s.id} completed, the vendor has no effect for it`);
        }
      }
    }
    return result(checked, v);
  },
};

export const compensationsOnceInReverse: Invariant = {
  name: 'compensations once, reversed',
  summary: 'every compensation ran at most once per step, after its step, in reverse step order',
  check(obs) {
    const v: string[] = [];
    const runs = runsById(obs);
    let checked = 0;
    for (const [id, effects] of effectsByAction(obs)) {
      const run = runs.get(id);
      if (!run) continue;
      const order = new Map(run.spec.steps.map((s, i) => [s.id, i]));
      const undos = effects.filter((e) => e.undo).sort((a, b) => a.seq - b.seq);
      checked += undos.length;
      const perStep = new Map<string, number>();
      for (const u of undos) perStep.set(u.stepId, (perStep.get(u.stepId) ?? 0) + 1);
      for (const [s, n] of perStep) if (n > 1) v.push(`${id}: step ${s} compensated ${n} times`);
      for (const u of undos) {
        const f = effects.find((e) => !e.undo && e.stepId === u.stepId);
        if (f && f.seq > u.seq) v.push(`${id}: step ${u.stepId} compensated (#${u.seq}) before it ran (#${f.seq})`);
      }
      for (let i = 1; i < undos.length; i++) {
        if ((order.get(undos[i]!.stepId) ?? 0) > (order.get(undos[i - 1]!.stepId) ?? 0)) {
          v.push(`${id}: compensations out of order: ${undos.map((u) => u.stepId).join(' → ')}`);
          break;
        }
      }
    }
    return result(checked, v);
  },
};

/** The approval section of an action's receipt: the ledger's record of who voted, written from the audit chain. */
function receiptApproval(obs: Observations, id: string): ReceiptApproval | undefined {
  const receipt = (obs.receipts.get(id) ?? [])[0] as { approvals?: ReceiptApproval[] } | undefined;
  return receipt?.approvals?.[0];
}

/**
 * Judged by the ledger's truth, not by what the agents heard: the votes are those in the
 * action's receipt (built from its audit chain). An answer a SIGKILL cut off makes the agent
 * retry, and the retry is told `recorded: false` (a repeat) although the first request counted;
 * counting HTTP answers would then report a quorum bypass that never happened. The agents'
 * answers still judge what they were told: one outcome for racing voters, and every vote
 * answered as recorded must be in the receipt.
 */
export const approvalsDecide: Invariant = {
  name: 'approvals decide',
  summary: 'by the receipt\'s votes: no quorum, no run; self-approval never recorded; rejections reject; expiries expire; racing voters told one outcome',
  check(obs) {
    const v: string[] = [];
    let checked = 0;
    for (const r of obs.runs) {
      if (!r.waitedForApproval || !r.id) continue;
      checked++;
      const view = obs.views.get(r.id);
      if (!view) continue;
      const label = `${r.id} (#${r.spec.index}, ${r.spec.approval})`;
      // The storm cancelled it, or a halt held its votes back: the approvers' intent no longer decides its end.
      const overruled = (r.cancels ?? []).some((c) => c.status === 200 || c.status === 202) || (r.haltedVotes ?? 0) > 0;
      const approval = receiptApproval(obs, r.id);
      if (!approval) {
        v.push(`${label}: waited for approval, but its receipt records no approval`);
        continue;
      }
      // The larger of the two quorums: a receipt that understated it must not hide a bypass.
      const quorum = Math.max(1, view.decision?.quorum ?? 1, approval.quorum ?? 1);
      const approvers = new Set(approval.votes.filter((x) => x.decision === 'approve' && x.voter !== r.spec.requester).map((x) => x.voter));
      const rejected = approval.votes.some((x) => x.decision === 'reject');
      if (approval.votes.some((x) => x.voter === r.spec.requester)) v.push(`${label}: the requester's own vote is in the receipt`);
      for (const x of r.votes) {
        if (x.voter === r.spec.requester && x.counted) v.push(`${label}: the requester's own approval was counted`);
        if (x.counted && !approval.votes.some((y) => y.voter === x.voter && y.decision === x.decision)) v.push(`${label}: ${x.voter}'s ${x.decision} was answered as recorded but is not in the receipt`);
      }
      // Racing votes: the conditional outcome write picks one; every answer must tell the same outcome, and the action follow it.
      const told = new Set(r.votes.map((x) => x.outcome).filter((o) => o === 'approved' || o === 'rejected'));
      if (told.size > 1) v.push(`${label}: voters were told both approved and rejected`);
      // Ran: some step started (an action can also fail while it waits, without running).
      const ran = view.steps.some((s) => s.status !== 'pending');
      if (told.has('rejected') && view.status !== 'rejected') v.push(`${label}: a voter was told rejected, the action ended ${view.status}`);
      // Approved, then stopped before its first step by a guardrail (an open breaker, a spend cap, a halt, a cancel): ran nothing, legitimately.
      // Or denied when the saga re-evaluated policy before running (the tight caps had filled meanwhile): only that re-check ends an approved action `denied`.
      const guarded = /CircuitOpenError|SpendCapExceededError|ActionHaltedError|ActionCancelledError/.test(view.statusReason ?? '') || view.status === 'denied';
      if (told.has('approved') && !ran && !guarded && !(overruled && view.status === 'cancelled')) v.push(`${label}: a voter was told approved, the action ended ${view.status}`);
      if (view.status === 'rejected' && !rejected) v.push(`${label}: rejected without a rejection in its receipt`);
      if (approval.outcome === 'granted' && approvers.size < quorum) v.push(`${label}: its receipt says granted with ${approvers.size} of ${quorum} approvals`);
      if (view.status === 'expired' && approvers.size >= quorum) v.push(`${label}: expired although its receipt holds a quorum of approvals`);
      if (ran && approvers.size < quorum) v.push(`${label}: ran (${view.status}) with ${approvers.size} of ${quorum} approvals in its receipt`);
      if (r.spec.approval === 'expire' && view.status !== 'expired' && !overruled) v.push(`${label}: nobody voted, yet it ended ${view.status}`);
      // The rejection arrived after the approval had expired (a restart held it back; answered 409,
      // or 200 with the approval closed as expired by that very request, vote not recorded): expired is the right end.
      const tooLate = view.status === 'expired' && r.votes.some((x) => x.decision === 'reject' && (x.status === 409 || (x.status === 200 && !x.counted && x.outcome === 'expired')));
      // Nobody could decide it (every vote refused as ineligible): it can only expire.
      const undecidable = r.noEligibleApprover === true && view.status === 'expired' && r.votes.every((x) => !x.counted);
      // Every rejection refused by a rate limit to the end of the approver's patience: nothing reached the approval.
      const throttled = view.status === 'expired' && r.votes.some((x) => x.decision === 'reject') && r.votes.every((x) => x.decision !== 'reject' || x.status === 429);
      if (r.spec.approval === 'reject' && view.status !== 'rejected' && !overruled && !tooLate && !undecidable && !throttled) v.push(`${label}: rejected by ${r.spec.approvers[0]}, yet it ended ${view.status}`);
    }
    return result(checked, v);
  },
};

const money = JSON.parse(readFileSync(fileURLToPath(new URL('../../policies/config.json', import.meta.url)), 'utf8')) as MoneyConfig;

/** The commit-tier spend of an action's steps that stayed done (the saga's rule, shared/money). */
function spendOf(run: ActionRun, view: FinalView): { total: number; byConnector: ReadonlyMap<string, number> } {
  const done = view.steps.filter((s) => s.status === 'completed');
  const items = done.flatMap((s) => {
    const spec = run.spec.steps.find((x) => x.id === s.id) ?? (run.spec.single ? run.spec.steps[0] : undefined);
    return spec ? [toolFacts(toolRegistry, spec.tool, spec.arguments)] : [];
  });
  const spend = committedSpend(items, money);
  return { total: spend.total, byConnector: spend.byConnector };
}

export const spendWithinCaps: Invariant = {
  name: 'spend within caps',
  summary: 'for every spend cap the storm ran under (shipped and tight ones; per principal, department, tenant; day or month), what completed actions committed never passed it',
  check(obs) {
    const v: string[] = [];
    // In base minor units (the store's own conversion).
    const caps = resolveCaps(obs.limits.limits.spendCaps, money);
    const runs = runsById(obs);
    const totals = new Map<string, { cap: ResolvedCap; total: number }>();
    for (const [id, view] of obs.views) {
      const run = runs.get(id);
      if (!run || view.status !== 'completed' || view.mode !== 'execute') continue;
      const spend = spendOf(run, view);
      for (const cap of caps) {
        const subject = capSubject(cap, view.principal);
        if (subject === undefined) continue;
        const key = `${cap.id} ${subject} ${periodKey(cap.period, new Date(view.createdAt))}`;
        const entry = totals.get(key) ?? { cap, total: 0 };
        entry.total += amountTowardCap(cap, spend.byConnector, spend.total);
        totals.set(key, entry);
      }
    }
    for (const [key, { cap, total }] of totals) if (total > cap.limit) v.push(`${key}: committed ${total} minor units of ${money.baseCurrency}, cap ${cap.limit}`);
    return result(totals.size, v);
  },
};

/**
 * The control plane's ALARMs that say the audit trail disagrees with itself: a receipt that
 * would differ from the one stored, an event chain that does not verify, digests gone from
 * under the writer, a refused vote missing from its action. None is chaos; each is a bug.
 */
export const INTEGRITY_ALARMS = [
  'ALARM receipt differs from the one already in the vault',
  'ALARM audit event chain does not verify',
  'ALARM the newest digest in the vault is not the one this writer wrote last: digests were removed',
  'ALARM refused vote claimed but not recorded on the action',
] as const;

/** Integrity ALARMs in the control plane's logs, one violation per message and action. */
export function integrityAlarms(obs: Observations): string[] {
  const seen = new Map<string, number>();
  for (const t of obs.texts) {
    if (!t.name.startsWith('log control-plane')) continue;
    for (const line of t.text.split('\n')) {
      if (!line.includes('ALARM')) continue;
      let record: { message?: unknown; actionId?: unknown };
      try {
        record = JSON.parse(line) as typeof record;
      } catch {
        continue;
      }
      if (!INTEGRITY_ALARMS.includes(record.message as (typeof INTEGRITY_ALARMS)[number])) continue;
      const key = `${String(record.message)}${typeof record.actionId === 'string' ? ` (${record.actionId})` : ''}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
  }
  return [...seen].map(([key, n]) => `logged ${key}${n > 1 ? ` ×${n}` : ''}`);
}

/**
 * A GAP that a SIGKILL of the storm explains, and nothing else (docs/audit.md: a crashed
 * writer's outage is marked by a GAP): the digest before the gap still kept its heartbeat when
 * the control plane was killed (killed after it ended, within its interval plus tolerance),
 * and the digest after the gap came from the restarted writer before it said READY (it writes
 * a dead writer's overdue successor at start). A gap wider than the outage (a writer that waited
 * before catching up, or a digest removed: the `--expect-head` anchors name that too) is not.
 */
export function crashExplainsGap(obs: Observations, finding: Finding): boolean {
  if (finding.kind !== 'digest-gap') return false;
  const after = obs.digests?.find((d) => d.key === finding.key);
  const before = after?.previous ? obs.digests?.find((d) => d.key === after.previous) : undefined;
  const beat = before?.heartbeat;
  if (!after || !before || !beat || beat.stopped) return false;
  const beforeEnd = Date.parse(before.endTime);
  const afterEnd = Date.parse(after.endTime);
  const interval = beat.intervalSeconds * 1000;
  const allowed = interval + defaultToleranceMs(interval);
  return (obs.crashTimes ?? []).some((c) => c.killedAt >= beforeEnd && c.killedAt <= beforeEnd + allowed && afterEnd >= c.killedAt && afterEnd <= c.readyAt);
}

export const receiptsAndAudit: Invariant = {
  name: 'receipts and audit',
  summary: 'exactly one receipt per action, matching its outcome; `airlock audit verify` passes (every logged digest still there; a GAP only for a SIGKILL\'s outage); no integrity ALARM logged; denials and refused self-approvals are in the trail',
  check(obs) {
    const v: string[] = [];
    for (const [id, view] of obs.views) {
      const list = obs.receipts.get(id) ?? [];
      if (list.length !== 1) {
        v.push(`${id} (${view.status}) has ${list.length} receipts`);
        continue;
      }
      const receipt = list[0] as { outcome?: { status?: string }; approvals?: { refusedVotes?: { voter: string }[]; refusedVotesCapped?: unknown }[] };
      if (receipt.outcome?.status !== view.status) v.push(`${id}: receipt says ${receipt.outcome?.status}, the action is ${view.status}`);
      const run = obs.runs.find((r) => r.ids.includes(id));
      for (const vote of run?.votes ?? []) {
        // A 429 is refused before the approval is looked at (audited as `ratelimit.refused`, see `refusals audited`).
        if (vote.voter !== run!.spec.requester || vote.counted || vote.status === 429) continue;
        const approval = receipt.approvals?.[0];
        // Refused after the action settled (a crash held the vote back past the expiry): the receipt is final, the audit line is the record.
        const lateLine = obs.auditLines.some((l) => l.audit === 'approval.vote_refused' && l.actionId === id && l.voter === vote.voter);
        if (!approval?.refusedVotesCapped && !approval?.refusedVotes?.some((x) => x.voter === vote.voter) && !lateLine) {
          v.push(`${id}: ${vote.voter}'s refused self-approval (${vote.status}) is not in the receipt`);
        }
      }
    }
    for (const s of obs.strayReceipts) v.push(`receipt ${s} belongs to no action of the storm`);
    for (const alarm of integrityAlarms(obs)) v.push(alarm);
    if (obs.audit.code !== 0) {
      const findings = obs.audit.findings;
      const unexplained = findings?.filter((f) => !crashExplainsGap(obs, f));
      if (!findings || findings.length === 0) v.push(`airlock audit verify exited ${obs.audit.code}: ${obs.audit.output.trim().split('\n').slice(-5).join(' | ')}`);
      else for (const f of unexplained ?? []) v.push(`airlock audit verify: ${f.kind} ${f.key}: ${f.detail}`);
    }
    return result(obs.views.size, v);
  },
};

/** The subjects a tool or connector rate limit counts a request under (rate-limits.ts applicablePolicies). */
function subjectsOf(policy: RateLimit, tools: readonly string[]): string[] {
  const only = policy.only;
  const unique = [...new Set(tools)];
  if (policy.scope === 'tool') return unique.filter((t) => !only || only.includes(t) || only.includes(t.slice(0, t.indexOf('.'))));
  if (policy.scope === 'connector') return [...new Set(unique.map((t) => t.slice(0, t.indexOf('.'))))].filter((c) => !only || only.includes(c));
  return [];
}

/**
 * Whether `limit` per window can hold for requests the server admitted somewhere inside
 * their [sent, answered] spans (window indexes lo..hi): assign each, latest deadline last, to
 * the earliest window of its span with room. This greedy finds an assignment whenever one
 * exists, so a failure proves some window admitted more than its quota. Returns the window
 * that overflowed, or undefined.
 */
export function overflowingWindow(spans: { lo: number; hi: number }[], limit: number): number | undefined {
  const used = new Map<number, number>();
  for (const s of [...spans].sort((a, b) => a.hi - b.hi || a.lo - b.lo)) {
    let w = s.lo;
    while (w <= s.hi && (used.get(w) ?? 0) >= limit) w++;
    if (w > s.hi) return s.hi;
    used.set(w, (used.get(w) ?? 0) + 1);
  }
  return undefined;
}

/**
 * Judged from the agents' side, where every request is seen: each POST /v1/actions answered
 * with anything but 429 was admitted by every tool and connector limit it names (refused
 * requests hand their units back), somewhere between its sending and its answer. A request
 * cut off by a crash is left out (it may or may not have counted): the check can only miss
 * an excess, never invent one. The receipts agree: actions created never outnumber admissions.
 */
export const rateLimitsHold: Invariant = {
  name: 'rate limits hold',
  summary: 'per tool/connector limit and window, the POST /v1/actions admitted (answered, not 429) fit its quota; the tight limit was hit',
  check(obs) {
    const v: string[] = [];
    let checked = 0;
    const admitted = obs.responses.filter((r) => r.method === 'POST' && r.path === '/v1/actions' && r.status !== 429 && r.tools && r.sentAt !== undefined && r.at !== undefined);
    for (const policy of obs.limits.limits.rateLimits) {
      if (policy.scope !== 'tool' && policy.scope !== 'connector') continue;
      const ms = policy.windowSeconds * 1000;
      const bySubject = new Map<string, { lo: number; hi: number }[]>();
      for (const r of admitted) {
        for (const subject of subjectsOf(policy, r.tools!)) {
          const list = bySubject.get(subject) ?? [];
          list.push({ lo: Math.floor(r.sentAt! / ms), hi: Math.floor(r.at! / ms) });
          bySubject.set(subject, list);
        }
      }
      for (const [subject, spans] of bySubject) {
        checked += spans.length;
        const w = overflowingWindow(spans, policy.limit);
        if (w !== undefined) v.push(`${policy.id} ${subject}: more than ${policy.limit} requests admitted in the window starting ${new Date(w * ms).toISOString()}`);
      }
    }
    return result(checked, v);
  },
};

const AUDIT = { rateLimited: 'ratelimit.refused', halted: 'halt.refused_new' } as const;

/**
 * Every refusal an agent saw is in the audit trail. Refusals that record an action (a policy
 * or spend-cap denial: 403 with an action id) have its receipt (`receipts and audit`); those
 * that record nothing leave an audit line: `ratelimit.refused` for a 429, `halt.refused_new`
 * for a 403 halted (per principal, at least as many lines as answers: a request cut off by a
 * crash may have been refused unseen). A 403 on POST /v1/actions with neither is a violation.
 */
export const refusalsAudited: Invariant = {
  name: 'refusals audited',
  summary: 'every 429 and 403-halted an agent got has its audit line (by principal); every other refused POST has an action and its receipt',
  check(obs) {
    const v: string[] = [];
    const lines = (type: string) => {
      const count = new Map<string, number>();
      for (const l of obs.auditLines) if (l.audit === type && typeof l.principal === 'string') count.set(l.principal, (count.get(l.principal) ?? 0) + 1);
      return count;
    };
    const seen = (pick: (r: HttpRecord) => boolean) => {
      const count = new Map<string, number>();
      for (const r of obs.responses) if (pick(r) && r.sub) count.set(r.sub, (count.get(r.sub) ?? 0) + 1);
      return count;
    };
    let checked = 0;
    const kinds = [
      { name: '429', audit: AUDIT.rateLimited, pick: (r: HttpRecord) => r.status === 429 },
      { name: '403 halted', audit: AUDIT.halted, pick: (r: HttpRecord) => r.status === 403 && r.method === 'POST' && r.path === '/v1/actions' && r.haltId !== undefined },
    ];
    for (const k of kinds) {
      const audited = lines(k.audit);
      for (const [sub, n] of seen(k.pick)) {
        checked += n;
        const m = audited.get(sub) ?? 0;
        if (m < n) v.push(`${sub} got ${n} × ${k.name}, the audit trail has ${m} ${k.audit} line(s) for them`);
      }
    }
    for (const r of obs.runs) {
      if (r.answer?.status === 403 && r.ids.length === 0 && !obs.responses.some((x) => x.sub === r.spec.requester && x.haltId !== undefined)) {
        v.push(`#${r.spec.index}: refused 403 with no action id and no halt to audit it`);
      }
    }
    return result(checked, v);
  },
};

/**
 * Cancels (the cancels injector): an action cancelled before it started ends `cancelled` with
 * no vendor effect at all; one cancelled while running stops (or had just completed); every
 * action that ended `cancelled` left nothing in effect at the vendors (what its steps made was
 * compensated or consumed).
 */
export const cancelsHold: Invariant = {
  name: 'cancels hold',
  summary: 'a cancel answered 200 ends cancelled with no vendor effect; 202 ends cancelled (or had completed); a cancelled action leaves no orphan',
  check(obs) {
    const v: string[] = [];
    const byAction = effectsByAction(obs);
    const liveKeys = new Set(Object.values(obs.live).flatMap((l) => l.map((x) => x.clientReference).filter((k): k is string => typeof k === 'string')));
    let checked = 0;
    for (const r of obs.runs) {
      if (!r.id || !r.cancels?.length) continue;
      const view = obs.views.get(r.id);
      if (!view) continue;
      checked++;
      const label = `${r.id} (#${r.spec.index}, ${view.status})`;
      const effects = (byAction.get(r.id) ?? []).filter((e) => !e.undo);
      if (r.cancels.some((c) => c.status === 200)) {
        if (view.status !== 'cancelled') v.push(`${label}: cancelled before it started (200), yet it ended ${view.status}`);
        if (effects.length > 0) v.push(`${label}: cancelled before it started, yet ${effects.length} vendor effect(s) exist`);
      } else if (r.cancels.some((c) => c.status === 202) && !['cancelled', 'completed', 'compensated', 'failed'].includes(view.status)) {
        v.push(`${label}: a running cancel was accepted (202), yet it ended ${view.status}`);
      }
      for (const c of r.cancels) if (![200, 202, 409].includes(c.status)) v.push(`${label}: its requester's cancel was answered ${c.status}`);
    }
    for (const [id, view] of obs.views) {
      if (view.status !== 'cancelled') continue;
      checked++;
      for (const e of (byAction.get(id) ?? []).filter((x) => !x.undo)) {
        if (liveKeys.has(`${id}.${e.stepId}`)) v.push(`orphan: cancelled ${id}: step ${e.stepId} (${e.vendor} ${e.operation}) is still in effect`);
      }
    }
    return result(checked, v);
  },
};

export const noSecretsInLogs: Invariant = {
  name: 'no secret in logs or receipts',
  summary: 'no credential, signing key, admin token or bearer token in any log, event or receipt; no passport number in a receipt',
  check(obs) {
    const v: string[] = [];
    let checked = 0;
    for (const t of obs.texts) {
      checked++;
      for (const s of obs.secrets) if (s.value.length >= 12 && t.text.includes(s.value)) v.push(`${s.name} appears in ${t.name}`);
    }
    const passports = obs.runs.flatMap((r) => r.spec.steps.flatMap((s) => ((s.arguments.travelers as { passportNumber?: string }[] | undefined) ?? []).map((t) => t.passportNumber ?? '')));
    for (const t of obs.texts.filter((x) => x.name.startsWith('receipt'))) {
      for (const p of passports) if (p && t.text.includes(p)) v.push(`passport number ${p} appears in ${t.name}`);
    }
    return result(checked, v);
  },
};

export const noUndeclared5xx: Invariant = {
  name: 'no undeclared 5xx',
  summary: 'every 5xx an agent or approver received was a 503 with Retry-After',
  check(obs) {
    const v: string[] = [];
    for (const r of obs.responses) {
      if (r.status >= 500 && !(r.status === 503 && r.retryAfter)) v.push(`${r.method} ${r.path} → ${r.status} ${r.type ?? ''}${r.retryAfter ? '' : ' (no Retry-After)'}`);
    }
    return result(obs.responses.length, v);
  },
};

/** Every invariant, in table order (README "Chaos" lists what each checks). */
/**
 * Halt and saga read halts through a 2 s cache, and a step that passed its guard just before a
 * halt may still be on its way to the vendor (latency phases, a vendor timeout): no forward
 * step of covered work may reach its vendor from this long after the halt was answered until
 * its resume was sent.
 */
export const PAUSE_GRACE_MS = 6_000;
/** A pause held at least this long may outlast the saga's pause retries (6 × 4 s in the storm): compensating then is the rule, not a violation. */
export const PAUSE_OUTLASTS_RETRIES_MS = 20_000;

/** Whether a halt covers one step of a run: by connector, tool, agent or principal. */
function haltCovers(h: Observations['halts'][number], run: ActionRun, tool: string): boolean {
  if (h.scope === 'all') return true;
  if (h.scope === 'connector') return tool.split('.')[0] === h.target;
  if (h.scope === 'tool') return tool === h.target;
  if (h.scope === 'agent') return `chaos-agent-${run.spec.index % 16}` === h.target;
  return h.scope === 'principal' && run.spec.requester === h.target;
}

/**
 * Every vendor effect of a forward step of a storm action, with its planned step and how many
 * attempts its receipt counts (1 when unknown): what `pauses hold` and `breakers hold` judge.
 */
function* forwardEffects(obs: Observations, runs: ReturnType<typeof runsById>) {
  for (const [vendor, list] of Object.entries(obs.effects)) {
    for (const e of list) {
      const k = e.idempotencyKey ? parseEffectKey(e.idempotencyKey) : undefined;
      const run = k ? runs.get(k.actionId) : undefined;
      if (!k || k.undo || !run || e.at === undefined) continue;
      const step = run.spec.steps.find((s) => s.id === k.stepId) ?? (run.spec.single ? run.spec.steps[0] : undefined);
      if (!step) continue;
      const receipt = (obs.receipts.get(k.actionId) ?? [])[0] as { steps?: { stepId?: string; kind?: string; attempts?: number }[] } | undefined;
      const attempts = receipt?.steps?.find((s) => s.stepId === k.stepId && s.kind !== 'compensate')?.attempts ?? (run.spec.single ? receipt?.steps?.[0]?.attempts : undefined) ?? 1;
      yield { vendor, e: { ...e, at: e.at }, k, run, step, attempts };
    }
  }
}

/**
 * `pause` halts: no forward step of covered work reaches its vendor while the pause is in force
 * (vendor effect times against the halt's answer, with {@link PAUSE_GRACE_MS}; a step already
 * retried is left out, since an in-doubt retry runs past any halt by design), and a paused
 * action goes on after the resume: it does not end on ActionPausedError unless its pause outlasted
 * the retries. That nothing ran twice is `side effects = outcomes`.
 */
export const pausesHold: Invariant = {
  name: 'pauses hold',
  summary: 'no forward step of paused work reaches its vendor while the pause is in force; a paused saga goes on after the resume',
  check(obs) {
    const v: string[] = [];
    const runs = runsById(obs);
    const pauses = obs.halts.filter((h) => h.mode === 'pause');
    let checked = 0;
    for (const { vendor, e, k, run, step, attempts } of forwardEffects(obs, runs)) {
      for (const h of pauses) {
        if (!haltCovers(h, run, step.tool)) continue;
        checked++;
        const until = h.resumeSentAt ?? Number.POSITIVE_INFINITY;
        if (e.at > h.at + PAUSE_GRACE_MS && e.at < until && attempts <= 1) {
          v.push(`${k.actionId} (#${run.spec.index}): ${vendor}.${e.operation} of step ${k.stepId} ran ${Math.round((e.at - h.at) / 100) / 10} s into pause ${h.id} (${h.scope} ${h.target})`);
        }
      }
    }
    for (const [id, view] of obs.views) {
      const run = runs.get(id);
      if (!run || !/ActionPausedError/.test(view.statusReason ?? '')) continue;
      checked++;
      const covering = pauses.filter((h) => run.spec.steps.some((s) => haltCovers(h, run, s.tool)));
      const long = covering.some((h) => (h.resumeSentAt ?? Number.POSITIVE_INFINITY) - h.at >= PAUSE_OUTLASTS_RETRIES_MS);
      if (!long) v.push(`${id} (#${run.spec.index}): ended ${view.status} on a pause that was lifted in time (${covering.map((h) => h.id).join(', ') || 'no pause of the storm covers it'})`);
    }
    return result(checked, v);
  },
};

/**
 * A breaker's state is read through a 2 s cache by each function, and a step that passed its
 * check just before the breaker opened may still be on its way to the vendor (latency phases,
 * a vendor timeout): from this long after a move to open, until its reset, nothing new may pass.
 */
export const BREAKER_GRACE_MS = 6_000;

/** The spans (epoch ms) each connector's breaker was open: from a move to open until its reset or the next move. */
export function openSpans(moves: Observations['breakerMoves']): Map<string, { from: number; until: number }[]> {
  const spans = new Map<string, { from: number; until: number }[]>();
  const sorted = [...moves].sort((a, b) => a.at - b.at);
  sorted.forEach((m, i) => {
    if (m.to !== 'open') return;
    const next = sorted.slice(i + 1).find((n) => n.connector === m.connector);
    // Past retryAt the breaker lets trial calls through (half-open is only recorded by the first of them).
    const until = Math.min(m.retryAt ?? Number.POSITIVE_INFINITY, next?.at ?? Number.POSITIVE_INFINITY);
    spans.set(m.connector, [...(spans.get(m.connector) ?? []), { from: m.at, until }]);
  });
  return spans;
}

/**
 * Breakers hold: while a connector's breaker is open (by its `circuit breaker moved` lines, with
 * {@link BREAKER_GRACE_MS}), no forward step of a new or running action reaches that vendor (by
 * the vendors' effect times). Compensations may run; a step already retried is left out, since
 * an attempt in doubt is retried to the end past an open breaker by design.
 */
export const breakersHold: Invariant = {
  name: 'breakers hold',
  summary: 'no forward step reaches a vendor while its circuit breaker is open',
  check(obs) {
    const v: string[] = [];
    const runs = runsById(obs);
    const spans = openSpans(obs.breakerMoves);
    let checked = 0;
    for (const { vendor, e, k, run, step, attempts } of forwardEffects(obs, runs)) {
      const connector = step.tool.slice(0, step.tool.indexOf('.'));
      checked++;
      if (attempts > 1) continue;
      for (const span of spans.get(connector) ?? []) {
        if (e.at > span.from + BREAKER_GRACE_MS && e.at < span.until) {
          v.push(`${k.actionId} (#${run.spec.index}): ${vendor}.${e.operation} of step ${k.stepId} ran ${Math.round((e.at - span.from) / 100) / 10} s after the ${connector} breaker opened (open until ${new Date(span.until).toISOString()})`);
        }
      }
    }
    return result(checked, v);
  },
};

export const INVARIANTS: readonly Invariant[] = [
  terminalWithinBound,
  idempotentRetries,
  sideEffectsMatchOutcomes,
  compensationsOnceInReverse,
  approvalsDecide,
  cancelsHold,
  pausesHold,
  breakersHold,
  spendWithinCaps,
  rateLimitsHold,
  receiptsAndAudit,
  refusalsAudited,
  noSecretsInLogs,
  noUndeclared5xx,
];

/** Checks every invariant; the table rows and whether all held. */
export function checkAll(obs: Observations): { rows: { invariant: Invariant; result: InvariantResult }[]; ok: boolean } {
  const rows = INVARIANTS.map((invariant) => {
    let r: InvariantResult;
    try {
      r = invariant.check(obs);
    } catch (error) {
      r = result(0, [`the check itself failed: ${error instanceof Error ? error.message : String(error)}`]);
    }
    return { invariant, result: r };
  });
  return { rows, ok: rows.every((r) => r.result.violations.length === 0) };
}

/** The table printed after a storm. */
export function formatTable(rows: { invariant: Invariant; result: InvariantResult }[]): string {
  const w = Math.max(...rows.map((r) => r.invariant.name.length));
  const lines = [`${'invariant'.padEnd(w)}  result  checked  violations`, `${'-'.repeat(w)}  ------  -------  ----------`];
  for (const { invariant, result: r } of rows) {
    lines.push(`${invariant.name.padEnd(w)}  ${r.violations.length === 0 ? 'ok    ' : 'FAILED'}  ${String(r.checked).padStart(7)}  ${r.violations.length}`);
  }
  for (const { invariant, result: r } of rows) {
    if (r.violations.length === 0) continue;
    lines.push('', `${invariant.name}:`);
    for (const x of r.violations.slice(0, MAX_LISTED)) lines.push(`  - ${x}`);
    if (r.violations.length > MAX_LISTED) lines.push(`  … and ${r.violations.length - MAX_LISTED} more`);
  }
  return lines.join('\n');
}
