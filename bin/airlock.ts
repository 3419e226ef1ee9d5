import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/**
 * The `airlock` CLI dispatcher. Each subcommand is a file `bin/commands/<name>.ts` exporting
 * `run(argv): Promise<number>` (the exit code) and a one-line `summary`; dropping a file in
 * that folder adds a command. Commands load lazily, so one broken command cannot break the
 * others.
 */

/** The contract every `bin/commands/<name>.ts` module fulfils. */
export interface CommandModule {
  summary: string;
  run(argv: string[]): Promise<number>;
}

const commandsDir = fileURLToPath(new URL('./commands/', import.meta.url));
const COMMAND_NAME = /^[a-z][a-z0-9-]*$/;

/** Names of the available subcommands, sorted. */
export async function listCommands(): Promise<string[]> {
  const files = await readdir(commandsDir).catch(() => [] as string[]);
  return files
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.endsWith('.test.ts'))
    .map((f) => f.slice(0, -3))
    .filter((n) => COMMAND_NAME.test(n))
    .sort();
}

/** Imports a command module and checks its shape; undefined when it does not fit. */
export async function loadCommand(name: string): Promise<CommandModule | undefined> {
  const mod: unknown = await import(/* @vite-ignore */ `./commands/${name}`);
  if (mod === null || typeof mod !== 'object') return undefined;
  const { run, summary } = mod as Record<string, unknown>;
  if (typeof run !== 'function') return undefined;
  return {
    summary: typeof summary === 'string' ? summary : '',
    run: run as CommandModule['run'],
  };
}

async function help(): Promise<string> {
  const names = await listCommands();
  const rows = await Promise.all(
    names.map(async (n) => {
      try {
        return [n, (await loadCommand(n))?.summary ?? ''] as const;
      } catch {
        return [n, '(failed to load)'] as const;
      }
    }),
  );
  const width = Math.max(4, ...names.map((n) => n.length));
  return [
    'Usage: airlock <command> [options]',
    '',
    'Commands:',
    ...rows.map(([n, s]) => `  ${n.padEnd(width)}  ${s}`),
    '',
    'Run `airlock <command> --help` for a command’s options.',
    '',
  ].join('\n');
}

function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n', 1)[0] ?? 'failed';
}

/** Runs the CLI; returns the process exit code. Never prints a stack unless AIRLOCK_DEBUG=1. */
export async function main(argv: string[]): Promise<number> {
  // The AWS SDK warns on Node < 22 on first use; the CLI's output is for people.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(await help());
    return name === undefined ? 1 : 0;
  }
  if (!COMMAND_NAME.test(name) || !(await listCommands()).includes(name)) {
    process.stderr.write(`airlock: unknown command ${JSON.stringify(name.slice(0, 40))}; run \`airlock help\`\n`);
    return 1;
  }
  try {
    const command = await loadCommand(name);
    if (!command) {
      process.stderr.write(`airlock: command ${name} exports no run function\n`);
      return 1;
    }
    return await command.run(rest);
  } catch (error) {
    if (process.env.AIRLOCK_DEBUG === '1') console.error(error);
    process.stderr.write(`airlock ${name}: ${oneLine(error)}\n`);
    return 1;
  }
}
