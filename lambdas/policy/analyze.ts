import type * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { cedarWasm } from './cedar-wasm';
import { CONFIG_FILE, PolicyConfigSchema, SCHEMA_FILE, type PolicyConfig, type PolicyFiles } from './files';
import type { PolicyInfo, PolicyProblem, PolicyValidation } from './types';

/** A policy with its verbatim text, ready to be handed to Cedar under its `@id`. */
export interface ParsedPolicy extends PolicyInfo {
  text: string;
  /** Where the policy starts in its file. */
  where: { line?: number; column?: number };
  /**
   * The connector the policy is limited to, when a `when` clause requires
   * `resource.connector == "<name>"` as one of its top-level conjuncts; null when the policy
   * may apply to any connector. Lets the engine hand Cedar only the policies that can match.
   */
  connector: string | null;
  /**
   * The `context` attributes the policy reads, or null when it uses `context` as a whole.
   * Crossing into wasm costs per attribute, so the engine sends only what a set reads.
   */
  contextAttrs: string[] | null;
  /**
   * The attributes the policy reads from the principal and resource entities, or null when it
   * reaches an entity some other way (`context.requester.manager`), so every entity must be
   * sent whole.
   */
  entityAttrs: { principal: string[]; resource: string[] } | null;
}

/** Everything a policy directory yields: problems, and when there are none, the parsed set. */
export interface Analysis {
  validation: PolicyValidation;
  config: PolicyConfig | undefined;
  policies: ParsedPolicy[];
}

const ACTION_TYPE = 'Airlock::Action';
const POSITIVE_INT = /^[1-9][0-9]{0,2}$/;

/** Line and column (1-based) of a UTF-8 byte offset: Cedar reports byte offsets. */
export function locate(text: string, byteOffset: number): { line: number; column: number } {
  const before = Buffer.from(text, 'utf8').subarray(0, byteOffset).toString('utf8');
  const lines = before.split('\n');
  return { line: lines.length, column: (lines[lines.length - 1]?.length ?? 0) + 1 };
}

function fromCedar(file: string, text: string, err: cedar.DetailedError, policyId?: string): PolicyProblem {
  const where = err.sourceLocations?.[0];
  const label = where?.label ? ` (${where.label})` : '';
  const help = err.help ? `; ${err.help}` : '';
  return {
    file,
    ...(policyId === undefined ? {} : { policyId }),
    message: `${err.message}${label}${help}`,
    ...(where ? locate(text, where.start) : {}),
  };
}

function charToByteOffset(text: string, charOffset: number): number {
  return Buffer.byteLength(text.slice(0, charOffset), 'utf8');
}

function actionOf(json: cedar.PolicyJson): string | null {
  const scope = json.action;
  if (scope.op !== '==' || !('entity' in scope)) return null;
  const uid = scope.entity;
  const plain = '__entity' in uid ? uid.__entity : uid;
  return plain.type === ACTION_TYPE ? plain.id : null;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** `resource.connector` as a policy-JSON expression. */
function isResourceConnector(e: unknown): boolean {
  if (!isRecord(e) || !isRecord(e['.'])) return false;
  const dot = e['.'];
  return dot.attr === 'connector' && isRecord(dot.left) && dot.left.Var === 'resource';
}

/** The string of a literal policy-JSON expression, if it is one. */
function stringLiteral(e: unknown): string | undefined {
  return isRecord(e) && typeof e.Value === 'string' ? e.Value : undefined;
}

/** The top-level conjuncts of an expression: `a && (b && c)` gives a, b, c. */
function conjuncts(e: unknown): unknown[] {
  if (isRecord(e) && isRecord(e['&&'])) return [...conjuncts(e['&&'].left), ...conjuncts(e['&&'].right)];
  return [e];
}

/** See ParsedPolicy.connector. Only a `when` conjunct narrows a policy; anything else keeps it global. */
function connectorOf(json: cedar.PolicyJson): string | null {
  for (const clause of json.conditions) {
    if (clause.kind !== 'when') continue;
    for (const c of conjuncts(clause.body)) {
      if (!isRecord(c) || !isRecord(c['=='])) continue;
      const { left, right } = c['=='];
      const name = isResourceConnector(left) ? stringLiteral(right) : isResourceConnector(right) ? stringLiteral(left) : undefined;
      if (name !== undefined) return name;
    }
  }
  return null;
}

/**
 * The tier a policy's first test limits it to: `resource.tier == "<tier>"` as the leftmost
 * conjunct of its first condition, a `when`. Cedar evaluates a policy's scope, then its
 * conditions in order, left to right, stopping at the first false conjunct, so for a step of
 * any other tier nothing else in the policy is ever evaluated (not even an expression that
 * would error). Null when the policy does not start so: it may read anything for any step.
 * Parses the policy (Cedar's wasm): called on first need, never at load.
 */
export function leadingTierOf(policyText: string): string | null {
  const parsed = cedarWasm().policyToJson(policyText);
  if (parsed.type === 'failure') return null;
  const first = parsed.json.conditions[0];
  if (first?.kind !== 'when') return null;
  const lead = conjuncts(first.body)[0];
  if (!isRecord(lead) || !isRecord(lead['=='])) return null;
  const { left, right } = lead['=='];
  const tier = isResourceAttr(left, 'tier') ? stringLiteral(right) : isResourceAttr(right, 'tier') ? stringLiteral(left) : undefined;
  return tier ?? null;
}

/** `resource.<attr>` as a policy-JSON expression. */
function isResourceAttr(e: unknown, attr: string): boolean {
  if (!isRecord(e) || !isRecord(e['.'])) return false;
  const dot = e['.'];
  return dot.attr === attr && isRecord(dot.left) && dot.left.Var === 'resource';
}

/** What a policy reads: see ParsedPolicy.contextAttrs and ParsedPolicy.entityAttrs. */
function readsOf(json: cedar.PolicyJson): Pick<ParsedPolicy, 'contextAttrs' | 'entityAttrs'> {
  const reads = { context: new Set<string>(), principal: new Set<string>(), resource: new Set<string>() };
  let wholeContext = false;
  let otherEntities = false;
  const varOf = (e: unknown) => (isRecord(e) && typeof e.Var === 'string' ? e.Var : undefined);
  const note = (left: unknown, attr: unknown) => {
    const v = varOf(left);
    const name = Array.isArray(attr) ? attr[0] : attr;
    if ((v === 'context' || v === 'principal' || v === 'resource') && typeof name === 'string') reads[v].add(name);
    else if (v === 'context') wholeContext = true;
    // Reading an attribute of anything but principal, resource or context means an entity
    // reached through another value, whose attributes must all be there.
    else if (v !== 'action') otherEntities = true;
  };
  const walk = (e: unknown): void => {
    if (Array.isArray(e)) {
      for (const x of e) walk(x);
      return;
    }
    if (!isRecord(e)) return;
    for (const op of ['.', 'has'] as const) {
      const access = e[op];
      if (isRecord(access)) {
        note(access.left, access.attr);
        if (varOf(access.left) === undefined) walk(access.left);
        return;
      }
    }
    if (varOf(e) === 'context') wholeContext = true;
    for (const v of Object.values(e)) walk(v);
  };
  walk(json.conditions);
  return {
    contextAttrs: wholeContext ? null : [...reads.context].sort(),
    entityAttrs: otherEntities ? null : { principal: [...reads.principal].sort(), resource: [...reads.resource].sort() },
  };
}

/** Splits the joined set into policies, reads their annotations and checks Airlock's conventions. */
function analyzeJoined(
  joined: Joined,
  files: Record<string, string>,
  config: PolicyConfig | undefined,
  errors: PolicyProblem[],
): { policies: ParsedPolicy[]; idsByIndex: (string | undefined)[] } {
  const idsByIndex: (string | undefined)[] = [];
  const parts = cedarWasm().policySetTextToParts(joined.text);
  if (parts.type === 'failure') {
    for (const e of parts.errors) errors.push(fromCedar('(policies)', joined.text, e));
    return { policies: [], idsByIndex };
  }
  if (parts.policy_templates.length > 0) {
    errors.push({ file: '(policies)', message: 'Policy templates are not supported: write static policies.' });
  }
  // Cedar names the policies of a text `policy0`, `policy1`, ... in source order but returns
  // them sorted by that name (policy10 before policy2): put them back in source order.
  const cedarIds = parts.policies.map((_, i) => `policy${i}`).sort();
  const inOrder: string[] = [];
  parts.policies.forEach((policyText, k) => {
    inOrder[Number(cedarIds[k]?.slice('policy'.length))] = policyText;
  });
  const out: ParsedPolicy[] = [];
  const perFile = new Map<string, number>();
  let cursor = 0;
  inOrder.forEach((policyText, index) => {
    // The parts are verbatim slices of the text, in order: finding each one gives its file and line.
    const at = Math.max(0, joined.text.indexOf(policyText, cursor));
    cursor = at + policyText.length;
    let start = joined.starts[0];
    for (const s of joined.starts) if (s.charStart <= at) start = s;
    const file = start?.file ?? '(policies)';
    const fileText = files[file] ?? '';
    const where = start ? locate(fileText, charToByteOffset(fileText, at - start.charStart)) : {};
    const nth = (perFile.get(file) ?? 0) + 1;
    perFile.set(file, nth);
    const problem = (message: string, policyId?: string) =>
      errors.push({ file, ...(policyId === undefined ? {} : { policyId }), message, ...where });
    const parsed = cedarWasm().policyToJson(policyText);
    if (parsed.type === 'failure') {
      for (const e of parsed.errors) problem(e.message);
      return;
    }
    const json = parsed.json;
    const a = json.annotations ?? {};
    const id = a.id;
    idsByIndex[index] = id;
    if (!id) {
      problem(`Policy #${nth} of ${file} has no @id("...") annotation.`);
      return;
    }
    if (!a.reason) problem(`Policy ${id} has no @reason("...") annotation.`, id);
    const action = actionOf(json);
    const gatesUnattended = json.effect === 'forbid' && action === 'run_unattended';
    if (gatesUnattended && (!a.approvals || !a.approvers)) {
      problem(`Policy ${id} forbids running unattended, so it must say who approves: add @approvals("N") and @approvers("...").`, id);
    }
    if (!gatesUnattended && (a.approvals !== undefined || a.approvers !== undefined)) {
      problem(`Policy ${id} has @approvals/@approvers, which only mean something on a forbid of Action::"run_unattended".`, id);
    }
    if (a.approvals !== undefined && !POSITIVE_INT.test(a.approvals)) {
      problem(`Policy ${id}: @approvals must be a whole number from 1 to 999, not "${a.approvals}".`, id);
    }
    out.push({
      id,
      file,
      effect: json.effect,
      action,
      reason: a.reason ?? '',
      approvals: a.approvals !== undefined && POSITIVE_INT.test(a.approvals) ? Number(a.approvals) : null,
      approvers: a.approvers ?? null,
      shadow: config?.files[file]?.mode === 'shadow',
      text: policyText,
      where,
      connector: connectorOf(json),
      ...readsOf(json),
    });
  });
  return { policies: out, idsByIndex };
}

function analyzeConfig(files: PolicyFiles, errors: PolicyProblem[]): PolicyConfig | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(files.config);
  } catch (err) {
    errors.push({ file: CONFIG_FILE, message: `Not valid JSON: ${err instanceof Error ? err.message : String(err)}` });
    return undefined;
  }
  const parsed = PolicyConfigSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      errors.push({ file: CONFIG_FILE, message: `${issue.path.join('.') || '(root)'}: ${issue.message}` });
    }
    return undefined;
  }
  for (const name of Object.keys(parsed.data.files)) {
    if (!(name in files.policies)) errors.push({ file: CONFIG_FILE, message: `files.${name}: no such policy file.` });
  }
  return parsed.data;
}

/** The policy files joined into one text, so Cedar parses and validates the set in one call. */
interface Joined {
  text: string;
  /** Byte offset where each file starts in `text`, in order. */
  starts: { file: string; byteStart: number; charStart: number }[];
}

function join(files: Record<string, string>): Joined {
  let text = '';
  let byteStart = 0;
  const starts: Joined['starts'] = [];
  for (const [file, body] of Object.entries(files)) {
    starts.push({ file, byteStart, charStart: text.length });
    // The newline ends a trailing `//` comment so it cannot swallow the next file.
    const chunk = `${body}\n`;
    text += chunk;
    byteStart += Buffer.byteLength(chunk, 'utf8');
  }
  return { text, starts };
}

/** Which file a byte offset of the joined text falls in, and where. */
function place(joined: Joined, files: Record<string, string>, byteOffset: number): { file: string; line?: number; column?: number } {
  let at = joined.starts[0];
  for (const s of joined.starts) if (s.byteStart <= byteOffset) at = s;
  if (!at) return { file: '(policies)' };
  return { file: at.file, ...locate(files[at.file] ?? '', byteOffset - at.byteStart) };
}

/**
 * Parses and validates a policy directory: config.json, the schema, then the policy files in
 * strict mode against the schema, then Airlock's own conventions (@id, @reason, unique ids,
 * approvals only where they mean something). Never throws.
 */
export function analyzePolicyFiles(files: PolicyFiles): Analysis {
  const errors: PolicyProblem[] = [];
  const warnings: PolicyProblem[] = [];
  const config = analyzeConfig(files, errors);

  const schemaCheck = cedarWasm().checkParseSchema(files.schema);
  if (schemaCheck.type === 'failure') {
    for (const e of schemaCheck.errors) errors.push(fromCedar(SCHEMA_FILE, files.schema, e));
  }

  const joined = join(files.policies);
  const syntax = cedarWasm().checkParsePolicySet({ staticPolicies: joined.text });
  if (syntax.type === 'failure') {
    // Slow path, only for broken sets: file by file, so an unterminated policy in one file
    // is not blamed on the next one.
    for (const [file, text] of Object.entries(files.policies)) {
      const one = cedarWasm().checkParsePolicySet({ staticPolicies: text });
      if (one.type === 'failure') for (const e of one.errors) errors.push(fromCedar(file, text, e));
    }
    if (errors.length === 0) for (const e of syntax.errors) errors.push(fromCedar('(policies)', joined.text, e));
    return { validation: { ok: false, errors, warnings }, config, policies: [] };
  }

  const { policies, idsByIndex } = analyzeJoined(joined, files.policies, config, errors);
  const seen = new Map<string, string>();
  for (const p of policies) {
    const other = seen.get(p.id);
    if (other !== undefined) {
      errors.push({ file: p.file, policyId: p.id, message: `Duplicate @id("${p.id}"): also used in ${other}.`, ...p.where });
    }
    else seen.set(p.id, p.file);
  }

  if (schemaCheck.type === 'success') {
    const result = cedarWasm().validate({
      schema: files.schema,
      policies: { staticPolicies: joined.text },
      validationSettings: { mode: 'strict' },
    });
    if (result.type === 'failure') {
      for (const e of result.errors) errors.push(fromCedar('(policies)', joined.text, e));
    } else {
      const report = (into: PolicyProblem[], v: cedar.ValidationError) => {
        const n = /^policy(\d+)$/.exec(v.policyId);
        const id = n ? idsByIndex[Number(n[1])] : undefined;
        const where = v.error.sourceLocations?.[0];
        const loc = where ? place(joined, files.policies, where.start) : { file: '(policies)' };
        const label = where?.label ? ` (${where.label})` : '';
        const help = v.error.help ? `; ${v.error.help}` : '';
        into.push({ ...loc, ...(id === undefined ? {} : { policyId: id }), message: `${v.error.message}${label}${help}` });
      };
      for (const v of result.validationErrors) report(errors, v);
      for (const v of result.validationWarnings) report(warnings, v);
    }
  }
  return { validation: { ok: errors.length === 0, errors, warnings }, config, policies };
}
