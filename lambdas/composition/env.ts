import * as z from 'zod';
import { DEFAULT_APPROVAL_TIMEOUT_SECONDS } from '../approvals/approvals';
import { DEFAULT_GRANT_TTL_SECONDS, MAX_GRANT_TTL_SECONDS } from '../steps/grants';

/**
 * The environment contract between the stack and the functions, written once: the CDK
 * constructs set variables by these names (lib/ imports them), and each function parses its
 * own with one zod schema at cold start, so a missing or malformed variable fails loudly
 * there, naming the variable, never on the first request.
 */
export const EnvNames = {
  ledgerTable: 'LEDGER_TABLE',
  stateMachineArn: 'STATE_MACHINE_ARN',
  runStateMachineArn: 'RUN_STATE_MACHINE_ARN',
  idempotencyRetentionHours: 'IDEMPOTENCY_RETENTION_HOURS',
  connectorFunctions: 'CONNECTOR_FUNCTIONS',
  connectorName: 'CONNECTOR_NAME',
  vendorBaseUrl: 'VENDOR_BASE_URL',
  vendorTimeoutMs: 'VENDOR_TIMEOUT_MS',
  grantTtlSeconds: 'GRANT_TTL_SECONDS',
  grantKeySecret: 'GRANT_SIGNING_KEY_SECRET',
  vendorSecret: 'VENDOR_CREDENTIAL_SECRET',
  cursorKeySecret: 'CURSOR_KEY_SECRET',
  approvalTimeoutSeconds: 'APPROVAL_TIMEOUT_SECONDS',
  approvalEventBus: 'APPROVAL_EVENT_BUS',
  auditBucket: 'AUDIT_BUCKET',
  auditRetentionDays: 'AUDIT_RETENTION_DAYS',
  auditLookbackDays: 'AUDIT_DIGEST_LOOKBACK_DAYS',
  auditDigestIntervalSeconds: 'AUDIT_DIGEST_INTERVAL_SECONDS',
  vendorBaseUrls: 'VENDOR_BASE_URLS',
  policyDir: 'AIRLOCK_POLICY_DIR',
  limitsFile: 'AIRLOCK_LIMITS_FILE',
  jwtIssuer: 'JWT_ISSUER',
  jwtAudience: 'JWT_AUDIENCE',
  requireDelegation: 'REQUIRE_DELEGATION',
  consoleUrl: 'CONSOLE_URL',
  readFunction: 'READ_FUNCTION_ARN',
  receiptsFunction: 'RECEIPTS_FUNCTION_ARN',
  readConnectorTimeoutMs: 'READ_CONNECTOR_TIMEOUT_MS',
} as const;

const N = EnvNames;

/** A function's environment does not satisfy its schema (the stack and the code disagree). */
export class ConfigurationError extends Error {
  constructor(readonly variables: string[]) {
    // Names only: a value may be a secret's name or an endpoint with credentials in it.
    super(`Invalid or missing environment variables: ${variables.join(', ')}`);
    this.name = 'ConfigurationError';
  }
}

/** Parses `env` with a function's schema or throws ConfigurationError naming every bad variable. */
export function readEnv<T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv = process.env): z.infer<T> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) throw new ConfigurationError([...new Set(parsed.error.issues.map((i) => String(i.path[0] ?? '(env)')))]);
  return parsed.data;
}

/** Every function reads the limits file (rate limits, spend caps, breakers, the kill switch). */
const Table = z.object({ [N.ledgerTable]: z.string().min(1), [N.limitsFile]: z.string().min(1).optional() });
const PolicyDir = z.object({ [N.policyDir]: z.string().min(1).optional() });
const CursorKey = z.object({ [N.cursorKeySecret]: z.string().min(1) });

const jsonRecord = z.string().transform((s, ctx) => {
  try {
    return z.record(z.string(), z.string().min(1)).parse(JSON.parse(s));
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be a JSON object of connector → function ARN' });
    return z.NEVER;
  }
});

/** The intake function (front door: tools, actions, decisions). */
export const IntakeEnv = Table.extend(PolicyDir.shape).extend(CursorKey.shape).extend({
  [N.stateMachineArn]: z.string().startsWith('arn:'),
  /** The Express run, for actions policy allowed with no approval (absent: every action starts in the saga). */
  [N.runStateMachineArn]: z.string().startsWith('arn:').optional(),
  // The authorizer's issuer and audiences (JSON array), for the routes that verify their own tokens (MCP).
  [N.jwtIssuer]: z.string().min(1),
  [N.consoleUrl]: z.string().url().optional(),
  [N.jwtAudience]: z.string().transform((s, ctx) => {
    try {
      return z.array(z.string().min(1)).min(1).parse(JSON.parse(s));
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a JSON array of audiences' });
      return z.NEVER;
    }
  }),
  [N.idempotencyRetentionHours]: z.coerce.number().int().min(24).default(24),
  /** `requireDelegation`: an action without a matching, live delegation is refused. Secure by default. */
  [N.requireDelegation]: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  /** Consent and revocation receipts go to the audit vault (receipts/dt=…/dlg_… only). */
  [N.auditBucket]: z.string().min(3),
  [N.auditRetentionDays]: z.coerce.number().int().min(1).max(36_500),
  /** The saga function, whose RunRead serves the read fast path; unset: every action starts the Standard saga. */
  [N.readFunction]: z.string().startsWith('arn:').optional(),
});

/** The saga function (EvaluatePolicy, IssueGrant and the saga's bookkeeping tasks). */
export const SagaEnv = Table.extend(PolicyDir.shape).extend({
  /** `{ "<connector>": "<function arn>" }`: the function IssueGrant names for each step. */
  [N.connectorFunctions]: jsonRecord,
  [N.grantTtlSeconds]: z.coerce.number().int().min(30).max(MAX_GRANT_TTL_SECONDS).default(DEFAULT_GRANT_TTL_SECONDS),
  /** The receipts function RunRead invokes for the read fast path (unset: RunRead hands every read to the saga). */
  [N.receiptsFunction]: z.string().startsWith('arn:').optional(),
  /** How long RunRead waits for a connector: below this function's own timeout, so it can still hand off. */
  [N.readConnectorTimeoutMs]: z.coerce.number().int().min(500).max(900_000).default(7_000),
});

/** The approvals function (the saga's RequestApproval task and the approvers' routes). */
export const ApprovalsEnv = Table.extend(PolicyDir.shape).extend(CursorKey.shape).extend({
  /**
   * The stack sets it from `approvalTimeoutSeconds`; WaitForApproval waits that long plus this
   * function's own Task time (saga/timeouts.ts), so the stored expiry comes first.
   */
  [N.approvalTimeoutSeconds]: z.coerce.number().int().min(60).max(31_536_000).default(DEFAULT_APPROVAL_TIMEOUT_SECONDS),
  /** EventBridge bus for `airlock.approval.requested`; the account's default bus when unset. */
  [N.approvalEventBus]: z.string().min(1).max(1600).default('default'),
});

/** A connector function (one per connector: the steps capability). */
export const StepsEnv = Table.extend({
  [N.connectorName]: z.string().regex(/^[a-z][a-z0-9_]*$/),
  /** The vendor's base URL; the connector's default when absent. */
  [N.vendorBaseUrl]: z.string().url().optional(),
  [N.vendorTimeoutMs]: z.coerce.number().int().min(100).max(60_000).default(8_000),
});

/** The receipts function (WriteReceipt, WriteDigest). */
export const ReceiptsEnv = Table.extend({
  [N.auditBucket]: z.string().min(3),
  [N.auditRetentionDays]: z.coerce.number().int().min(1).max(36_500),
  /** Days between an action's creation and its receipt at most (the saga's execution timeout + a margin). */
  [N.auditLookbackDays]: z.coerce.number().int().min(1).max(400).default(4),
  /** The digest schedule (the stack's EventBridge rule), declared in every digest as its heartbeat. */
  [N.auditDigestIntervalSeconds]: z.coerce.number().int().min(60).max(86_400).default(3600),
});

/** The approvals gauge function (a schedule's target): only the ledger's status index. */
export const ApprovalGaugeEnv = Table;

/**
 * The delegation expiry sweep (a schedule's target): the ledger (delegations, the actions it
 * cancels), the saga's task tokens, and expiry receipts in the vault.
 */
export const DelegationExpiryEnv = Table.extend({
  [N.auditBucket]: z.string().min(3),
  [N.auditRetentionDays]: z.coerce.number().int().min(1).max(36_500),
});

/** The reconcile function (the schedule's target): every reconciled vendor, the ledger, the vault. */
export const ReconcileEnv = Table.extend({
  [N.auditBucket]: z.string().min(3),
  [N.auditRetentionDays]: z.coerce.number().int().min(1).max(36_500),
  /** Vendor base URL per connector (JSON); a connector's default when absent. */
  [N.vendorBaseUrls]: z
    .string()
    .default('{}')
    .transform((text, ctx) => {
      const parsed = z.record(z.string().regex(/^[a-z][a-z0-9_]*$/), z.string().url()).safeParse(JSON.parse(text));
      if (!parsed.success) {
        ctx.addIssue({ code: 'custom', message: 'a JSON object of connector name to URL' });
        return z.NEVER;
      }
      return parsed.data;
    }),
  [N.vendorTimeoutMs]: z.coerce.number().int().min(100).max(60_000).default(8_000),
  /** The saga, to which the schedule hands actions a dead workflow left unfinished (saga/resume.ts). */
  [N.stateMachineArn]: z.string().startsWith('arn:').optional(),
});
