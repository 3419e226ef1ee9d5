import { api, ApiError } from './api';
import { whoAmI } from './auth';
import { announce, countdown, h, json, kv, money, replace, time, type Child } from './dom';
import { TERMINAL, type ActionPage, type ActionStatus, type ActionView, type ApprovalPage, type HaltList, type HaltView, type ApprovalPreview, type DecisionResult, type ReceiptView } from './types';

/**
 * The console's pages. Each renders into `main` and returns a cleanup for its timers; the
 * router calls it when the page changes. Every value shown comes from the API as it is,
 * as text: previews, arguments and masked PII are exactly what the API returned.
 */

/** A page: renders into `main`, may keep timers, returns what to stop when leaving. */
export type Page_ = (main: HTMLElement, params: Record<string, string>) => Promise<(() => void) | void>;

/** Every action status, in lifecycle order: a Record over the API's status type, so a status the API adds (or drops) fails `tsc -p console` here. */
const STATUS_ORDER: Record<ActionStatus, number> = {
  received: 0,
  awaiting_approval: 1,
  running: 2,
  compensating: 3,
  completed: 4,
  denied: 5,
  rejected: 6,
  expired: 7,
  failed: 8,
  compensated: 9,
  cancelled: 10,
};
const STATUSES: string[] = Object.keys(STATUS_ORDER).sort((a, b) => STATUS_ORDER[a as ActionStatus] - STATUS_ORDER[b as ActionStatus]);

function statusBadge(status: string): HTMLElement {
  const tone = status === 'completed' || status === 'approved' ? 'ok' : ['failed', 'denied', 'rejected', 'expired', 'compensated', 'cancelled'].includes(status) ? 'bad' : 'warn';
  return h('span', { class: `badge ${tone}` }, status.replace(/_/g, ' '));
}

/** An error as an alert the reader is told about. */
export function errorBox(error: unknown): HTMLElement {
  const text = error instanceof ApiError ? `${error.problem.title}: ${error.problem.detail}` : error instanceof Error ? error.message : String(error);
  return h('div', { class: 'alert', role: 'alert' }, text);
}

function agentName(a: { name: string; model?: string }): string {
  return a.model ? `${a.name} (${a.model})` : a.name;
}

// ── inbox ───────────────────────────────────────────────────────────────────

export const inbox: Page_ = async (main) => {
  replace(main, h('h1', {}, 'Approvals waiting for you'), h('p', {}, 'Loading…'));
  const page = await api<ApprovalPage>('GET', '/v1/approvals?status=pending&limit=50');
  const items = [...page.items].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const list = h(
    'ul',
    { class: 'list', 'aria-label': 'Pending approvals, newest first' },
    items.map((a) =>
      h(
        'li',
        { class: 'card' },
        h('h2', {}, h('a', { href: `#/approvals/${encodeURIComponent(a.id)}` }, `${a.requestedBy.principal} asks: ${a.reason ?? a.tools.join(', ')}`)),
        kv([
          ['Agent', agentName(a.requestedBy.agent)],
          ['Tools', a.tools.join(', ')],
          ['Votes', `${a.approvalsSoFar} of ${a.quorum}`],
          ['Expires', h('span', {}, time(a.expiresAt), ` (${countdown(a.expiresAt)})`)],
          ['Requested', time(a.createdAt)],
        ]),
      ),
    ),
  );
  replace(main, h('h1', {}, 'Approvals waiting for you'), items.length === 0 ? h('p', {}, 'Nothing is waiting for your decision.') : list);
  announce(`${items.length} approval${items.length === 1 ? '' : 's'} waiting`);
};

// ── approval preview and decision ───────────────────────────────────────────

function previewSection(p: ApprovalPreview): Child[] {
  return [
    kv([
      ['Status', statusBadge(p.expired ? 'expired' : p.status)],
      ['Asked by', p.requestedBy.principal],
      ['Agent', agentName(p.requestedBy.agent)],
      // The body's agent name is a claim; the verified agent and its delegation are what was checked.
      ...(p.requestedBy.verifiedAgent ? [['Verified agent', p.requestedBy.verifiedAgent] as [string, Child]] : []),
      ...(p.requestedBy.delegationId ? [['Delegation', h('code', {}, p.requestedBy.delegationId)] as [string, Child]] : []),
      ['Why', p.reason ?? 'No reason given'],
      ['Mode', p.mode === 'dry_run' ? 'dry run (nothing will be changed)' : 'execute'],
      ['Money at stake', p.amountAtStake.length > 0 ? p.amountAtStake.map(money).join(' + ') : 'none'],
      ['Votes so far', `${p.approvalsSoFar} of ${p.quorum} needed${p.approverRule ? ` (${p.approverRule})` : ''}`],
      ['Expires', h('span', {}, time(p.expiresAt), ' ', h('span', { 'data-countdown': p.expiresAt }, `(${countdown(p.expiresAt)})`))],
      ['Plan hash', h('code', { 'data-testid': 'plan-hash' }, p.planHash)],
    ]),
    h('h2', {}, 'Why a human must decide'),
    h('ul', {}, p.policies.reasons.map((r) => h('li', {}, r))),
    kv([
      ['Policies', p.policies.policyIds.join(', ') || 'none'],
      ['Policy set', p.policies.policySetVersion ?? 'unknown'],
    ]),
    p.policies.steps.length > 0
      ? h(
          'ul',
          { 'aria-label': 'Steps that need approval' },
          p.policies.steps.map((s) => h('li', {}, `Step ${s.id}: ${s.quorum} approver${s.quorum === 1 ? '' : 's'}${s.approverRule ? `, ${s.approverRule}` : ''} — ${s.policyIds.join(', ')}`)),
        )
      : null,
    h('h2', {}, 'What will run'),
    h(
      'ol',
      { class: 'list' },
      p.steps.map((s) =>
        h(
          'li',
          { class: 'card' },
          h('h3', {}, `${s.index + 1}. ${s.tool}`),
          h('p', {}, s.plain),
          kv([
            ['Vendor', s.vendor],
            ['Tier', s.tier],
            ['Amount', s.amount ? money(s.amount) : null],
            ['Undone by', s.compensation ? `${s.compensation.tool}: ${s.compensation.description}` : s.tier === 'commit' ? 'cannot be undone' : 'nothing to undo'],
          ]),
          s.piiMasked ? h('p', { class: 'meta' }, 'Personal data is masked: only people who may decide see it.') : null,
          json(s.arguments, `Arguments of step ${s.index + 1}`),
        ),
      ),
    ),
    h('h2', {}, 'Votes'),
    p.votes.length === 0
      ? h('p', {}, 'No votes yet.')
      : h('ul', {}, p.votes.map((v) => h('li', {}, `${v.voter}: ${v.decision}`, v.comment ? ` — “${v.comment}”` : '', ' at ', time(v.at)))),
  ];
}

export const approval: Page_ = async (main, params) => {
  const id = params.id ?? '';
  let timer: number | undefined;
  const stop = () => window.clearInterval(timer);
  const load = async (notice?: Child) => {
    stop();
    const p = await api<ApprovalPreview>('GET', `/v1/approvals/${encodeURIComponent(id)}`);
    const open = p.status === 'pending' && !p.expired;
    const form = open && p.viewer.canDecide ? decisionForm(p, load) : null;
    const why = !open
      ? h('p', { class: 'note', 'data-testid': 'no-decision' }, p.outcome ? `This approval is ${p.status}: ${p.outcome.reason} (${p.outcome.by}).` : `This approval is ${p.expired ? 'expired' : p.status}; nothing to decide.`)
      : !p.viewer.canDecide
        ? h('p', { class: 'note', 'data-testid': 'no-decision' }, `You cannot decide this: ${p.viewer.refusal ?? 'you are not one of its approvers.'}`)
        : null;
    replace(
      main,
      h('h1', {}, `Approval for ${p.requestedBy.principal}: ${p.reason ?? p.steps.map((s) => s.tool).join(', ')}`),
      notice ?? null,
      previewSection(p),
      h('h2', {}, 'Your decision'),
      p.viewer.vote ? h('p', {}, `You voted ${p.viewer.vote.decision} at `, time(p.viewer.vote.at), '.') : null,
      form ?? why,
      h('p', {}, h('a', { href: `#/actions/${encodeURIComponent(p.actionId)}` }, 'Open the action’s timeline')),
    );
    timer = window.setInterval(() => {
      for (const el of main.querySelectorAll<HTMLElement>('[data-countdown]')) el.textContent = `(${countdown(el.dataset.countdown ?? '')})`;
    }, 1000);
  };
  await load();
  return stop;
};

function decisionForm(p: ApprovalPreview, reload: (notice?: Child) => Promise<void>): HTMLFormElement {
  const comment = h('textarea', { id: 'decision-comment', name: 'comment', maxlength: 1000 });
  const result = h('div', { 'aria-live': 'polite' });
  const buttons: HTMLButtonElement[] = [];
  const decide = async (decision: 'approve' | 'reject') => {
    for (const b of buttons) b.disabled = true;
    try {
      const text = comment.value.trim();
      // The plan hash shown above goes back with the vote: approving binds to exactly this plan.
      const r = await api<DecisionResult>('POST', `/v1/approvals/${encodeURIComponent(p.id)}/decision`, { decision, planHash: p.planHash, ...(text ? { comment: text } : {}) });
      announce(`Your ${decision} was ${r.recorded ? 'recorded' : 'already counted'}`);
      await reload(h('p', { class: 'note', role: 'status' }, `Your ${decision} was ${r.recorded ? 'recorded' : 'already counted'}: ${r.approvalsSoFar} of ${r.quorum}, ${r.status}.`));
    } catch (error) {
      if (error instanceof ApiError && error.problem.type.endsWith(':plan-mismatch')) {
        // Never carry a vote over to another plan: show the new one and let the person decide again.
        await reload(h('div', { class: 'alert', role: 'alert' }, 'The plan changed since you opened it. Here is the new plan; nothing was recorded.'));
        return;
      }
      replace(result, errorBox(error));
      for (const b of buttons) b.disabled = false;
    }
  };
  buttons.push(
    h('button', { type: 'submit', value: 'approve' }, 'Approve'),
    h('button', { type: 'button', class: 'danger', on: { click: () => void decide('reject') } }, 'Reject'),
  );
  return h(
    'form',
    { 'aria-label': 'Decide', on: { submit: (e: Event) => (e.preventDefault(), void decide('approve')) } },
    h('p', {}, 'Your vote binds to plan ', h('code', {}, p.planHash.slice(0, 12)), '…: if the plan changes, it will not count.'),
    h('label', { for: 'decision-comment' }, 'Comment (optional)'),
    comment,
    h('div', { class: 'actions' }, buttons),
    result,
  );
}

// ── actions ─────────────────────────────────────────────────────────────────

export const actions: Page_ = async (main, params) => {
  const status = STATUSES.includes(params.status ?? '') ? params.status! : '';
  const select = h(
    'select',
    { id: 'status-filter', name: 'status' },
    h('option', { value: '' }, 'any status'),
    STATUSES.map((s) => h('option', { value: s, ...(s === status ? { selected: true } : {}) }, s.replace(/_/g, ' '))),
  );
  const filter = h(
    'form',
    { 'aria-label': 'Filter actions', on: { submit: (e: Event) => (e.preventDefault(), (location.hash = select.value ? `#/actions?status=${select.value}` : '#/actions')) } },
    h('label', { for: 'status-filter' }, 'Status'),
    select,
    ' ',
    h('button', { type: 'submit', class: 'secondary' }, 'Filter'),
  );
  replace(main, h('h1', {}, 'My actions'), filter, h('p', {}, 'Loading…'));
  const page = await api<ActionPage>('GET', `/v1/actions?limit=50${status ? `&status=${status}` : ''}`);
  const table = h(
    'table',
    {},
    h('caption', { class: 'visually-hidden' }, 'My actions, newest first'),
    h('thead', {}, h('tr', {}, ['Created', 'Action', 'Tools', 'Status', 'Reason'].map((c) => h('th', { scope: 'col' }, c)))),
    h(
      'tbody',
      {},
      page.items.map((a) =>
        h(
          'tr',
          {},
          h('td', {}, time(a.createdAt)),
          h('td', {}, h('a', { href: `#/actions/${encodeURIComponent(a.id)}` }, a.id)),
          h('td', {}, a.steps.map((s) => s.tool).join(', ')),
          h('td', {}, statusBadge(a.status)),
          h('td', {}, a.reason ?? ''),
        ),
      ),
    ),
  );
  replace(main, h('h1', {}, 'My actions'), filter, page.items.length === 0 ? h('p', {}, 'No actions.') : table);
};

/** The role the API lets list every principal's actions (the API enforces it; this only chooses what to offer). */
export const AUDITOR_ROLE = 'Auditor';

/** Whether the signed-in person may list every action (offered in the navigation). */
export function isAuditor(): boolean {
  return whoAmI()?.roles.includes(AUDITOR_ROLE) ?? false;
}

const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

/**
 * Every principal's actions, for auditors: filters by status, tool, principal and day range,
 * newest first, a page at a time (the API's cursor). The filters live in the hash
 * (`#/actions/all?status=…&tool=…&principal=…&from=…&to=…&limit=…&cursor=…`), so a view can be linked.
 */
export const allActions: Page_ = async (main, params) => {
  const query = new URLSearchParams(params.query ?? '');
  const pick = (key: string) => query.get(key)?.trim() ?? '';
  const status = STATUSES.includes(pick('status')) ? pick('status') : '';
  const from = DAY_PATTERN.test(pick('from')) ? pick('from') : '';
  const to = DAY_PATTERN.test(pick('to')) ? pick('to') : '';
  const limit = /^([1-9]\d?|100)$/.test(pick('limit')) ? pick('limit') : '';
  const filters = { status, tool: pick('tool'), principal: pick('principal'), from, to, limit };

  const statusSelect = h(
    'select',
    { id: 'all-status', name: 'status' },
    h('option', { value: '' }, 'any status'),
    STATUSES.map((s) => h('option', { value: s, ...(s === status ? { selected: true } : {}) }, s.replace(/_/g, ' '))),
  );
  const toolInput = h('input', { id: 'all-tool', name: 'tool', value: filters.tool, placeholder: 'travel.book_flight', autocomplete: 'off' });
  const principalInput = h('input', { id: 'all-principal', name: 'principal', value: filters.principal, autocomplete: 'off' });
  const fromInput = h('input', { id: 'all-from', name: 'from', type: 'date', value: from });
  const toInput = h('input', { id: 'all-to', name: 'to', type: 'date', value: to });
  const hashOf = (f: Record<string, string>) => {
    const q = new URLSearchParams(Object.entries(f).filter(([, v]) => v !== ''));
    const text = q.toString();
    return text ? `#/actions/all?${text}` : '#/actions/all';
  };
  const form = h(
    'form',
    {
      'aria-label': 'Filter all actions',
      class: 'filters',
      on: {
        submit: (e: Event) => {
          e.preventDefault();
          location.hash = hashOf({ status: statusSelect.value, tool: toolInput.value.trim(), principal: principalInput.value.trim(), from: fromInput.value, to: toInput.value, limit });
        },
      },
    },
    h('label', { for: 'all-status' }, 'Status'),
    statusSelect,
    h('label', { for: 'all-tool' }, 'Tool'),
    toolInput,
    h('label', { for: 'all-principal' }, 'Principal'),
    principalInput,
    h('label', { for: 'all-from' }, 'From (day, UTC)'),
    fromInput,
    h('label', { for: 'all-to' }, 'To (day, UTC)'),
    toInput,
    ' ',
    h('button', { type: 'submit', class: 'secondary' }, 'Filter'),
  );
  const heading = h('h1', {}, 'All actions');
  const note = h('p', {}, 'Every principal’s actions, newest first (the last 7 days unless you pick days; at most 31). Other people’s personal data is masked as the API masks it.');
  replace(main, heading, note, form, h('p', {}, 'Loading…'));

  const api_ = new URLSearchParams({ scope: 'all', limit: limit || '50' });
  if (status) api_.set('status', status);
  if (filters.tool) api_.set('tool', filters.tool);
  if (filters.principal) api_.set('principal', filters.principal);
  if (from) api_.set('since', `${from}T00:00:00.000Z`);
  if (to) api_.set('until', `${to}T23:59:59.999Z`);
  const cursor = pick('cursor');
  if (cursor) api_.set('cursor', cursor);
  let page: ActionPage;
  try {
    page = await api<ActionPage>('GET', `/v1/actions?${api_.toString()}`);
  } catch (error) {
    // A filter the API refuses (a tool name it does not accept, a range too long) is shown, with the form to fix it.
    replace(main, heading, note, form, errorBox(error));
    return;
  }
  const table = h(
    'table',
    { 'data-testid': 'all-actions' },
    h('caption', { class: 'visually-hidden' }, 'All actions, newest first'),
    h('thead', {}, h('tr', {}, ['Created', 'Action', 'Principal', 'Tools', 'Status', 'Reason'].map((c) => h('th', { scope: 'col' }, c)))),
    h(
      'tbody',
      {},
      page.items.map((a) =>
        h(
          'tr',
          { 'data-action': a.id },
          h('td', {}, time(a.createdAt)),
          h('td', {}, h('a', { href: `#/actions/${encodeURIComponent(a.id)}` }, a.id)),
          h('td', {}, a.principal.sub),
          h('td', {}, a.steps.map((s) => s.tool).join(', ')),
          h('td', {}, statusBadge(a.status)),
          h('td', {}, a.reason ?? ''),
        ),
      ),
    ),
  );
  const more = page.nextCursor ? h('p', {}, h('a', { href: hashOf({ ...filters, cursor: page.nextCursor }) }, 'Older actions')) : null;
  replace(main, heading, note, form, page.items.length === 0 ? h('p', {}, 'No actions match.') : table, more);
  announce(`${page.items.length} action${page.items.length === 1 ? '' : 's'} shown`);
};

function timeline(a: ActionView): HTMLElement {
  const entries: Child[] = [h('li', {}, time(a.createdAt), ` — asked by ${a.principal.sub} through ${agentName(a.actor)}${a.reason ? `: ${a.reason}` : ''}`)];
  if (a.decision) {
    entries.push(
      h(
        'li',
        {},
        time(a.decision.decidedAt),
        ` — policy decided ${a.decision.outcome.replace(/_/g, ' ')}${a.decision.policyIds.length ? ` (${a.decision.policyIds.join(', ')})` : ''}`,
        a.decision.reasons.length ? h('ul', {}, a.decision.reasons.map((r) => h('li', {}, r))) : null,
      ),
    );
  }
  for (const id of a.approvals) entries.push(h('li', {}, 'approval ', h('a', { href: `#/approvals/${encodeURIComponent(id)}` }, id), ' (votes and decision)'));
  for (const s of a.steps) {
    const retries = s.attempts && s.attempts > 1 ? `, ${s.attempts - 1} retr${s.attempts === 2 ? 'y' : 'ies'}` : '';
    entries.push(
      h(
        'li',
        {},
        s.startedAt ? time(s.startedAt) : 'not started',
        ` — step ${s.id} (${s.tool}): `,
        statusBadge(s.status),
        retries,
        s.error ? h('span', { class: 'bad' }, ` ${s.error.name}: ${s.error.message}`) : null,
        s.compensation ? h('div', {}, `undone by ${s.compensation.tool}: `, statusBadge(s.compensation.status)) : null,
      ),
    );
  }
  entries.push(h('li', {}, time(a.updatedAt), ' — ', statusBadge(a.status), a.statusReason ? ` ${a.statusReason}` : ''));
  if (a.receipt) entries.push(h('li', {}, 'receipt written: ', h('code', {}, a.receipt)));
  return h('ol', { class: 'timeline', 'aria-label': 'Timeline' }, entries);
}

export const action: Page_ = async (main, params) => {
  const id = params.id ?? '';
  let timer: number | undefined;
  let stopped = false;
  const receiptBox = h('section', { 'aria-labelledby': 'receipt-heading' });
  let receiptShown = false;
  const render = async () => {
    const a = await api<ActionView>('GET', `/v1/actions/${encodeURIComponent(id)}`);
    if (stopped) return;
    const done = (TERMINAL as readonly string[]).includes(a.status);
    replace(
      main,
      h('h1', {}, `Action ${a.id}`),
      kv([
        ['Status', h('span', { 'data-testid': 'action-status' }, statusBadge(a.status))],
        ['Asked by', a.principal.sub],
        ['Agent', agentName(a.actor)],
        ['Reason', a.reason ?? ''],
        ['Plan hash', h('code', {}, a.planHash)],
      ]),
      h('h2', {}, 'Timeline'),
      timeline(a),
      a.result !== undefined && a.result !== null ? [h('h2', {}, 'Result'), json(a.result, 'Result')] : null,
      receiptBox,
    );
    if (a.receipt && !receiptShown) {
      receiptShown = true;
      void showReceipt(receiptBox, a.id, () => stopped);
    }
    if (!done || !a.receipt) timer = window.setTimeout(() => void render().catch((e: unknown) => replace(receiptBox, errorBox(e))), 1000);
  };
  await render();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
};

// ── receipts ────────────────────────────────────────────────────────────────

interface ReceiptDoc {
  outcome?: { status?: string; reason?: string };
  principal?: { sub?: string };
  approvals?: Array<{ id?: string; votes?: Array<{ voter?: string; decision?: string }> }>;
  steps?: Array<{ stepId?: string; tool?: string; kind?: string; status?: string; attempts?: number }>;
  [k: string]: unknown;
}

async function showReceipt(box: HTMLElement, actionId: string, stopped: () => boolean): Promise<void> {
  let url: string | undefined;
  for (let attempt = 0; ; attempt++) {
    if (stopped()) return;
    let r: ReceiptView;
    try {
      r = await api<ReceiptView>('GET', `/v1/actions/${encodeURIComponent(actionId)}/receipt`);
    } catch (error) {
      replace(box, h('h2', { id: 'receipt-heading' }, 'Receipt'), errorBox(error));
      return;
    }
    let doc: ReceiptDoc = {};
    try {
      doc = JSON.parse(r.body) as ReceiptDoc;
    } catch {
      doc = {};
    }
    if (url) URL.revokeObjectURL(url);
    url = URL.createObjectURL(new Blob([r.body], { type: 'application/json' }));
    const v = r.verification;
    const tone = v.status === 'verified' ? 'ok' : v.status === 'failed' ? 'bad' : 'warn';
    replace(
      box,
      h('h2', { id: 'receipt-heading' }, 'Receipt'),
      h('p', { 'data-testid': 'receipt-verification' }, h('span', { class: `badge ${tone}` }, v.status), ' ', v.detail),
      kv([
        ['Key', h('code', {}, r.key)],
        ['SHA-256', h('code', {}, r.sha256)],
        ['Checksum', v.checksum],
        ['Signature', v.signature],
        ['Digest', v.digest ? h('code', {}, v.digest.key) : 'none yet'],
        ['Signing key', v.digest?.keyId ?? null],
        ['Newest digest', v.latestDigest ? h('code', {}, v.latestDigest) : null],
        ['Outcome', doc.outcome?.status ?? null],
        ['Principal', doc.principal?.sub ?? null],
      ]),
      Array.isArray(doc.steps) && doc.steps.length > 0
        ? h(
            'table',
            {},
            h('caption', {}, 'Steps in the receipt'),
            h('thead', {}, h('tr', {}, ['Step', 'Tool', 'Kind', 'Status', 'Attempts'].map((c) => h('th', { scope: 'col' }, c)))),
            h('tbody', {}, doc.steps.map((s) => h('tr', {}, [s.stepId, s.tool, s.kind, s.status, s.attempts].map((c) => h('td', {}, c === undefined ? '' : String(c)))))),
          )
        : null,
      h('p', {}, h('a', { href: url, download: `${r.actionId}.receipt.json` }, 'Download the raw receipt (JSON)')),
      h('details', {}, h('summary', {}, 'Raw receipt'), json(doc, 'Raw receipt')),
    );
    // A receipt is listed by the next digest (hourly in AWS): check again for a while.
    if (v.status !== 'pending' || attempt >= 30) return;
    await new Promise((resolve) => window.setTimeout(resolve, 2000));
  }
}

// ── operations (present only when the API offers them) ──────────────────────

function generic(value: unknown, label: string): Child {
  if (Array.isArray(value)) return value.length === 0 ? h('p', {}, 'None.') : h('ul', { 'aria-label': label }, value.map((v, i) => h('li', { class: 'card' }, generic(v, `${label} ${i + 1}`))));
  if (value !== null && typeof value === 'object') {
    return kv(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, typeof v === 'object' && v !== null ? generic(v, k) : String(v)] as const));
  }
  return String(value);
}

const HALT_SCOPES = ['all', 'connector', 'tool', 'agent', 'principal'] as const;
const TARGET_HELP: Record<(typeof HALT_SCOPES)[number], string> = {
  all: 'Every agent, tool and connector: no target.',
  connector: 'A connector name, e.g. payments.',
  tool: 'A tool name, e.g. travel.book_flight.',
  agent: 'An agent name, as agents send it (agent.name).',
  principal: 'A person’s sub, e.g. alice.',
};

/** One halt: what it covers, why, who, and (while active) a resume form that asks why. */
function haltCard(halt: HaltView, rerender: (notice?: Child) => Promise<void>): HTMLElement {
  const rows: Array<readonly [string, Child]> = [
    ['Status', statusBadge(halt.status === 'active' ? 'halted' : 'resumed')],
    ['Covers', halt.scope === 'all' ? 'everything' : `${halt.scope} ${halt.target ?? ''}`],
    ['Mode', halt.mode === 'stop' ? 'stop (running plans compensate)' : 'pause (running plans wait)'],
    ['Reason', halt.reason],
    ['Halted by', `${halt.createdBy}, ${time(halt.createdAt)}`],
  ];
  if (halt.resumedAt) rows.push(['Resumed by', `${halt.resumedBy ?? 'unknown'}, ${time(halt.resumedAt)}: ${halt.resumeReason ?? ''}`]);
  const card = h('li', { class: 'card', 'data-halt': halt.id }, h('h2', {}, h('code', {}, halt.id)), kv(rows));
  if (halt.status === 'active') {
    const fieldId = `resume-${halt.id}`;
    const why = h('input', { id: fieldId, name: 'reason', required: true, maxlength: 500 });
    card.append(
      h(
        'form',
        {
          'aria-label': `Resume ${halt.id}`,
          on: {
            submit: (e: Event) => {
              e.preventDefault();
              api<HaltView>('DELETE', `/v1/halts/${encodeURIComponent(halt.id)}`, { reason: why.value.trim() })
                .then((done) => rerender(h('p', { class: 'note', role: 'status' }, `Resumed ${done.id}.`)))
                .catch((error: unknown) => rerender(errorBox(error)));
            },
          },
        },
        h('label', { for: fieldId }, 'Why resume'),
        why,
        h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Resume')),
      ),
    );
  }
  return card;
}

export const halts: Page_ = async (main) => {
  const render = async (notice?: Child): Promise<void> => {
    const body = await api<HaltList>('GET', '/v1/halts');
    const items = [...body.items].sort((a, b) => (a.status === b.status ? b.createdAt.localeCompare(a.createdAt) : a.status === 'active' ? -1 : 1));
    const scope = h('select', { id: 'halt-scope', name: 'scope', 'aria-describedby': 'halt-target-help' }, HALT_SCOPES.map((s) => h('option', { value: s }, s)));
    const target = h('input', { id: 'halt-target', name: 'target', maxlength: 256, disabled: true, 'aria-describedby': 'halt-target-help' });
    const help = h('p', { id: 'halt-target-help', class: 'meta' }, TARGET_HELP.all);
    scope.addEventListener('change', () => {
      const chosen = scope.value as (typeof HALT_SCOPES)[number];
      target.disabled = chosen === 'all';
      target.required = chosen !== 'all';
      if (chosen === 'all') target.value = '';
      help.textContent = TARGET_HELP[chosen];
    });
    const mode = h('select', { id: 'halt-mode', name: 'mode' }, h('option', { value: 'stop' }, 'stop: running plans stop and compensate'), h('option', { value: 'pause' }, 'pause: running plans wait for the resume'));
    const reason = h('textarea', { id: 'halt-reason', name: 'reason', required: true, maxlength: 500 });
    const form = h(
      'form',
      {
        'aria-label': 'Halt',
        on: {
          submit: (e: Event) => {
            e.preventDefault();
            const request = { scope: scope.value, ...(scope.value === 'all' ? {} : { target: target.value.trim() }), mode: mode.value, reason: reason.value.trim() };
            api<HaltView>('POST', '/v1/halts', request)
              .then((halt) => render(h('p', { class: 'note', role: 'status' }, `Halt ${halt.id} is in force.`)))
              .catch((error: unknown) => render(errorBox(error)));
          },
        },
      },
      h('label', { for: 'halt-scope' }, 'What to halt'),
      scope,
      h('label', { for: 'halt-target' }, 'Which one'),
      target,
      help,
      h('label', { for: 'halt-mode' }, 'Running work'),
      mode,
      h('label', { for: 'halt-reason' }, 'Reason (recorded with your name)'),
      reason,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'danger' }, 'Halt')),
    );
    const active = items.filter((i) => i.status === 'active').length;
    replace(
      main,
      h('h1', {}, 'Kill switch'),
      notice ?? null,
      h('p', {}, active === 0 ? 'Nothing is halted.' : `${active} halt${active === 1 ? '' : 's'} in force.`),
      items.length === 0 ? null : h('ul', { class: 'list', 'aria-label': 'Halts, active first' }, items.map((item) => haltCard(item, render))),
      h('h2', {}, 'Halt something'),
      form,
    );
    announce(active === 0 ? 'Nothing is halted' : `${active} halts in force`);
  };
  await render();
};

export const metrics: Page_ = async (main) => {
  const body = await api<unknown>('GET', '/v1/metrics');
  replace(main, h('h1', {}, 'Key figures'), generic(body, 'Metrics'));
};

/** The signed-in person, for the header. */
export function whoLine(): string {
  const me = whoAmI();
  return me ? `${me.sub}${me.roles.length ? ` (${me.roles.join(', ')})` : ''}` : '';
}
