import { relative, join } from 'node:path';
import { parseArgs } from 'node:util';
import { runFixtures, type FixtureResult } from '../../lambdas/policy/fixtures';
import {
  createPolicyEngine,
  defaultPolicyDir,
  formatPolicyProblem,
  readPolicyDir,
  validatePolicyDir,
  type PolicyProblem,
} from '../../lambdas/policy/index';

/** `airlock policy test | validate`: the policy author's loop, from the command line. */
export const summary = 'Validate the Cedar policies (policy validate) or run their fixtures (policy test) [--dir policies]';

const usage = `Usage: airlock policy <validate|test> [--dir <policies>] [--verbose]

  validate   Parse the schema, config.json and every *.cedar file, validate them against the
             schema in strict mode and check the annotations (@id, @reason, @approvals,
             @approvers). Prints file:line:col for every problem; exit code 1 if any.
  test       Validate, then run every fixture under <policies>/tests/{ALLOW,DENY,APPROVAL,
             APPROVER}/. Prints one line per failing fixture (every fixture with --verbose)
             and a summary; exit code 1 if any fails.

  --dir      The policy directory (default: the shipped policies/, or AIRLOCK_POLICY_DIR).
  --verbose  List passing fixtures too.
`;

/** Where output goes; tests pass their own. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

const processIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

function formatProblem(dir: string, p: PolicyProblem, severity: 'error' | 'warning'): string {
  return `${formatPolicyProblem(p, severity, relative(process.cwd(), dir))}\n`;
}

function validate(dir: string, io: Io): boolean {
  const result = validatePolicyDir(dir);
  for (const w of result.warnings) io.err(formatProblem(dir, w, 'warning'));
  for (const e of result.errors) io.err(formatProblem(dir, e, 'error'));
  return result.ok;
}

function line(r: FixtureResult): string {
  const mark = r.passed ? 'PASS' : 'FAIL';
  const about = r.description ? `  ${r.description}` : '';
  return `${mark}  ${r.name}${about}\n${r.failures.map((f) => `      ${f}\n`).join('')}`;
}

async function test(dir: string, verbose: boolean, io: Io): Promise<number> {
  if (!validate(dir, io)) {
    io.err('Policy validation failed; fixtures not run.\n');
    return 1;
  }
  const engine = createPolicyEngine(readPolicyDir(dir));
  const started = performance.now();
  const results = runFixtures(engine, join(dir, 'tests'));
  const ms = performance.now() - started;
  for (const r of results) if (verbose || !r.passed) io.out(line(r));
  const failed = results.filter((r) => !r.passed).length;
  const byKind = new Map<string, number>();
  for (const r of results) byKind.set(r.kind, (byKind.get(r.kind) ?? 0) + 1);
  const kinds = [...byKind].map(([k, n]) => `${k} ${n}`).join(', ');
  io.out(
    `\n${results.length} fixtures (${kinds || 'none found'}): ${results.length - failed} passed, ${failed} failed in ${ms.toFixed(0)} ms\n` +
      `policy set ${engine.version.slice(0, 12)}, ${engine.policies.length} policies\n`,
  );
  return failed === 0 && results.length > 0 ? 0 : 1;
}

/** Runs `airlock policy ...`; returns the exit code. */
export async function run(argv: string[], io: Io = processIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    io.err(`${err instanceof Error ? err.message : String(err)}\n\n${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [sub, ...extra] = positionals;
  if (values.help) {
    io.out(usage);
    return 0;
  }
  if (extra.length > 0 || (sub !== 'validate' && sub !== 'test')) {
    io.err(usage);
    return 2;
  }
  const dir = values.dir ?? process.env.AIRLOCK_POLICY_DIR ?? defaultPolicyDir();
  if (sub === 'validate') {
    const ok = validate(dir, io);
    if (ok) io.out(`${relative(process.cwd(), dir) || dir}: policies are valid (strict mode).\n`);
    return ok ? 0 : 1;
  }
  return test(dir, values.verbose ?? false, io);
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: 'string' },
      verbose: { type: 'boolean', short: 'v' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
