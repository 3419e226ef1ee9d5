import { createHash } from 'node:crypto';

/**
 * Canonical JSON (RFC 8785 style): object keys sorted by UTF-16 code units, no whitespace,
 * numbers and strings as ECMAScript serializes them. Two payloads that mean the same JSON
 * get the same bytes, so their SHA-256 fingerprints match. Iterative, so hostile nesting
 * cannot overflow the stack (intake also bounds depth before this runs).
 */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  type Frame = { kind: 'value'; value: unknown } | { kind: 'text'; text: string };
  const stack: Frame[] = [{ kind: 'value', value }];
  while (stack.length > 0) {
    const frame = stack.pop()!;
    if (frame.kind === 'text') {
      out.push(frame.text);
      continue;
    }
    const v = frame.value;
    if (v === null || typeof v === 'boolean' || typeof v === 'string') {
      out.push(JSON.stringify(v));
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new TypeError('Non-finite number in canonical JSON');
      out.push(JSON.stringify(v));
    } else if (Array.isArray(v)) {
      const parts: Frame[] = [{ kind: 'text', text: '[' }];
      v.forEach((item, i) => {
        if (i > 0) parts.push({ kind: 'text', text: ',' });
        parts.push({ kind: 'value', value: item === undefined ? null : item });
      });
      parts.push({ kind: 'text', text: ']' });
      for (let i = parts.length - 1; i >= 0; i--) stack.push(parts[i]!);
    } else if (typeof v === 'object') {
      const keys = Object.keys(v as object)
        .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
        .sort();
      const parts: Frame[] = [{ kind: 'text', text: '{' }];
      keys.forEach((k, i) => {
        parts.push({ kind: 'text', text: `${i > 0 ? ',' : ''}${JSON.stringify(k)}:` });
        parts.push({ kind: 'value', value: (v as Record<string, unknown>)[k] });
      });
      parts.push({ kind: 'text', text: '}' });
      for (let i = parts.length - 1; i >= 0; i--) stack.push(parts[i]!);
    } else {
      throw new TypeError(`Cannot canonicalize a ${typeof v}`);
    }
  }
  return out.join('');
}

/** Lower-case hex SHA-256. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** SHA-256 of the canonical JSON of a value. */
export function fingerprint(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}

/** Keys that could poison prototypes if a consumer copies objects naively. */
const forbiddenKeys = new Set(['__proto__', 'constructor', 'prototype']);

export interface JsonShapeIssue {
  path: string;
  message: string;
}

/**
 * Walks untrusted JSON without recursion and reports nesting deeper than `maxDepth` and
 * prototype-polluting keys. Runs before anything else touches a body.
 */
export function inspectJsonShape(value: unknown, maxDepth: number): JsonShapeIssue[] {
  const issues: JsonShapeIssue[] = [];
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path: '', depth: 0 }];
  while (stack.length > 0 && issues.length < 20) {
    const { value: v, path, depth } = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth >= maxDepth) {
      issues.push({ path: path || '/', message: `nesting deeper than ${maxDepth} levels` });
      continue;
    }
    if (Array.isArray(v)) {
      v.forEach((item, i) => stack.push({ value: item, path: `${path}/${i}`, depth: depth + 1 }));
      continue;
    }
    for (const key of Object.keys(v)) {
      const childPath = `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      if (forbiddenKeys.has(key)) {
        issues.push({ path: childPath, message: `the key "${key}" is not allowed` });
        continue;
      }
      stack.push({ value: (v as Record<string, unknown>)[key], path: childPath, depth: depth + 1 });
    }
  }
  return issues;
}
