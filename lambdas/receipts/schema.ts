import * as z from 'zod';
import { TERMINAL_STATUSES } from '../actions/action';
import { ActionIdSchema } from '../shared/ids';

/**
 * The receipt (schema version 1): the final, immutable record of one action, and the signed
 * digest that chains receipts together. The zod schemas are the source of truth; the JSON
 * Schema published at docs/receipt.schema.json is generated from them (`airlock audit
 * schema`) and a test keeps the two in step.
 *
 * Receipts only ever hold redacted values where a tool declares PII: such a value becomes
 * a `pii:hmac-sha256:<hex>` token (see redact.ts), so equal values stay linkable.
 */

export const RECEIPT_SCHEMA_VERSION = '1';

const IsoTime = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/, 'an ISO 8601 UTC time');
const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);
const Json = z.unknown().meta({ description: 'JSON value; PII fields replaced by pii:hmac-sha256 tokens' });

export const ReceiptGrantSchema = z
  .object({
    jti: z.string(),
    scope: z.string(),
    expiresAt: IsoTime,
  })
  .strict()
  .meta({ description: 'The id, scope and expiry of a single-use grant; never the token.' });

export const ReceiptStepSchema = z
  .object({
    stepId: z.string(),
    kind: z.enum(['forward', 'compensate']),
    tool: z.string(),
    status: z.enum(['in_progress', 'complete', 'failed']),
    attempts: z.number().int().min(0),
    idempotencyKey: z.string(),
    dryRun: z.boolean(),
    input: Json,
    output: Json.optional(),
    error: z.object({ name: z.string(), message: z.string() }).strict().optional(),
    grants: z.array(ReceiptGrantSchema),
    vendorReference: z.record(z.string(), z.string()).optional(),
    startedAt: IsoTime,
    finishedAt: IsoTime.optional(),
    durationMs: z.number().int().min(0).optional(),
    undoes: z
      .object({
        stepId: z.string(),
        tool: z.string(),
        idempotencyKey: z.string(),
        vendorReference: z.record(z.string(), z.string()).optional(),
        undoneAt: IsoTime.optional(),
      })
      .strict()
      .optional()
      .meta({ description: 'For a compensation: the forward step it undid, and when.' }),
  })
  .strict();

export const ReceiptVoteSchema = z
  .object({
    voter: z.string(),
    decision: z.string(),
    comment: z.string().optional(),
    at: IsoTime,
  })
  .strict();

export const ReceiptRefusedVoteSchema = z
  .object({
    voter: z.string().meta({ description: 'The verified sub of whoever tried to vote.' }),
    roles: z.array(z.string()).meta({ description: 'Their roles, from the verified token.' }),
    decision: z.string().meta({ description: 'What they tried: approve or reject.' }),
    reason: z.string().meta({
      description: 'Refusal code: self_approval, grantee, ineligible, stale_plan, vote_changed, closed (after the outcome or the end of the action), expired or halted (a kill-switch halt covers the action).',
    }),
    policyIds: z.array(z.string()).meta({
      description: 'What refused it: the Cedar policy ids when policy decided, an airlock.* rule id when code did (airlock.self_approval, airlock.plan_hash, …).',
    }),
    detail: z.string().optional(),
    planHash: Sha256Hex.optional().meta({ description: 'The plan hash the voter sent.' }),
    at: IsoTime,
  })
  .strict()
  .meta({ description: 'A vote Airlock refused. Recorded once per voter and reason, and only up to a cap per approval (docs/audit.md).' });

export const ReceiptApprovalSchema = z
  .object({
    approvalId: z.string(),
    planHash: z.string().optional(),
    quorum: z.number().int().min(0).optional(),
    approverRule: z.string().nullable().optional(),
    requestedAt: IsoTime.optional(),
    expiresAt: IsoTime.optional(),
    votes: z.array(ReceiptVoteSchema),
    refusedVotes: z.array(ReceiptRefusedVoteSchema).optional().meta({ description: 'Votes refused while the action was open; absent when there were none.' }),
    refusedVotesCapped: z.literal(true).optional().meta({ description: 'More refusals came after the cap and were only logged.' }),
    outcome: z.enum(['pending', 'granted', 'rejected', 'expired', 'cancelled']),
    decidedAt: IsoTime.optional(),
    decidedBy: z.string().optional(),
    reason: z.string().optional(),
  })
  .strict();

export const ReceiptEventSchema = z
  .object({
    seq: z.number().int().min(1),
    type: z.string(),
    at: IsoTime,
    actor: z.string(),
    hash: Sha256Hex,
    prevHash: Sha256Hex,
  })
  .strict();

export const ReceiptSchema = z
  .object({
    schemaVersion: z.literal(RECEIPT_SCHEMA_VERSION),
    actionId: ActionIdSchema,
    request: z
      .object({
        receivedAt: IsoTime,
        principal: z
          .object({
            sub: z.string(),
            roles: z.array(z.string()),
            manager: z.string().optional(),
            department: z.string().optional(),
          })
          .strict(),
        actor: z.object({ name: z.string(), model: z.string().optional() }).strict(),
        /** The agent the verified token named (act.sub, azp or client_id); absent when it named none. */
        agent: z.string().optional().meta({ description: 'The verified agent (token claim act.sub, else azp, else client_id); absent when the token named none.' }),
        /** The delegation the action ran under (its consent receipt is receipts/dt=…/<id>.consent.json). */
        delegationId: z.string().regex(/^dlg_[0-9A-HJKMNP-TV-Z]{26}$/).optional().meta({ description: 'The delegation the action ran under; its consent receipt is in the vault.' }),
        kind: z.enum(['single', 'plan']),
        mode: z.enum(['execute', 'dry_run']),
        reason: z.string().optional(),
        planHash: z.string(),
        envelope: Json,
      })
      .strict(),
    decision: z
      .object({
        outcome: z.enum(['allow', 'deny', 'require_approval']),
        policyIds: z.array(z.string()),
        reasons: z.array(z.string()),
        quorum: z.number().int().min(0),
        approverRule: z.string().nullable(),
        policySetVersion: z.string(),
        /** SHA-256 of the limits file in force (absent in receipts of actions decided before limits existed). */
        limitsVersion: z.string().optional(),
        evaluationMicros: z.number().min(0),
        decidedAt: IsoTime,
      })
      .strict()
      .nullable(),
    approvals: z.array(ReceiptApprovalSchema),
    steps: z.array(ReceiptStepSchema),
    outcome: z
      .object({
        status: z.enum(TERMINAL_STATUSES),
        reason: z.string().optional(),
        result: Json.optional(),
        createdAt: IsoTime,
        settledAt: IsoTime,
        durationMs: z.number().int().min(0),
        /** A dry run: every step was validated against its vendor and nothing was committed. */
        simulated: z.boolean(),
      })
      .strict(),
    traceId: z.string().nullable(),
    events: z
      .object({
        count: z.number().int().min(0),
        head: Sha256Hex.nullable().meta({ description: 'Hash of the last event: the head of the per-action chain.' }),
        intact: z.boolean().meta({ description: 'Whether every event hash recomputed from the ledger when the receipt was written.' }),
        chain: z.array(ReceiptEventSchema),
      })
      .strict(),
    redaction: z
      .object({
        algorithm: z.literal('HMAC-SHA-256'),
        keyId: z.string().regex(/^[0-9a-f]{16}$/),
        fields: z.number().int().min(0).meta({ description: 'How many values were replaced.' }),
      })
      .strict(),
  })
  .strict()
  .meta({
    id: 'AirlockReceipt',
    title: 'Airlock receipt',
    description: 'The immutable record of one action, stored at receipts/dt=YYYY-MM-DD/<actionId>.json in the audit vault.',
  });

export type Receipt = z.infer<typeof ReceiptSchema>;
export type ReceiptStep = z.infer<typeof ReceiptStepSchema>;
export type ReceiptApproval = z.infer<typeof ReceiptApprovalSchema>;
export type ReceiptRefusedVote = z.infer<typeof ReceiptRefusedVoteSchema>;

/** A receipt listed in a digest: its key, SHA-256 of its bytes, size and write time. */
export const DigestEntrySchema = z
  .object({ key: z.string(), sha256: Sha256Hex, size: z.number().int().min(0), lastModified: IsoTime })
  .strict();

export const DigestSchema = z
  .object({
    schemaVersion: z.literal(RECEIPT_SCHEMA_VERSION),
    kind: z.literal('airlock.digest'),
    key: z.string(),
    startTime: IsoTime,
    endTime: IsoTime,
    receipts: z.array(DigestEntrySchema),
    previous: z.object({ key: z.string(), sha256: Sha256Hex, signature: z.string() }).strict().nullable(),
    heartbeat: z
      .object({
        intervalSeconds: z.number().int().min(1).meta({ description: 'The writer runs on this schedule: the next digest ends at most this long after this one (plus the verifier\'s tolerance).' }),
        stopped: z.literal(true).optional().meta({ description: 'The writer stopped cleanly after this digest (local runtime shutdown): no next digest is promised.' }),
        paused: z
          .literal(true)
          .optional()
          .meta({ description: 'The writer wrote the previous digest itself and was paused since (the machine slept): a late digest, with nothing removed in between.' }),
      })
      .strict()
      .nullable()
      .optional()
      .meta({
        description:
          'The schedule the vault keeps, so a verifier can tell a vault that stops early. null: written on demand, nothing promised. Absent: a digest from before heartbeats.',
      }),
    signing: z.object({ algorithm: z.literal('Ed25519'), keyId: z.string(), publicKeyKey: z.string() }).strict(),
    signature: z.string(),
  })
  .strict()
  .meta({ id: 'AirlockDigest', title: 'Airlock digest' });

export type Digest = z.infer<typeof DigestSchema>;
export type DigestEntry = z.infer<typeof DigestEntrySchema>;

/** A published digest-signing public key, `digests/keys/<keyId>.json`. */
export const PublicKeyDocSchema = z
  .object({
    kind: z.literal('airlock.digest-key'),
    algorithm: z.literal('Ed25519'),
    keyId: z.string(),
    /** The raw 32-byte Ed25519 public key, base64url (the JWK `x`). */
    publicKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  })
  .strict();
export type PublicKeyDoc = z.infer<typeof PublicKeyDocSchema>;

/** The JSON Schema of receipts (draft 2020-12), as published in docs/receipt.schema.json. */
export function receiptJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ReceiptSchema, { target: 'draft-2020-12', io: 'output' }) as Record<string, unknown>;
  return {
    $id: 'urn:airlock:schema:receipt:v1',
    ...schema,
    'x-schemaVersion': RECEIPT_SCHEMA_VERSION,
    'x-digestSchema': z.toJSONSchema(DigestSchema, { target: 'draft-2020-12', io: 'output' }),
  };
}
