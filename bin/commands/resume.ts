import { HaltIdPattern } from '../../lambdas/guardrails/halts';
import { haltApi, parseHaltArgs, printHalts, usage } from './halt';

/** `airlock resume <haltId> --reason <why>`: ends a kill-switch halt. */
export const summary = 'Kill switch: resume <haltId> --reason <why> (ends a halt)';

export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseHaltArgs(argv);
  } catch (error) {
    process.stderr.write(`airlock resume: ${error instanceof Error ? error.message : 'bad arguments'}\n${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [id, ...extra] = positionals;
  if (values.help || id === undefined) {
    (values.help ? process.stdout : process.stderr).write(usage);
    return values.help ? 0 : 2;
  }
  if (extra.length > 0 || values.pause) {
    process.stderr.write(`airlock resume: unexpected arguments\n${usage}`);
    return 2;
  }
  if (!HaltIdPattern.test(id)) {
    process.stderr.write(`airlock resume: ${JSON.stringify(id.slice(0, 40))} is not a halt id (hlt_…)\n`);
    return 2;
  }
  if (!values.reason) {
    process.stderr.write('airlock resume: --reason <why> is required; it is audited\n');
    return 2;
  }
  try {
    printHalts(values, await haltApi(values, 'DELETE', `/v1/halts/${id}`, { reason: values.reason }));
    return 0;
  } catch (error) {
    process.stderr.write(`airlock resume: ${error instanceof Error ? error.message : 'failed'}\n`);
    return 1;
  }
}
