import { z } from 'zod';
import { loadOrCreateIssuer } from '../../local/dev-issuer';
import { resolveStateDir } from '../../local/state-dir';

/** Where the CLI's API commands go when neither --url nor AIRLOCK_URL says. */
export const DEFAULT_API_URL = 'http://127.0.0.1:8787';

/** The options every API command takes: the endpoint and whose token to send. */
export interface ApiCliOptions {
  url?: string | undefined;
  token?: string | undefined;
  as?: string | undefined;
  role?: string[] | undefined;
}

/** The `parseArgs` options behind {@link ApiCliOptions}, shared by every API command. */
export const API_CLI_ARGS = {
  url: { type: 'string' },
  token: { type: 'string' },
  as: { type: 'string' },
  role: { type: 'string', multiple: true, short: 'r' },
} as const;

/** How a command names its own failures (each command has its error class). */
export type CliErrorFactory = (message: string, options?: { cause?: unknown }) => Error;

const ProblemSchema = z.object({
  title: z.string(),
  status: z.number(),
  detail: z.string(),
  violations: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});

/**
 * The bearer token: --token, else a dev-issuer token for --as (local mode only: the dev
 * issuer's key lives in AIRLOCK_HOME), else AIRLOCK_TOKEN. `hint` ends the refusal when
 * there is none (e.g. which role the command needs).
 */
export async function cliBearer(values: ApiCliOptions, fail: CliErrorFactory, hint = '--as <sub> in local mode'): Promise<string> {
  if (values.token) return values.token;
  if (values.as) {
    const issuer = await loadOrCreateIssuer(resolveStateDir());
    return issuer.sign({ sub: values.as, roles: [...new Set(values.role ?? [])] }, '15m');
  }
  const env = process.env.AIRLOCK_TOKEN;
  if (env) return env;
  throw fail(`no credentials: pass --token, set AIRLOCK_TOKEN, or use ${hint}`);
}

/**
 * One call to the API. A problem answer becomes the command's error with the problem's
 * title, status, detail and violations; an unreachable endpoint or a body that is not JSON
 * says so. Returns the parsed JSON body (undefined when empty).
 */
export async function cliApiCall(
  values: ApiCliOptions,
  fail: CliErrorFactory,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
  hint?: string,
): Promise<unknown> {
  const url = (values.url ?? process.env.AIRLOCK_URL ?? DEFAULT_API_URL).replace(/\/+$/, '');
  const token = await cliBearer(values, fail, hint);
  let res: Response;
  try {
    res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (cause) {
    throw fail(`cannot reach ${url} (is \`airlock dev\` running? set --url or AIRLOCK_URL)`, { cause });
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? (JSON.parse(text) as unknown) : undefined;
  } catch (cause) {
    throw fail(`the API answered ${res.status} with a body that is not JSON`, { cause });
  }
  if (!res.ok) {
    const problem = ProblemSchema.safeParse(json);
    if (!problem.success) throw fail(`the API answered ${res.status}`);
    const violations = (problem.data.violations ?? []).map((v) => `\n  ${v.path}: ${v.message}`).join('');
    throw fail(`${problem.data.title} (${res.status}): ${problem.data.detail}${violations}`);
  }
  return json;
}
