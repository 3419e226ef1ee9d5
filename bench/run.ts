/**
 * `npm run bench`: every benchmark, one after another, each in its own process so one's
 * warm caches do not flatter the next. Prints numbers; asserts nothing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const dir = import.meta.dirname;
let failed = 0;
for (const name of ['policy', 'intake', 'limits', 'metrics', 'saga', 'spend-caps', 'audit', 'mcp', 'round-trips', 'cost', 'cold-start']) {
  const file = join(dir, `${name}.ts`);
  if (!existsSync(file)) continue;
  console.log(`\n── ${name} ${'─'.repeat(60 - name.length)}`);
  const run = spawnSync(process.execPath, ['--import', 'tsx', file], { stdio: 'inherit', env: process.env });
  if (run.status !== 0) failed++;
}
process.exit(failed > 0 ? 1 : 0);
