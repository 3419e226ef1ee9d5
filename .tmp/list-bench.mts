import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { FileAuditStore as New } from '../lambdas/adapters/local/file-audit-store';
import { FileAuditStore as Old } from './old-fas';
const root = join(mkdtempSync(join(tmpdir(), 'lb-')), 'audit');
const n = new New(root);
for (let i = 0; i < 10000; i++) { const b = new TextEncoder().encode(`{"r":${i}}`.padEnd(3000, ' ')); await n.putIfAbsent(`receipts/dt=2026-12-03/act_${String(i).padStart(6, '0')}.json`, b, createHash('sha256').update(b).digest('hex')); }
for (let i = 0; i < 60; i++) { const b = new TextEncoder().encode(`{"d":${i}}`); await n.putIfAbsent(`digests/dt=2026-12-03/d${i}.json`, b, createHash('sha256').update(b).digest('hex')); }
const o = new Old(root);
for (const [name, s] of [['old', o], ['new', n], ['old', o], ['new', n]] as const) {
  let t = performance.now(); const c0 = process.cpuUsage();
  const r = await s.list('receipts/'); const d = await s.list('digests/');
  const c = process.cpuUsage(c0);
  console.log(name, r.length, d.length, (performance.now() - t).toFixed(0), 'ms wall', ((c.user + c.system) / 1000).toFixed(0), 'ms cpu');
}
