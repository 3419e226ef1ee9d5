import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { analyzePolicyFiles } from './analyze';
import { COMPILED_POLICY_SET_FILE, COMPILED_POLICY_SET_FORMAT, type CompiledPolicySet } from './compiled';
import { createPolicyEngine, PolicySetInvalidError } from './engine';
import { policySetVersion } from './files';
import { defaultPolicyDir, readPolicyDir, type PolicyFiles } from './files';
import type { PolicyEngine, PolicyProblem, PolicyValidation } from './types';

export type * from './types';
export { createPolicyEngine, PolicySetInvalidError, type PolicyEngineOptions } from './engine';
export { defaultPolicyDir, policySetVersion, readPolicyDir, PolicyConfigSchema } from './files';
export type { PolicyConfig, PolicyFiles } from './files';
export { COMPILED_POLICY_SET_FILE, type CompiledPolicySet } from './compiled';

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
    engine = createPolicyEngine(readPolicyDir(key), { compiled: readCompiled(key) });
    engines.set(key, engine);
  }
  return engine;
}

/**
 * The compiled set beside the policies (the synth writes it into every bundle that evaluates
 * policy), or undefined: absent or unreadable, the engine analyses the files itself.
 */
function readCompiled(dir: string): unknown {
  const file = join(dir, COMPILED_POLICY_SET_FILE);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Analyses policy files for shipping beside a bundle (the synth, lib/constructs/airlock-function.ts).
 * Throws PolicySetInvalidError when the set is invalid: an invalid set is never compiled.
 */
export function compilePolicySet(files: PolicyFiles): CompiledPolicySet {
  const analysis = analyzePolicyFiles(files);
  if (!analysis.validation.ok || !analysis.config) throw new PolicySetInvalidError(analysis.validation.errors);
  return { format: COMPILED_POLICY_SET_FORMAT, version: policySetVersion(files), analysis };
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
