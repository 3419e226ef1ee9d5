import type * as Api from './api-types';

/**
 * The API's answers as the console reads them: every type here is derived from the published
 * contract (api-types.ts, generated from docs/openapi.json by `npm run openapi`, which the zod
 * schemas in lambdas/api/schemas.ts generate), so a wire change the console depends on breaks
 * `tsc -p console`. Types only: nothing of zod or the server reaches the bundle.
 */

export type ActionView = Api.Action;
export type ActionStep = Api.ActionStep;
export type ApprovalListItem = Api.ApprovalListItem;
export type ApprovalPreview = Api.ApprovalPreview;
export type PreviewStep = Api.PreviewStep;
export type StepDecision = Api.StepDecision;
export type Vote = Api.Vote;
export type DecisionResult = Api.ApprovalDecisionResult;
export type ReceiptView = Api.Receipt;
export type HaltView = Api.Halt;
export type HaltList = Api.HaltList;
export type KpiSummary = Api.KpiSummary;
export type ActionPage = Api.ActionPage;
export type ApprovalPage = Api.ApprovalPage;
export type ActionStatus = Api.ActionStatus;
/** Money as the API writes it (an amount at stake). */
export type MoneyView = NonNullable<Api.PreviewStep['amount']>;
/** The agent an action names (its actor). */
export type Agent = Api.Action['actor'];

/** Statuses after which an action changes no more (checked against the API's status list). */
export const TERMINAL = ['completed', 'denied', 'rejected', 'expired', 'failed', 'compensated', 'cancelled'] as const satisfies readonly ActionStatus[];
