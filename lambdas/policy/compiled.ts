import type { Analysis } from './analyze';
import { policySetVersion, type PolicyFiles } from './files';

/**
 * A policy set analysed ahead of time. Validating a set (Cedar's strict validation against
 * the schema, the annotation rules, splitting it into policies with what each reads) costs
 * about half a second of CPU, most of it Cedar's validator; the synth does it anyway to fail a
 * bad deploy, so it writes the result beside the policies and a cold start reads it instead.
 * The analysis is bound to the exact files by their version hash: a set edited after the
 * synth, or one written by another analyser format, is analysed again at load, never trusted.
 */

/** The file name beside the policies (`policies/policy-set.compiled.json` in a bundle). */
export const COMPILED_POLICY_SET_FILE = 'policy-set.compiled.json';

/** Bumped whenever {@link Analysis} changes shape or meaning. */
export const COMPILED_POLICY_SET_FORMAT = 1;

/** What the synth ships: the analysis of one version of a policy directory. */
export interface CompiledPolicySet {
  format: number;
  /** policySetVersion of the files it was compiled from. */
  version: string;
  analysis: Analysis;
}

/** The compiled analysis when it was compiled from exactly `files` by this format, else undefined. */
export function compiledAnalysisOf(files: PolicyFiles, compiled: unknown): Analysis | undefined {
  return isCompiledFor(compiled, policySetVersion(files)) ? compiled.analysis : undefined;
}

function isCompiledFor(compiled: unknown, version: string): compiled is CompiledPolicySet {
  if (typeof compiled !== 'object' || compiled === null) return false;
  const c = compiled as Partial<CompiledPolicySet>;
  return (
    c.format === COMPILED_POLICY_SET_FORMAT &&
    c.version === version &&
    typeof c.analysis === 'object' &&
    c.analysis !== null &&
    c.analysis.validation?.ok === true &&
    Array.isArray(c.analysis.policies) &&
    typeof c.analysis.config === 'object'
  );
}
