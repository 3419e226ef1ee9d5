/**
 * Sign-in with OpenID Connect, authorization code flow with PKCE (RFC 7636, S256). The
 * access token lives in this module's memory only: never in localStorage, sessionStorage or a
 * cookie, so a reload or a closed tab signs out. Only the PKCE verifier and the state survive
 * the redirect to the issuer, in sessionStorage, and are deleted when the code comes back.
 */

/** `config.json` beside the console: who issues tokens and how to ask. */
export interface ConsoleConfig {
  clientId: string;
  scope: string;
  /** The issuer (discovery at `<issuer>/.well-known/openid-configuration` when no endpoints are given). */
  issuer?: string;
  authorizationEndpoint?: string;
  tokenEndpoint?: string;
  /** Shown on the sign-in screen ("local dev issuer", "Okta", …). */
  issuerLabel?: string;
}

interface Endpoints {
  authorization: string;
  token: string;
}

/** What the console shows about the signed-in person: read from the token for display only (the API verifies it). */
export interface Me {
  sub: string;
  roles: string[];
}

const PENDING_KEY = 'airlock.console.pkce';
let accessToken: string | undefined;
let me: Me | undefined;

/** The bearer token for API calls, if signed in. */
export function bearer(): string | undefined {
  return accessToken;
}

/** Who is signed in. */
export function whoAmI(): Me | undefined {
  return me;
}

/** Forgets the token. */
export function signOut(): void {
  accessToken = undefined;
  me = undefined;
}

const b64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

function randomString(bytes = 32): string {
  return b64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

async function challengeOf(verifier: string): Promise<string> {
  return b64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
}

/** Where the issuer sends the browser back: this page, without query or fragment. */
export function redirectUri(): string {
  return `${location.origin}${location.pathname}`;
}

/** Reads config.json. */
export async function loadConfig(): Promise<ConsoleConfig> {
  const res = await fetch('config.json', { cache: 'no-store', credentials: 'omit' });
  if (!res.ok) throw new Error(`config.json answered ${res.status}`);
  const raw = (await res.json()) as Partial<ConsoleConfig>;
  if (typeof raw.clientId !== 'string' || raw.clientId === '') throw new Error('config.json names no clientId');
  return { scope: 'openid', ...raw, clientId: raw.clientId } as ConsoleConfig;
}

async function endpoints(config: ConsoleConfig): Promise<Endpoints> {
  if (config.authorizationEndpoint && config.tokenEndpoint) {
    return { authorization: new URL(config.authorizationEndpoint, location.href).href, token: new URL(config.tokenEndpoint, location.href).href };
  }
  if (!config.issuer) throw new Error('config.json names neither endpoints nor an issuer');
  const res = await fetch(`${config.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, { credentials: 'omit' });
  if (!res.ok) throw new Error(`the issuer's discovery document answered ${res.status}`);
  const doc = (await res.json()) as { authorization_endpoint?: unknown; token_endpoint?: unknown };
  if (typeof doc.authorization_endpoint !== 'string' || typeof doc.token_endpoint !== 'string') throw new Error('the discovery document lacks its endpoints');
  return { authorization: doc.authorization_endpoint, token: doc.token_endpoint };
}

/** Sends the browser to the issuer's sign-in page. */
export async function beginSignIn(config: ConsoleConfig): Promise<void> {
  const ep = await endpoints(config);
  const verifier = randomString(48);
  const state = randomString(24);
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ verifier, state }));
  const url = new URL(ep.authorization);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: config.clientId,
    redirect_uri: redirectUri(),
    scope: config.scope,
    state,
    code_challenge: await challengeOf(verifier),
    code_challenge_method: 'S256',
  }).toString();
  location.assign(url.href);
}

function decodeClaims(token: string): Me {
  const part = token.split('.')[1] ?? '';
  try {
    const text = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(text, (c) => c.charCodeAt(0)))) as { sub?: unknown; roles?: unknown };
    return {
      sub: typeof claims.sub === 'string' ? claims.sub : 'unknown',
      roles: Array.isArray(claims.roles) ? claims.roles.filter((r): r is string => typeof r === 'string') : [],
    };
  } catch {
    return { sub: 'unknown', roles: [] };
  }
}

/**
 * Finishes a sign-in when the issuer sent the browser back with `?code=…&state=…`: checks
 * the state, trades the code and the verifier for a token, and clears the URL. Returns
 * whether someone is signed in now; throws with the issuer's error otherwise.
 */
export async function completeSignIn(config: ConsoleConfig): Promise<boolean> {
  const params = new URLSearchParams(location.search);
  const code = params.get('code');
  const error = params.get('error');
  if (!code && !error) return accessToken !== undefined;
  history.replaceState(null, '', redirectUri() + location.hash);
  const pending = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  if (error) throw new Error(`The issuer refused the sign-in: ${error}`);
  const saved = pending ? (JSON.parse(pending) as { verifier?: string; state?: string }) : {};
  if (!saved.verifier || !saved.state || saved.state !== params.get('state')) throw new Error('The sign-in answer does not match the request this tab made. Sign in again.');
  const ep = await endpoints(config);
  const res = await fetch(ep.token, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    credentials: 'omit',
    body: new URLSearchParams({ grant_type: 'authorization_code', code: code!, redirect_uri: redirectUri(), client_id: config.clientId, code_verifier: saved.verifier }).toString(),
  });
  const body = (await res.json().catch(() => ({}))) as { access_token?: unknown; error?: unknown };
  if (!res.ok || typeof body.access_token !== 'string') throw new Error(`The issuer did not issue a token (${typeof body.error === 'string' ? body.error : res.status}).`);
  accessToken = body.access_token;
  me = decodeClaims(accessToken);
  return true;
}
