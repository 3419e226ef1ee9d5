/**
 * The parts of the API's answers the console reads (docs/openapi.json has them all). Kept
 * here rather than imported from lambdas/api so the bundle carries no zod and no server code.
 */

export interface MoneyView {
  amount: number;
  currency: string;
}

export interface Vote {
  voter: string;
  decision: 'approve' | 'reject';
  comment?: string;
  at: string;
}

export interface Agent {
  name: string;
  model?: string;
  [k: string]: unknown;
}

export interface ApprovalSummary {
  id: string;
  actionId: string;
  status: string;
  planHash: string;
  quorum: number;
  approverRule: string | null;
  requester: string;
  approvalsSoFar: number;
  expiresAt: string;
  expired: boolean;
  createdAt: string;
  outcome?: { by: string; reason: string; at: string };
  requestedBy: { principal: string; agent: Agent };
  reason: string | null;
}

export interface ApprovalListItem extends ApprovalSummary {
  tools: string[];
  canDecide: boolean;
}

export interface StepDecision {
  id: string;
  outcome: string;
  policyIds: string[];
  reasons: string[];
  quorum: number;
  approverRule: string | null;
}

export interface PreviewStep {
  index: number;
  id: string;
  tool: string;
  tier: string;
  vendor: string;
  plain: string;
  arguments: unknown;
  piiMasked: boolean;
  amount: MoneyView | null;
  compensation: { tool: string; description: string } | null;
}

export interface ApprovalPreview extends ApprovalSummary {
  mode: string;
  steps: PreviewStep[];
  amountAtStake: MoneyView[];
  policies: { policyIds: string[]; reasons: string[]; policySetVersion: string | null; steps: StepDecision[] };
  votes: Vote[];
  viewer: { canDecide: boolean; refusal?: string; vote?: { decision: string; at: string } };
}

export interface DecisionResult {
  approvalId: string;
  status: string;
  vote: Vote;
  recorded: boolean;
  approvalsSoFar: number;
  quorum: number;
}

export interface ActionStep {
  id: string;
  tool: string;
  status: string;
  attempts?: number;
  output?: unknown;
  error?: { name: string; message: string };
  startedAt?: string;
  finishedAt?: string;
  compensation?: { tool: string; status: string; finishedAt?: string };
}

export interface ActionView {
  id: string;
  status: string;
  statusReason?: string;
  kind: string;
  mode: string;
  principal: { sub: string };
  actor: Agent;
  reason?: string;
  planHash: string;
  steps: ActionStep[];
  decision: { outcome: string; policyIds: string[]; reasons: string[]; quorum: number; approverRule: string | null; decidedAt: string } | null;
  approvals: string[];
  receipt: string | null;
  result: unknown;
  createdAt: string;
  updatedAt: string;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface ReceiptView {
  actionId: string;
  key: string;
  sha256: string;
  size: number;
  body: string;
  verification: {
    status: 'verified' | 'pending' | 'failed';
    checksum: 'match' | 'mismatch' | 'not-listed';
    signature: 'valid' | 'invalid' | 'not-checked';
    digest: { key: string; endTime: string; keyId: string } | null;
    latestDigest: string | null;
    detail: string;
  };
}

/** Statuses after which an action changes no more. */
export const TERMINAL = ['completed', 'denied', 'rejected', 'expired', 'failed', 'compensated', 'cancelled'];

/** A kill-switch halt, as GET/POST/DELETE /v1/halts show it (lambdas/api/schemas.ts HaltViewSchema). */
export interface HaltView {
  id: string;
  scope: 'all' | 'connector' | 'tool' | 'agent' | 'principal';
  target: string | null;
  mode: 'stop' | 'pause';
  reason: string;
  status: 'active' | 'resumed';
  createdBy: string;
  createdAt: string;
  resumedBy: string | null;
  resumedAt: string | null;
  resumeReason: string | null;
}
