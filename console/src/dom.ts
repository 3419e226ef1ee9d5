/**
 * The only way the console puts anything on the page: elements made with createElement and
 * text made with createTextNode. Nothing is ever parsed as HTML (no innerHTML, no
 * insertAdjacentHTML), so every string from the API — a reason, an argument, a name — is
 * shown as the characters it holds, `<script>` included.
 */

/** What may be a child: nodes, text (numbers too), nothing, or lists of those. */
export type Child = Node | string | number | null | undefined | false | readonly Child[];

/** Attributes and listeners of {@link h}. Attribute names starting with `on` are refused: listeners go in `on`. */
export interface Props {
  [attribute: string]: string | number | boolean | undefined | Record<string, EventListener> | null;
}

/** An element with attributes, listeners (`on: { click }`) and children; strings become text nodes. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === 'on') {
      for (const [type, listener] of Object.entries(value as Record<string, EventListener>)) el.addEventListener(type, listener);
      continue;
    }
    if (/^on/i.test(name)) throw new Error(`refusing attribute ${name}: pass listeners in "on"`);
    if (value === undefined || value === null || value === false) continue;
    el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

/** Appends children to `parent` (strings as text). */
export function append(parent: Node, children: readonly Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces everything inside `parent`. */
export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

/** A definition list of label → value rows (rows whose value is absent are left out). */
export function kv(rows: ReadonlyArray<readonly [string, Child]>): HTMLDListElement {
  return h(
    'dl',
    { class: 'kv' },
    rows.filter(([, v]) => v !== undefined && v !== null && v !== '').map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
  );
}

/** JSON shown as text in a <pre>, with a label for screen readers. */
export function json(value: unknown, label: string): HTMLPreElement {
  return h('pre', { 'aria-label': label, tabindex: 0 }, JSON.stringify(value, null, 2) ?? 'undefined');
}

/** Tells screen readers something changed (the polite live region). */
export function announce(message: string): void {
  const region = document.getElementById('status');
  if (region) region.textContent = message;
}

/** `1,316.00 USD` */
export function money(m: { amount: number; currency: string }): string {
  return `${m.amount.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })} ${m.currency}`;
}

/** A time as the reader's locale writes it, with the ISO instant as a machine-readable attribute. */
export function time(iso: string): HTMLTimeElement {
  const d = new Date(iso);
  return h('time', { datetime: iso }, Number.isNaN(d.getTime()) ? iso : d.toLocaleString());
}

/** `3 h 12 min left` / `expired`, from now until `iso`. */
export function countdown(iso: string, now = Date.now()): string {
  const ms = Date.parse(iso) - now;
  if (!(ms > 0)) return 'expired';
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86_400);
  const hh = Math.floor((s % 86_400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  if (d > 0) return `${d} d ${hh} h left`;
  if (hh > 0) return `${hh} h ${mm} min left`;
  return `${mm} min ${ss} s left`;
}
