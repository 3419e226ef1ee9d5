import { inputSchemaOf, withoutNullOptionals } from '../tools/function-calling';
import { canonicalToolName } from '../tools/names';
import * as z from 'zod';
import { ActorSchema, type Actor } from '../shared/principal';
import type { RegisteredTool, ToolRegistry } from '../ports/tools';
import type { DelegationSnapshot } from '../delegations/model';
import type { Violation } from '../shared/problem';
import { toolCatalog } from '../tools/catalog';

/**
 * The action envelope: what an agent sends to POST /v1/actions. Either a single tool call or
 * a plan of ordered steps whose arguments may refer to earlier steps' outputs with
 * `{ "$ref": "steps.<id>.output.<path>" }`. Validation reports every violation with a JSON
 * pointer so an LLM can repair its call in one go.
 */

export const MAX_PLAN_STEPS = 20;
/** Deepest JSON nesting accepted in a body; real tool arguments are far shallower. */
export const MAX_JSON_DEPTH = 32;

const ToolNameSchema = z
  .string()
  .max(128)
  .regex(/^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$/, 'a tool name is `<connector>.<tool>` or `<connector>-<tool>`, e.g. `travel.search_flights`');
const StepIdSchema = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'a step id starts with a letter and uses letters, digits, _ or - (≤ 64)');
const ArgumentsSchema = z.record(z.string(), z.unknown());
const ModeSchema = z.enum(['execute', 'dry_run']);
const ReasonSchema = z.string().min(1).max(2000);

export const SingleCallSchema = z
  .object({
    tool: ToolNameSchema,
    arguments: ArgumentsSchema,
    mode: ModeSchema.optional(),
    agent: ActorSchema,
    reason: ReasonSchema.optional(),
  })
  .strict()
  .meta({ id: 'SingleCall', description: 'One tool call.' });

export const PlanStepSchema = z
  .object({ id: StepIdSchema, tool: ToolNameSchema, arguments: ArgumentsSchema })
  .strict()
  .meta({ id: 'PlanStep' });

export const PlanSchema = z
  .object({
    plan: z.array(PlanStepSchema).min(1).max(MAX_PLAN_STEPS),
    mode: ModeSchema.optional(),
    agent: ActorSchema,
    reason: ReasonSchema.optional(),
  })
  .strict()
  .meta({ id: 'Plan', description: 'Ordered steps; arguments may use {"$ref":"steps.<id>.output.<path>"}.' });

/**
 * The body with every tool name in the catalog form: envelopes may name tools the way
 * function-calling APIs and MCP list them (`travel-hold_seat`), and the action is recorded,
 * fingerprinted and run under the one catalog name (`travel.hold_seat`).
 */
export function withCatalogToolNames(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const b = body as Record<string, unknown>;
  const step = (s: unknown) =>
    typeof s === 'object' && s !== null && !Array.isArray(s) && typeof (s as Record<string, unknown>).tool === 'string'
      ? { ...(s as Record<string, unknown>), tool: canonicalToolName((s as Record<string, string>).tool!) }
      : s;
  return {
    ...(step(b) as Record<string, unknown>),
    ...(Array.isArray(b.plan) ? { plan: b.plan.map(step) } : {}),
  } as Record<string, unknown>;
}

/**
 * The body as intake reads it: catalog tool names (withCatalogToolNames), and no `null` for an
 * optional argument whose schema does not take null: OpenAI's strict mode makes every argument
 * required and sends `null` for the ones it leaves out, which means "absent". Done before the
 * fingerprint, so a call with such nulls and the same call without them are one request.
 */
export function normalizeEnvelope(body: unknown, tools: ToolRegistry): unknown {
  const named = withCatalogToolNames(body);
  if (typeof named !== 'object' || named === null || Array.isArray(named)) return named;
  const b = named as Record<string, unknown>;
  const step = (s: unknown) => {
    if (typeof s !== 'object' || s === null || Array.isArray(s)) return s;
    const { tool, arguments: args } = s as Record<string, unknown>;
    const schema = typeof tool === 'string' ? inputSchemaOf(tools, tool) : undefined;
    if (!schema) return s;
    const cleaned = withoutNullOptionals(args, schema);
    return cleaned === args ? s : { ...(s as Record<string, unknown>), arguments: cleaned };
  };
  return { ...(step(b) as Record<string, unknown>), ...(Array.isArray(b.plan) ? { plan: b.plan.map(step) } : {}) };
}

/** Published as JSON Schema in the catalog and OpenAPI document. */
export const EnvelopeSchema = z.union([SingleCallSchema, PlanSchema]).meta({ id: 'ActionEnvelope' });
export type Envelope = z.infer<typeof EnvelopeSchema>;

export type Mode = z.infer<typeof ModeSchema>;

export interface PlannedStep {
  id: string;
  tool: string;
  arguments: Record<string, unknown>;
}

/** An envelope after validation: always a list of steps (a single call is a one-step plan). */
export interface NormalizedAction {
  kind: 'single' | 'plan';
  mode: Mode;
  agent: Actor;
  reason?: string;
  steps: PlannedStep[];
  /** The delegation it runs under (set by intake, and from the stored action): Cedar's context reads it. */
  delegation?: DelegationSnapshot;
}

/** Whether an envelope is one read-tier call that would really run (not a plan, not a dry run): what the read fast path takes. */
export function isSingleRead(action: NormalizedAction, tools: ToolRegistry): boolean {
  if (action.kind !== 'single' || action.mode !== 'execute' || action.steps.length !== 1) return false;
  return tools.find(action.steps[0]!.tool)?.tool.tier === 'read';
}

/** Step id given to a single tool call. */
export const SINGLE_STEP_ID = 'call';

const REF_PATTERN = /^steps\.([A-Za-z][A-Za-z0-9_-]{0,63})\.output((?:\.[A-Za-z0-9_-]+)*)$/;

export interface RefLocation {
  /** Path inside the arguments object. */
  path: (string | number)[];
  ref: string;
}

/** A `{ "$ref": "..." }` object: exactly one key. */
export function isRef(value: unknown): value is { $ref: string } {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.keys(value).length === 1 &&
    typeof (value as Record<string, unknown>).$ref === 'string'
  );
}

/** Every `$ref` inside a step's arguments (iterative; depth is bounded upstream). */
export function findRefs(args: unknown): RefLocation[] {
  const found: RefLocation[] = [];
  const stack: { value: unknown; path: (string | number)[] }[] = [{ value: args, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (isRef(value)) {
      found.push({ path, ref: value.$ref });
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => stack.push({ value: v, path: [...path, i] }));
    } else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) stack.push({ value: v, path: [...path, k] });
    }
  }
  return found;
}

/** JSON pointer from path segments (RFC 6901 escaping). */
export function pointer(segments: readonly (string | number | symbol)[]): string {
  if (segments.length === 0) return '/';
  return segments.map((s) => `/${String(s).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

function zodViolations(error: z.ZodError, prefix: (string | number)[]): Violation[] {
  return error.issues.map((issue) => ({
    path: pointer([...prefix, ...(issue.path as (string | number)[])]),
    message: issue.message,
  }));
}

/** Does `path` (a step-output path) exist in the output JSON Schema of `tool`? */
function outputPathExists(tools: ToolRegistry, tool: RegisteredTool, segments: string[]): boolean {
  const entry = toolCatalog(tools).find((t) => t.name === tool.fullName);
  let node: unknown = entry?.outputSchema;
  for (const seg of segments) {
    if (node === null || typeof node !== 'object') return false;
    const n = node as Record<string, unknown>;
    const branches = (n.anyOf ?? n.oneOf) as unknown[] | undefined;
    if (Array.isArray(branches)) {
      const next = branches.find((b) => {
        const props = (b as Record<string, unknown>)?.properties as Record<string, unknown> | undefined;
        return props !== undefined && seg in props;
      });
      node = next ? ((next as Record<string, unknown>).properties as Record<string, unknown>)[seg] : undefined;
      if (node === undefined) return false;
      continue;
    }
    if (n.type === 'array' && /^\d+$/.test(seg)) {
      node = n.items;
      continue;
    }
    const props = n.properties as Record<string, unknown> | undefined;
    if (props && Object.prototype.hasOwnProperty.call(props, seg)) {
      node = props[seg];
      continue;
    }
    // Open objects (records) accept any key.
    if (n.additionalProperties && typeof n.additionalProperties === 'object') {
      node = n.additionalProperties;
      continue;
    }
    return false;
  }
  return true;
}

function startsWith(path: readonly PropertyKey[], prefix: readonly (string | number)[]): boolean {
  return prefix.every((seg, i) => String(path[i]) === String(seg));
}

export type EnvelopeResult = { ok: true; action: NormalizedAction } | { ok: false; violations: Violation[] };

/**
 * Validates an untrusted body as an envelope: structure, tools, arguments against each
 * tool's schema, `$ref`s to earlier steps' existing outputs, and compensations for every
 * commit step but the last. Collects every violation instead of stopping at the first.
 */
export function validateEnvelope(body: unknown, tools: ToolRegistry): EnvelopeResult {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { ok: false, violations: [{ path: '/', message: 'the body must be a JSON object: a tool call or a plan' }] };
  }
  const isPlan = Object.prototype.hasOwnProperty.call(body, 'plan');
  const parsed = isPlan ? PlanSchema.safeParse(body) : SingleCallSchema.safeParse(body);
  const violations: Violation[] = parsed.success ? [] : zodViolations(parsed.error, []);

  // Semantic checks need the raw steps even when the structure has other problems.
  const raw = body as Record<string, unknown>;
  const rawSteps: { id: unknown; tool: unknown; arguments: unknown; prefix: (string | number)[] }[] = isPlan
    ? Array.isArray(raw.plan)
      ? raw.plan.slice(0, MAX_PLAN_STEPS).map((s, i) => ({
          id: (s as Record<string, unknown> | null)?.id,
          tool: (s as Record<string, unknown> | null)?.tool,
          arguments: (s as Record<string, unknown> | null)?.arguments,
          prefix: ['plan', i],
        }))
      : []
    : [{ id: SINGLE_STEP_ID, tool: raw.tool, arguments: raw.arguments, prefix: [] }];

  const seen = new Map<string, RegisteredTool | undefined>();
  rawSteps.forEach((step, index) => {
    const id = typeof step.id === 'string' ? step.id : undefined;
    if (id !== undefined && seen.has(id)) {
      violations.push({ path: pointer([...step.prefix, 'id']), message: `duplicate step id "${id}"` });
    }
    const registered = typeof step.tool === 'string' ? tools.find(step.tool) : undefined;
    if (typeof step.tool === 'string' && !registered && ToolNameSchema.safeParse(step.tool).success) {
      violations.push({
        path: pointer([...step.prefix, 'tool']),
        message: `unknown tool "${step.tool}"; GET /v1/tools lists the tools you may call`,
      });
    }
    const args = step.arguments;
    if (registered && args !== null && typeof args === 'object' && !Array.isArray(args)) {
      const refs = findRefs(args);
      for (const ref of refs) {
        const refPath = pointer([...step.prefix, 'arguments', ...ref.path, '$ref']);
        const m = REF_PATTERN.exec(ref.ref);
        if (!m) {
          violations.push({ path: refPath, message: 'a $ref reads "steps.<id>.output.<path>"' });
          continue;
        }
        const target = m[1]!;
        if (!isPlan) {
          violations.push({ path: refPath, message: 'a single tool call has no earlier steps to refer to' });
        } else if (!seen.has(target)) {
          const later = rawSteps.slice(index).some((s) => s.id === target);
          violations.push({
            path: refPath,
            message: later
              ? `step "${target}" runs later; a $ref may only read an earlier step's output`
              : `there is no step "${target}"`,
          });
        } else {
          const targetTool = seen.get(target);
          const segments = (m[2] ?? '').split('.').filter((s) => s.length > 0);
          if (targetTool && !outputPathExists(tools, targetTool, segments)) {
            violations.push({
              path: refPath,
              message: `${targetTool.fullName} has no output at "${segments.join('.')}"`,
            });
          }
        }
      }
      const result = registered.tool.input.safeParse(args);
      if (!result.success) {
        for (const issue of result.error.issues) {
          const path = issue.path as PropertyKey[];
          // A value that comes from a $ref is only known at run time; the saga validates it then.
          if (refs.some((r) => startsWith(path, r.path))) continue;
          if (
            issue.code === 'unrecognized_keys' &&
            refs.some((r) => r.path.length === path.length + 1 && startsWith(r.path, path as (string | number)[]))
          ) {
            continue;
          }
          violations.push({
            path: pointer([...step.prefix, 'arguments', ...(path as (string | number)[])]),
            message: issue.message,
          });
        }
      }
      const isLast = index === rawSteps.length - 1;
      if (registered.tool.tier === 'commit' && !tools.compensationOf(registered) && !isLast) {
        violations.push({
          path: pointer([...step.prefix, 'tool']),
          message: `${registered.fullName} commits a change that cannot be undone; it may only be the last step of a plan`,
        });
      }
    }
    if (id !== undefined && !seen.has(id)) seen.set(id, registered);
  });

  if (violations.length > 0 || !parsed.success) return { ok: false, violations: dedupe(violations) };
  const data = parsed.data;
  const steps: PlannedStep[] =
    'plan' in data
      ? data.plan.map((s) => ({ id: s.id, tool: s.tool, arguments: s.arguments }))
      : [{ id: SINGLE_STEP_ID, tool: data.tool, arguments: data.arguments }];
  return {
    ok: true,
    action: {
      kind: 'plan' in data ? 'plan' : 'single',
      mode: data.mode ?? 'execute',
      agent: data.agent,
      ...(data.reason !== undefined ? { reason: data.reason } : {}),
      steps,
    },
  };
}

function dedupe(violations: Violation[]): Violation[] {
  const key = (v: Violation) => `${v.path}\u0000${v.message}`;
  const seen = new Set<string>();
  return violations.filter((v) => (seen.has(key(v)) ? false : (seen.add(key(v)), true)));
}
