import { createRequire } from 'node:module';
import type { ActionRecord } from '../../actions/action';

/**
 * The action item's body: the whole action record as one binary attribute (`body`, B), so the
 * item stays under DynamoDB's 1 KB write unit for a typical read (ledger.md, "Action body").
 * Every attribute a condition, key or index reads (`status`, `version`, `updatedAt`, the keys)
 * stays a plain attribute beside it; the body is only ever read whole and written whole.
 *
 * Layout: one format byte, then the payload. Format 1 is the record's JSON, raw DEFLATE
 * (RFC 1951) with the preset dictionary below. Items written before the body existed keep the
 * record as JSON in `doc` (S); the reader takes either, and the next write of such an item
 * replaces `doc` with `body`.
 */

/** Format byte of a DEFLATE body with {@link DICTIONARY_V1}. */
const FORMAT_DEFLATE_V1 = 0x01;

/**
 * The preset dictionary of format 1: the record's field names and the values most records
 * share. DEFLATE finds back-references into it, which is what makes a record of ~1.2 KB
 * compress to ~450 bytes instead of ~620. Items hold no copy of it: changing one byte of it
 * makes every stored body unreadable, so it is frozen (a test pins its SHA-256); a better
 * dictionary is a new format byte, with this one kept for reading.
 */
export const DICTIONARY_V1 =
  '"status":"completed","statusReason":"every step completed","result":{"receiptKey":"receipts/dt=20","version":,"updatedAt":"20",' +
  '"createdAt":"20","approvalIds":["apr_"cancel":{"by":"at":"reason":"delegation":{"traceId":"planHash":"mode":"execute",' +
  '"kind":"single","kind":"plan","decision":{"outcome":"allow","outcome":"deny","outcome":"require_approval","policyIds":[' +
  '"reasons":["quorum":0,"approverRule":null,"steps":[{"id":"policySetVersion":"limitsVersion":"evaluationMicros":"shadow":[],' +
  '"decidedAt":"20"spendCap":{"envelope":{"agent":{"name":"plan":[{"id":"tool":"arguments":{"actor":{"name":"principal":{"sub":' +
  '"roles":["Employee"],"manager":"department":"agent":"{"id":"act_01';

/** A body larger than this decoded is refused (an item is at most 400 KB; JSON compresses well under 1:10 here). */
const MAX_DECODED_BYTES = 8 * 1024 * 1024;

type Zlib = typeof import('node:zlib');
let zlib: Zlib | undefined;
let dictionary: Buffer | undefined;

/** node:zlib on first use only: a function that never writes or reads an action pays nothing at init. */
function codec(): { zlib: Zlib; dictionary: Buffer } {
  zlib ??= createRequire(import.meta.url)('node:zlib') as Zlib;
  dictionary ??= Buffer.from(DICTIONARY_V1, 'utf8');
  return { zlib, dictionary };
}

/** The `body` attribute's bytes for `record`. */
export function encodeActionBody(record: ActionRecord): Uint8Array {
  const { zlib, dictionary } = codec();
  // Level 6 with a 4 KiB window and small hash tables: the same bytes as level 9 with zlib's
  // defaults for a typical record (~1 KB of JSON → ~290 bytes) at less than half the CPU, and
  // ~16 KiB of compressor state instead of ~256 KiB allocated per call. Any inflater with the
  // dictionary reads it (a window of 32 KiB reads a stream written with a smaller one).
  const payload = zlib.deflateRawSync(Buffer.from(JSON.stringify(record), 'utf8'), { level: 6, windowBits: 12, memLevel: 6, dictionary });
  const out = new Uint8Array(payload.length + 1);
  out[0] = FORMAT_DEFLATE_V1;
  out.set(payload, 1);
  return out;
}

/** The record a `body` attribute holds; throws on a format it does not know (never guesses). */
export function decodeActionBody(body: Uint8Array): ActionRecord {
  if (body[0] !== FORMAT_DEFLATE_V1) throw new Error(`Unknown action body format ${body[0] ?? '(empty)'}`);
  const { zlib, dictionary } = codec();
  const json = zlib.inflateRawSync(body.subarray(1), { dictionary, maxOutputLength: MAX_DECODED_BYTES });
  return JSON.parse(json.toString('utf8')) as ActionRecord;
}
