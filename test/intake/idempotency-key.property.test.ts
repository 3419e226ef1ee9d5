import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_IDEMPOTENCY_KEY_CHARS, parseIdempotencyKey } from '../../lambdas/intake/intake';
import { openApiDocument } from '../../lambdas/api/openapi';
import { intakeProblem } from '../../lambdas/intake/http';
import { ProblemError, ProblemType } from '../../lambdas/shared/problem';

/** The header parsed as the intake function does: a key, or the problem its refusal is. */
function parseAsHttp(raw: string | undefined): string {
  try {
    return parseIdempotencyKey(raw);
  } catch (error) {
    throw intakeProblem(error) ?? error;
  }
}

/** Idempotency-Key: an RFC 8941 sf-string or a bare key, sent once. */

const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: MAX_IDEMPOTENCY_KEY_CHARS });
/** The sf-string serialization of a key (RFC 8941 §4.1.6). */
const quoted = (key: string) => `"${key.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
/** A key a client may send bare: no comma, not opening with a quote, no surrounding space. */
const bare = printable.filter((k) => !k.includes(',') && !k.startsWith('"') && k.trim() === k && k.length > 0);
/** Any single valid header value. */
const headerValue = fc.oneof(bare, printable.map(quoted));

function outcome(raw: string | undefined): { key: string } | { status: number; type: string } {
  try {
    return { key: parseAsHttp(raw) };
  } catch (error) {
    if (!(error instanceof ProblemError)) throw error;
    return { status: error.problem.status, type: error.problem.type };
  }
}

describe('parseIdempotencyKey', () => {
  it('reads back any key sent as an sf-string, commas, quotes and backslashes included', () => {
    fc.assert(fc.property(printable, (key) => {
        expect(outcome(quoted(key))).toEqual({ key });
      }), { numRuns: 1000 });
  });

  it('reads back any bare key that holds no comma', () => {
    fc.assert(fc.property(bare, (key) => {
        expect(outcome(key)).toEqual({ key });
      }), { numRuns: 1000 });
  });

  it('refuses a repeated header however the values were joined (400 validation)', () => {
    fc.assert(
      fc.property(fc.array(headerValue, { minLength: 2, maxLength: 4 }), fc.constantFrom(',', ', ', ' , '), (values, separator) => {
        expect(outcome(values.join(separator))).toEqual({ status: 400, type: ProblemType.validation });
      }),
      { numRuns: 1000 },
    );
  });

  it.each([
    ['one,two'],
    ['"one","two"'],
    ['"one", two'],
    ['"one";param=1'],
    ['"unterminated'],
    ['"bad \\x escape"'],
    ['""'],
    ['   '],
    [`"${'k'.repeat(256)}"`],
    ['k'.repeat(256)],
    ['tab\there'],
    ['caf\u00e9'],
  ])('refuses %j with a 400 naming the header', (raw) => {
    try {
      parseAsHttp(raw);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ProblemError);
      expect((error as ProblemError).problem).toMatchObject({ status: 400, type: ProblemType.validation, violations: [{ path: 'header:Idempotency-Key' }] });
    }
  });

  it('says the key is missing only when there is none', () => {
    expect(outcome(undefined)).toEqual({ status: 400, type: ProblemType.idempotencyKeyMissing });
    expect(outcome('')).toEqual({ status: 400, type: ProblemType.idempotencyKeyMissing });
    expect(outcome(' "padded" ')).toEqual({ key: 'padded' });
  });

  it('answers any header value with a key or a 400 problem, nothing else', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ maxLength: 30 }).map((s) => `"${s}"`), fc.string({ maxLength: 30, unit: 'binary-ascii' }), fc.string({ maxLength: 20, unit: 'grapheme' })), (raw) => {
        const result = outcome(raw);
        if ('key' in result) {
          expect(result.key.length).toBeGreaterThan(0);
          expect(result.key.length).toBeLessThanOrEqual(MAX_IDEMPOTENCY_KEY_CHARS);
          expect(result.key).toMatch(/^[\x20-\x7e]+$/);
        } else {
          expect(result.status).toBe(400);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('agrees with the pattern the OpenAPI document publishes', () => {
    const doc = openApiDocument() as { components: { parameters: { IdempotencyKey: { schema: { pattern: string } } } } };
    const pattern = new RegExp(doc.components.parameters.IdempotencyKey.schema.pattern);
    // The edges a random draw reaches only sometimes (CI once drew `""` and found the pattern admitting it).
    for (const raw of ['""', '"a"', '"\\""', 'a', '"', '"a', ',', 'a,b']) expect(pattern.test(raw), raw).toBe('key' in outcome(raw));
    fc.assert(
      fc.property(fc.oneof(headerValue, fc.string({ maxLength: 40 }), printable), (raw) => {
        // Field values reach the parser trimmed (RFC 9110 §5.5); the pattern describes them so.
        fc.pre(raw.trim() === raw && raw.length <= MAX_IDEMPOTENCY_KEY_CHARS);
        expect(pattern.test(raw), raw).toBe('key' in outcome(raw));
      }),
      { numRuns: 2000 },
    );
  });
});
