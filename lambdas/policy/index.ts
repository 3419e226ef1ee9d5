import { join, resolve } from 'node:path';
import { analyzePolicyFiles } from './analyze';
import { createPolicyEngine } from './engine';
import { defaultPolicyDir, readPolicyDir, type PolicyFiles } from './files';
import type { PolicyEngine, PolicyProblem, PolicyValidation } from './types';

export type * from './types';
export { createPolicyEngine, PolicySetInvalidError, type PolicyEngineOptions } from './engine';
export { defaultPolicyDir, policySetVersion, readPolicyDir, PolicyConfigSchema } from './files';
export type { PolicyConfig, PolicyFiles } from './files';

const engines = new Map<string, PolicyEngine>();

/**
 * The engine for a policy directory (default: the shipped `policies/`),
 * built once per process and cached, so a Lambda pays for parsing only at cold start.
 * Throws PolicySetInvalidError if the directory is invalid.
 */
export function loadPolicyEngine(dir: string | undefined = undefined): PolicyEngine {
  dir ??= defaultPolicyDir();
  const key = resolve(dir);
  let engine = engines.get(key);
  if (!engine) {
    engine = createPolicyEngine(readPolicyDir(key));
    engines.set(key, engine);
  }
  return engine;
}

/** Validates policy files already in memory (strict mode, plus Airlock's annotation rules). */
export function validatePolicyFiles(files: PolicyFiles): PolicyValidation {
  return analyzePolicyFiles(files).validation;
}

/**
 * Validates a policy directory without building an engine: what `airlock policy validate`,
 * `npm test` and the CDK synth call. Never throws for bad policies; a missing directory is
 * reported as a problem too.
 */
export function validatePolicyDir(dir: string = defaultPolicyDir()): PolicyValidation {
  let files: PolicyFiles;
  try {
    files = readPolicyDir(dir);
  } catch (err) {
    return {
      ok: false,
      errors: [{ file: '.', message: `Cannot read the policy directory: ${err instanceof Error ? err.message : String(err)}` }],
      warnings: [],
    };
  }
  return validatePolicyFiles(files);
}

/**
 * One problem as a compiler-style line, `<dir>/<file>:<line>:<col>: error [<policy id>]: <message>`,
 * for the CLI and for the CDK synth to fail with.
 */
export function formatPolicyProblem(p: PolicyProblem, severity: 'error' | 'warning' = 'error', dir = ''): string {
  const path = dir ? join(dir, p.file) : p.file;
  const where = p.line === undefined ? path : `${path}:${p.line}:${p.column ?? 1}`;
  return `${where}: ${severity}${p.policyId ? ` [${p.policyId}]` : ''}: ${p.message}`;
}
