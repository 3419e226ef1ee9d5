/**
 * Imported first by the local runtime: X-Ray's SDK (under Powertools' tracer) installs an
 * async_hooks hook with a destroy callback on every promise the process makes unless it starts
 * in manual mode. Outside Lambda the tracer is off and records nothing, yet that hook cost about
 * 7% of the local control plane's CPU (profiled: a 4-step plan makes thousands of promises).
 * In Lambda nothing changes: this module is not in any function's bundle, and a process that
 * says it is in Lambda keeps automatic mode.
 */
if (!process.env.AWS_LAMBDA_FUNCTION_NAME && process.env.AWS_XRAY_MANUAL_MODE === undefined) {
  process.env.AWS_XRAY_MANUAL_MODE = 'true';
}
export {};
