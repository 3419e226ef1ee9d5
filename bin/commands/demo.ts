import { access, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { createLogger } from '../../lambdas/middleware/powertools';
import { SANDBOX_VENDORS_FILE, startControlPlane } from '../../local/control-plane';
import { ISSUER_KEY_FILE, loadOrCreateIssuer } from '../../local/dev-issuer';
import type { LocalRuntime } from '../../local/server';
import { resolveStateDir, StateDirInUseError } from '../../local/state-dir';
import { api, createContext, httpVendors, inProcessVendors, type DemoContext, type VendorControl } from '../demo/context';
import { KpiSummarySchema } from '../../lambdas/api/schemas';
import { formatKpiTable } from '../../lambdas/observability/stats';
import { runScenes, scenes } from '../demo/scenes';
import { Timeline, wantsColor } from '../demo/timeline';

/** `airlock demo`: a scripted agent plays the scenes of Airlock's story, checking each one. */
export const summary = 'Play a scripted agent through 14 scenes (read, booking, approval, retry, compensation, IAM, deny, audit, spend cap, rate limit, breaker, kill switch, delegation, reconciliation)';

const usage = `Usage: airlock demo

Plays a scripted agent against Airlock and prints a timeline of what it asked, what Airlock
checked and why. Exits 1 if any scene does not behave as described.

Standalone (default) it starts its own control plane on a free port, with its state in
AIRLOCK_HOME (a fresh temporary directory if unset), and prints that path at the end so
its receipts can be inspected:  AIRLOCK_HOME=<path> npx airlock audit verify

AIRLOCK_URL=<url> runs it against an already running server (\`npm start\`) instead. The
demo then mints its people's tokens with that server's local dev issuer, so AIRLOCK_HOME
must be the server's state directory (both default to ./.airlock). Vendor side-effect
checks and the fault of scene 5 use the vendors' admin endpoints listed in
<AIRLOCK_HOME>/${SANDBOX_VENDORS_FILE}; without them those parts are skipped and say so.
`;

const VendorsFileSchema = z.object({
  baseUrls: z.record(z.string(), z.string()),
  adminTokens: z.record(z.string(), z.string()),
});

/** The vendors' admin endpoints a running local server published in its state dir, if any. */
async function discoverVendors(home: string): Promise<{ vendors?: VendorControl; reason?: string }> {
  const file = join(home, SANDBOX_VENDORS_FILE);
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return { reason: `the server at AIRLOCK_URL published no vendor admin endpoints (${file} is missing)` };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { reason: `${file} is not JSON` };
  }
  const parsed = VendorsFileSchema.safeParse(json);
  if (!parsed.success) return { reason: `${file} does not list vendor URLs and admin tokens` };
  return { vendors: httpVendors(parsed.data.baseUrls, parsed.data.adminTokens) };
}

export async function run(argv: string[]): Promise<number> {
  try {
    const { values } = parseArgs({ args: argv, strict: true, options: { help: { type: 'boolean', short: 'h' } } });
    if (values.help) {
      process.stdout.write(usage);
      return 0;
    }
  } catch (error) {
    process.stderr.write(`airlock demo: ${error instanceof Error ? error.message : 'bad arguments'}\n${usage}`);
    return 2;
  }

  const out = new Timeline({ write: (t) => process.stdout.write(t), color: wantsColor(process.stdout) });
  const external = process.env.AIRLOCK_URL;
  let runtime: LocalRuntime | undefined;
  let home: string;
  let sign: (claims: Parameters<LocalRuntime['issuer']['sign']>[0]) => Promise<string>;
  let vendors: VendorControl | undefined;
  let vendorsMissingReason: string | undefined;
  let url: string;

  if (external) {
    home = resolveStateDir();
    // Creating a new issuer key here would only make tokens the server rejects.
    if (!(await access(join(home, 'issuer', ISSUER_KEY_FILE)).then(() => true, () => false))) {
      process.stderr.write(`airlock demo: ${home} holds no dev issuer key. With AIRLOCK_URL, set AIRLOCK_HOME to that server's state directory.\n`);
      return 1;
    }
    const issuer = await loadOrCreateIssuer(home);
    sign = (claims) => issuer.sign(claims, '1h');
    url = external.replace(/\/+$/, '');
    ({ vendors, reason: vendorsMissingReason } = await discoverVendors(home));
  } else {
    home = process.env.AIRLOCK_HOME ? resolve(process.env.AIRLOCK_HOME) : await mkdtemp(join(tmpdir(), 'airlock-demo-'));
    // Handlers log through the process logger; the timeline is the demo's output.
    // Errors only: the rate-limit scene provokes a refusal log line per request on purpose.
    process.env.LOG_LEVEL ??= 'error';
    try {
      const started = await startControlPlane({
        port: 0,
        stateDir: home,
        logger: createLogger({ level: 'error', sink: (line) => process.stderr.write(`${line}\n`) }),
      });
      runtime = started;
      vendors = inProcessVendors(started.controlPlane.vendors);
      const issuer = started.issuer;
      sign = (claims) => issuer.sign(claims, '1h');
      url = started.url;
    } catch (error) {
      if (error instanceof StateDirInUseError) {
        process.stderr.write(`airlock demo: ${error.message}\n  To play the demo against that server, set AIRLOCK_URL to its URL.\n`);
        return 1;
      }
      throw error;
    }
  }

  try {
    // The consent scene's own plane, with requireDelegation on (as deployed); standalone only.
    const requireDelegationPlane = runtime
      ? async () => {
          const dir = join(home, 'require-delegation');
          const plane = await startControlPlane({
            port: 0,
            stateDir: dir,
            logger: createLogger({ level: 'error', sink: (line) => process.stderr.write(`${line}\n`) }),
            controlPlane: { requireDelegation: true },
          });
          return { url: plane.url, home: dir, sign: (claims: Parameters<LocalRuntime['issuer']['sign']>[0]) => plane.issuer.sign(claims, '1h'), vendors: inProcessVendors(plane.controlPlane.vendors), close: () => plane.close() };
        }
      : undefined;
    const ctx = createContext({ url, home, out, sign, vendors, ...(vendorsMissingReason ? { vendorsMissingReason } : {}), ...(requireDelegationPlane ? { requireDelegationPlane } : {}) });
    out.title('Airlock demo: a scripted agent acts for alice (Employee; her manager is bob)');
    out.note(`API      ${ctx.url} (${runtime ? 'started by the demo on a free port' : 'AIRLOCK_URL'})`);
    out.note(`state    ${home}`);
    out.note(`vendors  ${vendors ? vendors.via : `no admin access: ${vendorsMissingReason ?? 'unknown'}`}`);
    out.note(`people   alice (Employee), bob (Manager), carol and dave (SecurityAdmin), audrey (Auditor); tokens from the local dev issuer`);

    // One probe first: a wrong AIRLOCK_HOME would otherwise fail every scene with 401.
    const probe = await api(ctx, 'alice', 'GET', '/v1/tools').catch((error: unknown) => error);
    if (probe instanceof Error || (probe as { status: number }).status !== 200) {
      const why = probe instanceof Error ? probe.message : `it answered ${(probe as { status: number }).status}`;
      process.stderr.write(
        `airlock demo: cannot use ${ctx.url}: ${why}.\n  Against an external server, AIRLOCK_HOME must be that server's state directory (tokens are signed with its dev issuer).\n`,
      );
      return 1;
    }

    const startedAt = Date.now();
    const result = await runScenes(ctx);
    await printKpis(ctx, out, startedAt, runtime);
    out.title(`\nSummary: ${result.passed.length}/${scenes.length} scenes passed${result.failed.length ? `, ${result.failed.length} failed (${result.failed.map((f) => f.n).join(', ')})` : ''}${result.skipped.length ? `, ${result.skipped.length} skipped (${result.skipped.map((s) => s.n).join(', ')})` : ''}`);
    out.note(`State directory: ${home}`);
    out.note(`Inspect it:  AIRLOCK_HOME=${home} npx airlock audit verify`);
    out.note(`             AIRLOCK_HOME=${home} npx airlock audit show <actionId>`);
    out.note(`             AIRLOCK_HOME=${home} npx airlock stats --since 1h`);
    out.note(`             AIRLOCK_HOME=${home} npx airlock report --since 7d`);
    return result.failed.length === 0 ? 0 : 1;
  } finally {
    await runtime?.close();
  }
}

/**
 * The demo's closing table: the KPIs its own run recorded, read as an auditor through
 * GET /v1/metrics (the same numbers `airlock stats` prints). Best effort: a server without
 * the route (an older one behind AIRLOCK_URL) only gets a note.
 */
async function printKpis(ctx: DemoContext, out: Timeline, startedAt: number, runtime: (LocalRuntime & { controlPlane?: { runner: { idle(): Promise<void> } } }) | undefined): Promise<void> {
  // Receipts (and their ActionEnded counts) are written after the scenes' last answers.
  await runtime?.controlPlane?.runner.idle();
  const seconds = Math.max(1, Math.ceil((Date.now() - startedAt) / 1000) + 1);
  const answer = await api(ctx, 'audrey', 'GET', `/v1/metrics?since=${seconds}s`).catch(() => undefined);
  const parsed = KpiSummarySchema.safeParse(answer?.body);
  if (answer?.status !== 200 || !parsed.success) {
    out.note(`KPIs: GET /v1/metrics answered ${answer?.status ?? 'nothing'}; run \`airlock stats\` on the server.`);
    return;
  }
  out.title('\nKPIs of this run (GET /v1/metrics as audrey, the auditor; `airlock stats` prints the same)');
  process.stdout.write(`${formatKpiTable(parsed.data)}\n`);
}
