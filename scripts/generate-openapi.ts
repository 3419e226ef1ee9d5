/**
 * Writes docs/openapi.json from the zod schemas and the route table (`npm run openapi`).
 * test/unit/openapi.test.ts fails when the checked-in file differs from a fresh generation.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderOpenApi } from '../lambdas/api/openapi';

const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'openapi.json');
writeFileSync(out, renderOpenApi());
console.log(`wrote ${out}`);
