import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/**
 * Debian's Chromium driven by playwright-core, headless (scripts/ci-setup.sh installs it; no
 * browser is ever downloaded). Screenshots of failed scenarios go to test-results/console/.
 */

/** Where failed scenarios leave their screenshots (gitignored). */
export const SCREENSHOT_DIR = join(import.meta.dirname, '..', '..', 'test-results', 'console');

/** The Chromium binary: CHROMIUM_PATH, else Debian's. */
export function chromiumPath(): string {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => Boolean(p));
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`No Chromium at ${candidates.join(', ')}: run scripts/ci-setup.sh (apt-get install chromium) or set CHROMIUM_PATH.`);
  return found;
}

/** Starts headless Chromium with the flags a sandboxless CI container needs. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** axe-core's browser build, injected into pages with evaluate (DevTools, not a <script>: the CSP allows none). */
export function axeSource(): string {
  return readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
}

/** One axe violation, as much as a failure message needs. */
export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  targets: string[];
}

/** Runs axe-core (WCAG 2.x A/AA and best practices) on the page; returns the serious and critical violations. */
export async function seriousViolations(page: Page, source = axeSource()): Promise<AxeViolation[]> {
  await page.evaluate(source);
  // A string, not a function: this file is compiled without the DOM library.
  const violations = (await page.evaluate(`axe.run(document, { resultTypes: ['violations'] }).then((r) =>
    r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => n.target.map(String).join(' ')) })))`)) as AxeViolation[];
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/**
 * Runs `fn`; when it throws, saves a full-page screenshot of every open page of `contexts`
 * to SCREENSHOT_DIR/<name>-<n>.png and rethrows with the paths in the message.
 */
export async function withScreenshots<T>(name: string, contexts: () => BrowserContext[], fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    const paths: string[] = [];
    let n = 0;
    for (const context of contexts()) {
      for (const page of context.pages()) {
        const path = join(SCREENSHOT_DIR, `${name.replace(/[^a-z0-9-]+/gi, '-')}-${++n}.png`);
        await page.screenshot({ path, fullPage: true }).then(() => paths.push(path), () => undefined);
      }
    }
    if (error instanceof Error) error.message += `\nscreenshots: ${paths.join(', ') || 'none'}`;
    throw error;
  }
}
