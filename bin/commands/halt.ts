import { parseArgs } from 'node:util';
import { z } from 'zod';
import { loadOrCreateIssuer } from '../../local/dev-issuer';
import { resolveStateDir } from '../../local/state-dir';
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

const DEFAULT_URL = 'http://127.0.0.1:8787';

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
const ProblemSchema = z.object({
  title: z.string(),
  status: z.number(),
  detail: z.string(),
  violations: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});

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
      url: { type: 'string' },
      token: { type: 'string' },
      as: { type: 'string' },
      role: { type: 'string', multiple: true, short: 'r' },
      reason: { type: 'string' },
      pause: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
type Values = ReturnType<typeof parseHaltArgs>['values'];

async function bearer(values: Values): Promise<string> {
  if (values.token) return values.token;
  if (values.as) {
    const issuer = await loadOrCreateIssuer(resolveStateDir());
    return issuer.sign({ sub: values.as, roles: [...new Set(values.role ?? [])] }, '15m');
  }
  const env = process.env.AIRLOCK_TOKEN;
  if (env) return env;
  throw new HaltCliError('no credentials: pass --token, set AIRLOCK_TOKEN, or use --as <sub> --role KillSwitch in local mode');
}

/** One call to /v1/halts; a problem answer becomes a HaltCliError with its title and detail. */
export async function haltApi(values: Values, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
  const url = (values.url ?? process.env.AIRLOCK_URL ?? DEFAULT_URL).replace(/\/+$/, '');
  const token = await bearer(values);
  let res: Response;
  try {
    res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (cause) {
    throw new HaltCliError(`cannot reach ${url} (is \`airlock dev\` running? set --url or AIRLOCK_URL)`, { cause });
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? (JSON.parse(text) as unknown) : undefined;
  } catch (cause) {
    throw new HaltCliError(`the API answered ${res.status} with a body that is not JSON`, { cause });
  }
  if (!res.ok) {
    const problem = ProblemSchema.safeParse(json);
    if (!problem.success) throw new HaltCliError(`the API answered ${res.status}`);
    const violations = (problem.data.violations ?? []).map((v) => `\n  ${v.path}: ${v.message}`).join('');
    throw new HaltCliError(`${problem.data.title} (${res.status}): ${problem.data.detail}${violations}`);
  }
  return json;
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
