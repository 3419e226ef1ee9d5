import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AirlockFunction, CEDAR_WASM_PACKAGE } from '../../lib/constructs/airlock-function';
import { COMPILED_POLICY_SET_FILE, loadPolicyEngine, policySetVersion, readPolicyDir } from '../../lambdas/policy/index';

/**
 * One real bundle (local esbuild, no Docker) of a function that evaluates policy: what
 * `cdk synth` ships must hold the ESM bundle, its source map, Cedar's wasm and the policy set.
 */
let assetDir: string;
let keysAssetDir: string;
let outdir: string;

beforeAll(() => {
  // Prepare: a bare app (bundling on) with one cedar function.
  const app = new App({ builtinCloudFormationValidation: false });
  const stack = new Stack(app, 'BundleProbe');
  const fn = new AirlockFunction(stack, 'Intake', {
    entry: 'lambdas/intake/handler.ts',
    description: 'bundle probe',
    memoryMiB: 256,
    timeout: Duration.seconds(5),
    logRetention: RetentionDays.ONE_DAY,
    removalPolicy: RemovalPolicy.DESTROY,
    cedar: true,
  });
  // A second function: each gets its own bundle (CDK caches bundling by its options).
  const keys = new AirlockFunction(stack, 'Keys', {
    entry: 'lambdas/keys/handler.ts',
    description: 'bundle probe',
    memoryMiB: 256,
    timeout: Duration.seconds(5),
    logRetention: RetentionDays.ONE_DAY,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  // Act
  const assembly = app.synth();
  outdir = assembly.directory;
  const assetOf = (f: AirlockFunction) => {
    const code: unknown = stack.resolve((f.function.node.defaultChild as CfnFunction).code);
    const hash = JSON.stringify(code).match(/([0-9a-f]{64})\.zip/)?.[1];
    expect(hash).toBeDefined();
    return join(outdir, `asset.${hash}`);
  };
  assetDir = assetOf(fn);
  keysAssetDir = assetOf(keys);
}, 120_000);

afterAll(() => {
  if (outdir?.startsWith(tmpdir())) rmSync(outdir, { recursive: true, force: true });
});

describe('AirlockFunction bundling', () => {
  it('bundles each function from its own entry', () => {
    expect(keysAssetDir).not.toBe(assetDir);
    const map = JSON.parse(readFileSync(join(keysAssetDir, 'index.mjs.map'), 'utf8')) as { sources: string[] };
    expect(map.sources.some((s) => s.endsWith('lambdas/keys/handler.ts'))).toBe(true);
    expect(map.sources.some((s) => s.endsWith('lambdas/intake/handler.ts'))).toBe(false);
    // Only the functions that evaluate policy ship Cedar.
    expect(existsSync(join(keysAssetDir, 'node_modules'))).toBe(false);
    expect(existsSync(join(keysAssetDir, 'policies', 'limits.json'))).toBe(true);
    // The limits validated at synth, and each map's index, ship beside them (read at cold start, on the first error).
    expect(existsSync(join(keysAssetDir, 'policies', 'limits.compiled.json'))).toBe(true);
    expect(existsSync(join(keysAssetDir, 'index.mjs.map.idx'))).toBe(true);
  });

  it('loads no Node built-in as ESM (its facade would read every export; node:http\'s load undici)', () => {
    for (const dir of [assetDir, keysAssetDir]) {
      const files = [join(dir, 'index.mjs'), ...readdirSync(join(dir, 'chunks')).filter((f) => f.endsWith('.mjs')).map((f) => join(dir, 'chunks', f))];
      for (const file of files) {
        const imports = [...readFileSync(file, 'utf8').matchAll(/(?:^|[;}\n])\s*import\s*[^;()]*?from\s*["']([^"']+)["']/g)].map((m) => m[1]);
        // The banner's node:module is the one built-in imported, for createRequire.
        expect(imports.filter((m) => builtinModules.includes(m!.replace(/^node:/, '')) && m !== 'node:module')).toEqual([]);
      }
    }
  });

  it('emits an ESM bundle with the require banner and a source map', () => {
    const bundle = readFileSync(join(assetDir, 'index.mjs'), 'utf8');
    expect(bundle.startsWith("import { createRequire as __airlockCreateRequire } from 'node:module';")).toBe(true);
    expect(existsSync(join(assetDir, 'index.mjs.map'))).toBe(true);
  });

  it('keeps Cedar external, in a chunk loaded on demand, and ships its Node.js entry beside the bundle', () => {
    // Code splitting (lib/constructs/function-bundle.ts): the engine is reached through import().
    const entry = readFileSync(join(assetDir, 'index.mjs'), 'utf8');
    expect(entry).not.toContain(`${CEDAR_WASM_PACKAGE}/nodejs`);
    const chunks = readdirSync(join(assetDir, 'chunks')).filter((f) => f.endsWith('.mjs'));
    expect(chunks.some((f) => readFileSync(join(assetDir, 'chunks', f), 'utf8').includes(`${CEDAR_WASM_PACKAGE}/nodejs`))).toBe(true);
    expect(existsSync(join(assetDir, 'node_modules', CEDAR_WASM_PACKAGE, 'package.json'))).toBe(true);
    expect(existsSync(join(assetDir, 'node_modules', CEDAR_WASM_PACKAGE, 'nodejs', 'cedar_wasm_bg.wasm'))).toBe(true);
    // Only the Node.js build: the esm/ and web/ copies would triple the asset.
    expect(existsSync(join(assetDir, 'node_modules', CEDAR_WASM_PACKAGE, 'web'))).toBe(false);
  });

  it('ships a source map that points at the sources without holding their text', () => {
    const map = JSON.parse(readFileSync(join(assetDir, 'index.mjs.map'), 'utf8')) as { sources: string[]; sourcesContent?: unknown[] };
    expect(map.sources.some((s) => s.endsWith('lambdas/intake/handler.ts'))).toBe(true);
    expect((map.sourcesContent ?? []).filter((c) => c !== null)).toEqual([]);
  });

  it('loads Cedar on first use, not when the bundle is imported (cold start)', () => {
    // A static import of an external is hoisted: it would load the wasm at every cold start
    // (in the entry, or in a chunk the entry imports statically).
    const files = [join(assetDir, 'index.mjs'), ...readdirSync(join(assetDir, 'chunks')).filter((f) => f.endsWith('.mjs')).map((f) => join(assetDir, 'chunks', f))];
    for (const file of files) expect(readFileSync(file, 'utf8')).not.toMatch(/import[^;]{0,200}from\s*["']@cedar-policy\/cedar-wasm/);
    const file = join(assetDir, 'index.mjs');
    const probe = [
      `import { createRequire } from 'node:module';`,
      `await import(${JSON.stringify(file)});`,
      `const require = createRequire(${JSON.stringify(file)});`,
      `const loaded = Object.keys(require.cache).some((k) => k.includes('cedar_wasm'));`,
      // What the bundle's own require resolves on first use: the copy shipped beside it.
      `const cedar = require('${CEDAR_WASM_PACKAGE}/nodejs');`,
      `const mapsOnError = typeof Error.prepareStackTrace === 'function';`,
      `console.log(JSON.stringify({ loaded, mapsOnError, resolved: require.resolve('${CEDAR_WASM_PACKAGE}/nodejs'), works: typeof cedar.statefulIsAuthorized }));`,
    ].join('\n');
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8', env: { ...process.env, AWS_REGION: 'us-east-1' } });
    expect(run.stderr).toBe('');
    const out = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { loaded: boolean; mapsOnError: boolean; resolved: string; works: string };
    expect(out.loaded).toBe(false);
    // Without --enable-source-maps the bundle maps its own stacks, reading the map on the first error.
    expect(out.mapsOnError).toBe(true);
    expect(out.resolved.startsWith(assetDir)).toBe(true);
    expect(out.works).toBe('function');
  });

  it('ships the policy set without its test fixtures', () => {
    expect(existsSync(join(assetDir, 'policies', 'schema.cedarschema'))).toBe(true);
    expect(existsSync(join(assetDir, 'policies', 'config.json'))).toBe(true);
    expect(existsSync(join(assetDir, 'policies', 'tests'))).toBe(false);
  });

  it('ships the policy set compiled at synth, bound to the files beside it (no validation at cold start)', () => {
    const dir = join(assetDir, 'policies');
    const compiled = JSON.parse(readFileSync(join(dir, COMPILED_POLICY_SET_FILE), 'utf8')) as { version: string; analysis: { validation: { ok: boolean } } };
    expect(compiled.version).toBe(policySetVersion(readPolicyDir(dir)));
    expect(compiled.analysis.validation.ok).toBe(true);
    expect(loadPolicyEngine(dir).version).toBe(compiled.version);
  });
});
