import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { S3AuditStore } from '../../lambdas/adapters/aws/s3-audit-store';
import { AuditObjectConflictError, InvalidAuditKeyError } from '../../lambdas/ports/audit-store';

const s3 = mockClient(S3Client);
const NOW = new Date('2025-01-01T00:00:00.000Z');
const store = () => new S3AuditStore({ bucket: 'vault', retentionDays: 400, client: new S3Client({ region: 'us-east-1' }), now: () => NOW });
const body = Buffer.from('{"a":1}\n');
const sha = createHash('sha256').update(body).digest('hex');
const KEY = 'receipts/dt=2025-01-01/act_01J00000000000000000000001.json';

function failure(name: string, status: number): S3ServiceException {
  return new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name });
}
// The adapter only calls transformToByteArray on the SDK's streaming body.
const stream = (bytes: Buffer) => ({ transformToByteArray: async () => new Uint8Array(bytes) }) as never;

afterEach(() => s3.reset());

describe('S3AuditStore', () => {
  it('every PutObject is conditional, checksummed and COMPLIANCE-locked until the configured date', async () => {
    // Prepare
    s3.on(PutObjectCommand).resolves({});
    // Act
    const result = await store().putIfAbsent(KEY, body, sha);
    await store().putIfAbsent('digests/keys/abc.json', body, sha);
    // Assess
    expect(result).toBe('created');
    const puts = s3.commandCalls(PutObjectCommand);
    expect(puts).toHaveLength(2);
    for (const call of puts) {
      expect(call.args[0].input).toMatchObject({
        Bucket: 'vault',
        IfNoneMatch: '*',
        ChecksumSHA256: Buffer.from(sha, 'hex').toString('base64'),
        ObjectLockMode: 'COMPLIANCE',
        ObjectLockRetainUntilDate: new Date('2026-02-05T00:00:00.000Z'),
      });
    }
  });

  it('412 with identical bytes is a no-op success', async () => {
    s3.on(PutObjectCommand).rejects(failure('PreconditionFailed', 412));
    s3.on(GetObjectCommand).resolves({ Body: stream(body) });
    expect(await store().putIfAbsent(KEY, body, sha)).toBe('identical');
    expect(s3.commandCalls(GetObjectCommand)[0]!.args[0].input).toEqual({ Bucket: 'vault', Key: KEY });
  });

  it('412 with different bytes is a conflict (the alarm)', async () => {
    s3.on(PutObjectCommand).rejects(failure('PreconditionFailed', 412));
    s3.on(GetObjectCommand).resolves({ Body: stream(Buffer.from('{"a":2}\n')) });
    const error = await store().putIfAbsent(KEY, body, sha).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuditObjectConflictError);
    expect((error as AuditObjectConflictError).newSha256).toBe(sha);
  });

  it('409 ConditionalRequestConflict is retried', async () => {
    s3.on(PutObjectCommand).rejectsOnce(failure('ConditionalRequestConflict', 409)).resolves({});
    expect(await store().putIfAbsent(KEY, body, sha)).toBe('created');
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(2);
  });

  it('other errors propagate; keys outside the layout never reach S3', async () => {
    s3.on(PutObjectCommand).rejects(failure('AccessDenied', 403));
    await expect(store().putIfAbsent(KEY, body, sha)).rejects.toThrow('AccessDenied');
    await expect(store().putIfAbsent('receipts/../x', body, sha)).rejects.toBeInstanceOf(InvalidAuditKeyError);
    await expect(store().putIfAbsent('other/x.json', body, sha)).rejects.toBeInstanceOf(InvalidAuditKeyError);
  });

  it('get maps NoSuchKey to undefined; list pages through the prefix', async () => {
    s3.on(GetObjectCommand).rejects(failure('NoSuchKey', 404));
    expect(await store().get(KEY)).toBeUndefined();
    s3.on(ListObjectsV2Command)
      .resolvesOnce({ Contents: [{ Key: 'receipts/b', Size: 2, LastModified: NOW }], IsTruncated: true, NextContinuationToken: 't' })
      .resolvesOnce({ Contents: [{ Key: 'receipts/a', Size: 1, LastModified: NOW }], IsTruncated: false });
    expect((await store().list('receipts/')).map((o) => o.key)).toEqual(['receipts/a', 'receipts/b']);
    expect(s3.commandCalls(ListObjectsV2Command)[1]!.args[0].input).toMatchObject({ Prefix: 'receipts/', ContinuationToken: 't' });
  });
});
