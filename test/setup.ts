// aws-local-stepfunctions 3 calls Promise.withResolvers, which Node 20 lacks.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, inject } from 'vitest';
import { deletePendingTestTables } from './helpers/dynamo';
import { ContractNotCheckedError, contractFetch, contractOriginsRegistered, validatedCounts } from './helpers/contract';

// Every response from a local runtime serving the default routes is validated against
// docs/openapi.json before the test sees it (helpers register their runtime's origin), so a
// response the published contract does not describe fails the test that received it.
globalThis.fetch = contractFetch(globalThis.fetch);

// Tables a test file made on an external DynamoDB endpoint outlive it unless deleted.
afterAll(deletePendingTestTables);

type TaskTree = { type: string; result?: { state: string }; tasks?: readonly TaskTree[] };

/** Whether every test of the file ran and passed (not filtered out, skipped or failed). */
function allPassed(task: TaskTree): boolean {
  if (task.type === 'test') return task.result?.state === 'pass';
  return (task.tasks ?? []).every(allPassed);
}

// vitest reads the first argument as fixtures and insists on a destructuring pattern.
afterAll(({}, file) => {
  const counts = Object.fromEntries(validatedCounts());
  // A file that served the API but validated nothing bypassed the checker (raw sockets, a
  // fetch captured before this wrapper): make that visible rather than silently unchecked.
  // Only after a full, green run: a filtered or failed one may simply not have got that far.
  if (contractOriginsRegistered() > 0 && Object.keys(counts).length === 0 && allPassed(file as TaskTree)) {
    throw new ContractNotCheckedError();
  }
  // Absent when vitest runs without test/global-setup.ts (another config): then there is no summary.
  const dir = inject('contractLog');
  if (dir && Object.keys(counts).length > 0) writeFileSync(join(dir, `${randomUUID()}.json`), JSON.stringify(counts));
});
