import { parseArgs } from 'node:util';
import { z } from 'zod';
import { API_CLI_ARGS, cliApiCall } from './api-client';

/** `airlock delegations`: grant, list and revoke delegations from a terminal, over the HTTP API. */
export const summary = 'Delegations: create <agent> --tool|--connector ... --expires <ttl|iso> [--budget 500 USD/day] | list | revoke <id>';

export const usage = `Usage:
  airlock delegations create <agent> (--tool <tool> | --connector <connector>)... --expires <when>
                             [--budget "<amount> <CUR>/<day|month|total>"] [--ask-for-commit] [--purpose <text>]
  airlock delegations list
  airlock delegations revoke <delegationId> [--reason <why>]

A delegation is a principal's consent that <agent> (the value of its tokens' act.sub, else
azp, else client_id) may act for them: only the tools and connectors named, within the
budget, until it expires. Granting writes a consent receipt to the audit vault; revoking
refuses the agent's next action, cancels its pending approvals and stops its running plans
(compensated), and writes a revocation receipt. Only the principal themself may grant or
revoke (a token that names an agent is refused).

--expires takes a duration from now (30m, 8h, 7d) or an ISO 8601 time.

Options:
  --url <url>        API base URL (default: AIRLOCK_URL, else http://127.0.0.1:8787)
  --token <jwt>      bearer token (default: AIRLOCK_TOKEN)
  --as <sub>         local mode: mint a token for <sub> with the dev issuer (AIRLOCK_HOME)
  --role <role>      with --as: a role claim (repeatable)
  --json             print the API's JSON instead of a summary
`;

const DelegationSchema = z.object({
  id: z.string(),
  agent: z.string(),
  tools: z.array(z.string()),
  connectors: z.array(z.string()),
  budget: z.object({ amount: z.number(), currency: z.string(), period: z.string() }).nullable(),
  rules: z.object({ askForCommit: z.boolean() }),
  expiresAt: z.string(),
  state: z.string(),
  stopped: z.object({ cancelled: z.array(z.string()), stopping: z.array(z.string()) }).optional(),
});
type DelegationLine = z.infer<typeof DelegationSchema>;

/** The API refused, could not be reached, or the arguments do not make a request. */
export class DelegationsCliError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DelegationsCliError';
  }
}

export function parseDelegationsArgs(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      ...API_CLI_ARGS,
      tool: { type: 'string', multiple: true },
      connector: { type: 'string', multiple: true },
      budget: { type: 'string' },
      expires: { type: 'string' },
      'ask-for-commit': { type: 'boolean' },
      purpose: { type: 'string' },
      reason: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
type Values = ReturnType<typeof parseDelegationsArgs>['values'];

/** `500 USD/day` → the request's budget; throws on anything else. */
export function parseBudget(text: string): { amount: number; currency: string; period: 'day' | 'month' | 'total' } {
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*([A-Za-z]{3})\s*\/\s*(day|month|total)\s*$/.exec(text);
  if (!m) throw new DelegationsCliError(`--budget ${JSON.stringify(text)}: write it as "<amount> <CUR>/<day|month|total>", e.g. "500 USD/day"`);
  return { amount: Number(m[1]), currency: m[2]!.toUpperCase(), period: m[3] as 'day' | 'month' | 'total' };
}

/** `8h`, `7d`, `30m` from `now`, or an ISO time as given. */
export function parseExpiry(text: string, now: Date): string {
  const m = /^\s*(\d{1,6})\s*([mhd])\s*$/i.exec(text);
  if (m) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2]!.toLowerCase() as 'm' | 'h' | 'd'];
    return new Date(now.getTime() + Number(m[1]) * unit).toISOString();
  }
  // An ISO time goes to the API as given: it says what is wrong with it.
  return text.trim();
}

/** One call to the API as this command; a problem answer becomes a DelegationsCliError with its title, detail and violations. */
export function delegationsApi(values: Values, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
  return cliApiCall(values, (message, options) => new DelegationsCliError(message, options), method, path, body);
}

/** One delegation, one line (and what a revocation stopped). */
export function formatDelegation(d: DelegationLine): string {
  const scope = [...d.tools, ...d.connectors.map((c) => `${c}.*`)].join(',');
  const budget = d.budget ? `  budget ${d.budget.amount} ${d.budget.currency}/${d.budget.period}` : '';
  const ask = d.rules.askForCommit ? '  ask-for-commit' : '';
  const stopped = d.stopped ? `\n  stopped: ${d.stopped.cancelled.length} cancelled, ${d.stopped.stopping.length} stopping (compensating)` : '';
  return `${d.id}  ${d.state.padEnd(7)}  ${d.agent}  ${scope}${budget}${ask}  until ${d.expiresAt}${stopped}\n`;
}

function print(values: Values, json: unknown): void {
  if (values.json) {
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    return;
  }
  const list = z.object({ items: z.array(DelegationSchema) }).safeParse(json);
  const items = list.success ? list.data.items : [DelegationSchema.parse(json)];
  process.stdout.write(items.length ? items.map(formatDelegation).join('') : 'No delegations.\n');
}

/** The request body of `create`, from its arguments. */
export function createBody(agent: string, values: Values, now: Date): Record<string, unknown> {
  if (!values.expires) throw new DelegationsCliError('--expires <when> is required (e.g. 8h, 7d, or an ISO time): consent always ends');
  return {
    agent,
    ...(values.tool ? { tools: values.tool } : {}),
    ...(values.connector ? { connectors: values.connector } : {}),
    ...(values.budget ? { budget: parseBudget(values.budget) } : {}),
    expiresAt: parseExpiry(values.expires, now),
    ...(values['ask-for-commit'] ? { rules: { askForCommit: true } } : {}),
    ...(values.purpose ? { purpose: values.purpose } : {}),
  };
}

export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseDelegationsArgs(argv);
  } catch (error) {
    process.stderr.write(`airlock delegations: ${error instanceof Error ? error.message : 'bad arguments'}\n${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [verb, arg, ...extra] = positionals;
  if (values.help || verb === undefined) {
    (values.help ? process.stdout : process.stderr).write(usage);
    return values.help ? 0 : 2;
  }
  const shape = { create: true, revoke: true, list: false } as Record<string, boolean>;
  if (!(verb in shape) || extra.length > 0 || shape[verb] !== (arg !== undefined)) {
    process.stderr.write(`airlock delegations: unexpected arguments\n${usage}`);
    return 2;
  }
  try {
    const answer =
      verb === 'list'
        ? await delegationsApi(values, 'GET', '/v1/delegations')
        : verb === 'create'
          ? await delegationsApi(values, 'POST', '/v1/delegations', createBody(arg!, values, new Date()))
          : await delegationsApi(values, 'DELETE', `/v1/delegations/${encodeURIComponent(arg!)}`, values.reason ? { reason: values.reason } : {});
    print(values, answer);
    return 0;
  } catch (error) {
    process.stderr.write(`airlock delegations: ${error instanceof Error ? error.message : 'failed'}\n`);
    return error instanceof DelegationsCliError && /^--/.test(error.message) ? 2 : 1;
  }
}
