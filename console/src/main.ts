import { available, SignedOutError, whenSignedOut } from './api';
import { beginSignIn, completeSignIn, loadConfig, signOut, type ConsoleConfig } from './auth';
import { h, replace } from './dom';
import { action, actions, allActions, approval, errorBox, halts, inbox, isAuditor, metrics, whoLine, type Page_ } from './views';

/**
 * The console's entry: sign-in, the navigation (Operations pages only when the API answers
 * them), and a hash router (`#/inbox`, `#/approvals/<id>`, `#/actions`, `#/actions/<id>`,
 * `#/actions/all` for auditors, `#/halts`, `#/metrics`), so the page is one static file wherever it is served.
 */

interface Route {
  pattern: RegExp;
  page: Page_;
  nav?: string;
}

const routes: Route[] = [
  { pattern: /^#\/inbox$/, page: inbox, nav: 'inbox' },
  { pattern: /^#\/approvals\/(?<id>[^/?]+)$/, page: approval, nav: 'inbox' },
  { pattern: /^#\/actions(?:\?status=(?<status>[a-z_]+))?$/, page: actions, nav: 'actions' },
  // Before the action's own route, which `all` would otherwise match as an id.
  { pattern: /^#\/actions\/all(?:\?(?<query>.*))?$/, page: allActions, nav: 'all-actions' },
  { pattern: /^#\/actions\/(?<id>[^/?]+)$/, page: action, nav: 'actions' },
  { pattern: /^#\/halts$/, page: halts, nav: 'halts' },
  { pattern: /^#\/metrics$/, page: metrics, nav: 'metrics' },
];

const optional = { halts: false, metrics: false };
let leave: (() => void) | void = undefined;
let config: ConsoleConfig;

const main = () => document.getElementById('main')!;

function navigation(current: string | undefined): void {
  const links: Array<[string, string, string]> = [
    ['inbox', '#/inbox', 'Inbox'],
    ['actions', '#/actions', 'My actions'],
    // Offered by role (the API refuses, and records, anyone else): probing would record a refusal per visit.
    ...(isAuditor() ? ([['all-actions', '#/actions/all', 'All actions']] as Array<[string, string, string]>) : []),
    ...(optional.halts ? ([['halts', '#/halts', 'Halts']] as Array<[string, string, string]>) : []),
    ...(optional.metrics ? ([['metrics', '#/metrics', 'Key figures']] as Array<[string, string, string]>) : []),
  ];
  replace(document.getElementById('nav')!, h('ul', {}, links.map(([key, href, label]) => h('li', {}, h('a', { href, ...(key === current ? { 'aria-current': 'page' } : {}) }, label)))));
  replace(
    document.getElementById('who')!,
    h('span', { 'data-testid': 'signed-in-as' }, `Signed in as ${whoLine()}`),
    h('button', { type: 'button', class: 'secondary', on: { click: () => (signOut(), signInScreen()) } }, 'Sign out'),
  );
}

async function show(): Promise<void> {
  const hash = location.hash || '#/inbox';
  const route = routes.find((r) => r.pattern.test(hash));
  if (leave) leave();
  leave = undefined;
  navigation(route?.nav);
  const el = main();
  if (!route) {
    replace(el, h('h1', {}, 'Not found'), h('p', {}, 'There is no such page. '), h('a', { href: '#/inbox' }, 'Go to the inbox'));
    return;
  }
  const params: Record<string, string> = {};
  // A query string stays encoded: the page parses it (a decoded `&` in a value would split it).
  for (const [k, v] of Object.entries(route.pattern.exec(hash)?.groups ?? {})) if (v !== undefined) params[k] = k === 'query' ? v : decodeURIComponent(v);
  try {
    leave = await route.page(el, params);
  } catch (error) {
    if (error instanceof SignedOutError) return;
    replace(el, h('h1', {}, 'Something went wrong'), errorBox(error));
  }
  el.focus();
}

function signInScreen(message?: string): void {
  if (leave) leave();
  leave = undefined;
  replace(document.getElementById('nav')!);
  replace(document.getElementById('who')!);
  replace(
    main(),
    h('h1', {}, 'Sign in to the Airlock console'),
    message ? h('div', { class: 'alert', role: 'alert' }, message) : null,
    h('p', {}, `Sign in with ${config?.issuerLabel ?? 'your identity provider'}. Your session lasts until you close or reload this tab.`),
    h('button', { type: 'button', on: { click: () => void beginSignIn(config).catch((e: unknown) => signInScreen(e instanceof Error ? e.message : String(e))) } }, 'Sign in'),
  );
}

async function boot(): Promise<void> {
  try {
    config = await loadConfig();
  } catch (error) {
    replace(main(), h('h1', {}, 'Airlock console'), errorBox(error));
    return;
  }
  whenSignedOut(() => signInScreen('Your session ended. Sign in again.'));
  let signedIn = false;
  try {
    signedIn = await completeSignIn(config);
  } catch (error) {
    signInScreen(error instanceof Error ? error.message : String(error));
    return;
  }
  if (!signedIn) {
    signInScreen();
    return;
  }
  // Operations pages exist only where the API has them (and lets this person in).
  const [haltsOk, metricsOk] = await Promise.all([available('/v1/halts').catch(() => false), available('/v1/metrics').catch(() => false)]);
  optional.halts = haltsOk;
  optional.metrics = metricsOk;
  window.addEventListener('hashchange', () => void show());
  await show();
}

void boot();
