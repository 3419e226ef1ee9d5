import * as z from 'zod';
import { RECEIPT_SCHEMA_VERSION } from './schema';

/**
 * Consent, revocation and expiry receipts: what a principal granted an agent (a delegation),
 * when it was withdrawn and when it ran out, written once to the audit vault beside the action
 * receipts (`receipts/dt=YYYY-MM-DD/<delegationId>.consent.json`, `….revocation.json` and
 * `….expiry.json`), so the same
 * signed digests list them and `airlock audit verify` checks them like any receipt.
 */

export const DelegationIdPattern = /^dlg_[0-9A-HJKMNP-TV-Z]{26}$/;
const DelegationId = z.string().regex(DelegationIdPattern);
const IsoTime = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/, 'an ISO 8601 UTC time');
const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

/** `receipts/dt=<day of grant>/<id>.consent.json`. */
export function consentReceiptKey(id: string, grantedAt: string): string {
  return `receipts/dt=${grantedAt.slice(0, 10)}/${id}.consent.json`;
}

/** `receipts/dt=<day of revocation>/<id>.revocation.json`. */
export function revocationReceiptKey(id: string, revokedAt: string): string {
  return `receipts/dt=${revokedAt.slice(0, 10)}/${id}.revocation.json`;
}

/** `receipts/dt=<day of expiry>/<id>.expiry.json`: the day it expired, not the day it was swept, so every sweeper names one key. */
export function expiryReceiptKey(id: string, expiresAt: string): string {
  return `receipts/dt=${expiresAt.slice(0, 10)}/${id}.expiry.json`;
}

/** Whether a vault key is a consent, revocation or expiry receipt (not an action receipt). */
export function isDelegationReceiptKey(key: string): boolean {
  return /\/dlg_[0-9A-HJKMNP-TV-Z]{26}\.(consent|revocation|expiry)\.json$/.test(key);
}

export const ConsentReceiptSchema = z
  .object({
    schemaVersion: z.literal(RECEIPT_SCHEMA_VERSION),
    kind: z.literal('airlock.consent'),
    delegationId: DelegationId,
    /** Who consented: the verified principal. */
    principal: z.object({ sub: z.string(), roles: z.array(z.string()) }).strict(),
    /** Which agent (the verified agent claim it will be matched against). */
    agent: z.string(),
    scope: z.object({ tools: z.array(z.string()), connectors: z.array(z.string()) }).strict(),
    budget: z.object({ amount: z.number().min(0), currency: z.string(), period: z.enum(['day', 'month', 'total']) }).strict().nullable(),
    rules: z.object({ askForCommit: z.boolean() }).strict(),
    purpose: z.string().nullable(),
    grantedAt: IsoTime,
    expiresAt: IsoTime,
    /** The policy set and limits file in force when consent was given. */
    policySetVersion: Sha256Hex,
    limitsVersion: Sha256Hex,
  })
  .strict()
  .meta({ id: 'AirlockConsentReceipt', description: 'A principal\'s consent to a delegation, stored at receipts/dt=YYYY-MM-DD/<delegationId>.consent.json.' });
export type ConsentReceipt = z.infer<typeof ConsentReceiptSchema>;

export const RevocationReceiptSchema = z
  .object({
    schemaVersion: z.literal(RECEIPT_SCHEMA_VERSION),
    kind: z.literal('airlock.revocation'),
    delegationId: DelegationId,
    principal: z.string(),
    agent: z.string(),
    revokedBy: z.string(),
    revokedAt: IsoTime,
    reason: z.string(),
    /** The consent this withdraws. */
    consentReceiptKey: z.string(),
  })
  .strict()
  .meta({ id: 'AirlockRevocationReceipt', description: 'The withdrawal of a delegation, stored at receipts/dt=YYYY-MM-DD/<delegationId>.revocation.json.' });
export type RevocationReceipt = z.infer<typeof RevocationReceiptSchema>;

export const ExpiryReceiptSchema = z
  .object({
    schemaVersion: z.literal(RECEIPT_SCHEMA_VERSION),
    kind: z.literal('airlock.expiry'),
    delegationId: DelegationId,
    principal: z.string(),
    agent: z.string(),
    /** When consent ran out (the delegation's expiresAt). */
    expiredAt: IsoTime,
    /** When the expiry sweep ended it: pending approvals cancelled, running work stopped from then on. */
    sweptAt: IsoTime,
    /** The consent that ran out. */
    consentReceiptKey: z.string(),
  })
  .strict()
  .meta({ id: 'AirlockExpiryReceipt', description: 'The end of a delegation at its expiry, stored at receipts/dt=YYYY-MM-DD/<delegationId>.expiry.json (the day it expired).' });
export type ExpiryReceipt = z.infer<typeof ExpiryReceiptSchema>;

/** Checks a consent, revocation or expiry receipt's bytes (already canonical JSON) against its schema and key; a sentence when it fails. */
export function checkDelegationReceipt(key: string, value: unknown): string | undefined {
  const kind = key.endsWith('.consent.json') ? 'consent' : key.endsWith('.expiry.json') ? 'expiry' : 'revocation';
  const parsed =
    kind === 'consent' ? ConsentReceiptSchema.safeParse(value) : kind === 'expiry' ? ExpiryReceiptSchema.safeParse(value) : RevocationReceiptSchema.safeParse(value);
  if (!parsed.success) return `the ${kind} receipt does not match its schema`;
  const d = parsed.data;
  const expected =
    d.kind === 'airlock.consent'
      ? consentReceiptKey(d.delegationId, d.grantedAt)
      : d.kind === 'airlock.expiry'
        ? expiryReceiptKey(d.delegationId, d.expiredAt)
        : revocationReceiptKey(d.delegationId, d.revokedAt);
  return expected === key ? undefined : `the ${kind} receipt belongs at ${expected}`;
}
