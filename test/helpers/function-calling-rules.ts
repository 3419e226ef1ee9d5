import { Ajv2020 } from 'ajv/dist/2020.js';

/**
 * The function-calling APIs' documented constraints on tool definitions, written as checkers
 * that list every rule a definition breaks. Written from the vendors' documentation, not from
 * our exporter, so the exporter's tests can fail:
 *
 * - OpenAI, Structured Outputs "Supported schemas" (strict mode, also for function calling):
 *   root an object and not anyOf; every object `additionalProperties: false` with every
 *   property in `required`; optional values as a union with null; keywords: string `pattern`,
 *   `format` (date-time, time, date, duration, email, hostname, ipv4, ipv6, uuid), number
 *   `multipleOf`, `maximum`, `exclusiveMaximum`, `minimum`, `exclusiveMinimum`, array
 *   `minItems`, `maxItems`, plus `type`, `enum`, `const`, `anyOf`, `$ref`/`$defs`,
 *   `description`; composition keywords (allOf, not, if/then/else, dependent*) unsupported;
 *   at most 5,000 object properties, 10 levels of nesting, 1,000 enum values, 120,000
 *   characters of names, enum and const values, 15,000 characters for an enum over 250 values.
 *   Function names `^[a-zA-Z0-9_-]{1,64}$`.
 * - Anthropic Messages tools: `name` `^[a-zA-Z0-9_-]{1,64}$`, `description`, `input_schema` a
 *   JSON Schema whose `type` is `object`.
 * - Gemini `FunctionDeclaration`: `name` starts with a letter or underscore, then letters,
 *   digits, underscores, dots, colons or dashes, at most 64; `parameters` a `Schema` (a subset of
 *   OpenAPI 3.0's Schema object: `type` from the `Type` enum, `format`, `title`, `description`,
 *   `nullable`, `enum` of strings, `items`, `minItems`, `maxItems`, `properties`, `required`,
 *   `propertyOrdering`, `minProperties`, `maxProperties`, `minLength`, `maxLength`, `pattern`,
 *   `minimum`, `maximum`, `anyOf`, `default`, `example`; unknown fields are refused); string
 *   formats only `enum` and `date-time`, number `float`/`double`, integer `int32`/`int64`;
 *   parameter names start with a letter or underscore, then letters, digits or underscores, at
 *   most 64.
 */

export const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
export const GEMINI_FUNCTION_NAME = /^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$/;
export const GEMINI_PARAMETER_NAME = /^[a-zA-Z_][a-zA-Z0-9_]{0,63}$/;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

const OPENAI_TYPES = new Set(['string', 'number', 'integer', 'boolean', 'object', 'array', 'null']);
const OPENAI_FORMATS = new Set(['date-time', 'time', 'date', 'duration', 'email', 'hostname', 'ipv4', 'ipv6', 'uuid']);
const OPENAI_KEYWORDS = new Set([
  'type', 'description', 'enum', 'const', 'anyOf', '$ref', '$defs',
  'pattern', 'format',
  'multipleOf', 'maximum', 'exclusiveMaximum', 'minimum', 'exclusiveMinimum',
  'items', 'minItems', 'maxItems',
  'properties', 'required', 'additionalProperties',
]);

/** Every rule of OpenAI's strict mode that `schema` (a function's `parameters`) breaks. */
export function openAiStrictViolations(schema: unknown): string[] {
  const out: string[] = [];
  if (!isObject(schema)) return ['parameters must be a schema object'];
  if (schema.type !== 'object') out.push('/: the root must be type "object"');
  if ('anyOf' in schema) out.push('/: the root must not be anyOf');
  const defs = isObject(schema.$defs) ? schema.$defs : {};
  let properties = 0;
  let enumValues = 0;
  let chars = 0;
  const walk = (node: unknown, path: string, objectDepth: number) => {
    if (!isObject(node)) {
      out.push(`${path}: a schema must be an object`);
      return;
    }
    for (const key of Object.keys(node)) if (!OPENAI_KEYWORDS.has(key)) out.push(`${path}: keyword ${key} is not supported`);
    if ('$defs' in node && path !== '') out.push(`${path}: $defs only at the root`);
    const types = node.type === undefined ? [] : Array.isArray(node.type) ? node.type : [node.type];
    for (const t of types) if (typeof t !== 'string' || !OPENAI_TYPES.has(t)) out.push(`${path}: type ${String(t)} is not supported`);
    if (node.type === undefined && !('anyOf' in node) && !('$ref' in node) && !('enum' in node) && !('const' in node)) out.push(`${path}: no type`);
    if ('format' in node && !OPENAI_FORMATS.has(String(node.format))) out.push(`${path}: format ${String(node.format)} is not supported`);
    if ('$ref' in node) {
      const ref = String(node.$ref);
      if (!ref.startsWith('#/$defs/') || !(ref.slice(8) in defs)) out.push(`${path}: $ref ${ref} does not resolve to #/$defs`);
    }
    if (Array.isArray(node.enum)) {
      enumValues += node.enum.length;
      const len = node.enum.reduce<number>((n, v) => n + (typeof v === 'string' ? v.length : 0), 0);
      chars += len;
      if (node.enum.length > 250 && len > 15_000) out.push(`${path}: an enum over 250 values must total at most 15,000 characters`);
    }
    if (typeof node.const === 'string') chars += node.const.length;
    if (types.includes('object') || 'properties' in node) {
      if (objectDepth + 1 > 10) out.push(`${path}: more than 10 levels of nested objects`);
      const props = isObject(node.properties) ? node.properties : undefined;
      if (!props) out.push(`${path}: an object must list its properties`);
      if (node.additionalProperties !== false) out.push(`${path}: additionalProperties must be false`);
      const keys = props ? Object.keys(props) : [];
      const required = Array.isArray(node.required) ? node.required : [];
      for (const k of keys) if (!required.includes(k)) out.push(`${path}: property ${k} must be required (make it nullable instead)`);
      for (const k of required) if (!keys.includes(String(k))) out.push(`${path}: required ${String(k)} is not a property`);
      properties += keys.length;
      for (const k of keys) {
        chars += k.length;
        walk(props![k], `${path}/properties/${k}`, objectDepth + 1);
      }
    }
    if ('items' in node) walk(node.items, `${path}/items`, objectDepth);
    if ('anyOf' in node) {
      if (!Array.isArray(node.anyOf) || node.anyOf.length === 0) out.push(`${path}: anyOf must be a non-empty array`);
      else node.anyOf.forEach((s, i) => walk(s, `${path}/anyOf/${i}`, objectDepth));
    }
  };
  walk(schema, '', 0);
  for (const [name, def] of Object.entries(defs)) {
    chars += name.length;
    walk(def, `/$defs/${name}`, 0);
  }
  if (properties > 5000) out.push(`${properties} object properties (at most 5,000)`);
  if (enumValues > 1000) out.push(`${enumValues} enum values (at most 1,000)`);
  if (chars > 120_000) out.push(`${chars} characters of names and values (at most 120,000)`);
  const schemaError = jsonSchemaError(schema);
  if (schemaError) out.push(`not a valid JSON Schema: ${schemaError}`);
  return out;
}

let ajv: Ajv2020 | undefined;
/** Why `schema` is not a valid JSON Schema (2020-12) under ajv's strict mode; undefined if it is. */
export function jsonSchemaError(schema: unknown): string | undefined {
  ajv ??= new Ajv2020({ strict: true, allErrors: true, validateFormats: false, allowUnionTypes: true });
  try {
    ajv.compile(schema as Json);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Does `value` validate against the JSON Schema `schema`? */
export function validates(schema: Json, value: unknown): boolean {
  ajv ??= new Ajv2020({ strict: true, allErrors: true, validateFormats: false, allowUnionTypes: true });
  return ajv.validate(schema, value) as boolean;
}

function onlyKeys(obj: Json, allowed: readonly string[], where: string): string[] {
  return Object.keys(obj).filter((k) => !allowed.includes(k)).map((k) => `${where}: unknown field ${k}`);
}

/** Every documented rule one OpenAI Chat Completions function tool breaks. */
export function openAiToolViolations(tool: unknown): string[] {
  if (!isObject(tool)) return ['a tool must be an object'];
  const out = onlyKeys(tool, ['type', 'function'], 'tool');
  if (tool.type !== 'function') out.push('tool: type must be "function"');
  const fn = tool.function;
  if (!isObject(fn)) return [...out, 'tool.function must be an object'];
  out.push(...onlyKeys(fn, ['name', 'description', 'parameters', 'strict'], 'function'));
  if (typeof fn.name !== 'string' || !TOOL_NAME.test(fn.name)) out.push(`function.name ${String(fn.name)} does not match ${TOOL_NAME.source}`);
  if (fn.description !== undefined && typeof fn.description !== 'string') out.push('function.description must be a string');
  if (fn.strict === true) out.push(...openAiStrictViolations(fn.parameters).map((v) => `parameters${v.startsWith('/') ? '' : ' '}${v}`));
  else {
    const e = jsonSchemaError(fn.parameters);
    if (e) out.push(`parameters: ${e}`);
  }
  return out;
}

/** Every documented rule one Anthropic tool definition breaks. */
export function anthropicToolViolations(tool: unknown): string[] {
  if (!isObject(tool)) return ['a tool must be an object'];
  const out = onlyKeys(tool, ['name', 'description', 'input_schema'], 'tool');
  if (typeof tool.name !== 'string' || !TOOL_NAME.test(tool.name)) out.push(`name ${String(tool.name)} does not match ${TOOL_NAME.source}`);
  if (typeof tool.description !== 'string' || tool.description.length === 0) out.push('description should be a non-empty string');
  if (!isObject(tool.input_schema) || tool.input_schema.type !== 'object') out.push('input_schema must be a JSON Schema of type "object"');
  else {
    const e = jsonSchemaError(tool.input_schema);
    if (e) out.push(`input_schema: ${e}`);
  }
  return out;
}

const GEMINI_TYPES = new Set(['STRING', 'NUMBER', 'INTEGER', 'BOOLEAN', 'ARRAY', 'OBJECT', 'NULL']);
const GEMINI_FIELDS = [
  'type', 'format', 'title', 'description', 'nullable', 'enum', 'items', 'minItems', 'maxItems', 'properties', 'required',
  'propertyOrdering', 'minProperties', 'maxProperties', 'minLength', 'maxLength', 'pattern', 'minimum', 'maximum', 'anyOf', 'default', 'example',
];
const GEMINI_FORMATS: Record<string, string[]> = { STRING: ['enum', 'date-time'], NUMBER: ['float', 'double'], INTEGER: ['int32', 'int64'] };

/** Every documented rule one Gemini Schema object breaks. */
export function geminiSchemaViolations(schema: unknown, path = '', root = true): string[] {
  if (!isObject(schema)) return [`${path}: a Schema must be an object`];
  const out = onlyKeys(schema, GEMINI_FIELDS, path || '/');
  if (schema.type !== undefined && !GEMINI_TYPES.has(String(schema.type))) out.push(`${path}: type ${String(schema.type)} is not a Gemini Type`);
  if (schema.type === undefined && schema.anyOf === undefined) out.push(`${path}: no type`);
  if (root && schema.type !== 'OBJECT') out.push('/: parameters must be type OBJECT');
  if (schema.nullable !== undefined && typeof schema.nullable !== 'boolean') out.push(`${path}: nullable must be a boolean`);
  if (schema.format !== undefined && !(GEMINI_FORMATS[String(schema.type)] ?? []).includes(String(schema.format))) {
    out.push(`${path}: format ${String(schema.format)} is not supported for ${String(schema.type)}`);
  }
  if (schema.enum !== undefined && (!Array.isArray(schema.enum) || !schema.enum.every((v) => typeof v === 'string'))) out.push(`${path}: enum must list strings`);
  for (const k of ['minItems', 'maxItems', 'minProperties', 'maxProperties', 'minLength', 'maxLength']) {
    if (schema[k] !== undefined && !Number.isInteger(schema[k])) out.push(`${path}: ${k} must be an integer`);
  }
  if (schema.properties !== undefined) {
    if (schema.type !== 'OBJECT') out.push(`${path}: properties on a non-OBJECT`);
    if (!isObject(schema.properties)) out.push(`${path}: properties must be a map`);
    else {
      const keys = Object.keys(schema.properties);
      for (const k of keys) {
        if (root && !GEMINI_PARAMETER_NAME.test(k)) out.push(`${path}: parameter name ${k} does not match ${GEMINI_PARAMETER_NAME.source}`);
        out.push(...geminiSchemaViolations(schema.properties[k], `${path}/properties/${k}`, false));
      }
      const required = Array.isArray(schema.required) ? schema.required : [];
      for (const r of required) if (!keys.includes(String(r))) out.push(`${path}: required ${String(r)} is not a property`);
      if (schema.propertyOrdering !== undefined) {
        const order = schema.propertyOrdering;
        if (!Array.isArray(order) || order.length !== keys.length || !keys.every((k) => order.includes(k))) out.push(`${path}: propertyOrdering must list the properties`);
      }
    }
  }
  if (schema.items !== undefined) out.push(...geminiSchemaViolations(schema.items, `${path}/items`, false));
  if (schema.anyOf !== undefined) {
    if (!Array.isArray(schema.anyOf) || schema.anyOf.length === 0) out.push(`${path}: anyOf must be a non-empty list`);
    else schema.anyOf.forEach((s, i) => out.push(...geminiSchemaViolations(s, `${path}/anyOf/${i}`, false)));
  }
  return out;
}

/** Every documented rule one Gemini FunctionDeclaration breaks. */
export function geminiDeclarationViolations(decl: unknown): string[] {
  if (!isObject(decl)) return ['a declaration must be an object'];
  const out = onlyKeys(decl, ['name', 'description', 'parameters'], 'declaration');
  if (typeof decl.name !== 'string' || !GEMINI_FUNCTION_NAME.test(decl.name)) out.push(`name ${String(decl.name)} does not match ${GEMINI_FUNCTION_NAME.source}`);
  if (decl.description !== undefined && typeof decl.description !== 'string') out.push('description must be a string');
  if (decl.parameters !== undefined) out.push(...geminiSchemaViolations(decl.parameters).map((v) => `parameters${v}`));
  return out;
}
