import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { renderOpenApi } from '../../lambdas/api/openapi';
import { renderConsoleTypes } from '../../scripts/console-types';

/** The console's API types come from the published contract, and only as types. */

const ROOT = join(import.meta.dirname, '..', '..');
const CONSOLE = join(ROOT, 'console');
const TYPES_FILE = join(CONSOLE, 'src', 'api-types.ts');

type Doc = { components: { schemas: Record<string, Record<string, unknown>> } };
const freshDoc = () => JSON.parse(renderOpenApi()) as Doc;

/** The last program checked: the next one reuses its unchanged files (seconds saved per check). */
let previous: ts.Program | undefined;

/** `tsc -p console`, with console/src/api-types.ts replaced by `types`: the diagnostics' texts. */
function typecheckConsole(types: string): string[] {
  const configPath = join(CONSOLE, 'tsconfig.json');
  const config = ts.readConfigFile(configPath, (p) => ts.sys.readFile(p));
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, CONSOLE, { noEmit: true }, configPath);
  const host = ts.createCompilerHost(parsed.options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (fileName, language, onError, create) =>
    fileName === TYPES_FILE ? ts.createSourceFile(fileName, types, language) : getSourceFile(fileName, language, onError, create);
  const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options, host, ...(previous ? { oldProgram: previous } : {}) });
  previous = program;
  return ts.getPreEmitDiagnostics(program).map((d) => `${d.file ? `${d.file.fileName.slice(ROOT.length + 1)}: ` : ''}${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
}

describe('console/src/api-types.ts', () => {
  it('is generated from docs/openapi.json as it stands (run `npm run openapi` after a schema change)', () => {
    expect(readFileSync(TYPES_FILE, 'utf8') === renderConsoleTypes(freshDoc()), 'console/src/api-types.ts is stale: run `npm run openapi` and commit the result').toBe(true);
  });

  it('renders required and optional members, nullables, enums, consts, unions, references, maps and odd keys', () => {
    const out = renderConsoleTypes({
      components: {
        schemas: {
          Thing: {
            type: 'object',
            description: 'A thing.',
            properties: {
              id: { $ref: '#/components/schemas/ThingId' },
              kind: { type: 'string', enum: ['a', 'b'] },
              fixed: { const: 429 },
              note: { type: ['string', 'null'] },
              when: { anyOf: [{ $ref: '#/components/schemas/ThingId' }, { type: 'null' }] },
              tags: { type: 'array', items: { type: 'string' } },
              dims: { type: 'object', additionalProperties: { type: 'number' } },
              'violated-policies': { type: 'array', items: { type: 'object', properties: { x: { type: 'integer' } }, required: ['x'], additionalProperties: false } },
              anything: {},
            },
            required: ['id', 'kind'],
            additionalProperties: false,
          },
          ThingId: { type: 'string' },
        },
      },
    });
    expect(out).toContain('/** A thing. */\nexport type Thing = {');
    expect(out).toContain('  id: ThingId;');
    expect(out).toContain('  kind: "a" | "b";');
    expect(out).toContain('  fixed?: 429;');
    expect(out).toContain('  note?: string | null;');
    expect(out).toContain('  when?: ThingId | null;');
    expect(out).toContain('  tags?: string[];');
    expect(out).toContain('  dims?: {\n    [member: string]: number;\n  };');
    expect(out).toContain('  "violated-policies"?: Array<{\n    x: number;\n  }>;');
    expect(out).toContain('  anything?: unknown;');
    expect(out).toContain('export type ThingId = string;');
    expect(() => renderConsoleTypes({ components: { schemas: { X: { $ref: 'https://elsewhere/X' } } } })).toThrow(/unsupported \$ref/);
  });

  it('makes a wire change the console relies on break `tsc -p console`, and type-checks as generated', () => {
    expect(typecheckConsole(renderConsoleTypes(freshDoc()))).toEqual([]);
    // The action's principal is gone from the contract: the pages that show it no longer compile.
    const withoutPrincipal = freshDoc();
    delete (withoutPrincipal.components.schemas.Action!.properties as Record<string, unknown>).principal;
    const broken = typecheckConsole(renderConsoleTypes(withoutPrincipal));
    expect(broken.some((d) => d.startsWith('console/src/views.ts') && /principal/.test(d)), broken.join('\n')).toBe(true);
    // A status added to the API must be placed in the console's status list.
    const newStatus = freshDoc();
    (newStatus.components.schemas.ActionStatus!.enum as string[]).push('quarantined');
    const missing = typecheckConsole(renderConsoleTypes(newStatus));
    expect(missing.some((d) => /quarantined/.test(d)), missing.join('\n')).toBe(true);
  }, 60_000);

  it('keeps zod and every server module out of the browser bundle', async () => {
    const result = await build({ entryPoints: [join(CONSOLE, 'src', 'main.ts')], bundle: true, write: false, metafile: true, platform: 'browser', format: 'iife', logLevel: 'silent' });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.length).toBeGreaterThan(3);
    expect(inputs.filter((p) => !p.startsWith('console/src/'))).toEqual([]);
  });
});
