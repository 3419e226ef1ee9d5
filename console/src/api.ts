import { bearer } from './auth';

/**
 * Calls to the Airlock API with the signed-in person's token (from memory, never from
 * storage). Same origin: the console is served beside the API (the local runtime; CloudFront
 * routes /v1/* to API Gateway), so no cookie is involved and nothing is cross-site.
 */

/** An RFC 9457 problem document, as far as the console reads it. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  [member: string]: unknown;
}

/** A non-2xx answer: its status and problem document (or a stand-in when the body is not one). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(`${problem.title}: ${problem.detail}`);
    this.name = 'ApiError';
  }
}

/** The signed-in session ended (401): the console asks to sign in again. */
export class SignedOutError extends Error {
  constructor() {
    super('Your session ended. Sign in again.');
    this.name = 'SignedOutError';
  }
}

let onSignedOut: () => void = () => undefined;
/** What to do when the API says the token is no longer good. */
export function whenSignedOut(handler: () => void): void {
  onSignedOut = handler;
}

function isProblem(value: unknown): value is Problem {
  return typeof value === 'object' && value !== null && typeof (value as Problem).title === 'string' && typeof (value as Problem).status === 'number';
}

/** `method path` with an optional JSON body; resolves to the parsed 2xx body, else throws ApiError. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const token = bearer();
  if (!token) {
    onSignedOut();
    throw new SignedOutError();
  }
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json, application/problem+json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit', cache: 'no-store' });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (res.status === 401) {
    onSignedOut();
    throw new SignedOutError();
  }
  if (!res.ok) {
    throw new ApiError(res.status, isProblem(parsed) ? parsed : { type: 'about:blank', title: res.statusText || 'Request failed', status: res.status, detail: `${method} ${path} answered ${res.status}.` });
  }
  return parsed as T;
}

/** Whether an optional API is there for this person: 404/403/405 mean no, anything else is an error. */
export async function available(path: string): Promise<boolean> {
  try {
    await api<unknown>('GET', path);
    return true;
  } catch (error) {
    if (error instanceof ApiError && [403, 404, 405].includes(error.status)) return false;
    throw error;
  }
}
