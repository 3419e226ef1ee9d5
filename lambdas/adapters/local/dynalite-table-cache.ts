import { createRequire } from 'node:module';

/**
 * dynalite reads the table's description from LevelDB (and decodes its JSON) on every item
 * request, before the item itself: about half of its LevelDB reads under the chaos storm, for
 * a description that changes only with CreateTable, UpdateTable and DeleteTable. This keeps
 * the last description read of each ACTIVE table and hands out copies of it, until anything
 * writes a table description (any put, delete or batch on dynalite's table store forgets them
 * all). Item data is never cached.
 */

type Callback = (error: unknown, table?: unknown) => void;
type GetTable = (name: string, checkStatus: boolean | Callback, cb?: Callback) => void;

interface TableStore {
  [method: string]: unknown;
}

interface Store {
  tableDb: TableStore;
  getTable: GetTable;
}

const require = createRequire(import.meta.url);
const PATCHED = Symbol.for('airlock.dynalite.tableCache');

/** Wraps one dynalite store's getTable with the cache described above. */
export function cacheTableDescriptions(store: Store): void {
  // Each description as JSON: dynalite stored it as JSON, and parsing a copy out of it is about
  // three times cheaper than structuredClone of the object (measured, 1.7 KB descriptions).
  const cache = new Map<string, string>();
  // The same, parsed and deeply frozen, for item requests (the ones that pass no status flag):
  // dynalite's item actions only read the description, so they share one object instead of
  // each parsing a copy; table actions (which pass the flag, and some of which change their
  // copy before writing it) still get a fresh copy.
  const frozen = new Map<string, unknown>();
  // Bumped by every write, so a read that began before a write never fills the cache.
  let generation = 0;
  for (const method of ['put', 'del', 'batch']) {
    const original = store.tableDb[method];
    if (typeof original !== 'function') continue;
    store.tableDb[method] = (...args: unknown[]) => {
      generation++;
      cache.clear();
      frozen.clear();
      return (original as (...a: unknown[]) => unknown).apply(store.tableDb, args);
    };
  }
  const getTable = store.getTable;
  store.getTable = (name, checkStatus, cb) => {
    const done = (typeof checkStatus === 'function' ? checkStatus : cb)!;
    const check = typeof checkStatus === 'function' ? false : checkStatus;
    const hit = cache.get(name);
    if (hit !== undefined) {
      if (typeof checkStatus !== 'function') {
        process.nextTick(done, null, JSON.parse(hit));
        return;
      }
      let shared = frozen.get(name);
      if (shared === undefined) frozen.set(name, (shared = deepFreeze(JSON.parse(hit))));
      process.nextTick(done, null, shared);
      return;
    }
    const started = generation;
    getTable(name, check, (error, table) => {
      if (!error && started === generation && (table as { TableStatus?: unknown } | undefined)?.TableStatus === 'ACTIVE') cache.set(name, JSON.stringify(table));
      done(error, table);
    });
  };
}

/** `value` with every object in it frozen. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const field of Object.values(value)) deepFreeze(field);
    Object.freeze(value);
  }
  return value;
}

let created: Store | undefined;

/**
 * The store the last dynalite server made since the cache was installed (dynalite() makes it
 * synchronously), once: the in-process client hands item requests to it directly.
 */
export function takeCreatedStore(): unknown {
  const store = created;
  created = undefined;
  return store;
}

/**
 * Makes every dynalite store created from now on cache its table descriptions. dynalite builds
 * its store through its `db` module's `create` when a server is made, so wrapping that export
 * reaches the store its request listener uses. Idempotent.
 */
export function installTableCache(): void {
  const db = require('dynalite/db/index.js') as { create: (options: unknown) => Store; [PATCHED]?: true };
  if (db[PATCHED]) return;
  const create = db.create;
  db.create = (options: unknown) => {
    const store = create(options);
    cacheTableDescriptions(store);
    created = store;
    return store;
  };
  db[PATCHED] = true;
}
