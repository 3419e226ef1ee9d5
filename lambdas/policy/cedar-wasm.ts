import { createRequire } from 'node:module';

/**
 * Cedar's WebAssembly module (4.3 MB, compiled when loaded), loaded on first use. A static
 * import of an external package is hoisted to the top of every bundle that holds this
 * capability, so every cold start of the intake, saga and approvals functions paid for the
 * compile even when the request never reached a decision (a saga's IssueGrant or receipt
 * bookkeeping, an approvals listing, a health check). Its `nodejs` entry is CommonJS, so a
 * synchronous require keeps the engine's API synchronous.
 */

/** The cedar-wasm API (types only; the module itself loads on the first call of {@link cedarWasm}). */
export type CedarWasm = typeof import('@cedar-policy/cedar-wasm/nodejs');

const load = createRequire(import.meta.url);
let loaded: CedarWasm | undefined;

/** The cedar-wasm module, loaded and compiled on the first call. */
export function cedarWasm(): CedarWasm {
  loaded ??= load('@cedar-policy/cedar-wasm/nodejs') as CedarWasm;
  return loaded;
}

/** Whether this process has loaded Cedar's wasm yet (tests: a cold start that decides nothing never does). */
export function cedarWasmLoaded(): boolean {
  return loaded !== undefined;
}
