import type { z } from 'zod';

/**
 * The connector SDK. A connector is one typed object: its name, how to build its vendor
 * client, and its tools. The registry, the tool catalog, the policy engine, the saga and the
 * CDK stack all read these objects; nothing else describes a tool.
 */

/** read: no side effect. draft: reversible by nature (nothing committed). commit: a side effect that needs a compensation. */
export type Tier = 'read' | 'draft' | 'commit';

export interface Money {
  /** Major units (e.g. dollars), as a decimal number. */
  amount: number;
  /** ISO 4217 code, upper case. */
  currency: string;
}

/** Structured logger handed to tools. Never pass a credential or grant to it. */
export interface ToolLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/**
 * The verified grant a step runs under (see the credential broker). Connectors receive it
 * already verified; they read it to know on whose behalf they act.
 */
export interface VerifiedGrant {
  jti: string;
  /** The principal. */
  sub: string;
  /** The agent (RFC 8693 actor). */
  act: { sub: string };
  /** The connector name. */
  aud: string;
  /** The one operation allowed: `<connector>.<tool>`. */
  scope: string;
  actionId: string;
  stepId: string;
  planHash: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
}

export interface ToolContext {
  /** Deterministic per step (action id + step id): sent to the vendor on every state-changing call. */
  idempotencyKey: string;
  /** The verified grant the step runs under; undefined only for catalog reads outside a saga. */
  grant: VerifiedGrant | undefined;
  logger: ToolLogger;
  /** Epoch milliseconds by which the tool must return. */
  deadline: number;
  /** Validate against the vendor (quotes, availability) without committing anything. */
  dryRun: boolean;
}

/** How the compensating tool of a commit step is called, from the forward step's input and output. */
export interface Compensation<I, O> {
  /** Short name of a tool of the same connector. */
  tool: string;
  input: (input: I, output: O) => unknown;
}

export interface ToolDefinition<I = unknown, O = unknown, C = unknown> {
  /** Short name, unique within the connector: `hold_seat`. The full name is `travel.hold_seat`. */
  name: string;
  /** One or two sentences an LLM reads to choose the tool. */
  description: string;
  tier: Tier;
  input: z.ZodType<I>;
  output: z.ZodType<O>;
  /** Required for commit tools that can be undone. */
  compensation?: Compensation<I, O>;
  /** Dotted paths (`traveler.email`, `items.*.note`) of personal data, redacted in receipts and previews. */
  pii?: { input?: string[]; output?: string[] };
  /** Money at stake, read from the validated input. */
  money?: (input: I) => Money | undefined;
  /** The counterparty this call pays or orders from (deny/allow lists), read from the input. */
  counterparty?: (input: I) => string | undefined;
  /** The person whose access changes (IAM grants), read from the input: policy keeps requesters from granting themselves. */
  grantee?: (input: I) => string | undefined;
  /** Whether this tool only exists to undo another one (never offered for planning on its own). */
  compensationOnly?: boolean;
  execute: (client: C, input: I, ctx: ToolContext) => Promise<O>;
  /**
   * Dry run of a tool with side effects: validates against the vendor (quote, availability,
   * validation endpoint) and commits nothing. Read tools need none: their dry run is `execute`.
   */
  preview?: (client: C, input: I, ctx: ToolContext) => Promise<DryRunResult>;
}

/** What a dry run reports: the vendor's verdict on the call, with nothing committed. */
export interface DryRunResult {
  dryRun: true;
  /** What was checked at the vendor: `availability`, `quote`, `validation`, `lookup`. */
  check: string;
  /** The vendor's price for the operation, when it has one. */
  quote?: Money;
  /** Facts a reviewer needs to see (never credentials). */
  details?: Record<string, unknown>;
}

export interface VendorClientConfig {
  baseUrl: string;
  /** The connector's own vendor credential, read through the secrets port. */
  credential: string;
  /** Per-call timeout in milliseconds. */
  timeoutMs?: number;
  /** HTTP implementation; global `fetch` unless given. */
  fetch?: typeof fetch;
}

/**
 * What the vendor holds for one of Airlock's commit steps (or for a record Airlock never
 * saw): the object, whether its effect is still in force, and the forward tool's output
 * rebuilt from it, so the tool's compensation can be called on it.
 */
export interface VendorRecord {
  /** Short name of the forward commit tool that makes such records (`book_flight`). */
  tool: string;
  /** The vendor's id of the object (`bkg_…`). */
  id: string;
  /** The client reference (the step's idempotency key) it was made with; null when made without one. */
  clientReference: string | null;
  /** Whether its effect is still in force (a confirmed booking, an unrefunded capture). */
  live: boolean;
  /** The forward tool's output for this record, in the tool's output shape. */
  output: unknown;
}

/**
 * Reconciliation: asking the vendor what it really holds. `lookup` answers for one commit step
 * by its client reference (the step's idempotency key); `recent` lists what the vendor holds
 * for this credential, so records the ledger never saw are found too.
 */
export interface ReconcileOperation<C = unknown> {
  /** The forward commit tools (short names) whose records `lookup` can find. */
  tools: readonly string[];
  lookup: (client: C, query: { tool: string; clientReference: string }, ctx: ToolContext) => Promise<VendorRecord[]>;
  recent?: (client: C, ctx: ToolContext) => Promise<VendorRecord[]>;
}

export interface ConnectorDefinition<C = unknown> {
  /** Lower-case, `[a-z][a-z0-9_]*`; also the grant audience and the Lambda's suffix. */
  name: string;
  description: string;
  vendor: {
    /** Human name of the vendor system, e.g. `Sandbox Travel`. */
    name: string;
    /** Default base URL of the sandbox vendor when none is configured. */
    defaultBaseUrl?: string;
    createClient: (config: VendorClientConfig) => C;
  };
  tools: ToolDefinition<any, any, C>[];
  /** How to ask the vendor for the truth of commit steps (none: the connector is not reconciled). */
  reconcile?: ReconcileOperation<C>;
}

/**
 * A zod schema, or a function that builds it. Building zod schemas is the largest part of
 * importing the connectors (every function but the key rotator imports them all, through the
 * registry): a schema given as a function is built the first time it is read, once, so a cold
 * start builds only the schemas of the tools its requests touch. Validation is the same schema
 * either way.
 */
export type SchemaSource<T> = z.ZodType<T> | (() => z.ZodType<T>);

/** A tool as its connector writes it: {@link ToolDefinition} with schemas that may be built on first use. */
export interface ToolSpec<I = unknown, O = unknown, C = unknown> extends Omit<ToolDefinition<I, O, C>, 'input' | 'output'> {
  input: SchemaSource<I>;
  output: SchemaSource<O>;
}

/**
 * A schema shared by several tools or schemas of a connector, built the first time it is
 * called and the same instance after (pass it where a {@link SchemaSource} goes, or call it).
 */
export function lazySchema<S extends z.ZodType>(build: () => S): () => S {
  let built: S | undefined;
  return () => (built ??= build());
}

/**
 * A tool, its input and output types inferred from the zod schemas; a schema given as a
 * function is built on first read of `input` / `output` (then kept).
 */
export function defineTool<I, O, C>(spec: ToolSpec<I, O, C>): ToolDefinition<I, O, C> {
  const tool = { ...spec } as ToolDefinition<I, O, C>;
  for (const key of ['input', 'output'] as const) {
    const source = spec[key];
    if (typeof source !== 'function') continue;
    let built: z.ZodType | undefined;
    Object.defineProperty(tool, key, { enumerable: true, configurable: false, get: () => (built ??= source()) });
  }
  return tool;
}

export function defineConnector<C>(connector: ConnectorDefinition<C>): ConnectorDefinition<C> {
  return connector;
}
