import type * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { cedarWasm } from './cedar-wasm';
import type { MoneyConfig } from '../shared/money';
import type { Principal } from '../shared/principal';
import { analyzePolicyFiles, leadingTierOf, type ParsedPolicy } from './analyze';
import { compiledAnalysisOf } from './compiled';
import { policySetVersion, type PolicyConfig, type PolicyFiles } from './files';
import {
  ACTION,
  TOOL,
  USER,
  approvalContext,
  preparePlan,
  stepContext,
  toolEntity,
  userEntity,
  userUid,
  sanitizeCaps,
  sanitizeDelegation,
  type PreparedPlan,
  type SharedContext,
} from './request';
import type {
  ApprovalCheck,
  ApprovalCheckRequest,
  Decision,
  DecisionRequest,
  Outcome,
  PolicyEngine,
  PolicyInfo,
  PlanStep,
  PolicyProblem,
  ShadowOutcome,
  StepDecision,
} from './types';

/** The policy directory does not parse or validate; `problems` says where. */
export class PolicySetInvalidError extends Error {
  readonly problems: PolicyProblem[];

  constructor(problems: PolicyProblem[]) {
    const first = problems
      .slice(0, 5)
      .map((p) => `${p.file}${p.line ? `:${p.line}:${p.column ?? 1}` : ''}: ${p.message}`)
      .join('\n');
    super(`The policy set is invalid (${problems.length} problem(s)):\n${first}`);
    this.name = 'PolicySetInvalidError';
    this.problems = problems;
  }
}

/** Knobs for tests and tooling; production uses the defaults. */
export interface PolicyEngineOptions {
  /**
   * Check every request's entities and context against the schema (about +40% per Cedar
   * call). Off by default: the engine builds contexts from typed facts, the policies are
   * strictly validated, and a context that did not fit would only make a policy error,
   * which fails closed. The fixture tests turn it on to prove the contexts fit the schema.
   */
  validateRequests?: boolean;
  /**
   * The set as the synth analysed it (policy/compiled.ts): used when it was compiled from
   * exactly these files, which spares the cold start Cedar's validation.
   */
  compiled?: unknown;
}

/** The pool of policies that decides; shadow pools are named after their file. */
const ENFORCED = '';

type CedarAction = 'request' | 'run_unattended' | 'approve';

/** A preparsed set: its Cedar id and what its policies read (null: everything). */
interface PolicySetRef {
  id: string;
  contextAttrs: string[] | null;
  /** Principal and resource attributes the set reads; null: send entities whole. */
  entityAttrs: { principal: string[]; resource: string[] } | null;
}

/** Copies only the named attributes (all of them when `attrs` is null). */
function pick(values: Record<string, cedar.CedarValueJson>, attrs: string[] | null): Record<string, cedar.CedarValueJson> {
  if (attrs === null) return values;
  const out: Record<string, cedar.CedarValueJson> = {};
  for (const a of attrs) {
    const v = values[a];
    if (v !== undefined) out[a] = v;
  }
  return out;
}

/** The principal and resource entities, cut down to the attributes the set reads. */
function slim(entities: cedar.EntityJson[], set: PolicySetRef, principal: string, resource: string): cedar.EntityJson[] {
  const attrs = set.entityAttrs;
  if (attrs === null) return entities;
  const out: cedar.EntityJson[] = [];
  for (const e of entities) {
    const uid = 'type' in e.uid ? e.uid : e.uid.__entity;
    if (uid.type === USER && uid.id === principal) out.push({ ...e, attrs: pick(e.attrs, attrs.principal) });
    else if (uid.type === TOOL && uid.id === resource) out.push({ ...e, attrs: pick(e.attrs, attrs.resource) });
    // Other entities cannot be read by a set that only reaches principal and resource.
  }
  return out;
}

const RANK: Record<Outcome, number> = { allow: 0, require_approval: 1, deny: 2 };

interface Answer {
  allowed: boolean;
  /** Cedar's determining policies: satisfied permits on allow, satisfied forbids on deny. */
  ids: string[];
  error?: string;
}

/** Keeps first occurrences, in order. */
function unique<T>(xs: Iterable<T>): T[] {
  return [...new Set(xs)];
}

function combine(outcomes: Outcome[]): Outcome {
  return outcomes.reduce<Outcome>((worst, o) => (RANK[o] > RANK[worst] ? o : worst), 'allow');
}

/**
 * Builds an engine from the raw text of a policy directory: validates it (strict; or takes the
 * analysis the synth compiled from exactly these files), preparses the policy sets into
 * Cedar's cache (at once, or each on first use when compiled: see below), and answers every
 * request from that cache. Throws PolicySetInvalidError when the set is invalid, so a bad
 * deploy fails at cold start instead of deciding with half a policy set.
 */
export function createPolicyEngine(files: PolicyFiles, options: PolicyEngineOptions = {}): PolicyEngine {
  const compiled = compiledAnalysisOf(files, options.compiled);
  const analysis = compiled ?? analyzePolicyFiles(files);
  if (!analysis.validation.ok || !analysis.config) throw new PolicySetInvalidError(analysis.validation.errors);
  const config: PolicyConfig = analysis.config;
  const version = policySetVersion(files);
  const byId = new Map<string, ParsedPolicy>(analysis.policies.map((p) => [p.id, p]));
  // Cedar returns determining policies in no particular order; decisions end up in receipts,
  // so they list ids in source order (file name, then position) to be reproducible.
  const rank = new Map<string, number>(analysis.policies.map((p, i) => [p.id, i]));
  const inSourceOrder = (ids: string[]) => [...ids].sort((a, b) => (rank.get(a) ?? Infinity) - (rank.get(b) ?? Infinity));

  // Cedar's preparsed cache is per process and keyed by name: the version in the name keeps
  // two engines (tests, a hot reload) from overwriting each other's sets.
  const schemaName = `airlock:${version}`;
  const preparse = (what: string, answer: cedar.CheckParseAnswer) => {
    if (answer.type === 'failure') {
      throw new PolicySetInvalidError(answer.errors.map((e) => ({ file: what, message: e.message })));
    }
  };
  if (options.validateRequests) preparse('schema.cedarschema', cedarWasm().preparseSchema(schemaName, files.schema));
  const enforced = analysis.policies.filter((p) => !p.shadow);
  const shadowFiles = unique(analysis.policies.filter((p) => p.shadow).map((p) => p.file));
  const pools = new Map<string, ParsedPolicy[]>([[ENFORCED, enforced]]);
  for (const file of shadowFiles) pools.set(file, [...enforced, ...analysis.policies.filter((p) => p.file === file)]);

  // Cedar evaluates every policy of a set, so a request is answered by a set holding only the
  // policies that can match it: those scoped to its action (or to any action) and limited to
  // its connector (or to none). Each set is preparsed the first time it is needed and kept
  // for the life of the process.
  const preparsed = new Map<string, PolicySetRef>();
  const named = new Set(analysis.policies.map((p) => p.connector).filter((c): c is string => c !== null));
  function setFor(pool: string, action: CedarAction, connector: string): PolicySetRef {
    // Connectors no policy names share one set (global policies only), so the cache stays
    // bounded whatever connector names arrive.
    const key = JSON.stringify([pool, action, named.has(connector) ? connector : null]);
    const known = preparsed.get(key);
    if (known !== undefined) return known;
    const members = (pools.get(pool) ?? []).filter(
      (p) => (p.action === null || p.action === action) && (p.connector === null || p.connector === connector),
    );
    const id = `airlock:${version}:${preparsed.size}`;
    preparse(pool, cedarWasm().preparsePolicySet(id, { staticPolicies: Object.fromEntries(members.map((p) => [p.id, p.text])) }));
    // With request validation on, Cedar needs everything the schema declares.
    const full = options.validateRequests === true;
    const ctx = members.map((p) => p.contextAttrs);
    const ents = members.map((p) => p.entityAttrs);
    const ref: PolicySetRef = {
      id,
      contextAttrs: full || ctx.includes(null) ? null : unique(ctx.flatMap((r) => r ?? [])).sort(),
      entityAttrs:
        full || ents.includes(null)
          ? null
          : {
              principal: unique(ents.flatMap((e) => e?.principal ?? [])).sort(),
              resource: unique(ents.flatMap((e) => e?.resource ?? [])).sort(),
            },
    };
    preparsed.set(key, ref);
    return ref;
  }

  // A set analysed just now (Cedar loaded to validate it): build the common sets now, so the
  // first request does not pay for them. A set compiled at synth (Cedar parsed and validated
  // these very files, bound to them by their hash) is preparsed set by set on first use, so
  // a cold start whose requests decide nothing (a listing, a status read, a saga's bookkeeping)
  // never loads Cedar's wasm, and one that decides preparses only the sets it asks. A preparse
  // that failed then would throw from the decision: the request fails, nothing is allowed.
  if (compiled === undefined) {
    for (const pool of pools.keys()) {
      for (const connector of named) {
        setFor(pool, 'request', connector);
        setFor(pool, 'run_unattended', connector);
      }
    }
  }

  const money: MoneyConfig = { baseCurrency: config.baseCurrency, rates: config.rates };

  function ask(
    pool: string,
    action: CedarAction,
    principal: string,
    step: PlanStep,
    context: cedar.Context,
    entities: cedar.EntityJson[],
  ): Answer {
    const set = setFor(pool, action, step.facts.connector);
    const answer = cedarWasm().statefulIsAuthorized({
      principal: userUid(principal),
      action: { type: ACTION, id: action },
      resource: { type: TOOL, id: step.facts.tool },
      context: pick(context, set.contextAttrs),
      entities: slim(entities, set, principal, step.facts.tool),
      preparsedPolicySetId: set.id,
      ...(options.validateRequests ? { preparsedSchemaName: schemaName, validateRequest: true } : {}),
    });
    if (answer.type === 'failure') {
      return { allowed: false, ids: [], error: answer.errors.map((e) => e.message).join('; ') };
    }
    const { decision, diagnostics } = answer.response;
    // A policy that errors is skipped by Cedar; if it was a forbid, skipping it could allow
    // what it meant to stop. Fail closed instead.
    if (diagnostics.errors.length > 0) {
      return { allowed: false, ids: [], error: diagnostics.errors.map((e) => e.error.message).join('; ') };
    }
    return { allowed: decision === 'allow', ids: inSourceOrder(diagnostics.reason) };
  }

  const reasonsOf = (ids: string[]) => ids.map((id) => byId.get(id)?.reason ?? id);

  function decideStep(
    pool: string,
    principal: Principal,
    principalEntity: cedar.EntityJson,
    shared: SharedContext,
    s: PreparedPlan['steps'][number],
  ): StepDecision {
    const { step } = s;
    const tool = step.facts.tool;
    const context = stepContext(shared, s);
    const entities = [principalEntity, toolEntity(step)];
    const base = { id: step.id, quorum: 0, approverRule: null };
    const failed = (error: string): StepDecision => ({
      ...base,
      outcome: 'deny',
      policyIds: [],
      reasons: [`Policy evaluation failed, so ${tool} is denied (fail closed): ${error}`],
    });

    const request = ask(pool, 'request', principal.sub, step, context, entities);
    if (request.error !== undefined) return failed(request.error);
    if (!request.allowed) {
      return request.ids.length > 0
        ? { ...base, outcome: 'deny', policyIds: request.ids, reasons: reasonsOf(request.ids) }
        : { ...base, outcome: 'deny', policyIds: [], reasons: [`No policy permits ${principal.sub} to use ${tool}: denied by default.`] };
    }
    if (shared.dryRun) {
      // A dry run never executes, so it needs no approver: it is allowed exactly when the
      // real action could be requested.
      return {
        ...base,
        outcome: 'allow',
        policyIds: request.ids,
        reasons: [...reasonsOf(request.ids), 'Dry run: validated only, nothing executes.'],
      };
    }
    const unattended = ask(pool, 'run_unattended', principal.sub, step, context, entities);
    if (unattended.error !== undefined) return failed(unattended.error);
    if (unattended.allowed) {
      const ids = unique([...request.ids, ...unattended.ids]);
      return { ...base, outcome: 'allow', policyIds: ids, reasons: reasonsOf(ids) };
    }
    if (unattended.ids.length === 0) {
      return {
        ...base,
        outcome: 'require_approval',
        policyIds: [],
        reasons: [`No policy lets ${tool} run unattended, so one approver must confirm it.`],
        quorum: 1,
      };
    }
    const gates = unattended.ids.map((id) => byId.get(id));
    const quorum = Math.max(1, ...gates.map((p) => p?.approvals ?? 1));
    const rules = unique(gates.map((p) => p?.approvers).filter((r): r is string => typeof r === 'string'));
    return {
      ...base,
      outcome: 'require_approval',
      policyIds: unattended.ids,
      reasons: reasonsOf(unattended.ids),
      quorum,
      approverRule: rules.length > 0 ? rules.join(' and ') : null,
    };
  }

  function sharedContext(req: DecisionRequest, plan: PreparedPlan): SharedContext {
    return {
      dryRun: req.dryRun === true,
      caps: sanitizeCaps(req.caps),
      planTotal: plan.planTotal,
      byConnector: plan.byConnector,
      planSteps: req.steps.length,
      hour: req.now.getUTCHours(),
      weekday: req.now.getUTCDay(),
      allowedVendors: config.vendors.allowed,
      deniedVendors: config.vendors.denied,
      delegation: sanitizeDelegation(req.delegation),
    };
  }

  type Verdict = Omit<Decision, 'policySetVersion' | 'evaluationMicros' | 'shadow'>;

  function decideWith(pool: string, req: DecisionRequest, plan: PreparedPlan): Verdict {
    if (plan.steps.length === 0) {
      return { outcome: 'deny', policyIds: [], reasons: ['The action has no steps.'], quorum: 0, approverRule: null, steps: [] };
    }
    const shared = sharedContext(req, plan);
    const principalEntity = userEntity(req.principal);
    const steps = plan.steps.map((s) => decideStep(pool, req.principal, principalEntity, shared, s));
    const outcome = combine(steps.map((s) => s.outcome));
    const deciding = steps.filter((s) => s.outcome === outcome);
    const rules = unique(deciding.map((s) => s.approverRule).filter((r): r is string => r !== null));
    return {
      outcome,
      policyIds: unique(deciding.flatMap((s) => s.policyIds)),
      reasons: unique(deciding.flatMap((s) => s.reasons)),
      quorum: outcome === 'require_approval' ? Math.max(...deciding.map((s) => s.quorum)) : 0,
      approverRule: outcome === 'require_approval' && rules.length > 0 ? rules.join(' and ') : null,
      steps,
    };
  }

  function failClosed(started: bigint, err: unknown): Decision {
    return {
      outcome: 'deny',
      policyIds: [],
      reasons: [`The policy engine could not evaluate this request, so it is denied (fail closed)${err instanceof Error ? `: ${err.message}` : ''}.`],
      quorum: 0,
      approverRule: null,
      policySetVersion: version,
      evaluationMicros: Number((process.hrtime.bigint() - started) / 1000n),
      steps: [],
      shadow: [],
    };
  }

  function decide(req: DecisionRequest): Decision {
    const started = process.hrtime.bigint();
    try {
      // Callers are typed, but a decision must not depend on a clock or identity that is not there.
      if (!(req.now instanceof Date) || Number.isNaN(req.now.getTime())) throw new TypeError('the request time is not a valid date');
      if (typeof req.principal?.sub !== 'string' || !Array.isArray(req.principal.roles)) throw new TypeError('the principal is malformed');
      const plan = preparePlan(req.steps, money);
      const verdict = decideWith(ENFORCED, req, plan);
      const shadow: ShadowOutcome[] = shadowFiles.map((file) => {
        const v = decideWith(file, req, plan);
        return { file, outcome: v.outcome, policyIds: v.policyIds, reasons: v.reasons, quorum: v.quorum };
      });
      return {
        ...verdict,
        policySetVersion: version,
        evaluationMicros: Number((process.hrtime.bigint() - started) / 1000n),
        shadow,
      };
    } catch (err) {
      return failClosed(started, err);
    }
  }

  function canApprove(req: ApprovalCheckRequest): ApprovalCheck {
    try {
      const plan = preparePlan(req.steps, money);
      const decision =
        req.decision ??
        decideWith(ENFORCED, { principal: req.requester, steps: req.steps, dryRun: false, now: req.now ?? new Date() }, plan);
      const needing = new Set(decision.steps.filter((s) => s.outcome === 'require_approval').map((s) => s.id));
      const targets = plan.steps.filter((s) => needing.has(s.step.id));
      if (targets.length === 0) {
        return { allowed: false, policyIds: [], reasons: ['Nothing in this action is waiting for approval.'] };
      }
      const entities =
        req.approver.sub === req.requester.sub ? [userEntity(req.approver)] : [userEntity(req.approver), userEntity(req.requester)];
      const permits: string[] = [];
      const forbids: string[] = [];
      const refusals: string[] = [];
      for (const s of targets) {
        const answer = ask(ENFORCED, 'approve', req.approver.sub, s.step, approvalContext(req.requester, plan, s), [
          ...entities,
          toolEntity(s.step),
        ]);
        if (answer.error !== undefined) {
          refusals.push(`Approval policy evaluation failed for ${s.step.facts.tool} (fail closed): ${answer.error}`);
        } else if (answer.allowed) {
          permits.push(...answer.ids);
        } else if (answer.ids.length > 0) {
          forbids.push(...answer.ids);
        } else {
          refusals.push(`No policy lets ${req.approver.sub} approve ${s.step.facts.tool} for ${req.requester.sub}.`);
        }
      }
      if (forbids.length === 0 && refusals.length === 0) {
        const ids = unique(permits);
        return { allowed: true, policyIds: ids, reasons: reasonsOf(ids) };
      }
      const ids = unique(forbids);
      return { allowed: false, policyIds: ids, reasons: unique([...reasonsOf(ids), ...refusals]) };
    } catch (err) {
      return {
        allowed: false,
        policyIds: [],
        reasons: [`The policy engine could not evaluate this approval, so it is refused${err instanceof Error ? `: ${err.message}` : ''}.`],
      };
    }
  }

  const policies: PolicyInfo[] = analysis.policies.map(({ id, file, effect, action, reason, approvals, approvers, shadow }) => ({
    id,
    file,
    effect,
    action,
    reason,
    approvals,
    approvers,
    shadow,
  }));
  return { decide, canApprove, version, policies, money, capsObservable: capsObservableIn(analysis.policies) };
}

/**
 * The context attributes that show what has been spent: the spend caps' standing
 * (policy/request.ts tightestCap) and the delegation, whose record carries its budget's.
 */
const CAP_ATTRS = ['capId', 'capSpent', 'capLimit', 'capPlan', 'delegation'];

/** PolicyEngine.capsObservable over a set's policies; each policy is parsed once, on first need. */
function capsObservableIn(all: readonly ParsedPolicy[]): (tiers: ReadonlySet<string>) => boolean {
  const readers = all.filter((p) => p.contextAttrs === null || p.contextAttrs.some((a) => CAP_ATTRS.includes(a)));
  let leads: (string | null)[] | undefined;
  return (tiers) => {
    leads ??= readers.map((p) => leadingTierOf(p.text));
    return leads.some((tier) => tier === null || tiers.has(tier));
  };
}
