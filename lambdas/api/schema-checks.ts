import type { z } from 'zod';
import type { StoredDecision } from '../actions/action';
import type { stepViews } from '../actions/view';
import type { DecisionResult } from '../approvals/approvals';
import type { PreviewStep, PreviewViewer } from '../approvals/preview';
import type { ShadowOutcome, StepDecision } from '../policy/types';
import type { CatalogEntry } from '../tools/catalog';
import type {
  ActionStepSchema,
  DecisionResultSchema,
  DecisionSchema,
  PreviewStepSchema,
  PreviewViewerSchema,
  ShadowOutcomeSchema,
  StepDecisionSchema,
  ToolSchema,
} from './schemas';

/*
 * Compile-time agreement between the published wire schemas (schemas.ts) and the interfaces
 * the capabilities own. A change on either side that makes them disagree fails `tsc` here
 * instead of silently changing the contract. A leaf module: nothing imports it, so the
 * schemas need not import the capabilities (no import cycle).
 */
// These shapes are declared as interfaces in their own modules; a change on either side
// that makes them disagree fails `tsc` here instead of silently changing the contract.

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;

/** Never used at run time: the type checker evaluates it. */
export type ApiSchemaChecks = [
  Assert<Same<CatalogEntry, z.infer<typeof ToolSchema>>>,
  Assert<Same<PreviewStep, z.infer<typeof PreviewStepSchema>>>,
  Assert<Same<PreviewViewer, z.infer<typeof PreviewViewerSchema>>>,
  Assert<Same<DecisionResult, z.infer<typeof DecisionResultSchema>>>,
  Assert<Same<StoredDecision, z.infer<typeof DecisionSchema>>>,
  Assert<Same<StepDecision, z.infer<typeof StepDecisionSchema>>>,
  Assert<Same<ShadowOutcome, z.infer<typeof ShadowOutcomeSchema>>>,
  Assert<Same<ReturnType<typeof stepViews>[number], z.infer<typeof ActionStepSchema>>>,
];
