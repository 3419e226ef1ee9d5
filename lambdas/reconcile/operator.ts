import * as z from 'zod';
import type { LoadedLimits } from '../limits/config';
import type { HaltStore } from '../ports/guardrails';
import type { Principal } from '../shared/principal';
import { reconcile, type ReconcileDeps, type ReconciliationReport } from './reconcile';

/**
 * `POST /v1/reconciliations` (and so `airlock reconcile`): an operator's run, with `fix`
 * if asked. Fixing runs compensations against vendors, so it takes the kill-switch role
 * (limits.json `killSwitch.role`) — the people trusted to stop and undo work — and a refusal
 * is audited in the kill switch's trail like any other refused kill-switch operation.
 */

/** The request body: every field optional, nothing else accepted. */
export const ReconcileRequestSchema = z
  .object({
    fix: z.boolean().optional(),
    days: z.number().int().min(1).max(31).optional(),
  })
  .strict();
export type ReconcileRequest = z.infer<typeof ReconcileRequestSchema>;

/** The caller lacks the role that may run reconciliation by hand. */
export class ReconcileForbiddenError extends Error {
  constructor(
    readonly role: string,
    options?: { cause?: unknown },
  ) {
    super(`Running reconciliation needs the "${role}" role (limits.json killSwitch.role).`, options);
    this.name = 'ReconcileForbiddenError';
  }
}

/** The request body does not match {@link ReconcileRequestSchema}. */
export class ReconcileRequestInvalidError extends Error {
  constructor(
    readonly violations: { path: string; message: string }[],
    options?: { cause?: unknown },
  ) {
    super(`Invalid reconciliation request: ${violations.map((v) => `${v.path} ${v.message}`).join('; ')}`, options);
    this.name = 'ReconcileRequestInvalidError';
  }
}

export interface OperatorReconcileDeps {
  reconcile: ReconcileDeps;
  limits: LoadedLimits;
  halts: Pick<HaltStore, 'recordHaltEvent'>;
}

/** Runs one reconciliation for `caller` (role checked first, body validated, nothing run on refusal). */
export async function runReconciliation(deps: OperatorReconcileDeps, caller: Principal, body: unknown): Promise<ReconciliationReport> {
  const role = deps.limits.limits.killSwitch.role;
  if (!caller.roles.includes(role)) {
    await deps.halts.recordHaltEvent({
      type: 'halt.refused',
      at: deps.reconcile.now().toISOString(),
      actor: caller.sub,
      data: { attempted: 'reconcile', roles: caller.roles.slice(0, 32).map((r) => r.slice(0, 128)), requiredRole: role },
    });
    deps.reconcile.logger.warn('reconcile refused', { caller: caller.sub, requiredRole: role });
    throw new ReconcileForbiddenError(role);
  }
  const parsed = ReconcileRequestSchema.safeParse(body ?? {});
  if (!parsed.success) throw new ReconcileRequestInvalidError(parsed.error.issues.map((i) => ({ path: `/${i.path.join('/')}`, message: i.message })));
  return reconcile(deps.reconcile, { ...parsed.data, actor: caller.sub });
}
