import type { ToolRegistry } from '../ports/tools';
import { toolCatalog, type CatalogEntry } from './catalog';
import { safeToolName } from './names';

/**
 * The catalog as the function-calling APIs want it, ready to paste into a request's `tools`:
 * OpenAI (Chat Completions, `strict: true`), Anthropic (Messages) and Gemini
 * (`functionDeclarations`). Names are the safe names (names.ts), which `POST /v1/actions` and
 * MCP accept too.
 *
 * OpenAI's strict mode takes a subset of JSON Schema: every object closed
 * (`additionalProperties: false`) with every property required, so an optional property becomes
 * required and nullable, and the model sends `null` for it; `POST /v1/actions` reads that `null`
 * as "absent" (withoutNullOptionals). Keywords strict mode refuses (`minLength`, `maxLength`,
 * `default`, most formats…) move into the property's description, so the model still reads
 * them, and Airlock still enforces them: the catalog's own schema validates every call.
 * Gemini takes a subset of OpenAPI 3.0's Schema object (upper-case types, `nullable`, no
 * `$ref`, no `additionalProperties`), converted the same way.
 */

/** The function-calling formats `GET /v1/tools?format=` renders. */
export const FunctionCallingFormats = ['openai', 'anthropic', 'gemini'] as const;
export type FunctionCallingFormat = (typeof FunctionCallingFormats)[number];

/** JSON Schema (or Gemini Schema) as plain data. */
export type Schema = Record<string, unknown>;

/** A schema uses something the target format cannot express (the tool is then exported without strict mode). */
export class SchemaNotConvertibleError extends Error {
  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${path || '/'}: ${message}`, options);
    this.name = 'SchemaNotConvertibleError';
  }
}

/** String formats OpenAI's strict mode supports (its Structured Outputs "supported schemas"). */
export const OPENAI_STRICT_FORMATS: ReadonlySet<string> = new Set(['date-time', 'time', 'date', 'duration', 'email', 'hostname', 'ipv4', 'ipv6', 'uuid']);

/** Keywords strict mode refuses but that only narrow a value: described, not enforced by the model. */
const DESCRIBED = ['minLength', 'maxLength', 'minProperties', 'maxProperties', 'uniqueItems', 'default', 'examples', 'title', 'contentEncoding', 'contentMediaType', 'deprecated', 'readOnly', 'writeOnly'];
/** Annotations carried nowhere (they say nothing a model needs). */
const DROPPED = ['$schema', '$id', '$comment', '$anchor'];
/** Keywords whose meaning cannot be carried into a closed, all-required object. */
const REFUSED = ['not', 'if', 'then', 'else', 'allOf', 'oneOf', 'patternProperties', 'propertyNames', 'dependentRequired', 'dependentSchemas', 'unevaluatedProperties', 'unevaluatedItems', 'prefixItems', 'contains', 'minContains', 'maxContains', '$dynamicRef'];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function note(keyword: string, value: unknown): string {
  return `${keyword}: ${typeof value === 'string' ? value : JSON.stringify(value)}`;
}

function withNotes(description: unknown, notes: string[]): Record<string, string> {
  const base = typeof description === 'string' ? description : '';
  if (notes.length === 0) return base ? { description: base } : {};
  const text = `${base}${base ? ' ' : ''}(${notes.join('; ')})`;
  return { description: text };
}

function acceptsNull(schema: Schema): boolean {
  const type = schema.type;
  if (type === 'null' || (Array.isArray(type) && type.includes('null'))) return true;
  if (Array.isArray(schema.anyOf)) return schema.anyOf.some((s) => isObject(s) && acceptsNull(s));
  if (Array.isArray(schema.enum)) return schema.enum.includes(null);
  return schema.const === null;
}

/** `schema` or null, in the forms strict mode accepts. */
function nullable(schema: Schema): Schema {
  if (acceptsNull(schema)) return schema;
  if (typeof schema.type === 'string' && schema.const === undefined) {
    return { ...schema, type: [schema.type, 'null'], ...(Array.isArray(schema.enum) ? { enum: [...schema.enum, null] } : {}) };
  }
  if (Array.isArray(schema.anyOf)) return { ...schema, anyOf: [...schema.anyOf, { type: 'null' }] };
  const { description, ...rest } = schema;
  return { anyOf: [rest, { type: 'null' }], ...(typeof description === 'string' ? { description } : {}) };
}

function openAiNode(schema: unknown, path: string, depth: number): Schema {
  if (!isObject(schema)) throw new SchemaNotConvertibleError(path, 'strict mode needs a schema object here (true/false schemas have no type)');
  if (depth > 64) throw new SchemaNotConvertibleError(path, 'nested too deeply');
  const notes: string[] = [];
  const out: Schema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (DROPPED.includes(key) || key === 'description') continue;
    if (REFUSED.includes(key)) throw new SchemaNotConvertibleError(path, `strict mode has no equivalent of ${key}`);
    if (DESCRIBED.includes(key)) {
      notes.push(note(key, value));
      continue;
    }
    switch (key) {
      case 'type':
      case 'enum':
      case 'const':
      case 'pattern':
      case 'multipleOf':
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
      case 'minItems':
      case 'maxItems':
        out[key] = value;
        break;
      case '$ref':
        if (typeof value !== 'string' || !value.startsWith('#/$defs/')) throw new SchemaNotConvertibleError(path, 'only local #/$defs references are supported');
        out.$ref = value;
        break;
      case 'format':
        if (typeof value === 'string' && OPENAI_STRICT_FORMATS.has(value)) out.format = value;
        else notes.push(note('format', value));
        break;
      case 'anyOf':
        if (!Array.isArray(value) || value.length === 0) throw new SchemaNotConvertibleError(path, 'anyOf needs at least one schema');
        out.anyOf = value.map((s, i) => openAiNode(s, `${path}/anyOf/${i}`, depth + 1));
        break;
      case 'items':
        out.items = openAiNode(value, `${path}/items`, depth + 1);
        break;
      case 'properties':
      case 'required':
      case 'additionalProperties':
        break; // the object case below
      case '$defs':
        if (depth !== 0) throw new SchemaNotConvertibleError(path, '$defs only at the root');
        if (!isObject(value)) throw new SchemaNotConvertibleError(path, '$defs must be an object');
        out.$defs = Object.fromEntries(Object.entries(value).map(([name, s]) => [name, openAiNode(s, `${path}/$defs/${name}`, depth + 1)]));
        break;
      default:
        throw new SchemaNotConvertibleError(path, `unsupported keyword ${key}`);
    }
  }
  const objectTyped = schema.type === 'object' || (Array.isArray(schema.type) && schema.type.includes('object'));
  if (objectTyped || isObject(schema.properties)) {
    const props = isObject(schema.properties) ? schema.properties : {};
    const extra = schema.additionalProperties;
    if (extra !== undefined && extra !== false) {
      // A map with free keys (z.record) cannot be closed without changing what it accepts.
      throw new SchemaNotConvertibleError(path, 'strict mode objects cannot take free-form keys (additionalProperties)');
    }
    if (extra === undefined && Object.keys(props).length === 0) throw new SchemaNotConvertibleError(path, 'an open object without properties has no strict form');
    const required = new Set(Array.isArray(schema.required) ? schema.required.filter((k): k is string => typeof k === 'string') : []);
    out.properties = Object.fromEntries(
      Object.entries(props).map(([name, s]) => {
        const converted = openAiNode(s, `${path}/properties/${name}`, depth + 1);
        return [name, required.has(name) ? converted : nullable(converted)];
      }),
    );
    out.required = Object.keys(props);
    out.additionalProperties = false;
  }
  if (out.type === undefined && out.anyOf === undefined && out.$ref === undefined && out.enum === undefined && out.const === undefined) {
    throw new SchemaNotConvertibleError(path, 'strict mode needs a type (an unconstrained value has no strict form)');
  }
  return { ...out, ...withNotes(schema.description, notes) };
}

/**
 * A tool's input schema in OpenAI strict mode's subset: closed objects, every property
 * required (optional ones nullable), unsupported keywords described. Throws
 * SchemaNotConvertibleError for a schema strict mode cannot express.
 */
export function toOpenAiStrictSchema(schema: Schema): Schema {
  if (schema.type !== 'object') throw new SchemaNotConvertibleError('', 'strict mode parameters must be an object schema');
  return openAiNode(schema, '', 0);
}

/** OpenAI tool types, Gemini's `Type` enum. */
const GEMINI_TYPES: Record<string, string> = { string: 'STRING', number: 'NUMBER', integer: 'INTEGER', boolean: 'BOOLEAN', array: 'ARRAY', object: 'OBJECT', null: 'NULL' };
/** Formats Gemini accepts per type (other string formats are refused by the API). */
export const GEMINI_FORMATS: Readonly<Record<string, readonly string[]>> = { STRING: ['enum', 'date-time'], NUMBER: ['float', 'double'], INTEGER: ['int32', 'int64'] };

function geminiNode(schema: unknown, path: string, defs: Record<string, unknown>, seen: readonly string[]): Schema {
  if (!isObject(schema)) throw new SchemaNotConvertibleError(path, 'Gemini needs a schema object here');
  if (typeof schema.$ref === 'string') {
    const name = schema.$ref.startsWith('#/$defs/') ? schema.$ref.slice('#/$defs/'.length) : undefined;
    if (name === undefined || !(name in defs)) throw new SchemaNotConvertibleError(path, `unresolvable reference ${schema.$ref}`);
    // Gemini has no references: inline them (a recursive type cannot be inlined).
    if (seen.includes(name)) throw new SchemaNotConvertibleError(path, `recursive reference ${schema.$ref}`);
    const { $ref: _ref, ...siblings } = schema;
    return geminiNode({ ...(defs[name] as Schema), ...siblings }, path, defs, [...seen, name]);
  }
  const notes: string[] = [];
  const out: Schema = {};
  let nullableFlag = false;
  let type: string | undefined;
  const types = (Array.isArray(schema.type) ? schema.type : schema.type === undefined ? [] : [schema.type]).filter((t): t is string => typeof t === 'string');
  const nonNull = types.filter((t) => t !== 'null');
  if (types.includes('null')) nullableFlag = true;
  if (nonNull.length > 1) {
    // Several types: Gemini's anyOf, one branch per type.
    const { type: _t, description, ...rest } = schema;
    const anyOf = nonNull.map((t, i) => geminiNode({ ...rest, type: t }, `${path}/type/${i}`, defs, seen));
    return { anyOf, ...(nullableFlag ? { nullable: true } : {}), ...withNotes(description, []) };
  }
  if (nonNull.length === 1) type = GEMINI_TYPES[nonNull[0]!];
  for (const [key, value] of Object.entries(schema)) {
    if (DROPPED.includes(key) || key === 'description' || key === 'type') continue;
    switch (key) {
      case 'properties':
      case 'required':
      case 'additionalProperties':
      case '$defs':
        break;
      case 'minLength':
      case 'maxLength':
      case 'minItems':
      case 'maxItems':
      case 'minProperties':
      case 'maxProperties':
      case 'minimum':
      case 'maximum':
      case 'pattern':
      case 'title':
        out[key] = value;
        break;
      case 'exclusiveMinimum':
      case 'exclusiveMaximum': {
        // Exact for integers (> 0 is ≥ 1); for numbers the bound is kept inclusive and the strict one described.
        const min = key === 'exclusiveMinimum';
        if (typeof value !== 'number') throw new SchemaNotConvertibleError(path, `${key} must be a number`);
        if (type === 'INTEGER' && Number.isInteger(value)) out[min ? 'minimum' : 'maximum'] = min ? value + 1 : value - 1;
        else {
          out[min ? 'minimum' : 'maximum'] = value;
          notes.push(`${min ? 'greater' : 'less'} than ${value}`);
        }
        break;
      }
      case 'enum':
        if (Array.isArray(value) && value.every((v) => typeof v === 'string' || v === null)) {
          if (value.includes(null)) nullableFlag = true;
          out.enum = value.filter((v) => v !== null);
          out.format = 'enum';
          type ??= 'STRING';
        } else notes.push(note('one of', value));
        break;
      case 'const':
        if (typeof value === 'string') {
          out.enum = [value];
          out.format = 'enum';
          type ??= 'STRING';
        } else if (value === null) nullableFlag = true;
        else notes.push(note('always', value));
        break;
      case 'format':
        if (typeof value === 'string' && type !== undefined && (GEMINI_FORMATS[type] ?? []).includes(value)) out.format ??= value;
        else notes.push(note('format', value));
        break;
      case 'anyOf': {
        if (!Array.isArray(value) || value.length === 0) throw new SchemaNotConvertibleError(path, 'anyOf needs at least one schema');
        const branches = value.filter((s) => !(isObject(s) && s.type === 'null'));
        if (branches.length < value.length) nullableFlag = true;
        if (branches.length === 1) {
          const only = geminiNode(branches[0], `${path}/anyOf/0`, defs, seen);
          const { description: inner, ...rest } = only;
          Object.assign(out, rest);
          if (typeof inner === 'string') notes.unshift(inner);
          type = typeof rest.type === 'string' ? rest.type : type;
        } else out.anyOf = branches.map((s, i) => geminiNode(s, `${path}/anyOf/${i}`, defs, seen));
        break;
      }
      case 'oneOf':
        if (!Array.isArray(value) || value.length === 0) throw new SchemaNotConvertibleError(path, 'oneOf needs at least one schema');
        out.anyOf = value.map((s, i) => geminiNode(s, `${path}/oneOf/${i}`, defs, seen));
        notes.push('exactly one of the alternatives');
        break;
      case 'items':
        out.items = geminiNode(value, `${path}/items`, defs, seen);
        break;
      case 'default':
      case 'examples':
      case 'multipleOf':
      case 'uniqueItems':
        notes.push(note(key, value));
        break;
      default:
        throw new SchemaNotConvertibleError(path, `Gemini has no equivalent of ${key}`);
    }
  }
  if (isObject(schema.properties)) {
    type ??= 'OBJECT';
    const props = schema.properties;
    out.properties = Object.fromEntries(Object.entries(props).map(([name, s]) => [name, geminiNode(s, `${path}/properties/${name}`, defs, seen)]));
    const required = Array.isArray(schema.required) ? schema.required.filter((k): k is string => typeof k === 'string' && k in props) : [];
    if (required.length > 0) out.required = required;
    out.propertyOrdering = Object.keys(props);
  }
  if (type === 'OBJECT' && out.properties === undefined && schema.additionalProperties !== false) notes.push('an object with any keys');
  if (type !== undefined) out.type = type;
  if (nullableFlag) out.nullable = true;
  if (out.type === undefined && out.anyOf === undefined) throw new SchemaNotConvertibleError(path, 'Gemini needs a type here');
  return { ...out, ...withNotes(schema.description, notes) };
}

/** A tool's input schema as Gemini's `Schema` (OpenAPI 3.0 subset). Throws SchemaNotConvertibleError. */
export function toGeminiSchema(schema: Schema): Schema {
  const defs = isObject(schema.$defs) ? schema.$defs : {};
  const out = geminiNode(schema, '', defs, []);
  if (out.type !== 'OBJECT') throw new SchemaNotConvertibleError('', 'Gemini parameters must be an object schema');
  return out;
}

/** JSON Schema as Anthropic's `input_schema` takes it: the catalog's own, without the dialect marker. */
function anthropicSchema(schema: Schema): Schema {
  const { $schema: _s, $id: _i, ...rest } = schema;
  return rest;
}

/**
 * Drops `null` where a tool's schema has an optional property that does not accept null:
 * OpenAI's strict mode sends `null` for every optional argument it leaves out. Anything else
 * (a null where the property is required, or a null the schema accepts) is kept and meets the
 * tool's schema as sent. Returns `args` itself when nothing changes.
 */
export function withoutNullOptionals(args: unknown, schema: Schema): unknown {
  if (Array.isArray(args)) {
    if (!isObject(schema.items)) return args;
    const items = schema.items;
    let changed = false;
    const out = args.map((v) => {
      const n = withoutNullOptionals(v, items);
      if (n !== v) changed = true;
      return n;
    });
    return changed ? out : args;
  }
  if (!isObject(args) || !isObject(schema.properties)) return args;
  const props = schema.properties;
  const required = new Set(Array.isArray(schema.required) ? schema.required : []);
  let changed = false;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(args)) {
    const prop = Object.prototype.hasOwnProperty.call(props, key) ? props[key] : undefined;
    if (!isObject(prop)) {
      out[key] = value;
      continue;
    }
    if (value === null && !required.has(key) && !acceptsNull(prop)) {
      changed = true;
      continue;
    }
    const n = withoutNullOptionals(value, prop);
    if (n !== value) changed = true;
    out[key] = n;
  }
  return changed ? out : args;
}

/** What a tool's description says about its effect, in every format. */
function describe(entry: CatalogEntry): string {
  const effect =
    entry.tier === 'read'
      ? 'Read-only.'
      : entry.tier === 'draft'
        ? 'Drafts a change without committing it.'
        : entry.compensation
          ? `Commits a change (undone by ${safeToolName(entry.compensation)} if a later step fails).`
          : 'Commits a change that cannot be undone automatically.';
  return `${entry.description} ${effect} Call it through Airlock: POST /v1/actions {"tool":"${safeToolName(entry.name)}","arguments":<these arguments>}; policy may require a person's approval first.`;
}

/** One tool, ready for an OpenAI request's `tools` (Chat Completions). */
export interface OpenAiTool {
  type: 'function';
  function: { name: string; description: string; parameters: Schema; strict: boolean };
}

/** One tool, ready for an Anthropic Messages request's `tools`. */
export interface AnthropicTool {
  name: string;
  description: string;
  input_schema: Schema;
}

/** One Gemini function declaration. */
export interface GeminiFunctionDeclaration {
  name: string;
  description: string;
  parameters: Schema;
}

/** A tool the format could not carry whole: exported without strict mode, or left out. */
export interface ExportCaveat {
  tool: string;
  detail: string;
}

/** The body of `GET /v1/tools?format=…`: `tools` is what the vendor's request takes as `tools`. */
export type FunctionToolExport =
  | { format: 'openai'; tools: OpenAiTool[]; caveats: ExportCaveat[] }
  | { format: 'anthropic'; tools: AnthropicTool[]; caveats: ExportCaveat[] }
  | { format: 'gemini'; tools: [{ functionDeclarations: GeminiFunctionDeclaration[] }]; caveats: ExportCaveat[] };

function openAiTool(entry: CatalogEntry): { tool: OpenAiTool; caveat?: ExportCaveat } {
  const name = safeToolName(entry.name);
  try {
    return { tool: { type: 'function', function: { name, description: describe(entry), parameters: toOpenAiStrictSchema(entry.inputSchema), strict: true } } };
  } catch (error) {
    if (!(error instanceof SchemaNotConvertibleError)) throw error;
    // Still usable: without strict mode OpenAI takes the schema as a hint, and Airlock validates every call.
    return {
      tool: { type: 'function', function: { name, description: describe(entry), parameters: anthropicSchema(entry.inputSchema), strict: false } },
      caveat: { tool: name, detail: `exported with strict: false (${error.message})` },
    };
  }
}

function render(registry: ToolRegistry, format: FunctionCallingFormat): FunctionToolExport {
  const catalog = toolCatalog(registry);
  switch (format) {
    case 'openai': {
      const rendered = catalog.map(openAiTool);
      return { format, tools: rendered.map((r) => r.tool), caveats: rendered.flatMap((r) => (r.caveat ? [r.caveat] : [])) };
    }
    case 'anthropic':
      return { format, tools: catalog.map((e) => ({ name: safeToolName(e.name), description: describe(e), input_schema: anthropicSchema(e.inputSchema) })), caveats: [] };
    case 'gemini': {
      const declarations: GeminiFunctionDeclaration[] = [];
      const caveats: ExportCaveat[] = [];
      for (const e of catalog) {
        try {
          declarations.push({ name: safeToolName(e.name), description: describe(e), parameters: toGeminiSchema(e.inputSchema) });
        } catch (error) {
          if (!(error instanceof SchemaNotConvertibleError)) throw error;
          caveats.push({ tool: safeToolName(e.name), detail: `left out: Gemini cannot express its schema (${error.message})` });
        }
      }
      return { format, tools: [{ functionDeclarations: declarations }], caveats };
    }
  }
}

const cache = new WeakMap<ToolRegistry, Map<FunctionCallingFormat, FunctionToolExport>>();

/** The catalog rendered for `format`, built once per process and registry. */
export function functionToolExport<F extends FunctionCallingFormat>(registry: ToolRegistry, format: F): Extract<FunctionToolExport, { format: F }> {
  let byFormat = cache.get(registry);
  if (!byFormat) cache.set(registry, (byFormat = new Map()));
  let rendered = byFormat.get(format);
  if (!rendered) byFormat.set(format, (rendered = render(registry, format)));
  return rendered as Extract<FunctionToolExport, { format: F }>;
}

const inputSchemas = new WeakMap<ToolRegistry, Map<string, Schema>>();

/** The input JSON Schema of a catalog tool (by its catalog name), or undefined. */
export function inputSchemaOf(registry: ToolRegistry, catalogName: string): Schema | undefined {
  let byName = inputSchemas.get(registry);
  if (!byName) inputSchemas.set(registry, (byName = new Map(toolCatalog(registry).map((e) => [e.name, e.inputSchema]))));
  return byName.get(catalogName);
}
