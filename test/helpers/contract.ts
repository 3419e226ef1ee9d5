import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Ajv2020 as Ajv2020Type, ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import type addFormatsFn from 'ajv-formats';

/**
 * The contract checker: validates one HTTP response against docs/openapi.json, the document
 * clients are given. Strict on purpose: the status must be documented for the operation, the
 * content type must be one the response lists, the body must match its schema under JSON Schema
 * 2020-12 with formats checked and `additionalProperties: false` honoured, and documented
 * headers must match theirs (required ones must be present). A request outside the document
 * is only acceptable as the refusal the document declares for it (`x-airlock-unrouted`).
 *
 * Everything is read from the document, so a new operation, status, header or schema member
 * needs a change to the document (i.e. to the zod schemas it is generated from), never here.
 */

/** One response as a client saw it. */
export interface ObservedResponse {
  method: string;
  /** Concrete path (`/v1/actions/act_…`, query string allowed and ignored) or a route template. */
  path: string;
  status: number;
  headers: Headers | Record<string, string | undefined>;
  /** The body as received (text); empty for none. */
  body: string;
}

/** What a validated response was checked as. */
export interface ContractMatch {
  /** `GET /v1/actions/{id}`, or `unrouted` for a refused request outside the document. */
  operation: string;
  status: string;
}

/** A response the published contract does not describe. */
export class ContractViolationError extends Error {
  constructor(
    readonly response: Pick<ObservedResponse, 'method' | 'path' | 'status'>,
    readonly problems: string[],
    options?: { cause?: unknown },
  ) {
    super(`${response.method} ${response.path} → ${response.status} breaks docs/openapi.json:\n  - ${problems.join('\n  - ')}`, options);
    this.name = 'ContractViolationError';
  }
}

/** The document itself cannot be used for checking (a dangling $ref, a schema ajv refuses). */
export class ContractDocumentError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ContractDocumentError';
  }
}

/** A test file started a runtime serving the API but no response of it was validated. */
export class ContractNotCheckedError extends Error {
  constructor() {
    super('This file started a local runtime serving the API, but no response was validated against docs/openapi.json (raw sockets, or a fetch captured before test/setup.ts wrapped it).');
    this.name = 'ContractNotCheckedError';
  }
}

type Json = { [key: string]: unknown };
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
/** Where the document's shared schemas are registered with ajv. */
const COMPONENTS_ID = 'urn:airlock:openapi:components';

/** The checked-in document (test/unit/openapi.test.ts keeps it equal to a fresh generation). */
export const DOC_PATH = join(import.meta.dirname, '..', '..', 'docs', 'openapi.json');

/**
 * ajv, loaded on first use: test/setup.ts installs the fetch wrapper in every test file, and
 * most files never check a response.
 */
function newAjv(options: { allErrors: boolean }): Ajv2020Type {
  const require = createRequire(import.meta.url);
  const { Ajv2020 } = require('ajv/dist/2020.js') as { Ajv2020: typeof Ajv2020Type };
  const addFormats = require('ajv-formats') as typeof addFormatsFn;
  // strict: unknown keywords, formats and loose typing are errors too, so a schema that ajv
  // would silently half-apply cannot pass for a check.
  const ajv = new Ajv2020({ strict: true, validateFormats: true, inlineRefs: false, ...options });
  addFormats(ajv);
  return ajv;
}

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Rewrites `#/components/schemas/X` to the registered components schema, in a copy. */
function relocate(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(relocate);
  if (!isObject(node)) return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) {
    out[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/') ? `${COMPONENTS_ID}#/$defs/${v.slice('#/components/schemas/'.length)}` : relocate(v);
  }
  return out;
}

function describeErrors(where: string, errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).slice(0, 10).map((e) => {
    const extra = e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})` : '';
    return `${where}${e.instancePath || ''}: ${e.message ?? e.keyword}${extra} [${e.schemaPath}]`;
  });
}

interface CompiledResponse {
  /** Media type → body validator. */
  content: Map<string, ValidateFunction>;
  headers: { name: string; required: boolean; schema: Json; validate: ValidateFunction }[];
}

/** Compiled on first use: a test file meets a handful of responses, not all of them. */
type LazyResponse = () => CompiledResponse;

function once<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => (made ??= { value: make() }).value;
}

interface Operation {
  key: string;
  responses: Map<string, LazyResponse>;
}

interface PathEntry {
  template: string;
  regex: RegExp;
  /** Number of literal characters: literal paths win over templated ones (OpenAPI 3.1 §4.8.8.2). */
  literal: number;
  operations: Map<string, Operation>;
}

/** Validates responses against one OpenAPI 3.1 document. */
export class ContractChecker {
  private readonly ajv: Ajv2020Type;
  private readonly paths: PathEntry[] = [];
  private readonly unrouted = new Map<string, LazyResponse>();

  constructor(readonly doc: Json) {
    this.ajv = newAjv({ allErrors: true });
    const components = isObject(doc.components) ? doc.components : {};
    this.ajv.addSchema({ $id: COMPONENTS_ID, $defs: relocate(components.schemas ?? {}) });

    for (const [template, item] of Object.entries(isObject(doc.paths) ? doc.paths : {})) {
      if (!isObject(item)) continue;
      const operations = new Map<string, Operation>();
      for (const method of METHODS) {
        const op = item[method];
        if (!isObject(op)) continue;
        const key = `${method.toUpperCase()} ${template}`;
        const responses = new Map<string, LazyResponse>();
        for (const [status, res] of Object.entries(isObject(op.responses) ? op.responses : {})) {
          responses.set(status, once(() => this.compileResponse(`${key} ${status}`, res)));
        }
        operations.set(method.toUpperCase(), { key, responses });
      }
      const source = template
        .split(/(\{[^}]+\})/)
        .map((part) => (/^\{[^}]+\}$/.test(part) ? '([^/]+)' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
        .join('');
      this.paths.push({ template, regex: new RegExp(`^${source}$`), literal: template.replace(/\{[^}]+\}/g, '').length, operations });
    }
    this.paths.sort((a, b) => b.literal - a.literal);

    const unrouted = doc['x-airlock-unrouted'];
    for (const [status, res] of Object.entries(isObject(unrouted) ? unrouted : {})) {
      this.unrouted.set(status, once(() => this.compileResponse(`x-airlock-unrouted ${status}`, res)));
    }
  }

  /** Compiles one small response, paying ajv's one-off start-up cost now. */
  warmUp(): void {
    const first = this.paths.flatMap((p) => [...p.operations.values()]).flatMap((o) => [...o.responses.values()])[0];
    first?.();
  }

  /** Compiles every response now (schemas are otherwise compiled on first use); returns how many. */
  compileAll(): number {
    const all = [...this.paths.flatMap((p) => [...p.operations.values()].flatMap((o) => [...o.responses.values()])), ...this.unrouted.values()];
    for (const compile of all) compile();
    return all.length;
  }

  /** Resolves `#/components/...` references outside schemas (responses, headers). */
  private deref(node: unknown): Json {
    let n = node;
    for (let hops = 0; isObject(n) && typeof n.$ref === 'string'; hops++) {
      if (hops > 10 || !n.$ref.startsWith('#/')) throw new ContractDocumentError(`unresolvable $ref ${n.$ref}`);
      let target: unknown = this.doc;
      for (const seg of n.$ref.slice(2).split('/')) target = isObject(target) ? target[seg.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
      if (target === undefined) throw new ContractDocumentError(`unresolvable $ref ${n.$ref}`);
      n = target;
    }
    if (!isObject(n)) throw new ContractDocumentError('a response or header is not an object');
    return n;
  }

  private compileResponse(where: string, raw: unknown): CompiledResponse {
    const res = this.deref(raw);
    const content = new Map<string, ValidateFunction>();
    for (const [mediaType, media] of Object.entries(isObject(res.content) ? res.content : {})) {
      const schema = isObject(media) && isObject(media.schema) ? media.schema : {};
      try {
        content.set(mediaType.toLowerCase(), this.ajv.compile(relocate(schema) as Json));
      } catch (error) {
        throw new ContractDocumentError(`${where} ${mediaType}: schema does not compile in strict mode`, { cause: error });
      }
    }
    const headers = Object.entries(isObject(res.headers) ? res.headers : {}).map(([name, h]) => {
      const header = this.deref(h);
      const schema = isObject(header.schema) ? header.schema : {};
      return { name: name.toLowerCase(), required: header.required === true, schema, validate: this.ajv.compile(relocate(schema) as Json) };
    });
    return { content, headers };
  }

  /** The documented path template for a concrete path, if any. */
  matchPath(path: string): PathEntry | undefined {
    const pathname = path.split('?')[0]!.split('#')[0]!;
    return this.paths.find((p) => p.template === pathname || p.regex.test(pathname));
  }

  /**
   * Validates one response; throws ContractViolationError listing every problem found.
   * Returns what it was checked as.
   */
  check(observed: ObservedResponse): ContractMatch {
    const method = observed.method.toUpperCase();
    const status = String(observed.status);
    const entry = this.matchPath(observed.path);
    const operation = entry?.operations.get(method);
    let match: ContractMatch;
    let response: CompiledResponse | undefined;
    const problems: string[] = [];

    if (!entry || !operation) {
      // Outside the document: only the declared refusal may answer (404 for an unknown path,
      // 405 naming exactly the documented methods for a known one).
      match = { operation: 'unrouted', status };
      const expected = entry ? '405' : '404';
      if (status !== expected) {
        problems.push(entry ? `${method} is not documented for ${entry.template}, and the answer is not the 405 refusal` : `no documented path matches, and the answer is not the 404 refusal`);
      } else {
        response = this.unrouted.get(status)?.();
        if (!response) problems.push(`the document declares no x-airlock-unrouted ${status} response`);
        if (entry) {
          const allow = headerOf(observed.headers, 'allow');
          const documented = [...entry.operations.keys()].sort().join(', ');
          const given = (allow ?? '').split(',').map((m) => m.trim().toUpperCase()).filter(Boolean).sort().join(', ');
          if (given !== documented) problems.push(`Allow is ${JSON.stringify(allow)}, but the documented methods of ${entry.template} are ${documented}`);
        }
      }
    } else {
      match = { operation: operation.key, status };
      response = (operation.responses.get(status) ?? operation.responses.get(`${status[0]}XX`) ?? operation.responses.get('default'))?.();
      if (!response) problems.push(`status ${status} is not documented for ${operation.key} (documented: ${[...operation.responses.keys()].join(', ')})`);
    }

    if (response) problems.push(...this.checkAgainst(response, observed));
    if (problems.length > 0) throw new ContractViolationError({ method, path: observed.path, status: observed.status }, problems);
    return match;
  }

  private checkAgainst(response: CompiledResponse, observed: ObservedResponse): string[] {
    const problems: string[] = [];
    for (const h of response.headers) {
      const value = headerOf(observed.headers, h.name);
      if (value === undefined) {
        if (h.required) problems.push(`header ${h.name} is required but missing`);
        continue;
      }
      if (!h.validate(headerValue(value, h.schema))) problems.push(...describeErrors(`header ${h.name}`, h.validate.errors));
    }

    const contentType = headerOf(observed.headers, 'content-type');
    if (response.content.size === 0) {
      if (observed.body.length > 0) problems.push(`the response documents no body, but one was sent (${contentType ?? 'no content-type'})`);
      return problems;
    }
    const mediaType = contentType?.split(';')[0]!.trim().toLowerCase();
    const validate = mediaType ? response.content.get(mediaType) : undefined;
    if (!validate) {
      problems.push(`content-type ${JSON.stringify(contentType)} is not documented (documented: ${[...response.content.keys()].join(', ')})`);
      return problems;
    }
    if (mediaType === 'text/event-stream') {
      // Each event's data is one message, held to the documented schema (POST /mcp's SSE answers).
      const events = observed.body.split('\n').filter((line) => line.startsWith('data:'));
      if (events.length === 0) problems.push('the event stream carries no data event');
      for (const line of events) {
        let message: unknown;
        try {
          message = JSON.parse(line.slice(5));
        } catch {
          problems.push(`an event's data is not JSON: ${JSON.stringify(line.slice(0, 80))}`);
          continue;
        }
        if (!validate(message)) problems.push(...describeErrors('event data', validate.errors));
      }
      return problems;
    }
    let body: unknown;
    try {
      body = JSON.parse(observed.body);
    } catch {
      problems.push(`the body is not JSON: ${JSON.stringify(observed.body.slice(0, 80))}`);
      return problems;
    }
    if (!validate(body)) problems.push(...describeErrors('body', validate.errors));
    return problems;
  }
}

function headerOf(headers: ObservedResponse['headers'], name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const found = Object.entries(headers as Record<string, string | undefined>).find(([k]) => k.toLowerCase() === name);
  return found?.[1];
}

/** Header values are text; a header documented as a number is compared as one when it reads as one. */
function headerValue(value: string, schema: Json): unknown {
  const numeric = schema.type === 'integer' || schema.type === 'number';
  return numeric && /^-?\d+(\.\d+)?$/.test(value.trim()) ? Number(value.trim()) : value;
}

/**
 * Why `schema` is not a valid JSON Schema 2020-12 under ajv's strict mode (unknown keywords
 * and formats, loose typing), or [] when it compiles: for schemas the API publishes as data,
 * such as the tool catalog's input and output schemas.
 */
export function strictSchemaProblems(schema: unknown): string[] {
  const ajv = newAjv({ allErrors: false });
  try {
    ajv.compile(schema as Json);
    return [];
  } catch (error) {
    return [error instanceof Error ? error.message : String(error)];
  }
}

let shared: ContractChecker | undefined;

/** The checker for docs/openapi.json, built once per process on first use. */
export function contractChecker(): ContractChecker {
  shared ??= new ContractChecker(JSON.parse(readFileSync(DOC_PATH, 'utf8')) as Json);
  return shared;
}

// ── validating every response the tests receive ─────────────────────────────

/** Origins whose responses are checked: runtimes serving the default route table. */
const origins = new Set<string>();
const counts = new Map<string, number>();
let registered = 0;

/**
 * Checks every response from `url`'s origin from now on (until `forgetContractOrigin`). Builds
 * the checker here, while a runtime starts, so ajv's first-compile cost (a few hundred ms)
 * does not land inside a test that races a timer; each response schema then compiles on
 * first use in a few ms.
 */
export function checkContractOf(url: string): void {
  origins.add(new URL(url).origin);
  registered++;
  contractChecker().warmUp();
}

/** How many origins were registered in this process, ever. */
export function contractOriginsRegistered(): number {
  return registered;
}

/** Stops checking `url`'s origin (its server closed; the port may be reused by another). */
export function forgetContractOrigin(url: string): void {
  origins.delete(new URL(url).origin);
}

/** Whether responses from this URL are checked. */
export function isContractOrigin(url: string): boolean {
  return origins.has(new URL(url).origin);
}

/** Validates a response and counts it; throws ContractViolationError when it breaks the contract. */
export function validateResponse(observed: ObservedResponse): ContractMatch {
  const match = contractChecker().check(observed);
  const key = `${match.operation} ${match.status}`;
  counts.set(key, (counts.get(key) ?? 0) + 1);
  return match;
}

/** Responses validated in this process so far, by `<operation> <status>`. */
export function validatedCounts(): ReadonlyMap<string, number> {
  return counts;
}

/**
 * Wraps a fetch so every response from a registered origin is validated before the caller
 * sees it. A violation rejects the fetch with ContractViolationError, failing the test at the
 * call that received the response.
 */
export function contractFetch(inner: typeof fetch): typeof fetch {
  const wrapped = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const res = await inner(input, init);
    const url = input instanceof Request ? input.url : String(input);
    if (!isContractOrigin(url)) return res;
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    const target = new URL(url);
    if (res.body && (res.headers.get('content-type') ?? '').toLowerCase().startsWith('text/event-stream')) {
      // A stream may wait for the caller (a server's request mid-call): the caller reads it as it
      // comes, and the whole of it is validated when it ends; a violation errors the caller's read.
      const decoder = new TextDecoder();
      let text = '';
      const checked = new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          text += decoder.decode(chunk, { stream: true });
          controller.enqueue(chunk);
        },
        flush(controller) {
          try {
            validateResponse({ method, path: target.pathname, status: res.status, headers: res.headers, body: text + decoder.decode() });
          } catch (error) {
            controller.error(error);
          }
        },
      });
      return new Response(res.body.pipeThrough(checked), { status: res.status, statusText: res.statusText, headers: res.headers });
    }
    validateResponse({ method, path: target.pathname, status: res.status, headers: res.headers, body: await res.clone().text() });
    return res;
  };
  return wrapped as typeof fetch;
}
