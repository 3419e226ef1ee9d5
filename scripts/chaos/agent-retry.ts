import type { Rng } from './rng';

/**
 * How a simulated agent retries `POST /v1/actions`, as a well-behaved real agent would: always
 * with the same Idempotency-Key; never sooner than the server asked (`Retry-After`, else the
 * reset `t` of the `RateLimit` field); plus an exponential backoff drawn with full jitter from
 * the seed, so agents refused in one rate-limit window do not all come back at the start of the
 * next; and within a bound (retries and total time), after which it gives up and says so.
 */

export interface RetryPolicy {
  /** Retries after the first request, at most. */
  maxRetries: number;
  /** No retry is sent later than this after the first request. */
  budgetMs: number;
  /** The backoff's first ceiling; it doubles with every retry up to `capMs`. */
  baseMs: number;
  capMs: number;
}

export const AGENT_RETRY: RetryPolicy = { maxRetries: 12, budgetMs: 5 * 60_000, baseMs: 500, capMs: 20_000 };

/** What an answer asks of an agent: wait this long at least (ms), or undefined when it is final. */
export interface RetryableAnswer {
  status: number;
  /** The problem type (`urn:airlock:problem:…`), when there is one. */
  type: string | undefined;
  headers: { get(name: string): string | null };
}

/**
 * Seconds the server asked the client to wait: `Retry-After` (delta-seconds or an HTTP date),
 * else the largest reset `t` among the `RateLimit` field's policies. Undefined when neither says.
 */
export function serverDelayMs(headers: RetryableAnswer['headers'], now: number): number | undefined {
  const retryAfter = headers.get('retry-after')?.trim();
  if (retryAfter) {
    if (/^\d+$/.test(retryAfter)) return Number(retryAfter) * 1000;
    const date = Date.parse(retryAfter);
    if (Number.isFinite(date)) return Math.max(0, date - now);
  }
  const ratelimit = headers.get('ratelimit');
  if (ratelimit) {
    const resets = [...ratelimit.matchAll(/;\s*t=(\d+)/g)].map((m) => Number(m[1]));
    if (resets.length > 0) return Math.max(...resets) * 1000;
  }
  return undefined;
}

/**
 * Whether an answer to `POST /v1/actions` is one to retry with the same key: the first request
 * with the key is still being accepted (409 in progress), or the service asked to come back
 * (429 over a rate limit, 503 with Retry-After: an open breaker, a busy ledger, a restart).
 */
export function isRetryable(answer: RetryableAnswer): boolean {
  if (answer.status === 429 || answer.status === 503) return true;
  if (answer.status === 409) return (answer.type ?? '').endsWith('idempotency-in-progress') || answer.headers.get('retry-after') !== null;
  return false;
}

/**
 * The wait before retry number `retry` (1 for the first retry), or undefined to give up: the
 * server's delay plus a jittered backoff (uniform in [0, min(cap, base·2^(retry−1)))), as long
 * as the retry is within `maxRetries` and is sent within `budgetMs` of the first request.
 * When the server named a delay, the jitter spreads a refused cohort over at most that delay
 * once more (0.5 s at least): the server knows when it will have room (a 1 s rate-limit window,
 * a breaker's reset), and a backoff grown to 20 s on top of a 1 s `Retry-After` left agents
 * idle long after the window had room (seed 7 at 1,000 actions: 2,579 retries, 32 agents
 * retrying for 2–5 minutes before giving up).
 */
export function retryDelayMs(policy: RetryPolicy, retry: number, serverMs: number | undefined, elapsedMs: number, rng: Rng): number | undefined {
  if (retry > policy.maxRetries) return undefined;
  const backoff = Math.min(policy.capMs, policy.baseMs * 2 ** (retry - 1));
  const ceiling = serverMs ? Math.min(backoff, Math.max(policy.baseMs, serverMs)) : backoff;
  const wait = (serverMs ?? 0) + Math.floor(rng() * ceiling);
  if (elapsedMs + wait > policy.budgetMs) return undefined;
  return wait;
}

/**
 * Whether an agent's wait (polling its action, looking for its approval, voting through a
 * halt) that began at `startedAt` is over: it lasts `boundMs` from its own start or from the
 * last restart, whichever is later. Counting from the last restart alone ended every wait
 * begun more than the bound after it at its first look (seed 7 at 1,000 actions: agents
 * stopped following their actions, and approvers voted on approvals they had not yet seen).
 */
export function waitIsOver(now: number, startedAt: number, lastRestart: number, boundMs: number): boolean {
  return now > Math.max(startedAt, lastRestart) + boundMs;
}

/** How long an operator keeps at a halt or resume the service asks them to retry. */
export const OPERATOR_RETRY_BUDGET_MS = 600_000;

/**
 * An operator's halt or resume, sent until it is answered with anything but a 429 or a 503
 * (waiting what the server asks, at least 250 ms, at most 10 s between tries): an operator
 * keeps at the kill switch. A halt has no Idempotency-Key, so after a 503 (which may come
 * after the halt was written) `recorded` is asked first whether it took effect; a 429 is
 * refused before anything is recorded. Undefined when the budget ran out.
 */
export async function operatorCall<A extends Pick<RetryableAnswer, 'status' | 'headers'>>(
  send: () => Promise<A | undefined>,
  options: {
    recorded?: () => Promise<A | undefined>;
    now?: () => number;
    sleep: (ms: number) => Promise<unknown>;
    budgetMs?: number;
  },
): Promise<A | undefined> {
  const now = options.now ?? Date.now;
  const until = now() + (options.budgetMs ?? OPERATOR_RETRY_BUDGET_MS);
  for (let answer = await send(); ; answer = await send()) {
    if (answer && answer.status !== 429 && answer.status !== 503) return answer;
    if (now() >= until) return answer;
    await options.sleep(Math.min(10_000, Math.max(250, (answer && serverDelayMs(answer.headers, now())) ?? 1_000)));
    if (answer?.status === 503 && options.recorded) {
      const found = await options.recorded();
      if (found) return found;
    }
  }
}
