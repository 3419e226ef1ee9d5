/**
 * Writes docs/openapi.json from the zod schemas and the route table (`npm run openapi`), and
 * from it the web console's types (console/src/api-types.ts).
 * test/api/openapi.test.ts and test/console/api-types.test.ts fail when a checked-in file
 * differs from a fresh generation.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderOpenApi } from '../lambdas/api/openapi';
import { renderConsoleTypes } from './console-types';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const doc = renderOpenApi();
const out = join(root, 'docs', 'openapi.json');
writeFileSync(out, doc);
console.log(`wrote ${out}`);
const types = join(root, 'console', 'src', 'api-types.ts');
writeFileSync(types, renderConsoleTypes(JSON.parse(doc) as Parameters<typeof renderConsoleTypes>[0]));
console.log(`wrote ${types}`);
