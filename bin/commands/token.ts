import { parseArgs } from 'node:util';
import { z } from 'zod';
import { loadOrCreateIssuer, MAX_TOKEN_TTL_SECONDS, parseTtl } from '../../local/dev-issuer';
import { resolveStateDir } from '../../local/state-dir';

/** `airlock token`: a JWT for the local dev issuer, for curl and agents in local mode. */
export const summary = 'Print a token for the local issuer: token <sub> --role <role>... [--manager <sub>] [--department <d>] [--agent <id>] [--ttl 1h]';

const usage = `Usage: airlock token <sub> [--role <role>]... [--manager <sub>] [--department <d>] [--agent <id> | --azp <client>] [--ttl 1h]

Prints a JWT signed by the local dev issuer (keys under AIRLOCK_HOME, default ./.airlock)
for the principal <sub>. --ttl takes seconds or 30m, 1h, … up to ${MAX_TOKEN_TTL_SECONDS / 3600}h.
--agent <id> makes it an agent's token acting for <sub> (claim act: {sub: <id>}, RFC 8693);
--azp <client> sets the azp claim instead. Delegations are matched against that agent.

Example:
  TOKEN=$(npx airlock token alice --role employee --manager bob)
  curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8787/v1/tools
`;

const name = z.string().min(1).max(256).regex(/^\S+$/, 'must not contain spaces');
// Roles travel through API Gateway as one `[a b]` string, so they cannot hold separators.
const role = z.string().min(1).max(64).regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : - only');

const ArgsSchema = z.object({
  sub: name,
  roles: z.array(role).max(32),
  manager: name.optional(),
  department: z.string().min(1).max(256).optional(),
  agent: name.optional(),
  azp: name.optional(),
});

export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        role: { type: 'string', multiple: true, short: 'r' },
        manager: { type: 'string' },
        department: { type: 'string' },
        agent: { type: 'string' },
        azp: { type: 'string' },
        ttl: { type: 'string', default: '1h' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    process.stderr.write(`airlock token: ${error instanceof Error ? error.message : 'bad arguments'}\n${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  if (positionals.length !== 1) {
    process.stderr.write(`airlock token: give exactly one subject\n${usage}`);
    return 2;
  }
  const args = ArgsSchema.safeParse({
    sub: positionals[0],
    roles: values.role ?? [],
    manager: values.manager,
    department: values.department,
    agent: values.agent,
    azp: values.azp,
  });
  if (!args.success) {
    const issue = args.error.issues[0];
    process.stderr.write(`airlock token: ${issue ? `${issue.path.join('.') || 'argument'}: ${issue.message}` : 'invalid arguments'}\n`);
    return 2;
  }
  let ttl: number;
  try {
    ttl = parseTtl(values.ttl);
  } catch (error) {
    process.stderr.write(`airlock token: ${error instanceof Error ? error.message : 'invalid ttl'}\n`);
    return 2;
  }
  const issuer = await loadOrCreateIssuer(resolveStateDir());
  const { sub, roles, manager, department, agent, azp } = args.data;
  const token = await issuer.sign(
    {
      sub,
      roles: [...new Set(roles)],
      ...(manager ? { manager } : {}),
      ...(department ? { department } : {}),
      ...(agent ? { act: { sub: agent } } : {}),
      ...(azp ? { azp } : {}),
    },
    ttl,
  );
  process.stdout.write(`${token}\n`);
  return 0;
}
