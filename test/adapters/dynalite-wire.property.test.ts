import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toWire } from '../../lambdas/adapters/local/dynalite';

/** What the in-process path did before: JSON through a replacer that writes blobs as base64. */
function viaJson(input: unknown): unknown {
  return JSON.parse(
    JSON.stringify(input, function (this: Record<string, unknown>, key: string, value: unknown) {
      const raw = this[key];
      return raw instanceof Uint8Array ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') : value;
    }),
  );
}

const blob = fc.uint8Array({ maxLength: 40 }).chain((bytes) =>
  // A view into a larger buffer too: only its own bytes go on the wire.
  fc.boolean().map((offset) => (offset ? new Uint8Array([9, ...bytes, 9]).subarray(1, bytes.length + 1) : bytes)),
);
const leaf = fc.oneof(fc.string(), fc.double(), fc.constant(-0), fc.constant(Number.NaN), fc.integer(), fc.boolean(), fc.constant(null), fc.constant(undefined), blob);
const value = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 6 }), tie('v'), { maxKeys: 5 })),
})).v;

describe('toWire (a request as dynalite reads it off the wire)', () => {
  it('equals the JSON round trip with blobs as base64, for any request-shaped value', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 6 }), value, { maxKeys: 6 }), (input) => {
        expect(toWire(input)).toStrictEqual(viaJson(input));
      }),
      { numRuns: 500 },
    );
  });

  it('copies: changing the answer never changes the request', () => {
    const input = { Item: { pk: { S: 'A' }, body: { B: new Uint8Array([1, 2, 3]) }, tags: { SS: ['x', 'y'] } } };
    const wire = toWire(input) as { Item: { pk: { S: string }; body: { B: string }; tags: { SS: string[] } } };
    expect(wire.Item.body.B).toBe('AQID');
    wire.Item.pk.S = 'B';
    wire.Item.tags.SS.push('z');
    expect(input.Item.pk.S).toBe('A');
    expect(input.Item.tags.SS).toEqual(['x', 'y']);
  });
});
