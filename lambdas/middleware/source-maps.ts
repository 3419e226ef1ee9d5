import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * Stack traces of a bundled function mapped back to the TypeScript sources, with the source
 * map read only when a stack is first formatted. `--enable-source-maps` (Node's own support)
 * reads and parses the map of every module at load, so every cold start paid for it, errors
 * or not (bench/cold-start.ts measures both). V8 formats `error.stack` lazily, on first
 * access, through `Error.prepareStackTrace`: the map is loaded there, once per instance.
 */

/** Where code splitting puts the chunks beside a function's `index.mjs` (lib/constructs/function-bundle.ts). */
const CHUNKS_DIR = 'chunks';

/** A V8 call site, as `Error.prepareStackTrace` receives it. */
type CallSite = NodeJS.CallSite;

/** Where a frame of the bundle came from in the sources (1-based line and column). */
interface Origin {
  fileName: string;
  lineNumber: number;
  columnNumber: number;
}

/** A source map's mappings, decoded into flat arrays (one entry per segment, lines in order). */
interface Decoded {
  /** Index of the first segment of each generated line, plus one past the last. */
  lineStarts: Int32Array;
  columns: Int32Array;
  /** Index into sourceNames, or -1 for a segment that maps to no source. */
  sources: Int32Array;
  lines: Int32Array;
  originalColumns: Int32Array;
  sourceNames: string[];
}

const BASE64 = new Int8Array(128).fill(-1);
for (const [i, ch] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].entries()) BASE64[ch.charCodeAt(0)] = i;

/**
 * Decodes the VLQ `mappings` of a source map v3 into typed arrays: Node's own SourceMap class
 * builds an array per segment, which for a minified bundle's map (hundreds of thousands of
 * segments) costs far more, most of it garbage collection.
 */
function decode(map: { sources?: unknown; mappings?: unknown }): Decoded | null {
  if (typeof map.mappings !== 'string' || !Array.isArray(map.sources)) return null;
  const text = map.mappings;
  // Upper bounds: a segment ends at every ',' or ';' (and at the end).
  let separators = 1;
  let lineCount = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 44) separators++;
    else if (c === 59) {
      separators++;
      lineCount++;
    }
  }
  const columns = new Int32Array(separators);
  const sources = new Int32Array(separators);
  const lines = new Int32Array(separators);
  const originalColumns = new Int32Array(separators);
  const lineStarts = new Int32Array(lineCount + 1);
  const fields = [0, 0, 0, 0, 0];
  let count = 0;
  let lineIndex = 0;
  let column = 0;
  let source = 0;
  let line = 0;
  let originalColumn = 0;
  let i = 0;
  while (i < text.length) {
    const ch = text.charCodeAt(i);
    if (ch === 59 /* ; */) {
      lineStarts[++lineIndex] = count;
      column = 0;
      i++;
      continue;
    }
    if (ch === 44 /* , */) {
      i++;
      continue;
    }
    let n = 0;
    while (i < text.length && n < 5) {
      const c = text.charCodeAt(i);
      if (c === 44 || c === 59) break;
      let value = 0;
      let shift = 0;
      let digit: number;
      do {
        const code = text.charCodeAt(i++);
        digit = code < 128 ? BASE64[code]! : -1;
        if (digit < 0 || shift > 30) return null;
        value |= (digit & 31) << shift;
        shift += 5;
      } while (digit & 32);
      fields[n++] = value & 1 ? -(value >>> 1) : value >>> 1;
    }
    column += fields[0]!;
    columns[count] = column;
    if (n >= 4) {
      source += fields[1]!;
      line += fields[2]!;
      originalColumn += fields[3]!;
      sources[count] = source;
      lines[count] = line;
      originalColumns[count] = originalColumn;
    } else sources[count] = -1;
    count++;
  }
  lineStarts[++lineIndex] = count;
  return { lineStarts: lineStarts.subarray(0, lineIndex + 1), columns, sources, lines, originalColumns, sourceNames: map.sources.map(String) };
}

/**
 * A map's mappings decoded at build time (lib/constructs/function-bundle.ts writes one beside
 * every map: `<file>.mjs.map.idx`), so the first error of an instance reads typed arrays
 * instead of parsing the JSON and decoding its VLQ (~20 ms for a function's entry on a cold
 * instance, bench/cold-start.ts). Layout: "AMI1", u32 header length, the header's JSON
 * (`mapBytes`: the map's size it was made from; segment and line counts; the sources),
 * padded to 4 bytes, then lineStarts, columns, sources, lines and originalColumns as Int32
 * in the platform's byte order (little-endian: x86-64 and arm64 Lambda alike). An index that
 * does not fit the map beside it (another size, a bad header) is ignored: the map is decoded.
 */
export const MAP_INDEX_SUFFIX = '.idx';
const MAP_INDEX_MAGIC = 'AMI1';

/** The index of a map's text, or null when it has no decodable mappings. */
export function encodeMapIndex(mapText: string): Buffer | null {
  const d = decode(JSON.parse(mapText) as { sources?: unknown; mappings?: unknown });
  if (!d) return null;
  const segments = d.columns.length;
  let header = Buffer.from(JSON.stringify({ mapBytes: Buffer.byteLength(mapText), lines: d.lineStarts.length, segments, sources: d.sourceNames }));
  header = Buffer.concat([header, Buffer.alloc((4 - ((8 + header.length) % 4)) % 4, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.write(MAP_INDEX_MAGIC, 0, 'latin1');
  prefix.writeUInt32LE(header.length, 4);
  const arrays = [d.lineStarts, d.columns, d.sources, d.lines, d.originalColumns].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength));
  return Buffer.concat([prefix, header, ...arrays]);
}

/** The decoded mappings from the index beside `mapFile`, or undefined when there is none that fits. */
function readMapIndex(mapFile: string): Decoded | undefined {
  const indexFile = mapFile + MAP_INDEX_SUFFIX;
  if (!existsSync(indexFile)) return undefined;
  const raw = readFileSync(indexFile);
  if (raw.length < 8 || raw.toString('latin1', 0, 4) !== MAP_INDEX_MAGIC) return undefined;
  const headerLength = raw.readUInt32LE(4);
  const header = JSON.parse(raw.toString('utf8', 8, 8 + headerLength)) as { mapBytes?: unknown; lines?: unknown; segments?: unknown; sources?: unknown };
  const { mapBytes, lines, segments, sources } = header;
  if (typeof lines !== 'number' || typeof segments !== 'number' || !Array.isArray(sources) || mapBytes !== statSync(mapFile).size) return undefined;
  const start = 8 + headerLength;
  if (raw.length !== start + 4 * (lines + 4 * segments)) return undefined;
  // Int32Array views need 4-byte alignment: copy when the buffer does not start on one.
  const bytes = (raw.byteOffset + start) % 4 === 0 ? raw : Buffer.from(raw);
  const base = bytes.byteOffset + start;
  const view = (offset: number, length: number) => new Int32Array(bytes.buffer, base + 4 * offset, length);
  return {
    lineStarts: view(0, lines),
    columns: view(lines, segments),
    sources: view(lines + segments, segments),
    lines: view(lines + 2 * segments, segments),
    originalColumns: view(lines + 3 * segments, segments),
    sourceNames: sources.map(String),
  };
}

/** Maps positions of one bundle to its sources, from the map beside it (read on first use). */
export class BundleMap {
  private decoded: Decoded | null | undefined;

  constructor(private readonly mapFile: string) {}

  /** The source position of a 1-based bundle position, or undefined when the map has none. */
  origin(line: number, column: number): Origin | undefined {
    if (this.decoded === undefined) {
      try {
        this.decoded = readMapIndex(this.mapFile) ?? decode(JSON.parse(readFileSync(this.mapFile, 'utf8')) as { sources?: unknown; mappings?: unknown });
      } catch {
        // An unreadable map leaves stacks as the bundle's positions; it must never hide the error.
        this.decoded = null;
      }
    }
    const d = this.decoded;
    if (!d || line < 1 || line >= d.lineStarts.length) return undefined;
    // The last segment of the line that starts at or before the column.
    let lo = d.lineStarts[line - 1]!;
    let hi = d.lineStarts[line]! - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (d.columns[mid]! <= column - 1) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0 || d.sources[found]! < 0) return undefined;
    const name = d.sourceNames[d.sources[found]!];
    if (name === undefined) return undefined;
    // Sources are relative to the map: resolve them to absolute paths, as Node prints them.
    const file = name.startsWith('file:') ? fileURLToPath(name) : fileURLToPath(new URL(name, pathToFileURL(this.mapFile)));
    return { fileName: file, lineNumber: d.lines[found]! + 1, columnNumber: d.originalColumns[found]! + 1 };
  }
}

/** One frame as Node prints it (`at name (file:line:col)`), with the bundle's positions mapped. */
function formatFrame(frame: CallSite, mapOf: (file: string) => BundleMap | undefined): string {
  const file = frame.getFileName();
  const line = frame.getLineNumber();
  const column = frame.getColumnNumber();
  const map = file ? mapOf(file) : undefined;
  if (!map || line === null || column === null) return frame.toString();
  const origin = map.origin(line, column);
  if (!origin) return frame.toString();
  const where = `${origin.fileName}:${origin.lineNumber}:${origin.columnNumber}`;
  const fn = frame.getFunctionName();
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
 * inside it) through the maps beside its files, each read when a stack first has a frame in
 * its file. A function's bundle is split (lib/constructs/function-bundle.ts): `index.mjs` and
 * `chunks/*.mjs`, so every `.mjs` file of the bundle's directory (and of its `chunks/`) is
 * mapped, whichever of them holds this module. Does nothing, and returns false, when there is
 * no map beside the module (unbundled: tsx, tests, the local runtime) or when Node already
 * maps stacks (`--enable-source-maps`).
 */
export function mapStacksOnDemand(bundleUrl: string): boolean {
  if (process.sourceMapsEnabled || !bundleUrl.startsWith('file:')) return false;
  const bundleFile = fileURLToPath(bundleUrl);
  if (!existsSync(`${bundleFile}.map`)) return false;
  const here = dirname(bundleFile);
  const root = basename(here) === CHUNKS_DIR ? dirname(here) : here;
  const maps = new Map<string, BundleMap | undefined>();
  /** The map of a frame's file when the file is one of the bundle's (ESM frames carry URLs, CommonJS ones paths). */
  const mapOf = (file: string): BundleMap | undefined => {
    let map = maps.get(file);
    if (map !== undefined || maps.has(file)) return map;
    const path = file.startsWith('file:') ? fileURLToPath(file) : file;
    const dir = dirname(path);
    if (path.endsWith('.mjs') && (dir === root || dir === join(root, CHUNKS_DIR)) && existsSync(`${path}.map`)) map = new BundleMap(`${path}.map`);
    maps.set(file, map);
    return map;
  };
  const previous = Error.prepareStackTrace;
  Error.prepareStackTrace = (error: Error, frames: CallSite[]) => {
    try {
      return header(error) + frames.map((frame) => `\n    at ${formatFrame(frame, mapOf)}`).join('');
    } catch {
      return previous ? previous(error, frames) : header(error) + frames.map((frame) => `\n    at ${String(frame)}`).join('');
    }
  };
  return true;
}
