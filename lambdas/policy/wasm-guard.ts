import { setFlagsFromString } from 'node:v8';

/**
 * Turns off V8's inlining of JS→Wasm calls before Cedar's wasm module loads. On Node 20
 * (V8 11.3) that optimization crashes the whole process under load ("Fatal error …
 * unreachable code" in Deoptimizer::DoComputeBuiltinContinuation) once Cedar's generated
 * bindings deoptimize: `npm run bench:intake` at 16 concurrent requests crashed 4 runs out
 * of 4 with it and 0 out of 4 without. The cost is a few microseconds per decision; a flag
 * set here applies to every function compiled afterwards.
 */
setFlagsFromString('--no-turbo-inline-js-wasm-calls');

export {};
