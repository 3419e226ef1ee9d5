/**
 * The demo's printed timeline: one block per scene, each line marked by what it is (an agent
 * call, a check that held, the policy reason behind it). Colour is decoration only: every
 * line carries a word or symbol that says the same thing, so logs and NO_COLOR read alike.
 */

const CODES = { bold: 1, dim: 2, red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36 } as const;
type Style = keyof typeof CODES;

/** Whether to colour a stream: a terminal, and NO_COLOR (https://no-color.org) unset or empty. */
export function wantsColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !env.NO_COLOR;
}

/** Options of a {@link Timeline}. */
export interface TimelineOptions {
  /** Where lines go (stdout in the command, a buffer in tests). */
  write(text: string): void;
  color: boolean;
}

/** Prints the demo's story as it happens. */
export class Timeline {
  private readonly write: (text: string) => void;
  private readonly color: boolean;

  constructor(options: TimelineOptions) {
    this.write = options.write;
    this.color = options.color;
  }

  private paint(text: string, ...styles: Style[]): string {
    if (!this.color || styles.length === 0) return text;
    return `\x1b[${styles.map((s) => CODES[s]).join(';')}m${text}\x1b[0m`;
  }

  private line(text: string): void {
    this.write(`${text}\n`);
  }

  /** A title line (the demo's banner). */
  title(text: string): void {
    this.line(this.paint(text, 'bold'));
  }

  /** A plain indented note. */
  note(text: string): void {
    this.line(`  ${text}`);
  }

  /** The start of scene `n` of `total`. */
  scene(n: number, total: number, title: string): void {
    this.line('');
    this.line(this.paint(`── Scene ${n}/${total} · ${title} `.padEnd(78, '─'), 'bold', 'blue'));
  }

  /** Who does what: the agent's or a person's call to Airlock. */
  act(who: string, text: string): void {
    this.line(`  ${this.paint('→', 'cyan')} ${this.paint(who, 'bold')} ${text}`);
  }

  /** What came back. */
  got(text: string): void {
    this.line(`    ${this.paint('←', 'magenta')} ${text}`);
  }

  /** An expectation that held. */
  check(text: string): void {
    this.line(`    ${this.paint('✓', 'green')} ${text}`);
  }

  /** Why Airlock did what it did (policy ids and reasons). */
  why(text: string): void {
    this.line(`      ${this.paint(`why: ${text}`, 'dim')}`);
  }

  /** Output of a command the demo ran, indented and dimmed. */
  output(text: string): void {
    for (const l of text.replace(/\n+$/, '').split('\n')) this.line(`      ${this.paint(`│ ${l}`, 'dim')}`);
  }

  /** A part left out, and why. */
  skip(text: string): void {
    this.line(`    ${this.paint('–', 'yellow')} ${this.paint(`skipped: ${text}`, 'yellow')}`);
  }

  /** The scene behaved as described. */
  pass(n: number, summary: string): void {
    this.line(`  ${this.paint(`PASS scene ${n}`, 'bold', 'green')}: ${summary}`);
  }

  /** The scene did not behave as described. */
  fail(n: number, reason: string): void {
    this.line(`  ${this.paint(`FAIL scene ${n}`, 'bold', 'red')}: ${reason}`);
  }

  /** The scene could not run here (e.g. no vendor admin access on an external server). */
  skipped(n: number, reason: string): void {
    this.line(`  ${this.paint(`SKIP scene ${n}`, 'bold', 'yellow')}: ${reason}`);
  }
}
