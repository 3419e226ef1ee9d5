import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { DevIssuer } from './dev-issuer';
import { DEMO_PEOPLE, demoClaims } from './demo-people';
import { escapeHtml, pageHeaders, pageResponse, type LocalSite, type SiteRequest } from './site';
import type { LocalResponse } from './api-gateway-event';

/**
 * The dev issuer as an OpenID Connect provider for the console, on the local runtime only:
 * the authorization code flow with PKCE (RFC 6749 §4.1, RFC 7636 S256 only) for one public
 * client, the console. `GET /dev-issuer/authorize` shows a sign-in page where one of the
 * demo people is picked (no password: it is a dev machine on loopback); the answer is a
 * single-use code, valid one minute, sent back to the console's own loopback URL; `POST
 * /dev-issuer/token` trades it, with the PKCE verifier, for the same kind of token
 * `airlock token` prints. Requests for another host name (DNS rebinding) are refused.
 */

/** Path prefix of the dev issuer's endpoints. */
export const DEV_ISSUER_PREFIX = '/dev-issuer';
/** The only client: the web console, a public client (no secret; PKCE instead). */
export const CONSOLE_CLIENT_ID = 'airlock-console';
/** How long a code may wait to be traded. */
export const CODE_TTL_MS = 60_000;
/** Lifetime of tokens issued to the console. */
export const CONSOLE_TOKEN_TTL_SECONDS = 3600;
const MAX_FORM_BYTES = 8 * 1024;
const MAX_PENDING_CODES = 1_000;

const Base64Url43 = /^[A-Za-z0-9_-]{43}$/;
/** RFC 7636 §4.1: 43 to 128 unreserved characters. */
const VerifierPattern = /^[A-Za-z0-9\-._~]{43,128}$/;

/** Parameters of an authorization request (query of GET, form of POST). */
const AuthorizeSchema = z.object({
  response_type: z.literal('code', { error: 'response_type must be code' }),
  client_id: z.literal(CONSOLE_CLIENT_ID, { error: `client_id must be ${CONSOLE_CLIENT_ID}` }),
  redirect_uri: z.string().max(512),
  state: z.string().regex(/^[\x21-\x7e]{1,512}$/, 'state is required (printable ASCII, at most 512 characters)'),
  code_challenge: z.string().regex(Base64Url43, 'code_challenge must be a base64url SHA-256 (43 characters)'),
  code_challenge_method: z.literal('S256', { error: 'code_challenge_method must be S256' }),
  scope: z.string().max(512).optional(),
});
type AuthorizeParams = z.infer<typeof AuthorizeSchema>;

const TokenSchema = z.object({
  grant_type: z.literal('authorization_code'),
  code: z.string().min(1).max(256),
  redirect_uri: z.string().max(512),
  client_id: z.literal(CONSOLE_CLIENT_ID),
  code_verifier: z.string().regex(VerifierPattern),
});

interface PendingCode {
  sub: string;
  redirectUri: string;
  challenge: string;
  expiresAt: number;
}

export interface DevIssuerOidcOptions {
  issuer: DevIssuer;
  /** The runtime's port: redirect URIs and Host headers must name it. */
  port: number;
  now?: () => number;
}

const b64url = (data: Buffer) => data.toString('base64url');

function form(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(text)) if (!(k in out)) out[k] = v;
  return out;
}

function oauthError(error: string, description: string, status = 400): LocalResponse {
  return pageResponse(status, { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache' }, JSON.stringify({ error, error_description: description }));
}

function htmlPage(status: number, title: string, body: string): LocalResponse {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title><link rel="stylesheet" href="/console/app.css"></head><body><main id="main"><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`;
  // same-origin, not no-referrer: with no-referrer the browser sends `Origin: null` on the
  // form's POST, and the origin check below could not tell this page from any other.
  return pageResponse(status, { ...pageHeaders('text/html; charset=utf-8'), 'referrer-policy': 'same-origin' }, html);
}

/** The dev issuer's sign-in and token endpoints, as a local site. */
export function devIssuerOidc(options: DevIssuerOidcOptions): LocalSite {
  const now = options.now ?? Date.now;
  const hosts = new Set([`127.0.0.1:${options.port}`, `localhost:${options.port}`]);
  const redirectUris = new Set([...hosts].map((h) => `http://${h}/console/`));
  const codes = new Map<string, PendingCode>();

  const origin = (req: SiteRequest) => `http://${req.headers.host}`;

  const validAuthorize = (raw: Record<string, string>): { ok: true; params: AuthorizeParams } | { ok: false; why: string } => {
    const parsed = AuthorizeSchema.safeParse(raw);
    if (!parsed.success) return { ok: false, why: parsed.error.issues.map((i) => i.message).join('; ') };
    // Never redirect anywhere but the console on this loopback runtime: an open redirect would hand codes away.
    if (!redirectUris.has(parsed.data.redirect_uri)) return { ok: false, why: `redirect_uri must be the console on this runtime (${[...redirectUris].join(' or ')})` };
    return { ok: true, params: parsed.data };
  };

  const signInPage = (p: AuthorizeParams): LocalResponse => {
    const hidden = (['response_type', 'client_id', 'redirect_uri', 'state', 'code_challenge', 'code_challenge_method', 'scope'] as const)
      .filter((k) => p[k] !== undefined)
      .map((k) => `<input type="hidden" name="${k}" value="${escapeHtml(p[k]!)}">`)
      .join('');
    const people = DEMO_PEOPLE.map(
      (person) =>
        `<button type="submit" name="sub" value="${escapeHtml(person.sub)}">${escapeHtml(`${person.sub}, ${person.label} (${person.roles.join(', ')}${'manager' in person ? `; manager ${person.manager}` : ''})`)}</button>`,
    ).join('');
    return htmlPage(
      200,
      'Sign in to Airlock (local dev issuer)',
      `<p>This is the local runtime's dev issuer: pick who you are. In AWS the console signs in with your identity provider.</p><form method="post" action="${DEV_ISSUER_PREFIX}/authorize"><fieldset><legend>Sign in as</legend><div class="people">${hidden}${people}</div></fieldset></form>`,
    );
  };

  return async (req) => {
    if (!req.rawPath.startsWith(`${DEV_ISSUER_PREFIX}/`)) return undefined;
    if (!hosts.has(req.headers.host ?? '')) return oauthError('invalid_request', 'The dev issuer answers only on its loopback address.', 421);
    const path = req.rawPath.slice(DEV_ISSUER_PREFIX.length);

    if (path === '/.well-known/openid-configuration' && req.method === 'GET') {
      const base = `${origin(req)}${DEV_ISSUER_PREFIX}`;
      return pageResponse(
        200,
        { 'content-type': 'application/json', 'cache-control': 'no-store' },
        JSON.stringify({
          issuer: options.issuer.issuer,
          authorization_endpoint: `${base}/authorize`,
          token_endpoint: `${base}/token`,
          jwks_uri: `${base}/jwks.json`,
          response_types_supported: ['code'],
          grant_types_supported: ['authorization_code'],
          code_challenge_methods_supported: ['S256'],
          token_endpoint_auth_methods_supported: ['none'],
          id_token_signing_alg_values_supported: [options.issuer.alg],
        }),
      );
    }
    if (path === '/jwks.json' && req.method === 'GET') {
      return pageResponse(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }, JSON.stringify(options.issuer.jwks));
    }

    if (path === '/authorize' && req.method === 'GET') {
      const check = validAuthorize(Object.fromEntries(req.query));
      // Invalid requests are shown here, never redirected: the redirect URI itself may be the problem.
      if (!check.ok) return htmlPage(400, 'Sign-in request refused', `<p role="alert">${escapeHtml(check.why)}</p>`);
      return signInPage(check.params);
    }

    if (path === '/authorize' && req.method === 'POST') {
      // A cross-site form cannot sign someone in here (the console also checks its state).
      const from = req.headers.origin;
      if (from !== undefined && from !== origin(req)) return htmlPage(403, 'Sign-in refused', '<p role="alert">The sign-in form must be sent from this page.</p>');
      const body = await req.readBody(MAX_FORM_BYTES);
      if (body === 'too-large') return htmlPage(413, 'Sign-in refused', '<p role="alert">The form is too large.</p>');
      const fields = form(body?.toString('utf8') ?? '');
      const { sub, ...rest } = fields;
      const check = validAuthorize(rest);
      if (!check.ok) return htmlPage(400, 'Sign-in request refused', `<p role="alert">${escapeHtml(check.why)}</p>`);
      const person = DEMO_PEOPLE.find((p) => p.sub === sub);
      if (!person) return htmlPage(400, 'Sign-in request refused', '<p role="alert">Pick one of the demo people.</p>');
      const t = now();
      for (const [k, c] of codes) if (c.expiresAt <= t) codes.delete(k);
      if (codes.size >= MAX_PENDING_CODES) return htmlPage(503, 'Try again', '<p role="alert">Too many sign-ins are pending; try again in a minute.</p>');
      const code = b64url(randomBytes(32));
      codes.set(code, { sub: person.sub, redirectUri: check.params.redirect_uri, challenge: check.params.code_challenge, expiresAt: t + CODE_TTL_MS });
      const target = new URL(check.params.redirect_uri);
      target.search = new URLSearchParams({ code, state: check.params.state }).toString();
      return pageResponse(303, { location: target.href, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
    }

    if (path === '/token' && req.method === 'POST') {
      const type = String(req.headers['content-type'] ?? '');
      if (!/^application\/x-www-form-urlencoded\b/i.test(type)) return oauthError('invalid_request', 'Send the token request as application/x-www-form-urlencoded.');
      const body = await req.readBody(MAX_FORM_BYTES);
      if (body === 'too-large') return oauthError('invalid_request', 'The token request is too large.');
      const parsed = TokenSchema.safeParse(form(body?.toString('utf8') ?? ''));
      if (!parsed.success) {
        const grant = parsed.error.issues.some((i) => i.path[0] === 'grant_type');
        const client = parsed.error.issues.some((i) => i.path[0] === 'client_id');
        return grant ? oauthError('unsupported_grant_type', 'Only authorization_code is supported.') : client ? oauthError('invalid_client', `The only client is ${CONSOLE_CLIENT_ID}.`, 401) : oauthError('invalid_request', 'code, redirect_uri, client_id and a code_verifier (43–128 characters) are required.');
      }
      const p = parsed.data;
      const pending = codes.get(p.code);
      // Single use: a code is gone after the first attempt, right or wrong (RFC 6749 §4.1.2).
      codes.delete(p.code);
      if (!pending || pending.expiresAt <= now()) return oauthError('invalid_grant', 'The code is unknown, used or expired.');
      if (pending.redirectUri !== p.redirect_uri) return oauthError('invalid_grant', 'redirect_uri differs from the authorization request.');
      const challenge = b64url(createHash('sha256').update(p.code_verifier, 'ascii').digest());
      if (challenge !== pending.challenge) return oauthError('invalid_grant', 'The code_verifier does not match the code_challenge.');
      const person = DEMO_PEOPLE.find((x) => x.sub === pending.sub)!;
      const token = await options.issuer.sign(demoClaims(person), CONSOLE_TOKEN_TTL_SECONDS);
      return pageResponse(
        200,
        { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache' },
        JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: CONSOLE_TOKEN_TTL_SECONDS, scope: 'openid' }),
      );
    }

    return oauthError('invalid_request', `No dev issuer endpoint ${req.method} ${req.rawPath.slice(0, 100)}.`, 404);
  };
}
