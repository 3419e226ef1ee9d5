import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type BuildOptions, type Metafile, type Plugin } from 'esbuild';
import { encodeMapIndex, MAP_INDEX_SUFFIX } from '../../lambdas/middleware/source-maps';
import { COMPILED_LIMITS_FILE, compileLimits, defaultLimitsFile, LIMITS_FILE } from '../../lambdas/limits/config';
import { COMPILED_POLICY_SET_FILE, compilePolicySet, defaultPolicyDir, readPolicyDir } from '../../lambdas/policy/index';

/**
 * How every function is bundled: by the stack at synth (lib/constructs/airlock-function.ts runs
 * this file as a script) and by `npm run bench:cold-start`, so the benchmark measures what ships.
 *
 * - ESM with code splitting: `index.mjs` holds what the handler's module graph needs at import;
 *   whatever is reached only through `import()` (MCP, Cedar's engine, the SDK's credential
 *   providers) lands in `chunks/`, compiled only when first used. V8 compiles the whole entry
 *   file at import, so a byte kept out of it is a byte no cold start parses.
 * - Node built-ins are loaded with `require`, never `import`: importing a built-in as ESM builds
 *   its ESM facade, which reads every export, and `node:http`'s exports include lazy getters
 *   (WebSocket…) that load Node's bundled undici: ~20–30 ms CPU per cold start for nothing.
 * - Minified with class and function names kept (error names are the ASL's ErrorEquals
 *   contract), a source map per file without the sources' text (read on the first error only:
 *   lambdas/middleware/source-maps.ts), the AWS SDK inside (the pinned version the tests ran).
 */

/** The repository root. */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Cedar's wasm package: too big to inline (4.3 MB), so it ships beside the bundle. */
export const CEDAR_WASM_PACKAGE = '@cedar-policy/cedar-wasm';

/** The entry file Lambda loads (`index.handler`). */
export const BUNDLE_ENTRY_FILE = 'index.mjs';

/**
 * Lets bundled ESM call `require` (built-ins, and the CommonJS dependencies' own requires;
 * esbuild's ESM output otherwise throws "Dynamic require of ... is not supported"). Every
 * output file gets it: a chunk may require a built-in too.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __airlockCreateRequire } from 'node:module'; const require = __airlockCreateRequire(import.meta.url);";

const BUILTINS = new Set(builtinModules.filter((name) => !name.startsWith('_')));

/**
 * `import … from 'node:http'` becomes a CommonJS wrapper around `require('node:http')`: the
 * module's exports are then read when used, not all at import (see the file comment).
 */
const requireBuiltins: Plugin = {
  name: 'require-builtins',
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z_][a-z0-9_/]*$/ }, (args) => {
      const name = args.path.replace(/^node:/, '');
      if (args.kind === 'require-call' || !BUILTINS.has(name)) return undefined;
      return { path: name, namespace: 'require-builtin' };
    });
    b.onLoad({ filter: /.*/, namespace: 'require-builtin' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(`node:${args.path}`)});`, loader: 'js' }));
  },
};

const LAMBDAS = join(ROOT, 'lambdas') + '/';

/**
 * Airlock's own modules are marked free of side effects (as a package's `"sideEffects": false`
 * would): a module none of whose exports a function uses is left out whole, with the schemas
 * it builds at load. Every function's composition module imports the builders of all of them
 * (lambdas/composition/aws.ts); esbuild keeps a module's top-level calls (`z.object(…)`) even
 * when nothing uses the result, unless told the module has no side effects. No module under
 * lambdas/ is imported for its effects alone (none is imported bare).
 */
const ownModulesPure: Plugin = {
  name: 'own-modules-pure',
  setup(b) {
    b.onResolve({ filter: /^\./ }, async (args) => {
      if (args.kind === 'entry-point' || args.pluginData === 'own-modules-pure') return undefined;
      const resolved = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: 'own-modules-pure' });
      if (resolved.errors.length > 0 || !resolved.path.startsWith(LAMBDAS)) return resolved;
      return { ...resolved, sideEffects: false };
    });
  },
};

/** What to bundle and ship for one function. */
export interface FunctionBundleInput {
  /** Handler file, relative to the repository root (`lambdas/intake/handler.ts`). */
  entry: string;
  /** The directory the asset is assembled in. */
  outdir: string;
  /** Ship Cedar's wasm and the policy set (functions that evaluate policy). */
  cedar: boolean;
  /** The limits file to ship; policies/limits.json by default. */
  limitsFile?: string;
}

/** esbuild's options for a function's bundle (exported for tests and the bench). */
export function functionBuildOptions(input: Pick<FunctionBundleInput, 'entry' | 'outdir' | 'cedar'>): BuildOptions {
  return {
    entryPoints: { index: join(ROOT, input.entry) },
    absWorkingDir: ROOT,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    mainFields: ['module', 'main'],
    splitting: true,
    outdir: input.outdir,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    minify: true,
    keepNames: true,
    sourcemap: true,
    sourcesContent: false,
    external: input.cedar ? [CEDAR_WASM_PACKAGE] : [],
    banner: { js: ESM_REQUIRE_BANNER },
    plugins: [requireBuiltins, ownModulesPure],
    metafile: true,
    logLevel: 'warning',
  };
}

/**
 * Bundles a function into `outdir` with what it reads at run time beside it: the limits file
 * (every function), and for those that evaluate policy Cedar's Node.js entry (with its
 * package.json, for the `exports` map; not its web and esm copies) and the policy set (the
 * top-level *.cedar, schema.cedarschema, config.json; not the fixtures) with its analysis
 * compiled here, so a cold start reads it instead of running Cedar's validator.
 */
export async function bundleFunction(input: FunctionBundleInput): Promise<Metafile> {
  const result = await build(functionBuildOptions(input));
  // Each map's mappings decoded now, beside it: the first error of an instance reads them
  // instead of decoding the map (lambdas/middleware/source-maps.ts).
  for (const file of Object.keys(result.metafile!.outputs)) {
    if (!file.endsWith('.mjs.map')) continue;
    const path = join(ROOT, file);
    const index = encodeMapIndex(readFileSync(path, 'utf8'));
    if (index) writeFileSync(path + MAP_INDEX_SUFFIX, index);
  }
  const policies = join(input.outdir, 'policies');
  mkdirSync(policies, { recursive: true });
  const limitsFile = input.limitsFile ?? defaultLimitsFile();
  cpSync(limitsFile, join(policies, LIMITS_FILE));
  // Validated here (throws on an invalid file: a synth never ships one) and shipped parsed,
  // bound to the text's hash: a cold start reads it instead of running the schema.
  writeFileSync(join(policies, COMPILED_LIMITS_FILE), JSON.stringify(compileLimits(readFileSync(limitsFile, 'utf8'), limitsFile)));
  if (input.cedar) {
    const from = join(ROOT, 'node_modules', CEDAR_WASM_PACKAGE);
    const to = join(input.outdir, 'node_modules', CEDAR_WASM_PACKAGE);
    mkdirSync(to, { recursive: true });
    cpSync(join(from, 'package.json'), join(to, 'package.json'));
    cpSync(join(from, 'nodejs'), join(to, 'nodejs'), { recursive: true });
    const source = defaultPolicyDir();
    for (const file of readdirSync(source)) {
      if (file.endsWith('.cedar') || file === 'schema.cedarschema' || file === 'config.json') cpSync(join(source, file), join(policies, file));
    }
    // Throws on an invalid set: a synth never ships one.
    writeFileSync(join(policies, COMPILED_POLICY_SET_FILE), JSON.stringify(compilePolicySet(readPolicyDir(policies))));
  }
  return result.metafile!;
}

// Run as a script by the stack's local bundling (a synth is synchronous; esbuild's plugins are not).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await bundleFunction(JSON.parse(process.argv[2]!) as FunctionBundleInput);
}
