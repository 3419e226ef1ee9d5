import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileAuditStore } from '../../lambdas/adapters/local/file-audit-store';
import { AuditChecksumMismatchError, AuditObjectConflictError } from '../../lambdas/ports/audit-store';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const bytes = (s: string) => new TextEncoder().encode(s);

let root: string;
let store: FileAuditStore;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'airlock-audit-'));
  store = new FileAuditStore(join(root, 'audit'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('FileAuditStore (Object Lock stand-in)', () => {
  it('writes once, read-only; the same bytes again are identical, other bytes a conflict, a wrong checksum refused', async () => {
    const key = 'receipts/2026/12/03/act_01.json';
    const body = bytes('{"receipt":1}');
    expect(await store.putIfAbsent(key, body, sha(body))).toBe('created');
    expect(await store.putIfAbsent(key, body, sha(body))).toBe('identical');
    const other = bytes('{"receipt":2}');
    await expect(store.putIfAbsent(key, other, sha(other))).rejects.toBeInstanceOf(AuditObjectConflictError);
    await expect(store.putIfAbsent('receipts/2026/12/03/act_02.json', other, sha(body))).rejects.toBeInstanceOf(AuditChecksumMismatchError);
    expect(await store.get(key)).toEqual(body);
    expect(await store.get('receipts/2026/12/03/act_02.json')).toBeUndefined();
    expect((await stat(join(root, 'audit', ...key.split('/')))).mode & 0o777).toBe(0o444);
    // No temporary file left behind, whichever way each write ended.
    expect(await readdir(join(root, 'audit', 'receipts', '2026', '12', '03'))).toEqual(['act_01.json']);
  });

  it('keeps exactly one of racing writers with different bytes for a key, and refuses the others as conflicts', async () => {
    // As with S3, the writer stored is not promised to be the first one called: receipts/vault.ts
    // accepts a stored receipt when the ledger builds it (test/receipts/receipts.test.ts).
    const key = 'receipts/dt=2000-01-01/act_order.json';
    const bodies = Array.from({ length: 8 }, (_, i) => bytes(`{"events":${i + 1}}`));
    const results = await Promise.allSettled(bodies.map((body) => store.putIfAbsent(key, body, sha(body))));
    const created = results.flatMap((r, i) => (r.status === 'fulfilled' && r.value === 'created' ? [i] : []));
    expect(created).toHaveLength(1);
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused).toHaveLength(bodies.length - 1);
    for (const r of refused) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(AuditObjectConflictError);
    expect(new Uint8Array((await store.get(key))!)).toEqual(bodies[created[0]!]);
    // No temp file is left behind.
    expect((await readdir(join(root, 'audit', 'receipts', 'dt=2000-01-01'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('lets exactly one of many racing writers (two stores on one folder) create the object', async () => {
    const key = 'receipts/2026/12/03/act_race.json';
    const body = bytes('{"race":true}');
    const other = new FileAuditStore(join(root, 'audit'));
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? store : other).putIfAbsent(key, body, sha(body))));
    expect(results.filter((r) => r === 'created')).toHaveLength(1);
    expect(results.filter((r) => r === 'identical')).toHaveLength(19);
  });

  it('lists only under the prefix, whole folders or part of a name, never temporary files or other folders', async () => {
    const put = (key: string) => store.putIfAbsent(key, bytes(key), sha(bytes(key)));
    for (const key of ['receipts/dt=2000-01-01/act_1.json', 'receipts/dt=2000-01-01/act_2.json', 'receipts/dt=2000-01-02/act_3.json', 'digests/dt=2000-01-01/d1.json']) await put(key);
    const keys = async (prefix: string) => (await store.list(prefix)).map((o) => o.key);
    expect(await keys('receipts/')).toEqual(['receipts/dt=2000-01-01/act_1.json', 'receipts/dt=2000-01-01/act_2.json', 'receipts/dt=2000-01-02/act_3.json']);
    expect(await keys('receipts/dt=2000-01-01/')).toEqual(['receipts/dt=2000-01-01/act_1.json', 'receipts/dt=2000-01-01/act_2.json']);
    expect(await keys('receipts/dt=2000-01-0')).toHaveLength(3);
    expect(await keys('receipts/dt=2000-01-01/act_2')).toEqual(['receipts/dt=2000-01-01/act_2.json']);
    expect(await keys('')).toHaveLength(4);
    expect(await keys('digests/dt=2000-02-01/')).toEqual([]);
    expect(await keys('receipts/dt=2000-01-01/act_1.json/')).toEqual([]);
    expect(await keys('../')).toEqual([]);
    const [first] = await store.list('receipts/dt=2000-01-01/act_1');
    expect(first).toMatchObject({ size: bytes('receipts/dt=2000-01-01/act_1.json').length });
    expect(first!.lastModified).toBeInstanceOf(Date);
  });
});
