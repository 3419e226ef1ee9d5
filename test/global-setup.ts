import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { DOC_PATH } from './helpers/contract';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Directory where each test file writes how many responses it validated against the contract. */
    contractLog: string;
  }
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** Every documented `<METHOD> <path> <status>`. */
function documentedPairs(): string[] {
  const doc = JSON.parse(readFileSync(DOC_PATH, 'utf8')) as { paths: Record<string, Record<string, { responses?: Record<string, unknown> }>> };
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([m]) => METHODS.includes(m))
      .flatMap(([m, op]) => Object.keys(op.responses ?? {}).map((s) => `${m.toUpperCase()} ${path} ${s}`)),
  );
}

/**
 * Collects the contract checker's counts from every test file (they run in separate
 * processes) and prints one summary line at the end, so the number of responses checked
 * against docs/openapi.json is visible in every run.
 */
export default function setup(project: TestProject) {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-contract-'));
  project.provide('contractLog', dir);
  return () => {
    const seen = new Map<string, number>();
    for (const file of readdirSync(dir)) {
      const counts = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Record<string, number>;
      for (const [k, n] of Object.entries(counts)) seen.set(k, (seen.get(k) ?? 0) + n);
    }
    rmSync(dir, { recursive: true, force: true });
    const total = [...seen.values()].reduce((a, b) => a + b, 0);
    if (total === 0) return;
    const pairs = documentedPairs();
    const covered = pairs.filter((p) => seen.has(p));
    const refusals = [...seen].filter(([k]) => k.startsWith('unrouted ')).reduce((a, [, n]) => a + n, 0);
    console.log(
      `contract: ${total} responses validated against docs/openapi.json (${covered.length} of ${pairs.length} documented operation/status pairs seen; ${refusals} refusals outside the document)`,
    );
  };
}
