import { parseArgs } from 'node:util';
import { InvalidDynamoEndpointError, InvalidTableNameError } from '../../lambdas/adapters/local/local-dynamo';
import { startControlPlane } from '../../local/control-plane';
import { InvalidPortError, PortInUseError, type LocalRuntime } from '../../local/server';
import { StateDirInUseError } from '../../local/state-dir';
import { utcDay } from '../../lambdas/shared/ids';
import { DEMO_PEOPLE, demoClaims } from '../../local/demo-people';

/** `airlock dev`: the local control plane in the foreground until Ctrl-C. */
export const summary = 'Start the local control plane on 127.0.0.1 (port from AIRLOCK_PORT, default 8787)';

const usage = `Usage: airlock dev [--require-delegation]

Starts the embedded Airlock: the HTTP API on 127.0.0.1 (AIRLOCK_PORT, default 8787),
DynamoDB (dynalite, or the endpoint in AIRLOCK_DYNAMODB_ENDPOINT, table
AIRLOCK_DYNAMODB_TABLE), secrets, the saga runner (the same ASL) and the sandbox vendors,
all kept under AIRLOCK_HOME (default ./.airlock).

--require-delegation (or AIRLOCK_REQUIRE_DELEGATION=1) refuses every action whose agent
holds no live delegation from its principal, as the deployed stack does by default.
Stop it with Ctrl-C.
`;

/** Whether AIRLOCK_REQUIRE_DELEGATION asks for requireDelegation (1 or true). */
export function requireDelegationFromEnv(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes'].includes(value.trim().toLowerCase());
}

/** The demo people (local/demo-people.ts), re-exported for the CLI's callers. */
export { DEMO_PEOPLE };

/** Ready-made tokens for the demo people, valid 12 hours. */
export async function demoTokens(rt: LocalRuntime): Promise<{ label: string; sub: string; roles: readonly string[]; token: string }[]> {
  return Promise.all(
    DEMO_PEOPLE.map(async (p) => ({
      label: p.label,
      sub: p.sub,
      roles: p.roles,
      token: await rt.issuer.sign(demoClaims(p), '12h'),
    })),
  );
}

/**
 * The startup banner: where it listens, tokens for the demo people, and calls to try. The
 * example search is for a day 30 days after `now`, so the printed command never names a
 * date that has gone by.
 */
export function banner(
  rt: LocalRuntime,
  tokens: { label: string; sub: string; roles: readonly string[]; token: string }[] = [],
  now: Date = new Date(),
): string {
  const day = utcDay(new Date(now.getTime() + 30 * 86_400_000));
  const homeHint = process.env.AIRLOCK_HOME ? `AIRLOCK_HOME=${JSON.stringify(rt.stateDir)} ` : '';
  const lines = [
    '',
    'Airlock local control plane is running',
    ...[
      ['API', rt.url],
      ['web console', `${rt.url}/console (sign in as one of the demo people)`],
      ['state', rt.stateDir],
      ['DynamoDB', `${rt.dynamo.endpoint} (table ${rt.dynamo.tableName})`],
      ...rt.services.flatMap((s) => Object.entries(s.info)),
    ].map(([k, v]) => `  ${k!.padEnd(20)} ${v}`),
    '',
    ...(tokens.length > 0
      ? [
          'Tokens for the demo people (valid 12h):',
          ...tokens.flatMap((t) => [`  ${t.sub} (${t.label}; ${t.roles.join(', ')})`, `    ${t.token}`]),
          '',
        ]
      : []),
    'Get a token (valid 1h) for anyone:',
    `  TOKEN=$(${homeHint}npx airlock token alice --role Employee --manager bob --department sales)`,
    'Try it:',
    `  curl -s ${rt.url}/healthz`,
    `  curl -s -H "Authorization: Bearer $TOKEN" ${rt.url}/v1/tools`,
    `  curl -s -X POST ${rt.url}/v1/actions -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\`,
    `    -H "Idempotency-Key: $(date +%s)" -d '{"tool":"travel.search_flights","arguments":{"origin":"SFO","destination":"JFK","date":"${day}"},"agent":{"name":"curl"}}'`,
    `  ${homeHint}npx airlock approvals list --url ${rt.url} --as bob --role Manager`,
    `  ${homeHint}npm run demo        # a scripted agent, against its own control plane`,
    '',
    'Press Ctrl-C to stop.',
    '',
  ];
  return lines.join('\n');
}

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      // A second Ctrl-C while shutting down means "now".
      process.once('SIGINT', () => process.exit(130));
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h' }, 'require-delegation': { type: 'boolean' } }, strict: true });
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  let runtime: LocalRuntime;
  try {
    const requireDelegation = values['require-delegation'] === true || requireDelegationFromEnv(process.env.AIRLOCK_REQUIRE_DELEGATION);
    // Only the conformance run (scripts/mcp-conformance.mjs) sets this: the suite's test_* tools are no part of Airlock.
    const mcpConformanceFixtures = requireDelegationFromEnv(process.env.AIRLOCK_MCP_CONFORMANCE_FIXTURES);
    runtime = await startControlPlane(
      requireDelegation || mcpConformanceFixtures
        ? { controlPlane: { ...(requireDelegation ? { requireDelegation: true } : {}), ...(mcpConformanceFixtures ? { mcpConformanceFixtures: true } : {}) } }
        : {},
    );
  } catch (error) {
    if (
      error instanceof PortInUseError ||
      error instanceof InvalidPortError ||
      error instanceof StateDirInUseError ||
      error instanceof InvalidDynamoEndpointError ||
      error instanceof InvalidTableNameError
    ) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    throw error;
  }
  process.stdout.write(banner(runtime, await demoTokens(runtime)));
  const signal = await waitForSignal();
  process.stdout.write(`\n${signal}: shutting down\n`);
  await runtime.close();
  return 0;
}
