import { createHmac } from 'node:crypto';
import { canonicalJson } from '../shared/canonical-json';
import { isRef } from '../intake/envelope';

/**
 * PII redaction for receipts. A value at a tool's declared PII path becomes
 * `pii:hmac-sha256:<32 hex>`, an HMAC-SHA-256 (keyed with the secret
 * `airlock/receipt-redaction-key`) of the value's canonical JSON: equal values give equal
 * tokens, so an auditor can link "the same traveler" across receipts without the name, and
 * nobody without the key can confirm a guess.
 *
 * Declared paths are not enough on their own (a vendor error message can echo an email),
 * so every raw PII string seen while redacting is also scrubbed from every other string in
 * the receipt. Secret-looking keys and JWT-shaped strings are removed outright.
 */

/** Prefix of every redaction token. */
export const PII_TOKEN_PREFIX = 'pii:hmac-sha256:';
/** What replaces a value held under a credential-looking key, or a JWT-shaped string. */
export const SECRET_REMOVED = '[secret removed]';

// Exact key names only: a looser match would also eat vendor references like authorizationId.
const SECRET_KEY = /^(authorization|token|access_?token|refresh_?token|id_?token|secret|client_?secret|password|passwd|credentials?|api[-_]?key|private_?key|grant|signing_?key)$/i;
const JWT_LIKE = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g;
/** Shorter raw values are only replaced where a whole string equals them (avoids eating words). */
const MIN_SUBSTRING_LENGTH = 3;

export class Redactor {
  /** Hex id of the key (an HMAC of a fixed label), so receipts show which key made their tokens. */
  readonly keyId: string;
  private readonly key: Buffer;
  private readonly raw = new Map<string, string>();
  private fields = 0;

  constructor(key: string | Uint8Array) {
    this.key = typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key);
    if (this.key.length < 16) throw new RangeError('The redaction key must hold at least 16 bytes');
    this.keyId = createHmac('sha256', this.key).update('airlock-receipt-redaction-key-id').digest('hex').slice(0, 16);
  }

  /** How many values were replaced by tokens so far. */
  get redactedFields(): number {
    return this.fields;
  }

  /** The token of a value; remembers its string leaves so `scrub` can find them elsewhere. */
  token(value: unknown): string {
    this.fields += 1;
    const token = `${PII_TOKEN_PREFIX}${createHmac('sha256', this.key).update(canonicalJson(value ?? null)).digest('hex').slice(0, 32)}`;
    this.remember(value, token);
    return token;
  }

  private remember(value: unknown, token: string): void {
    const stack: unknown[] = [value];
    while (stack.length > 0) {
      const v = stack.pop();
      if (typeof v === 'string' || typeof v === 'number') {
        const s = String(v);
        if (s.length > 0 && !this.raw.has(s)) this.raw.set(s, typeof v === 'string' && v === value ? token : this.tokenOfLeaf(s));
      } else if (Array.isArray(v)) stack.push(...v);
      else if (v !== null && typeof v === 'object') stack.push(...Object.values(v));
    }
  }

  private tokenOfLeaf(s: string): string {
    return `${PII_TOKEN_PREFIX}${createHmac('sha256', this.key).update(canonicalJson(s)).digest('hex').slice(0, 32)}`;
  }

  /**
   * A copy of `value` with every declared path replaced by its token. Paths are dotted,
   * relative to `value`, with `*` for every array item (or object member). A `$ref` to an
   * earlier step's output is kept: it names a place, not a value.
   */
  redactPaths(value: unknown, paths: readonly string[]): unknown {
    let out = structuredCloneJson(value);
    for (const path of paths) out = this.redactPath(out, path.split('.'));
    return out;
  }

  private redactPath(node: unknown, segments: string[]): unknown {
    if (segments.length === 0) {
      if (node === undefined || node === null || isRef(node)) return node;
      return this.token(node);
    }
    const [head, ...rest] = segments;
    if (Array.isArray(node)) {
      if (head === '*') return node.map((item) => this.redactPath(item, rest));
      const index = Number(head);
      if (Number.isInteger(index) && index >= 0 && index < node.length) node[index] = this.redactPath(node[index], rest);
      return node;
    }
    if (node !== null && typeof node === 'object') {
      const obj = node as Record<string, unknown>;
      if (head === '*') {
        for (const k of Object.keys(obj)) obj[k] = this.redactPath(obj[k], rest);
      } else if (head !== undefined && Object.prototype.hasOwnProperty.call(obj, head)) {
        obj[head] = this.redactPath(obj[head], rest);
      }
    }
    return node;
  }

  /** The whole value as one token (a tool Airlock does not know: nothing about it is trusted). */
  redactAll(value: unknown): unknown {
    return value === undefined ? undefined : this.token(value);
  }

  /**
   * A copy of `value` in which every string that contains a raw PII value seen so far has it
   * replaced by its token, credential-looking keys are emptied and JWT-shaped strings removed.
   * Call after every `redactPaths` of the receipt, on the whole receipt.
   */
  scrub<T>(value: T): T {
    const needles = [...this.raw.entries()].sort((a, b) => b[0].length - a[0].length);
    const long = needles.filter(([s]) => s.length >= MIN_SUBSTRING_LENGTH);
    const fix = (s: string): string => {
      const exact = this.raw.get(s);
      if (exact !== undefined) return exact;
      let out = s;
      for (const [needle, token] of long) if (out.includes(needle)) out = out.split(needle).join(token);
      return out.replace(JWT_LIKE, SECRET_REMOVED);
    };
    const walk = (v: unknown): unknown => {
      if (typeof v === 'string') return fix(v);
      if (Array.isArray(v)) return v.map(walk);
      if (v !== null && typeof v === 'object') {
        const out: Record<string, unknown> = {};
        for (const [k, child] of Object.entries(v)) out[k] = SECRET_KEY.test(k) && child !== undefined ? SECRET_REMOVED : walk(child);
        return out;
      }
      return v;
    };
    return walk(value) as T;
  }
}

/** A deep copy of JSON data (undefined stays undefined). */
function structuredCloneJson(value: unknown): unknown {
  return value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as unknown);
}
