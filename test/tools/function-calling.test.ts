import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeEnvelope } from '../../lambdas/intake/envelope';
import { toolCatalog } from '../../lambdas/tools/catalog';
import {
  FunctionCallingFormats,
  functionToolExport,
  SchemaNotConvertibleError,
  toGeminiSchema,
  toOpenAiStrictSchema,
  withoutNullOptionals,
  type Schema,
} from '../../lambdas/tools/function-calling';
import { catalogToolName } from '../../lambdas/tools/names';
import { toolRegistry } from '../../lambdas/tools/registry';
import {
  anthropicToolViolations,
  geminiDeclarationViolations,
  geminiSchemaViolations,
  openAiStrictViolations,
  openAiToolViolations,
  validates,
} from '../helpers/function-calling-rules';

describe('GET /v1/tools?format=… exports of the shipped catalog', () => {
  const catalog = toolCatalog(toolRegistry);

  it('OpenAI: every tool in strict mode, every definition within the documented rules', () => {
    const out = functionToolExport(toolRegistry, 'openai');
    expect(out.caveats).toEqual([]);
    expect(out.tools).toHaveLength(catalog.length);
    for (const tool of out.tools) {
      expect(tool.function.strict, tool.function.name).toBe(true);
      expect(openAiToolViolations(tool), tool.function.name).toEqual([]);
    }
  });

  it('Anthropic: every definition within the documented rules', () => {
    const out = functionToolExport(toolRegistry, 'anthropic');
    expect(out.tools).toHaveLength(catalog.length);
    for (const tool of out.tools) expect(anthropicToolViolations(tool), tool.name).toEqual([]);
  });

  it('Gemini: every tool declared, every declaration within the documented rules', () => {
    const out = functionToolExport(toolRegistry, 'gemini');
    expect(out.caveats).toEqual([]);
    expect(out.tools).toHaveLength(1);
    const declarations = out.tools[0].functionDeclarations;
    expect(declarations).toHaveLength(catalog.length);
    for (const d of declarations) expect(geminiDeclarationViolations(d), d.name).toEqual([]);
  });

  it('names map back to exactly the catalog, in every format', () => {
    const want = catalog.map((e) => e.name).sort();
    for (const format of FunctionCallingFormats) {
      const out = functionToolExport(toolRegistry, format);
      const names =
        out.format === 'openai' ? out.tools.map((t) => t.function.name) : out.format === 'anthropic' ? out.tools.map((t) => t.name) : out.tools[0].functionDeclarations.map((d) => d.name);
      expect(names.map((n) => catalogToolName(n)).sort(), format).toEqual(want);
    }
  });

  it('a strict OpenAI schema keeps what strict mode cannot enforce in the description', () => {
    const tool = functionToolExport(toolRegistry, 'openai').tools.find((t) => t.function.name === 'travel-hold_seat')!;
    const flightId = (tool.function.parameters.properties as Record<string, Schema>).flightId!;
    expect(flightId.description).toMatch(/minLength: 1; maxLength: 64/);
    expect(flightId).not.toHaveProperty('minLength');
  });

  it('every catalog tool accepts an OpenAI call that sends null for what it leaves out, as if absent', () => {
    // A tool with optional arguments: the strict export requires them, nullable.
    const withOptional = catalog.filter((e) => Object.keys(e.inputSchema.properties as object).length > ((e.inputSchema.required as unknown[] | undefined) ?? []).length);
    expect(withOptional.length).toBeGreaterThan(0);
    for (const entry of withOptional) {
      const props = Object.keys(entry.inputSchema.properties as object);
      const required = new Set((entry.inputSchema.required as string[] | undefined) ?? []);
      const args = Object.fromEntries(props.filter((p) => !required.has(p)).map((p) => [p, null]));
      const normalized = normalizeEnvelope({ tool: entry.name.replace('.', '-'), arguments: args }, toolRegistry) as { tool: string; arguments: Record<string, unknown> };
      expect(normalized.tool).toBe(entry.name);
      expect(normalized.arguments, entry.name).toEqual({});
    }
  });
});

describe('the checkers reject what the vendors document as refused', () => {
  const good: Schema = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'], additionalProperties: false };

  it('OpenAI strict mode', () => {
    expect(openAiStrictViolations(good)).toEqual([]);
    expect(openAiStrictViolations({ ...good, additionalProperties: undefined }).join()).toMatch(/additionalProperties must be false/);
    expect(openAiStrictViolations({ ...good, required: [] }).join()).toMatch(/property a must be required/);
    expect(openAiStrictViolations({ ...good, properties: { a: { type: 'string', minLength: 1 } } }).join()).toMatch(/minLength is not supported/);
    expect(openAiStrictViolations({ ...good, properties: { a: { type: 'string', format: 'uri' } } }).join()).toMatch(/format uri/);
    expect(openAiStrictViolations({ anyOf: [good] }).join()).toMatch(/root must not be anyOf/);
    expect(openAiStrictViolations({ ...good, properties: { a: { allOf: [{ type: 'string' }] } } }).join()).toMatch(/allOf is not supported/);
    let deep: Schema = good;
    for (let i = 0; i < 11; i++) deep = { type: 'object', properties: { n: deep }, required: ['n'], additionalProperties: false };
    expect(openAiStrictViolations(deep).join()).toMatch(/more than 10 levels/);
    expect(openAiToolViolations({ type: 'function', function: { name: 'travel.hold_seat', parameters: good, strict: true } }).join()).toMatch(/does not match/);
  });

  it('Anthropic', () => {
    expect(anthropicToolViolations({ name: 'a-b', description: 'd', input_schema: good })).toEqual([]);
    expect(anthropicToolViolations({ name: 'a.b', description: 'd', input_schema: good }).join()).toMatch(/does not match/);
    expect(anthropicToolViolations({ name: 'a', description: 'd', input_schema: { type: 'string' } }).join()).toMatch(/type "object"/);
    expect(anthropicToolViolations({ name: 'a', description: 'd', input_schema: good, strict: 1 }).join()).toMatch(/unknown field strict/);
  });

  it('Gemini', () => {
    const ok = { type: 'OBJECT', properties: { a: { type: 'STRING' } }, required: ['a'] };
    expect(geminiSchemaViolations(ok)).toEqual([]);
    expect(geminiSchemaViolations({ ...ok, additionalProperties: false }).join()).toMatch(/unknown field additionalProperties/);
    expect(geminiSchemaViolations({ ...ok, properties: { a: { type: 'string' } } }).join()).toMatch(/not a Gemini Type/);
    expect(geminiSchemaViolations({ ...ok, properties: { a: { $ref: '#/$defs/x' } } }).join()).toMatch(/unknown field \$ref/);
    expect(geminiSchemaViolations({ ...ok, properties: { a: { type: 'STRING', format: 'uuid' } } }).join()).toMatch(/format uuid/);
    expect(geminiSchemaViolations({ ...ok, properties: { 'a-b': { type: 'STRING' } } }).join()).toMatch(/parameter name/);
    expect(geminiDeclarationViolations({ name: '1abc', parameters: ok }).join()).toMatch(/does not match/);
  });
});

// ── properties over generated schemas (the shapes zod emits for tool inputs) ──

type Node =
  | { kind: 'string'; minLength?: number; maxLength?: number; pattern?: boolean; format?: string }
  | { kind: 'integer'; minimum?: number; exclusiveMinimum?: number; maximum?: number }
  | { kind: 'number'; maximum?: number }
  | { kind: 'boolean' }
  | { kind: 'enum'; values: string[] }
  | { kind: 'array'; items: Node; minItems?: number; maxItems?: number }
  | { kind: 'object'; props: { name: string; node: Node; optional: boolean }[] }
  | { kind: 'nullable'; inner: Node };

const propName = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,15}$/);

const nodeArb: fc.Arbitrary<Node> = fc.letrec<{ node: Node; leaf: Node }>((tie) => ({
  leaf: fc.oneof(
    fc.record(
      { kind: fc.constant('string' as const), minLength: fc.integer({ min: 0, max: 3 }), maxLength: fc.integer({ min: 3, max: 80 }), pattern: fc.boolean(), format: fc.constantFrom('date-time', 'uuid', 'uri', 'email') },
      { requiredKeys: ['kind'] },
    ),
    fc.record({ kind: fc.constant('integer' as const), minimum: fc.integer({ min: -5, max: 5 }), exclusiveMinimum: fc.integer({ min: -5, max: 5 }), maximum: fc.integer({ min: 10, max: 99 }) }, { requiredKeys: ['kind'] }),
    fc.record({ kind: fc.constant('number' as const), maximum: fc.integer({ min: 10, max: 99 }) }, { requiredKeys: ['kind'] }),
    fc.constant({ kind: 'boolean' as const }),
    fc.record({ kind: fc.constant('enum' as const), values: fc.uniqueArray(fc.stringMatching(/^[a-z]{1,8}$/), { minLength: 1, maxLength: 5 }) }),
  ),
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('leaf'),
    fc.record({ kind: fc.constant('array' as const), items: tie('node'), minItems: fc.integer({ min: 0, max: 2 }), maxItems: fc.integer({ min: 2, max: 5 }) }, { requiredKeys: ['kind', 'items'] }),
    fc.record({
      kind: fc.constant('object' as const),
      props: fc.uniqueArray(fc.record({ name: propName, node: tie('node'), optional: fc.boolean() }), { minLength: 1, maxLength: 4, selector: (p) => p.name }),
    }),
    fc.record({ kind: fc.constant('nullable' as const), inner: tie('leaf') }),
  ),
})).node;

const rootArb = fc.uniqueArray(fc.record({ name: propName, node: nodeArb, optional: fc.boolean() }), { minLength: 1, maxLength: 5, selector: (p) => p.name }).map((props): Node => ({ kind: 'object', props }));

/** The JSON Schema zod would publish for the node. */
function jsonSchema(node: Node): Schema {
  switch (node.kind) {
    case 'string': {
      const { kind: _k, pattern, ...rest } = node;
      return { type: 'string', ...rest, ...(pattern ? { pattern: '^a*$' } : {}) };
    }
    case 'integer':
    case 'number': {
      const { kind, ...rest } = node;
      return { type: kind, ...rest };
    }
    case 'boolean':
      return { type: 'boolean' };
    case 'enum':
      return { type: 'string', enum: node.values };
    case 'array':
      return { type: 'array', items: jsonSchema(node.items), ...(node.minItems !== undefined ? { minItems: node.minItems } : {}), ...(node.maxItems !== undefined ? { maxItems: node.maxItems } : {}) };
    case 'object':
      return {
        type: 'object',
        properties: Object.fromEntries(node.props.map((p) => [p.name, jsonSchema(p.node)])),
        required: node.props.filter((p) => !p.optional).map((p) => p.name),
        additionalProperties: false,
      };
    case 'nullable':
      return { anyOf: [jsonSchema(node.inner), { type: 'null' }] };
  }
}

/** A valid instance, with each optional property present or not. */
function instanceArb(node: Node): fc.Arbitrary<unknown> {
  switch (node.kind) {
    case 'string':
      return fc.constant('a'.repeat(Math.max(node.minLength ?? 0, 1)));
    case 'integer':
      return fc.constant(Math.max(node.minimum ?? 0, (node.exclusiveMinimum ?? -1) + 1, 6));
    case 'number':
      return fc.constant(1.5);
    case 'boolean':
      return fc.boolean();
    case 'enum':
      return fc.constantFrom(...node.values);
    case 'array':
      return fc.array(instanceArb(node.items), { minLength: node.minItems ?? 0, maxLength: Math.max(node.minItems ?? 0, Math.min(node.maxItems ?? 3, 3)) });
    case 'nullable':
      return fc.oneof(fc.constant(null), instanceArb(node.inner));
    case 'object':
      return fc.tuple(...node.props.map((p) => fc.tuple(instanceArb(p.node), p.optional ? fc.boolean() : fc.constant(true)))).map((vals) =>
        Object.fromEntries(node.props.flatMap((p, i) => (vals[i]![1] ? [[p.name, vals[i]![0]]] : []))),
      );
  }
}

/** What a strict-mode model sends: every property, `null` for those it leaves out. */
function asStrictModelSends(node: Node, value: unknown): unknown {
  if (node.kind === 'array' && Array.isArray(value)) return value.map((v) => asStrictModelSends(node.items, v));
  if (node.kind !== 'object' || typeof value !== 'object' || value === null) return value;
  const v = value as Record<string, unknown>;
  return Object.fromEntries(node.props.map((p) => [p.name, p.name in v ? asStrictModelSends(p.node, v[p.name]) : null]));
}

/** What Airlock reads back: absent where the original could not be null, null where it could. */
function readBack(node: Node, value: unknown): unknown {
  if (node.kind === 'array' && Array.isArray(value)) return value.map((v) => readBack(node.items, v));
  if (node.kind !== 'object' || typeof value !== 'object' || value === null) return value;
  const v = value as Record<string, unknown>;
  return Object.fromEntries(
    node.props.flatMap((p) => (p.name in v ? [[p.name, readBack(p.node, v[p.name])]] : p.node.kind === 'nullable' ? [[p.name, null]] : [])),
  );
}

describe('conversions over generated tool schemas (fast-check)', () => {
  it('OpenAI: every converted schema passes strict mode; a strict call validates and reads back as the original call', () => {
    fc.assert(
      fc.property(
        rootArb.chain((root) => fc.tuple(fc.constant(root), instanceArb(root))),
        ([root, instance]) => {
          const original = jsonSchema(root);
          expect(validates(original, instance)).toBe(true);
          const strict = toOpenAiStrictSchema(original);
          expect(openAiStrictViolations(strict)).toEqual([]);
          const sent = asStrictModelSends(root, instance);
          expect(validates(strict, sent)).toBe(true);
          const back = withoutNullOptionals(sent, original);
          expect(back).toEqual(readBack(root, instance));
          expect(validates(original, back)).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('Gemini: every converted schema is a valid Gemini Schema that keeps the properties and what is required', () => {
    fc.assert(
      fc.property(rootArb, (root) => {
        const original = jsonSchema(root);
        const gemini = toGeminiSchema(original);
        expect(geminiSchemaViolations(gemini)).toEqual([]);
        expect(Object.keys(gemini.properties as object)).toEqual(Object.keys(original.properties as object));
        expect(gemini.required ?? []).toEqual(original.required);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses, rather than loosens, what a format cannot express', () => {
    const record = { type: 'object', properties: { tags: { type: 'object', additionalProperties: { type: 'string' } } }, required: ['tags'], additionalProperties: false };
    expect(() => toOpenAiStrictSchema(record)).toThrow(SchemaNotConvertibleError);
    expect(() => toOpenAiStrictSchema({ type: 'object', properties: { a: { not: { type: 'string' } } }, required: ['a'], additionalProperties: false })).toThrow(/not/);
    const recursive = { type: 'object', properties: { n: { $ref: '#/$defs/N' } }, $defs: { N: { type: 'object', properties: { n: { $ref: '#/$defs/N' } } } } };
    expect(() => toGeminiSchema(recursive)).toThrow(/recursive/);
    // OpenAI takes references, so the recursive type stays strict there.
    expect(openAiStrictViolations(toOpenAiStrictSchema(recursive))).toEqual([]);
  });

  it('withoutNullOptionals keeps nulls that mean something and never touches unknown keys', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' }, b: { anyOf: [{ type: 'string' }, { type: 'null' }] } }, required: ['a'], additionalProperties: false };
    expect(withoutNullOptionals({ a: null, b: null, c: null }, schema)).toEqual({ a: null, b: null, c: null });
    const same = { a: 'x' };
    expect(withoutNullOptionals(same, schema)).toBe(same);
  });
});
