import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { functionBuildOptions } from '../../lib/constructs/function-bundle';

/**
 * The functions that ship without Cedar's wasm (connectors: steps/, receipts) must still load:
 * bundled the way the stack bundles them, their module graph may not evaluate Cedar at import
 * (it reads its .wasm from beside the bundle, which only the Cedar functions have).
 */
const out = mkdtempSync(join(tmpdir(), 'airlock-bundle-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('cold start of functions without Cedar', () => {
  it.each(['steps', 'receipts'])('the %s bundle loads and exports its handler', async (name) => {
    // Prepare: the bundle the stack ships (lib/constructs/function-bundle.ts: split ESM, require banner).
    const outdir = join(out, name);
    await build(functionBuildOptions({ entry: `lambdas/${name}/handler.ts`, outdir, cedar: false }));
    // Act: import it as Lambda would at cold start (config is read later, on first use).
    const mod = (await import(pathToFileURL(join(outdir, 'index.mjs')).href)) as { handler?: unknown };
    // Assess
    expect(typeof mod.handler).toBe('function');
  }, 60_000);
});

/** The inputs with code in what an import of `name`'s bundle loads: index.mjs and the chunks it imports statically. */
async function loadedAtImport(name: string): Promise<Set<string>> {
  const result = await build({ ...functionBuildOptions({ entry: `lambdas/${name}/handler.ts`, outdir: join(out, `${name}-static`), cedar: false }), write: false });
  const outputs = result.metafile!.outputs;
  const files = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file) || !outputs[file]) return;
    files.add(file);
    for (const i of outputs[file].imports) if (i.kind === 'import-statement' && !i.external) visit(i.path);
  };
  visit(Object.keys(outputs).find((file) => file.endsWith(`${name}-static/index.mjs`))!);
  return new Set([...files].flatMap((file) => Object.entries(outputs[file]!.inputs).filter(([, use]) => use.bytesInOutput > 0).map(([path]) => path)));
}

describe('what a bundle carries into every cold start', () => {
  it.each(['intake', 'saga', 'approvals', 'reconcile', 'receipts', 'steps'])(
    'the %s bundle loads no AWS SDK client but DynamoDB at import (the others load with their adapter on first use)',
    async (name) => {
      // Act
      const loaded = await loadedAtImport(name);
      const clients = new Set([...loaded].map((path) => /node_modules\/@aws-sdk\/(client-[a-z0-9-]+)\//.exec(path)?.[1]).filter((c) => c !== undefined));
      // Assess: Step Functions, Lambda, EventBridge, Secrets Manager and S3 clients (and their
      // adapters) are in chunks reached through import() only.
      expect([...clients]).toEqual(['client-dynamodb']);
      expect([...loaded].filter((path) => /^lambdas\/adapters\/aws\/(sfn-|lambda-invoker|eventbridge|secrets-manager|s3-)/.test(path))).toEqual([]);
    },
    60_000,
  );


  it('leaves out the modules of ours a function never uses, with the schemas they build at load', async () => {
    // Prepare: the grant-key rotator's composition module also builds the other functions'
    // dependencies (tool registry, policy, receipts); none of it is the rotator's.
    // Act: every module of ours with code in what an import loads: index.mjs and the chunks it
    // imports statically (a chunk reached through import() loads on first use, if ever).
    const ours = new Set([...(await loadedAtImport('keys'))].filter((path) => path.startsWith('lambdas/')));
    // Assess: the rotation is there; the tool registry, the receipts schemas and the API schemas are not.
    expect(ours.has('lambdas/keys/rotation.ts')).toBe(true);
    expect([...ours].filter((path) => /^lambdas\/(tools|receipts|api|policy|intake)\//.test(path))).toEqual([]);
  }, 60_000);

  it.each(['intake', 'approvals'])('the %s bundle builds the schemas of the requests it parses at import, not those of the answers', async (name) => {
    // Act
    const loaded = await loadedAtImport(name);
    // Assess: lambdas/api/requests.ts (queries and bodies) is there; lambdas/api/schemas.ts
    // (~150 answer schemas, ~30 ms of approvals' import CPU) is not: it loads with the OpenAPI
    // document, in a chunk reached through import().
    expect(loaded.has('lambdas/api/requests.ts')).toBe(true);
    expect(loaded.has('lambdas/api/schemas.ts')).toBe(false);
  }, 60_000);

  it.each(['keys', 'saga', 'intake'])('the %s bundle holds zod without its locales (it is imported as a namespace)', async (name) => {
    // Prepare: `import { z } from 'zod'` makes esbuild keep zod's whole namespace, with ~50
    // locales and the JSON Schema import (~350 KiB parsed at every cold start);
    // `import * as z from 'zod'` lets it keep what the code uses.
    const result = await build({
      entryPoints: [join(import.meta.dirname, '..', '..', 'lambdas', name, 'handler.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node24',
      mainFields: ['module', 'main'],
      write: false,
      outfile: join(out, `${name}-meta.mjs`),
      metafile: true,
      logLevel: 'silent',
      external: ['@cedar-policy/cedar-wasm'],
    });
    // Act: the modules with code in the output (inputs lists the tree-shaken ones too).
    const output = Object.values(result.metafile.outputs).find((o) => o.entryPoint)!;
    const inputs = Object.entries(output.inputs)
      .filter(([path, use]) => path.includes('node_modules/zod/') && use.bytesInOutput > 0)
      .map(([path]) => path);
    // Assess: zod is there, its English messages only.
    expect(inputs.length).toBeGreaterThan(0);
    expect(inputs.filter((path) => /\/locales\/(?!en\.js$|index\.js$)/.test(path))).toEqual([]);
    expect(inputs.filter((path) => path.includes('from-json-schema'))).toEqual([]);
  }, 60_000);
});
