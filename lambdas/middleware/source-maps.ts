import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * Stack traces of a bundled function mapped back to the TypeScript sources, with the source
 * map read only when a stack is first formatted. `--enable-source-maps` (Node's own support)
 * reads and parses the map of every module at load, so every cold start paid for it, errors
 * or not (bench/cold-start.ts measures both). V8 formats `error.stack` lazily, on first
 * access, through `Error.prepareStackTrace`: the map is loaded there, once per instance.
 */

/** A V8 call site, as `Error.prepareStackTrace` receives it. */
type CallSite = NodeJS.CallSite;

/** Where a frame of the bundle came from in the sources (1-based line and column). */
interface Origin {
  fileName: string;
  lineNumber: number;
  columnNumber: number;
  name?: string;
}

/** Maps positions of one bundle to its sources, from the map beside it. */
class BundleMap {
  private map: SourceMap | null | undefined;

  constructor(private readonly mapFile: string) {}

  /** The source position of a 1-based bundle position, or undefined when the map has none. */
  origin(line: number, column: number): Origin | undefined {
    if (this.map === undefined) {
      try {
        this.map = new SourceMap(JSON.parse(readFileSync(this.mapFile, 'utf8')) as ConstructorParameters<typeof SourceMap>[0]);
      } catch {
        // An unreadable map leaves stacks as the bundle's positions; it must never hide the error.
        this.map = null;
      }
    }
    if (!this.map) return undefined;
    const found = this.map.findOrigin(line, column) as Partial<Origin>;
    if (found.fileName === undefined || found.lineNumber === undefined || found.columnNumber === undefined) return undefined;
    // Sources are relative to the map: resolve them to absolute paths, as Node prints them.
    const file = found.fileName.startsWith('file:') ? fileURLToPath(found.fileName) : fileURLToPath(new URL(found.fileName, pathToFileURL(this.mapFile)));
    return { fileName: file, lineNumber: found.lineNumber, columnNumber: found.columnNumber, ...(found.name ? { name: found.name } : {}) };
  }
}

/** One frame as Node prints it (`at name (file:line:col)`), with the bundle's positions mapped. */
function formatFrame(frame: CallSite, bundleFiles: ReadonlySet<string>, map: BundleMap): string {
  const file = frame.getFileName();
  const line = frame.getLineNumber();
  const column = frame.getColumnNumber();
  if (!file || !bundleFiles.has(file) || line === null || column === null) return frame.toString();
  const origin = map.origin(line, column);
  if (!origin) return frame.toString();
  const where = `${origin.fileName}:${origin.lineNumber}:${origin.columnNumber}`;
  const fn = frame.getFunctionName() ?? origin.name;
  const method = frame.getMethodName();
  const type = frame.isToplevel() || frame.isConstructor() ? null : frame.getTypeName();
  let name = fn ?? (method ? `${type ? `${type}.` : ''}${method}` : null);
  if (name && frame.isConstructor()) name = `new ${name}`;
  const prefix = frame.isAsync() ? 'async ' : frame.isPromiseAll() ? 'async Promise.all ' : '';
  return name ? `${prefix}${name} (${where})` : `${prefix}${where}`;
}

/** The first line of a stack, as V8 writes it; an error whose toString throws still gets one. */
function header(error: Error): string {
  try {
    return String(error);
  } catch {
    return 'Error';
  }
}

/**
 * Maps the stacks of errors raised in the bundle at `bundleUrl` (pass `import.meta.url` from
 * inside it) through `<bundle>.map`, loading the map on the first formatted stack. Does
 * nothing, and returns false, when there is no map beside the module (unbundled: tsx, tests,
 * the local runtime) or when Node already maps stacks (`--enable-source-maps`).
 */
export function mapStacksOnDemand(bundleUrl: string): boolean {
  if (process.sourceMapsEnabled || !bundleUrl.startsWith('file:')) return false;
  const bundleFile = fileURLToPath(bundleUrl);
  const mapFile = `${bundleFile}.map`;
  if (!existsSync(mapFile)) return false;
  const map = new BundleMap(mapFile);
  // ESM frames carry the URL, CommonJS ones the path: the bundle is known by both.
  const bundleFiles = new Set([bundleFile, bundleUrl]);
  const previous = Error.prepareStackTrace;
  Error.prepareStackTrace = (error: Error, frames: CallSite[]) => {
    try {
      return header(error) + frames.map((frame) => `\n    at ${formatFrame(frame, bundleFiles, map)}`).join('');
    } catch {
      return previous ? previous(error, frames) : header(error) + frames.map((frame) => `\n    at ${String(frame)}`).join('');
    }
  };
  return true;
}
