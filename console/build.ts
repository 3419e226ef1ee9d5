import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build, buildSync, type BuildOptions, type OutputFile } from 'esbuild';

/**
 * Builds the web console (console/src) into three static files — index.html, app.js,
 * app.css — with esbuild: in memory for the local runtime (on its first /console request),
 * or into a gitignored folder for the CDK stack to upload. No separate build command: both
 * callers build when they need it, in well under a second.
 */

const ROOT = import.meta.dirname;

/** The console's files by name (`index.html`, `app.js`, `app.css`). */
export type ConsoleFiles = ReadonlyMap<string, Uint8Array>;

/** Content types of the console's files. */
export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'config.json': 'application/json',
};

const options: BuildOptions = {
  entryPoints: { app: join(ROOT, 'src', 'main.ts'), 'app-style': join(ROOT, 'styles.css') },
  bundle: true,
  minify: true,
  format: 'iife',
  platform: 'browser',
  target: ['chrome120', 'firefox120', 'safari17'],
  legalComments: 'none',
  outdir: '/console-out',
  write: false,
  logLevel: 'silent',
};

function collect(outputs: OutputFile[]): ConsoleFiles {
  const files = new Map<string, Uint8Array>();
  for (const out of outputs) {
    if (out.path.endsWith('/app.js')) files.set('app.js', out.contents);
    else if (out.path.endsWith('/app-style.css')) files.set('app.css', out.contents);
  }
  files.set('index.html', readFileSync(join(ROOT, 'index.html')));
  return files;
}

/** Builds the console in memory. */
export async function buildConsole(): Promise<ConsoleFiles> {
  const result = await build(options);
  return collect(result.outputFiles ?? []);
}

/** Builds the console in memory, synchronously (for a CDK construct's constructor). */
export function buildConsoleSync(): ConsoleFiles {
  return collect(buildSync(options).outputFiles ?? []);
}

/** Folder (gitignored) where {@link writeConsole} leaves builds, one per content hash. */
export const CONSOLE_DIST = join(ROOT, 'dist');

/**
 * Writes a build to `console/dist/<hash>/` and returns that folder. Content-addressed and
 * renamed into place, so concurrent synths (parallel test files) never see a half-written one.
 */
export function writeConsole(files: ConsoleFiles = buildConsoleSync()): string {
  const hash = createHash('sha256');
  for (const [name, body] of [...files].sort(([a], [b]) => a.localeCompare(b))) hash.update(name).update('\0').update(body).update('\0');
  const dir = join(CONSOLE_DIST, hash.digest('hex').slice(0, 16));
  if (existsSync(dir)) return dir;
  const tmp = `${dir}.${process.pid}.${Date.now()}.tmp`;
  mkdirSync(tmp, { recursive: true });
  for (const [name, body] of files) writeFileSync(join(tmp, name), body);
  try {
    renameSync(tmp, dir);
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(dir)) throw error;
  }
  return dir;
}
