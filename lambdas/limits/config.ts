import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as z from 'zod';
import { canonicalJson } from '../shared/canonical-json';

/**
 * The limits file (policies/limits.json): how much, not who. Cedar decides who may do what;
 * this file says how many requests (rate limits), how much money (spend caps), when a vendor
 * is cut off (circuit breakers) and who may stop everything (the kill switch). One validated,
 * versioned file beside the policies; its hash is recorded in every receipt like the
 * policy-set version.
 */

/** The file name, beside the Cedar policies. */
export const LIMITS_FILE = 'limits.json';

const Id = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'a lower-case id: letters, digits, dashes (≤ 63)');
const Name = z.string().regex(/^[a-z][a-z0-9_]*$/, 'a connector name');
const ToolName = z.string().regex(/^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$/, 'a tool name `<connector>.<tool>`');
const CurrencyCode = z.string().regex(/^[A-Z]{3}$/, 'an upper-case ISO 4217 code');

/** The policy id of the kill switch's budget (reserved: no rate limit of the file may take it). */
export const KILL_SWITCH_BUDGET_ID = 'kill-switch';

/** Who a rate limit counts for: everyone, or each principal / agent / tool / connector on its own. */
export const RateLimitScopes = ['global', 'principal', 'agent', 'tool', 'connector'] as const;

export const RateLimitSchema = z
  .object({
    /** Stable id, shown in RateLimit-Policy and 429 problems (`violated-policies`). */
    id: Id,
    scope: z.enum(RateLimitScopes),
    /** Requests admitted per window. */
    limit: z.number().int().min(1).max(10_000_000),
    /** Fixed window length in seconds (60 for a burst limit, 86400 for a daily one). */
    windowSeconds: z.number().int().min(1).max(31 * 86_400),
    /** Only for this tool or connector (scope `tool` / `connector`: which ones; absent: each one). */
    only: z.array(z.union([ToolName, Name])).min(1).optional(),
    /**
     * Counter items the window is spread over (rate-limits.ts `shardCount`), each admitting its
     * share of `limit`; absent: 8 for `global` and `connector` (every request touches them), else 1.
     */
    shards: z.number().int().min(1).max(64).optional(),
    /**
     * Units a function instance takes from a shard in one conditional write and spends locally
     * (rate-limits.ts `leaseSize`); absent: 1% of a shard's share, at least 1. 1 is exact to
     * the request; more saves writes and may leave up to `lease - 1` per instance unused.
     */
    lease: z.number().int().min(1).max(10_000).optional(),
  })
  .strict();

/** Whose spend a cap bounds: each principal, each department, or the whole deployment (tenant). */
export const SpendCapScopes = ['principal', 'department', 'tenant'] as const;

export const SpendCapSchema = z
  .object({
    id: Id,
    scope: z.enum(SpendCapScopes),
    period: z.enum(['day', 'month']),
    /** The cap, in major units of `currency` (the base currency when absent). */
    amount: z.number().positive().finite(),
    currency: CurrencyCode.optional(),
    /** Only commit steps through these connectors count toward it (absent: every commit). */
    connectors: z.array(Name).min(1).optional(),
  })
  .strict();

export const BreakerSettingsSchema = z
  .object({
    /** Open after this many failures (5xx, timeouts, Unavailable) ... */
    failures: z.number().int().min(1).max(10_000),
    /** ... within this many seconds. */
    windowSeconds: z.number().int().min(1).max(3_600),
    /** Half-open after this long (jittered by ±jitter of it). */
    resetSeconds: z.number().int().min(1).max(86_400),
    jitter: z.number().min(0).max(0.5),
    /** Close again after this many successes while half-open. */
    halfOpenSuccesses: z.number().int().min(1).max(100),
  })
  .strict();

/** The anomaly guard (guardrails/anomaly.ts): per agent, a sharp departure from its rolling baseline. */
export const AnomalySettingsSchema = z
  .object({
    /** Length of one bucket, in seconds. */
    bucketSeconds: z.number().int().min(5).max(3_600),
    /** About how many past buckets the baseline weighs (an exponentially weighted mean). */
    baselineBuckets: z.number().int().min(2).max(1_440),
    /** Buckets of history an agent needs before it can be flagged (a fresh instance starts cold). */
    minBaselineBuckets: z.number().int().min(1).max(1_440),
    /** A bucket at `factor` times the baseline (and at least its floor) is a sharp departure. */
    factor: z.number().min(1.5).max(1_000),
    /** Per signal, the least a bucket must reach to count; a signal without a floor is not watched. */
    floors: z
      .object({
        requests: z.number().int().min(1).optional(),
        denials: z.number().int().min(1).optional(),
        retries: z.number().int().min(1).optional(),
        /** Money at stake, in major units of the base currency. */
        spend: z.number().positive().optional(),
      })
      .strict()
      .refine((f) => Object.keys(f).length > 0, 'watch at least one signal'),
    /** `alert`: metric and audit event; `halt`: also a kill-switch halt on the agent. */
    action: z.enum(['alert', 'halt']),
    haltMode: z.enum(['stop', 'pause']).default('stop'),
    /** At most one anomaly per agent (and instance) in this many seconds. */
    cooldownSeconds: z.number().int().min(1).max(86_400),
  })
  .strict()
  .refine((a) => a.minBaselineBuckets <= a.baselineBuckets, { path: ['minBaselineBuckets'], message: 'at most `baselineBuckets`' });

export const LimitsSchema = z
  .object({
    /** The file format's version. */
    version: z.literal(1),
    rateLimits: z.array(RateLimitSchema).default([]),
    spendCaps: z.array(SpendCapSchema).default([]),
    breakers: z
      .object({
        default: BreakerSettingsSchema,
        /** Per connector, replacing the default for it. */
        connectors: z.record(Name, BreakerSettingsSchema).default({}),
      })
      .strict(),
    killSwitch: z
      .object({
        /** The role (a value of the verified token's `roles`) that may halt and resume. */
        role: z.string().min(1).max(256),
        /** How quickly a halt reaches every function (the most any function caches halts). */
        propagationSeconds: z.number().int().min(1).max(5),
        /**
         * The kill switch's own rate budget, per principal holding `role`: their calls to list,
         * halt and resume (GET and POST /v1/halts, DELETE /v1/halts/{id}) count against it alone,
         * never against the rate limits above, so agents that use up the global quota cannot
         * lock an operator out of stopping them. Shown as the policy `kill-switch`.
         */
        budget: z
          .object({
            limit: z.number().int().min(1).max(10_000),
            windowSeconds: z.number().int().min(1).max(86_400),
          })
          .strict()
          .default({ limit: 60, windowSeconds: 60 }),
      })
      .strict(),
    /** Absent: no anomaly guard. */
    anomaly: AnomalySettingsSchema.optional(),
  })
  .strict()
  .superRefine((limits, ctx) => {
    for (const [key, list] of [['rateLimits', limits.rateLimits], ['spendCaps', limits.spendCaps]] as const) {
      const seen = new Set<string>();
      list.forEach((entry, i) => {
        if (seen.has(entry.id)) ctx.addIssue({ code: 'custom', path: [key, i, 'id'], message: `duplicate id "${entry.id}"` });
        seen.add(entry.id);
      });
    }
    limits.rateLimits.forEach((r, i) => {
      if (r.id === KILL_SWITCH_BUDGET_ID) {
        ctx.addIssue({ code: 'custom', path: ['rateLimits', i, 'id'], message: `"${KILL_SWITCH_BUDGET_ID}" is the kill switch's own budget (\`killSwitch.budget\`)` });
      }
      if (r.only && r.scope !== 'tool' && r.scope !== 'connector') {
        ctx.addIssue({ code: 'custom', path: ['rateLimits', i, 'only'], message: '`only` applies to tool and connector scopes' });
      }
      // Every shard must admit at least one request, or the window could never reach its limit.
      if (r.shards !== undefined && r.shards > r.limit) {
        ctx.addIssue({ code: 'custom', path: ['rateLimits', i, 'shards'], message: `at most \`limit\` (${r.limit}) shards` });
      }
    });
  });
export type Limits = z.infer<typeof LimitsSchema>;

/** The kill switch's budget as a rate limit: per principal, exact to the request (lease 1). */
export function killSwitchBudget(limits: Limits): RateLimit {
  const { limit, windowSeconds } = limits.killSwitch.budget;
  return { id: KILL_SWITCH_BUDGET_ID, scope: 'principal', limit, windowSeconds, lease: 1 };
}
export type RateLimit = z.infer<typeof RateLimitSchema>;
export type SpendCap = z.infer<typeof SpendCapSchema>;
export type BreakerSettings = z.infer<typeof BreakerSettingsSchema>;
export type AnomalySettings = z.infer<typeof AnomalySettingsSchema>;

/** The limits file does not validate: every problem, located by its JSON path. */
export class InvalidLimitsError extends Error {
  constructor(
    readonly file: string,
    readonly problems: { path: string; message: string }[],
  ) {
    super(`${file} is invalid:\n${problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`);
    this.name = 'InvalidLimitsError';
  }
}

/** The parsed limits and the version hash recorded in receipts (SHA-256 of its canonical JSON). */
export interface LoadedLimits {
  limits: Limits;
  version: string;
}

/** Parses the text of a limits file, or throws InvalidLimitsError naming each bad field. */
export function parseLimits(text: string, file = LIMITS_FILE): LoadedLimits {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new InvalidLimitsError(file, [{ path: '(file)', message: `not JSON: ${cause instanceof Error ? cause.message : String(cause)}` }]);
  }
  const parsed = LimitsSchema.safeParse(raw);
  if (!parsed.success) {
    throw new InvalidLimitsError(
      file,
      parsed.error.issues.map((i) => ({ path: i.path.length > 0 ? i.path.join('.') : '(root)', message: i.message })),
    );
  }
  return { limits: parsed.data, version: createHash('sha256').update(canonicalJson(parsed.data)).digest('hex') };
}

/**
 * The shipped limits file, beside the source. A Lambda bundle does not sit there: its
 * composition root reads the file the stack names (AIRLOCK_LIMITS_FILE).
 */
export function defaultLimitsFile(): string {
  return fileURLToPath(new URL(`../../policies/${LIMITS_FILE}`, import.meta.url));
}

/**
 * The limits file as validated at synth (lib/constructs/function-bundle.ts writes it beside
 * limits.json in every function's asset): the parsed limits, their version, and the SHA-256
 * of the exact text they were parsed from. A cold start that finds it, for that very text,
 * skips the schema's first parse (zod compiles a validator per object schema on its first
 * use: ~10 ms of every function's first request, bench/cold-start.ts).
 */
export const COMPILED_LIMITS_FILE = 'limits.compiled.json';

/** What {@link COMPILED_LIMITS_FILE} holds. */
export interface CompiledLimits extends LoadedLimits {
  /** SHA-256 (hex) of the limits file's text these were parsed from. */
  source: string;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Validates a limits file's text (throws InvalidLimitsError as parseLimits does) into its compiled form. */
export function compileLimits(text: string, file = LIMITS_FILE): CompiledLimits {
  return { source: sha256(text), ...parseLimits(text, file) };
}

/**
 * The compiled limits beside `file` when they were compiled from `text` exactly; otherwise
 * undefined (no compiled file, another text, unreadable), and the caller parses the text.
 */
function compiledFor(file: string, text: string): LoadedLimits | undefined {
  const compiledFile = join(dirname(file), COMPILED_LIMITS_FILE);
  if (!existsSync(compiledFile)) return undefined;
  try {
    const compiled = JSON.parse(readFileSync(compiledFile, 'utf8')) as Partial<CompiledLimits>;
    if (compiled.source !== sha256(text) || typeof compiled.version !== 'string' || typeof compiled.limits !== 'object' || compiled.limits === null) return undefined;
    return { limits: compiled.limits, version: compiled.version };
  } catch {
    return undefined;
  }
}

/**
 * Reads and validates a limits file (the shipped one by default). When the limits compiled
 * at synth sit beside it, for this very text, they are used as they are: validated by the
 * same schema when the asset was built (a synth never ships an invalid file).
 */
export function readLimitsFile(file: string = defaultLimitsFile()): LoadedLimits {
  const text = readFileSync(file, 'utf8');
  return compiledFor(file, text) ?? parseLimits(text, file);
}
