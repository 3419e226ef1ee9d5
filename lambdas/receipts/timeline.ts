import type { Receipt } from './schema';

/**
 * A receipt as a timeline a person can read: who asked, what was decided, who approved,
 * what ran (with vendor references and grants), what was undone, and how it ended.
 */
export function renderTimeline(receipt: Receipt): string {
  const lines: string[] = [];
  const r = receipt.request;
  lines.push(`Receipt ${receipt.actionId}  (schema v${receipt.schemaVersion})`);
  lines.push(`  status      ${receipt.outcome.status}${receipt.outcome.reason ? ` — ${receipt.outcome.reason}` : ''}`);
  lines.push(`  principal   ${r.principal.sub}${r.principal.roles.length ? ` [${r.principal.roles.join(', ')}]` : ''}`);
  lines.push(`  agent       ${r.actor.name}${r.actor.model ? ` (${r.actor.model})` : ''}`);
  lines.push(`  mode        ${r.mode}, ${r.kind}; plan ${r.planHash.slice(0, 16)}…`);
  if (r.reason) lines.push(`  reason      ${r.reason}`);
  if (receipt.traceId) lines.push(`  trace       ${receipt.traceId}`);
  lines.push('');
  type Row = { at: string; text: string };
  const rows: Row[] = [{ at: r.receivedAt, text: `received from ${r.principal.sub} via ${r.actor.name}` }];
  const d = receipt.decision;
  if (d) {
    rows.push({
      at: d.decidedAt,
      text: `decision ${d.outcome}${d.quorum ? ` (quorum ${d.quorum}${d.approverRule ? `, ${d.approverRule}` : ''})` : ''} by ${d.policyIds.join(', ') || 'no policy'}; policy set ${d.policySetVersion.slice(0, 12)}${d.reasons.length ? `; ${d.reasons.join(' ')}` : ''}`,
    });
  }
  for (const a of receipt.approvals) {
    if (a.requestedAt) rows.push({ at: a.requestedAt, text: `approval ${a.approvalId} requested (quorum ${a.quorum ?? '?'}${a.expiresAt ? `, expires ${a.expiresAt}` : ''})` });
    for (const v of a.votes) rows.push({ at: v.at, text: `  vote ${v.decision} by ${v.voter}${v.comment ? `: ${v.comment}` : ''}` });
    for (const v of a.refusedVotes ?? []) {
      rows.push({
        at: v.at,
        text: `  REFUSED ${v.decision} by ${v.voter}${v.roles.length ? ` [${v.roles.join(', ')}]` : ''}: ${v.reason} (${v.policyIds.join(', ')})${v.detail ? ` — ${v.detail}` : ''}`,
      });
    }
    if (a.refusedVotesCapped) rows.push({ at: a.refusedVotes?.at(-1)?.at ?? a.requestedAt ?? r.receivedAt, text: `  further refused votes on ${a.approvalId} were only logged (cap reached)` });
    if (a.decidedAt) rows.push({ at: a.decidedAt, text: `approval ${a.approvalId} ${a.outcome}${a.decidedBy ? ` by ${a.decidedBy}` : ''}${a.reason ? `: ${a.reason}` : ''}` });
  }
  for (const s of receipt.steps) {
    const ref = s.vendorReference ? ` ${Object.entries(s.vendorReference).map(([k, v]) => `${k}=${v}`).join(' ')}` : '';
    const grant = s.grants.at(-1);
    const verb = s.kind === 'compensate' ? `undo ${s.undoes?.stepId ?? s.stepId} with` : `step ${s.stepId}`;
    rows.push({
      at: s.startedAt,
      text: `${verb} ${s.tool}${s.dryRun ? ' (dry run)' : ''}: ${s.status}, ${s.attempts} attempt(s)${s.durationMs !== undefined ? `, ${s.durationMs} ms` : ''}${ref}${grant ? `; grant ${grant.jti} (${grant.scope}) until ${grant.expiresAt}` : ''}${s.error ? `; ${s.error.name}: ${s.error.message}` : ''}`,
    });
    if (s.undoes?.undoneAt) rows.push({ at: s.undoes.undoneAt, text: `  undone: ${s.undoes.tool} ${s.undoes.idempotencyKey}` });
  }
  rows.push({ at: receipt.outcome.settledAt, text: `settled ${receipt.outcome.status} after ${receipt.outcome.durationMs} ms` });
  rows.sort((a, b) => a.at.localeCompare(b.at));
  for (const row of rows) lines.push(`${row.at}  ${row.text}`);
  lines.push('');
  lines.push(
    `events: ${receipt.events.count}, chain ${receipt.events.intact ? 'intact' : 'BROKEN'}${receipt.events.head ? `, head ${receipt.events.head.slice(0, 16)}…` : ''}; ${receipt.redaction.fields} value(s) redacted (key ${receipt.redaction.keyId})`,
  );
  return `${lines.join('\n')}\n`;
}
