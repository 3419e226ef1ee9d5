import { createHmac, timingSafeEqual } from 'node:crypto';
import { InvalidCursorError } from '../ports/ledger';

/**
 * Page cursors: opaque to clients, authenticated, and holding nothing a store would trust.
 *
 * A cursor names only the position to continue after (an action or approval id) and carries
 * an HMAC-SHA-256 over that position and the scope it was issued for: which listing, for
 * which caller, with which filter. A cursor is therefore refused (InvalidCursorError, a 400
 * at the edge) when it was forged or altered, issued to someone else, or issued for another
 * filter — before any store is asked. The store then rebuilds its own start key from the id,
 * so no client byte ever reaches DynamoDB as a key attribute.
 */

/** What a cursor continues. Every field must match between issue and use. */
export interface CursorScope {
  listing: 'actions' | 'approvals';
  /** The caller's `sub`. */
  caller: string;
  /** The listing's filter as issued (`status`), or '' for none. */
  filter: string;
}

/** The shortest key accepted: 256 bits. */
export const MIN_CURSOR_KEY_BYTES = 32;
/** Longest position (an id) a cursor may carry. */
const MAX_POSITION_CHARS = 64;
const MAC_CHARS = 43; // 32 bytes, base64url without padding
const CURSOR = new RegExp(`^([A-Za-z0-9_-]{1,${Math.ceil((MAX_POSITION_CHARS * 4) / 3)}})\\.([A-Za-z0-9_-]{${MAC_CHARS}})$`);

/** The cursor key is missing or too short to authenticate anything. */
export class CursorKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CursorKeyError';
  }
}

/** Issues and checks cursors with one deployment-wide secret key. */
export class CursorCodec {
  private readonly key: Buffer;

  constructor(key: string | Uint8Array) {
    this.key = typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key);
    if (this.key.byteLength < MIN_CURSOR_KEY_BYTES) throw new CursorKeyError(`the cursor key must have at least ${MIN_CURSOR_KEY_BYTES} bytes`);
  }

  private mac(scope: CursorScope, position: string): Buffer {
    // JSON of an array: unambiguous however the fields are chosen (a sub holding a separator cannot shift them).
    return createHmac('sha256', this.key).update(JSON.stringify(['airlock-cursor/1', scope.listing, scope.caller, scope.filter, position])).digest();
  }

  /** A cursor continuing `scope` after `position`. */
  seal(scope: CursorScope, position: string): string {
    return `${Buffer.from(position, 'utf8').toString('base64url')}.${this.mac(scope, position).toString('base64url')}`;
  }

  /**
   * The position a cursor continues after, once its MAC checks out for `scope` and the
   * position has the shape `pattern` demands; InvalidCursorError otherwise.
   */
  open(scope: CursorScope, cursor: string, pattern: RegExp): string {
    const match = CURSOR.exec(cursor);
    if (!match) throw new InvalidCursorError();
    const [, encoded, macText] = match as unknown as [string, string, string];
    const position = Buffer.from(encoded, 'base64url').toString('utf8');
    // Only the canonical encoding: two spellings of one cursor would be two valid cursors.
    if (Buffer.from(position, 'utf8').toString('base64url') !== encoded) throw new InvalidCursorError();
    const given = Buffer.from(macText, 'base64url');
    if (given.toString('base64url') !== macText || !timingSafeEqual(given, this.mac(scope, position))) throw new InvalidCursorError();
    // Authentic but not a position this listing has: a bug or an old format, still the client's 400.
    if (position.length > MAX_POSITION_CHARS || !pattern.test(position)) throw new InvalidCursorError();
    return position;
  }
}
