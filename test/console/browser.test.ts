import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalIdFor } from '../../lambdas/shared/ids';
import { bookingPlan } from '../../bin/demo/scenes';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane';
import { isoDay } from '../helpers/dates';
import { axeSource, launchChromium, seriousViolations, withScreenshots } from '../helpers/browser';

/**
 * The web console in a real browser: Debian's Chromium, headless, driven by playwright-core
 * against a local control plane this file starts on loopback. People sign in through the
 * dev issuer's authorization code + PKCE flow, exactly as a person would.
 */

const PEOPLE = {
  alice: { roles: ['Employee'], manager: 'bob', department: 'sales' },
};

let cp: TestControlPlane;
let browser: Browser;
const contexts: BrowserContext[] = [];
const cspErrors: string[] = [];
const timings: Array<[string, number]> = [];
let axe: string;

beforeAll(async () => {
  // Digests every half second, so a receipt is covered (and verifiable) moments after it is written.
  [cp, browser] = await Promise.all([startTestControlPlane({ controlPlane: { digestIntervalMs: 500 } }), launchChromium()]);
  axe = axeSource();
});

afterAll(async () => {
  await browser?.close();
  await cp?.close();
  if (timings.length) console.log(`console scenarios: ${timings.map(([n, ms]) => `${n} ${(ms / 1000).toFixed(1)} s`).join('; ')}`);
});

/** A fresh browser profile signed in as `sub` through the dev issuer's sign-in page. */
async function signIn(sub: string): Promise<Page> {
  const context = await browser.newContext({ acceptDownloads: true });
  contexts.push(context);
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content[- ]Security[- ]Policy/i.test(m.text())) cspErrors.push(m.text());
  });
  await page.goto(`${cp.url}/console`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect.poll(() => page.url()).toContain('/dev-issuer/authorize');
  await page.getByRole('button', { name: new RegExp(`^${sub},`) }).click();
  await page.getByTestId('signed-in-as').filter({ hasText: `Signed in as ${sub}` }).waitFor();
  // The token stays in memory: nothing in either storage area.
  const stored = await page.evaluate('JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage } })');
  expect(stored).not.toMatch(/eyJ/);
  return page;
}

async function timed<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await withScreenshots(name, () => contexts, fn);
  timings.push([name, performance.now() - started]);
  return result;
}

async function submit(body: unknown, key: string): Promise<string> {
  const res = await cp.post(await cp.token('alice', PEOPLE.alice), body, { key });
  expect([200, 202]).toContain(res.status);
  return res.body.id as string;
}

async function waitingForApproval(actionId: string): Promise<void> {
  const token = await cp.token('alice', PEOPLE.alice);
  await expect.poll(async () => (await cp.get(token, `/v1/actions/${actionId}`)).body.status, { timeout: 15_000 }).toBe('awaiting_approval');
  await expect.poll(async () => (await cp.get(await cp.token('bob', { roles: ['Employee', 'Manager'] }), '/v1/approvals?status=pending')).status, { timeout: 5_000 }).toBe(200);
}

async function expectNoSeriousViolations(page: Page, where: string): Promise<void> {
  const found = await seriousViolations(page, axe);
  expect(found, `${where}: ${JSON.stringify(found, null, 2)}`).toEqual([]);
}

describe('the web console in Chromium', () => {
  it('bob approves alice’s $2,400 trip from his inbox and sees it complete with a verified receipt', async () => {
    await timed('trip', async () => {
      const day = isoDay(41);
      const id = await submit(
        bookingPlan({ flightId: `SB500-${day}`, seats: 2, total: 2400, currency: 'USD', reason: 'Two engineers to the London office' }),
        `console-trip-${day}`,
      );
      await waitingForApproval(id);

      const bob = await signIn('bob');
      const item = bob.getByRole('link', { name: 'alice asks: Two engineers to the London office' });
      await item.waitFor();
      await expectNoSeriousViolations(bob, 'inbox');
      await item.click();
      await bob.getByRole('heading', { name: /Approval for alice/ }).waitFor();
      await expect.poll(() => bob.locator('main').innerText()).toContain('2,400.00 USD');
      const text = await bob.locator('main').innerText();
      // The preview as the API gives it: each step in words, how it is undone, the plan hash the vote binds to.
      const preview = (await cp.get(await cp.token('bob', { roles: ['Employee', 'Manager'] }), `/v1/approvals/${approvalIdFor(id)}`)).body;
      for (const step of preview.steps) expect(text).toContain(step.plain);
      expect(text).toContain(preview.planHash);
      expect(text).toContain('travel.release_hold');
      expect(text).toContain('travel.employee-over-limit');
      await expectNoSeriousViolations(bob, 'approval preview');

      await bob.getByLabel('Comment (optional)').fill('London budget approved');
      await bob.getByRole('button', { name: 'Approve' }).click();
      await bob.getByText(/Your approve was recorded: 1 of 1, approved/).waitFor();

      await bob.getByRole('link', { name: 'Open the action’s timeline' }).click();
      await expect.poll(() => bob.getByTestId('action-status').innerText(), { timeout: 20_000 }).toBe('completed');
      await expect.poll(() => bob.getByTestId('receipt-verification').innerText().catch(() => ''), { timeout: 20_000 }).toMatch(/^verified/);
      await expectNoSeriousViolations(bob, 'action timeline with receipt');

      // The download is the receipt byte for byte: its SHA-256 is the one shown and stored.
      const [download] = await Promise.all([bob.waitForEvent('download'), bob.getByRole('link', { name: 'Download the raw receipt (JSON)' }).click()]);
      const saved = await readFile((await download.path())!);
      const receipt = (await cp.get(await cp.token('bob', { roles: ['Employee', 'Manager'] }), `/v1/actions/${id}/receipt`)).body;
      expect(createHash('sha256').update(saved).digest('hex')).toBe(receipt.sha256);
      expect(await bob.locator('main').innerText()).toContain(receipt.sha256);
    });
  }, 150_000);

  it('carol and dave approve an IAM grant; alice, who asked, gets no approve button and is told why', async () => {
    await timed('iam-grant', async () => {
      const id = await submit(
        { tool: 'iam.grant_role', arguments: { principalId: 'bob', role: 'billing-admin', reason: 'Joins the on-call rotation' }, agent: { name: 'ops-bot' }, reason: 'bob joins on-call' },
        `console-grant-${isoDay(0)}`,
      );
      await waitingForApproval(id);
      const approval = `#/approvals/${approvalIdFor(id)}`;

      const alice = await signIn('alice');
      await alice.goto(`${cp.url}/console/${approval}`);
      await alice.getByRole('heading', { name: /Approval for alice/ }).waitFor();
      await alice.getByTestId('no-decision').waitFor();
      expect(await alice.getByTestId('no-decision').innerText()).toMatch(/^You cannot decide this: .+/);
      expect(await alice.getByRole('button', { name: 'Approve' }).count()).toBe(0);
      expect(await alice.getByRole('button', { name: 'Reject' }).count()).toBe(0);
      await expectNoSeriousViolations(alice, 'approval preview without a decision');

      const carol = await signIn('carol');
      await carol.getByRole('link', { name: 'alice asks: bob joins on-call' }).click();
      await carol.getByRole('button', { name: 'Approve' }).click();
      await carol.getByText('Your approve was recorded: 1 of 2, pending').waitFor();

      // dave uses the keyboard only: Tab to the inbox item, Enter, Tab to the comment and on to Approve.
      const dave = await signIn('dave');
      await dave.getByRole('link', { name: 'alice asks: bob joins on-call' }).waitFor();
      const tabTo = async (matches: string) => {
        for (let i = 0; i < 80; i++) {
          await dave.keyboard.press('Tab');
          if ((await dave.evaluate('document.activeElement?.textContent ?? ""')) === matches || (await dave.evaluate('document.activeElement?.id ?? ""')) === matches) return;
        }
        throw new Error(`Tab never reached ${matches}`);
      };
      await tabTo('alice asks: bob joins on-call');
      await dave.keyboard.press('Enter');
      await dave.getByRole('heading', { name: /Approval for alice/ }).waitFor();
      await tabTo('decision-comment');
      await dave.keyboard.type('Confirmed with the on-call lead');
      await tabTo('Approve');
      await dave.keyboard.press('Enter');
      await dave.getByText('Your approve was recorded: 2 of 2, approved').waitFor();
      await alice.getByRole('link', { name: 'Open the action’s timeline' }).click();
      await expect.poll(() => alice.getByTestId('action-status').innerText(), { timeout: 20_000 }).toBe('completed');
    });
  }, 150_000);

  it('olivia halts an agent from the Halts page, its next action is refused, then she resumes it saying why; alice sees no Halts', async () => {
    await timed('kill switch', async () => {
      const agent = `console-runaway-${isoDay(0)}`;
      const olivia = await signIn('olivia');
      await olivia.getByRole('link', { name: 'Halts' }).click();
      await olivia.getByRole('heading', { name: 'Kill switch' }).waitFor();
      await expectNoSeriousViolations(olivia, 'halts');
      await olivia.getByLabel('What to halt').selectOption('agent');
      await olivia.getByLabel('Which one').fill(agent);
      await olivia.getByLabel('Running work').selectOption('pause');
      await olivia.getByLabel('Reason (recorded with your name)').fill('looping on bookings');
      await olivia.getByRole('button', { name: 'Halt' }).click();
      await olivia.getByText(/^Halt hlt_\w+ is in force\.$/).waitFor();
      const card = olivia.locator('li[data-halt]').filter({ hasText: agent });
      await expect.poll(() => card.innerText()).toMatch(/pause \(running plans wait\)[\s\S]*looping on bookings[\s\S]*olivia/);

      // The halt is real: the agent's next action is refused with the halt's reason.
      const refused = await cp.post(await cp.token('alice', PEOPLE.alice), { tool: 'echo.say', arguments: { message: 'hi' }, agent: { name: agent } }, { key: `console-halted-${agent}` });
      expect(refused.status).toBe(403);
      expect(refused.body).toMatchObject({ type: 'urn:airlock:problem:halted', reason: 'looping on bookings' });

      // A resume needs a reason; the browser asks for it before anything is sent.
      const id = (await card.getAttribute('data-halt'))!;
      await card.getByRole('button', { name: 'Resume' }).click();
      expect(await card.getByLabel('Why resume').evaluate((el) => (el as unknown as { validity: { valueMissing: boolean } }).validity.valueMissing)).toBe(true);
      await card.getByLabel('Why resume').fill('loop fixed');
      await card.getByRole('button', { name: 'Resume' }).click();
      await olivia.getByText(`Resumed ${id}.`).waitFor();
      await expect.poll(() => olivia.locator(`li[data-halt="${id}"]`).innerText()).toMatch(/resumed[\s\S]*Resumed by\s+olivia[\s\S]*loop fixed/);
      const listed = (await cp.get(await cp.token('olivia', { roles: ['Employee', 'KillSwitch'] }), '/v1/halts')).body.items.find((h: { id: string }) => h.id === id);
      expect(listed).toMatchObject({ status: 'resumed', resumedBy: 'olivia', resumeReason: 'loop fixed', mode: 'pause', scope: 'agent', target: agent });

      // Without the role the page is not offered at all.
      const alice = await signIn('alice');
      await alice.getByRole('link', { name: 'My actions' }).waitFor();
      expect(await alice.getByRole('link', { name: 'Halts' }).count()).toBe(0);
    });
  }, 120_000);

  it('audrey, an auditor, lists every principal’s actions with filters and pages; alice is offered no such view and is refused', async () => {
    await timed('all actions', async () => {
      const tag = `audit-${isoDay(0)}`;
      const alice = await cp.token('alice', PEOPLE.alice);
      const carol = await cp.token('carol', { roles: ['Employee', 'SecurityAdmin'] });
      const ids: Record<string, string> = {};
      for (const [who, token, n] of [['alice', alice, 1], ['carol', carol, 2], ['alice', alice, 3]] as const) {
        const res = await cp.post(token, { tool: 'echo.say', arguments: { message: `${tag}-${n}` }, agent: { name: 'audit-bot' }, reason: `${tag} ${who} ${n}` }, { key: `${tag}-${n}` });
        expect(res.status).toBe(200);
        ids[`${who}-${n}`] = res.body.id as string;
      }

      const audrey = await signIn('audrey');
      await audrey.getByRole('link', { name: 'All actions' }).click();
      await audrey.getByRole('heading', { name: 'All actions' }).waitFor();
      await audrey.getByTestId('all-actions').waitFor();
      await expectNoSeriousViolations(audrey, 'all actions');
      // Both principals' actions are there, with who asked.
      for (const id of Object.values(ids)) await audrey.locator(`tr[data-action="${id}"]`).waitFor();
      expect(await audrey.locator(`tr[data-action="${ids['carol-2']}"]`).innerText()).toContain('carol');

      // Filter: alice's echo.say actions, completed, from today (UTC).
      await audrey.getByLabel('Principal').fill('alice');
      await audrey.getByLabel('Tool').fill('echo.say');
      await audrey.getByLabel('Status').selectOption('completed');
      await audrey.getByLabel('From (day, UTC)').fill(isoDay(0));
      await audrey.getByRole('button', { name: 'Filter' }).click();
      await expect.poll(() => audrey.url()).toContain('principal=alice');
      await expect.poll(async () => audrey.locator(`tr[data-action="${ids['carol-2']}"]`).count()).toBe(0);
      await audrey.locator(`tr[data-action="${ids['alice-3']}"]`).waitFor();
      const principals = await audrey.locator('table[data-testid="all-actions"] tbody tr td:nth-child(3)').allInnerTexts();
      expect(principals.length).toBeGreaterThan(0);
      expect(new Set(principals)).toEqual(new Set(['alice']));

      // A page at a time: the API's cursor rides in the hash; the next page holds older actions only.
      const hash = new URL(audrey.url()).hash.replace(/^#\/actions\/all\??/, '');
      await audrey.goto(`${cp.url}/console/#/actions/all?${hash}&limit=1`);
      await audrey.locator(`tr[data-action="${ids['alice-3']}"]`).waitFor();
      const rows = () => audrey.locator('table[data-testid="all-actions"] tbody tr').evaluateAll((trs) => trs.map((r) => r.getAttribute('data-action')));
      expect(await rows()).toEqual([ids['alice-3']]);
      await audrey.getByRole('link', { name: 'Older actions' }).click();
      await expect.poll(() => audrey.url()).toContain('cursor=');
      await expect.poll(rows).toEqual([ids['alice-1']]);

      // Alice is not offered the view, and going there anyway shows the API's refusal.
      const alicePage = await signIn('alice');
      await alicePage.getByRole('link', { name: 'My actions' }).waitFor();
      expect(await alicePage.getByRole('link', { name: 'All actions' }).count()).toBe(0);
      await alicePage.goto(`${cp.url}/console/#/actions/all`);
      await alicePage.getByRole('alert').filter({ hasText: 'Not allowed to list every action' }).waitFor();
      expect(await alicePage.locator('table[data-testid="all-actions"]').count()).toBe(0);
    });
  }, 120_000);

  it('shows a reason holding <script> and an onerror image as text, running nothing', async () => {
    await timed('xss', async () => {
      const day = isoDay(43);
      const hostile = `<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">`;
      const id = await submit(bookingPlan({ flightId: `SB500-${day}`, seats: 2, total: 2400, currency: 'USD', reason: hostile }), `console-xss-${day}`);
      await waitingForApproval(id);
      const bob = await signIn('bob');
      const link = bob.getByRole('link', { name: `alice asks: ${hostile}` });
      await link.waitFor();
      await link.click();
      await bob.getByRole('heading', { name: `Approval for alice: ${hostile}` }).waitFor();
      expect(await bob.evaluate(() => (globalThis as { __xss?: number }).__xss)).toBeUndefined();
      expect(await bob.locator('main img, main script').count()).toBe(0);
    });
  }, 120_000);

  it('the sign-in page passes axe and no page broke its Content-Security-Policy', { timeout: 120_000 }, async () => {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${cp.url}/console/`);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await expectNoSeriousViolations(page, 'console sign-in screen');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: /^alice,/ }).waitFor();
    await expectNoSeriousViolations(page, 'dev issuer sign-in page');
    expect(cspErrors).toEqual([]);
  });
});
