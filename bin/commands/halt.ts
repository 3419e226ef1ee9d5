import { parseArgs } from 'node:util';
import { z } from 'zod';
import { API_CLI_ARGS, cliApiCall } from './api-client';
import { HaltScopes } from '../../lambdas/ports/guardrails';

/** `airlock halt`: the kill switch from a terminal, over the HTTP API (`airlock resume` ends a halt). */
export const summary = 'Kill switch: halt all|connector|tool|agent|principal [<target>] --reason <why> [--pause] | halt list';

export const usage = `Usage:
  airlock halt all --reason <why> [--pause]
  airlock halt connector|tool|agent|principal <target> --reason <why> [--pause]
  airlock halt list
  airlock resume <haltId> --reason <why>

A halt refuses new work it covers (403 halted), stops running plans before their next step
and compensates what they did (or, with --pause, holds them until resumed), and refuses votes
on halted work. Only principals with the role in limits.json killSwitch.role may use it.

Options:
  --url <url>        API base URL (default: AIRLOCK_URL, else http://127.0.0.1:8787)
  --token <jwt>      bearer token (default: AIRLOCK_TOKEN)
  --as <sub>         local mode: mint a token for <sub> with the dev issuer (AIRLOCK_HOME)
  --role <role>      with --as: a role claim (repeatable), e.g. --role KillSwitch
  --json             print the API's JSON instead of a summary
`;

const HaltSchema = z.object({
  id: z.string(),
  scope: z.string(),
  target: z.string().nullable(),
  mode: z.string(),
  reason: z.string(),
  status: z.string(),
  createdBy: z.string(),
  createdAt: z.string(),
  resumedBy: z.string().nullable(),
  resumedAt: z.string().nullable(),
  resumeReason: z.string().nullable(),
});
type HaltLine = z.infer<typeof HaltSchema>;

/** The API refused or could not be reached. */
export class HaltCliError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HaltCliError';
  }
}

export function parseHaltArgs(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      ...API_CLI_ARGS,
      reason: { type: 'string' },
      pause: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
type Values = ReturnType<typeof parseHaltArgs>['values'];

/** One call to the API as this command; a problem answer becomes a HaltCliError with its title, detail and violations. */
export function haltApi(values: Values, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
  return cliApiCall(values, (message, options) => new HaltCliError(message, options), method, path, body, '--as <sub> --role KillSwitch in local mode');
}

/** One halt, one line. */
export function formatHalt(h: HaltLine): string {
  const what = `${h.scope}${h.target ? ` ${h.target}` : ''}`;
  const ended = h.status === 'resumed' ? `  resumed by ${h.resumedBy} at ${h.resumedAt}: ${h.resumeReason}` : '';
  return `${h.id}  ${h.status.padEnd(7)}  ${h.mode.padEnd(5)}  ${what}  by ${h.createdBy} at ${h.createdAt}: ${h.reason}${ended}\n`;
}

/** Prints the API's answer: JSON with --json, else one line per halt. */
export function printHalts(values: Values, json: unknown): void {
  if (values.json) {
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    return;
  }
  const list = z.object({ items: z.array(HaltSchema) }).safeParse(json);
  const halts = list.success ? list.data.items : [HaltSchema.parse(json)];
  process.stdout.write(halts.length ? halts.map(formatHalt).join('') : 'No halts.\n');
}

export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseHaltArgs(argv);
  } catch (error) {
    process.stderr.write(`airlock halt: ${error instanceof Error ? error.message : 'bad arguments'}\n${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [scope, target, ...extra] = positionals;
  if (values.help || scope === undefined) {
    (values.help ? process.stdout : process.stderr).write(usage);
    return values.help ? 0 : 2;
  }
  const isList = scope === 'list';
  const known = (HaltScopes as readonly string[]).includes(scope);
  if ((!isList && !known) || extra.length > 0 || ((isList || scope === 'all') !== (target === undefined))) {
    process.stderr.write(`airlock halt: unexpected arguments\n${usage}`);
    return 2;
  }
  if (!isList && !values.reason) {
    process.stderr.write('airlock halt: --reason <why> is required; it is audited and shown to everyone refused\n');
    return 2;
  }
  try {
    const answer = isList
      ? await haltApi(values, 'GET', '/v1/halts')
      : await haltApi(values, 'POST', '/v1/halts', { scope, ...(target ? { target } : {}), reason: values.reason, mode: values.pause ? 'pause' : 'stop' });
    printHalts(values, answer);
    return 0;
  } catch (error) {
    process.stderr.write(`airlock halt: ${error instanceof Error ? error.message : 'failed'}\n`);
    return 1;
  }
}
