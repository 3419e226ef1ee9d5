import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ActionStatuses, type ActionRecord } from '../../lambdas/actions/action';
import { decodeActionBody, DICTIONARY_V1, encodeActionBody } from '../../lambdas/adapters/aws/action-body';
import { toAction } from '../../lambdas/adapters/aws/dynamo-ledger';

const iso = fc.date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2040-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString());
const hex64 = fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 });
const text = fc.string({ unit: 'grapheme', maxLength: 80 });

const decision = fc.record(
  {
    outcome: fc.constantFrom('allow', 'deny', 'require_approval'),
    policyIds: fc.array(text, { maxLength: 6 }),
    reasons: fc.array(text, { maxLength: 6 }),
    quorum: fc.nat(5),
    approverRule: fc.option(text, { nil: null }),
    policySetVersion: hex64,
    limitsVersion: hex64,
    evaluationMicros: fc.nat(),
    steps: fc.array(fc.record({ id: text, outcome: fc.constantFrom('allow', 'deny', 'require_approval'), policyIds: fc.array(text), reasons: fc.array(text), quorum: fc.nat(5), approverRule: fc.option(text, { nil: null }) }), { maxLength: 4 }),
    shadow: fc.constant([]),
    decidedAt: iso,
  },
  { requiredKeys: ['outcome', 'policyIds', 'reasons', 'quorum', 'approverRule', 'policySetVersion', 'evaluationMicros', 'decidedAt'] },
);

/** Action records as the ledger stores them: every field, optional ones present or not, any JSON in the free-form ones. */
const actionRecord: fc.Arbitrary<ActionRecord> = fc.record(
  {
    id: fc.string({ unit: fc.constantFrom(...'0123456789ABCDEFGHJKMNPQRSTVWXYZ'), minLength: 26, maxLength: 26 }).map((u) => `act_${u}`),
    principal: fc.record({ sub: text, roles: fc.array(text, { maxLength: 4 }), manager: text, department: text, agent: text }, { requiredKeys: ['sub', 'roles'] }),
    actor: fc.record({ name: text }),
    envelope: fc.jsonValue(),
    kind: fc.constantFrom('single', 'plan'),
    mode: fc.constantFrom('execute', 'dry_run'),
    reason: text,
    planHash: hex64,
    status: fc.constantFrom(...ActionStatuses),
    statusReason: text,
    decision,
    approvalIds: fc.array(text, { maxLength: 3 }),
    receiptKey: text,
    result: fc.jsonValue(),
    traceId: text,
    createdAt: iso,
    updatedAt: iso,
    cancel: fc.record({ by: text, at: iso, reason: text }),
    version: fc.nat(),
  },
  { requiredKeys: ['id', 'principal', 'actor', 'envelope', 'kind', 'mode', 'planHash', 'status', 'createdAt', 'updatedAt', 'version'] },
) as unknown as fc.Arbitrary<ActionRecord>;

/** What the JSON `doc` of old items gave back: the baseline the body must equal. */
const viaJson = (record: ActionRecord) => JSON.parse(JSON.stringify(record)) as ActionRecord;

describe('the action body (action-body.ts)', () => {
  it('decodes to exactly what the old JSON document did, for any action record', () => {
    fc.assert(
      fc.property(actionRecord, (record) => {
        const body = encodeActionBody(record);
        expect(body[0]).toBe(1);
        const decoded = decodeActionBody(body);
        expect(decoded).toStrictEqual(viaJson(record));
        // Same key order too: nothing downstream can tell the two apart.
        expect(JSON.stringify(decoded)).toBe(JSON.stringify(record));
      }),
      { numRuns: 300 },
    );
  });

  it('reads an item in either layout the same, status and version from their own attributes', () => {
    fc.assert(
      fc.property(actionRecord, fc.constantFrom(...ActionStatuses), fc.nat(), (record, status, version) => {
        const keys = { pk: { S: `ACTION#${record.id}` }, sk: { S: 'ACTION' }, status: { S: status }, version: { N: String(version) } };
        const fromBody = toAction({ ...keys, body: { B: encodeActionBody(record) } });
        const fromDoc = toAction({ ...keys, doc: { S: JSON.stringify(record) } });
        expect(fromBody).toStrictEqual(fromDoc);
        expect(fromBody).toStrictEqual({ ...viaJson(record), status, version });
      }),
      { numRuns: 100 },
    );
  });

  it('reads bodies as earlier writers compressed them, and writes what any inflater with the dictionary reads', () => {
    fc.assert(
      fc.property(actionRecord, (record) => {
        const json = Buffer.from(JSON.stringify(record), 'utf8');
        const dictionary = Buffer.from(DICTIONARY_V1, 'utf8');
        // As format 1 was first written: level 9, zlib's default window and memory.
        const earlier = Uint8Array.from([1, ...deflateRawSync(json, { level: 9, dictionary })]);
        expect(decodeActionBody(earlier)).toStrictEqual(viaJson(record));
        // What this version writes, read by a default inflater (an older deployment's reader).
        expect(inflateRawSync(encodeActionBody(record).subarray(1), { dictionary }).equals(json)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('keeps its dictionary byte for byte: stored bodies cannot be read with another', () => {
    // A new dictionary is a new format byte, with this one kept for reading (action-body.ts).
    expect(createHash('sha256').update(DICTIONARY_V1, 'utf8').digest('hex')).toBe('0432e9d80b797ef4fc5c96bc993dc03676bbddc69857ad13180d575afecde0c3');
  });

  it('refuses a body in a format it does not know instead of guessing', () => {
    const json = Buffer.from(JSON.stringify({ id: 'act_x' }));
    expect(() => decodeActionBody(Uint8Array.from([2, ...deflateRawSync(json)]))).toThrow(/Unknown action body format 2/);
    expect(() => decodeActionBody(new Uint8Array(0))).toThrow(/Unknown action body format/);
  });
});
